"""Continual learning: the champion network trained further on the days it has not learned from, judged on the
newest day by the gate's non-inferiority mode, instead of a retrain from scratch.

Each day is the holdout once, the day it is newest, and is learned from by the next day's fine-tune
(progressive validation). A version records the last day it learned from as its `trained_through` tag.
"""

from datetime import date

import dagster as dg
import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.resources import AdClickSource
from assets.ad_click.training import EXPERIMENT, REGISTERED_MODEL, matured
from assets.common import case_job, partition_frames
from assets.release import PROMOTION_MODE_TAG, PromotionSettings, Scores, gate, register_challenger
from assets.resources import MlflowTracking
from models.ad_click.features import LABEL

FINE_TUNE_JOB = "ad_click_fine_tune_job"
FINE_TUNE_CHECK = "ad_click_fine_tune_not_worse"
TRAINED_THROUGH_TAG = "trained_through"
NETWORKS = ("deepfm", "dcn")


def fine_tune_window(features_days: list[date], trained_through: date) -> tuple[list[date], date]:
    """(the days to learn from, the holdout day): the days after `trained_through` before the newest, and the
    newest. Raises ValueError, saying what to do, when there is nothing new to learn or to judge on."""
    days = sorted(set(features_days))
    if not days:
        raise ValueError("no featurized day: run ad_click_daily_job first")
    holdout = days[-1]
    fresh = [d for d in days if trained_through < d < holdout]
    if not fresh:
        raise ValueError(
            f"nothing new to learn: the champion has learned from the days through {trained_through}, and the "
            f"newest day {holdout} is the holdout it is judged on; ingest the next day (ad_click_daily_job) first"
        )
    return fresh, holdout


def build_continual_assets() -> list:
    @dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"}, ins={"features": dg.AssetIn("ad_click_features")})
    def ad_click_fine_tuned_model(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking,
                                  ad_click_source: AdClickSource, features) -> dg.MaterializeResult:
        """The champion network trained further on the days since it last learned, registered as the challenger;
        a GBDT champion cannot be fine-tuned (the training job retrains it)."""
        import mlflow

        from models.ad_click.deep import fine_tune
        from models.ad_click.model import log_deep_model
        from models.ad_click.train import evaluate_predictions

        champion = mlflow_tracking.alias_version(REGISTERED_MODEL, "champion")
        if champion is None:
            raise dg.Failure("no champion to fine-tune: run ad_click_training_job first")
        tags = mlflow_tracking.client().get_model_version(REGISTERED_MODEL, champion).tags
        kind = tags.get("model_kind", "xgboost")
        if kind not in NETWORKS:
            raise dg.Failure(
                f"champion v{champion} is {kind}: a GBDT cannot be fine-tuned, only retrained (ad_click_training_job). "
                "A network becomes the champion when it wins the training job's choice; MLSD_AD_CLICK_CANDIDATES=dcn "
                "trains networks only"
            )
        if TRAINED_THROUGH_TAG not in tags:
            raise dg.Failure(f"champion v{champion} has no {TRAINED_THROUGH_TAG} tag: retrain it with ad_click_training_job")
        frame, _ = matured(pl.concat(partition_frames(features), how="vertical"), ad_click_source)
        day = pl.col("ts").dt.date()
        try:
            fresh_days, holdout = fine_tune_window(frame.select(day.unique())["ts"].to_list(),
                                                   date.fromisoformat(tags[TRAINED_THROUGH_TAG]))
        except ValueError as error:
            raise dg.Failure(str(error)) from None
        fresh = frame.filter(day.is_in(fresh_days))
        network = mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{champion}").unwrap_python_model().network
        with mlflow_tracking.start_run(EXPERIMENT, f"fine-tune-v{champion}", {"model": kind, "fine_tuned_from": champion}) as run:
            def progress(epoch):
                context.log.info(f"fine-tune epoch {epoch.epoch}: train log loss {epoch.train_log_loss:.5f} "
                                 f"({epoch.seconds:.1f} s)")
                mlflow.log_metric("train_log_loss", epoch.train_log_loss, step=int(epoch.epoch * 100))

            tuned, curve = fine_tune(network, fresh, on_epoch=progress)
            mlflow.log_params({"fine_tuned_from": champion, "fresh_days": len(fresh_days), "fresh_rows": fresh.height,
                               "learning_rate": network.params.fine_tune_learning_rate,
                               "epochs": network.params.fine_tune_epochs, "holdout_day": str(holdout)})
            holdout_rows = frame.filter(day == holdout)
            report = evaluate_predictions(fresh, holdout_rows, _scores(tuned, holdout_rows))
            mlflow.log_metrics({f"holdout_{k}": v for k, v in report.items()})
            info = log_deep_model(tuned, holdout_rows.head(200))
        trained_through = fresh_days[-1]
        version = register_challenger(
            context, GROUP, mlflow_tracking, info.model_uri, REGISTERED_MODEL,
            tags={"model_kind": kind, TRAINED_THROUGH_TAG: trained_through.isoformat(), "fine_tuned_from": champion},
        )
        context.log.info(f"fine-tuned v{champion} on {fresh.height} rows of {len(fresh_days)} day(s) through "
                         f"{trained_through}: {REGISTERED_MODEL} v{version}; holdout {holdout}: {report}")
        return dg.MaterializeResult(
            value=pl.DataFrame({"version": [str(version)], "fine_tuned_from": [champion], "holdout_day": [str(holdout)],
                                "trained_through": [trained_through.isoformat()]}),
            metadata={
                "fine_tuned_from": f"v{champion} ({kind})",
                "registered_model": f"{REGISTERED_MODEL} v{version} @challenger",
                "fresh_days": ", ".join(str(d) for d in fresh_days),
                "fresh_rows": fresh.height,
                "holdout_day": str(holdout),
                "seconds": sum(e.seconds for e in curve),
                **{f"holdout_{k}": v for k, v in report.items()},
                **mlflow_tracking.run_link(run),
                "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
            },
        )

    @dg.asset_check(
        name=FINE_TUNE_CHECK,
        asset=ad_click_fine_tuned_model,
        blocking=True,
        additional_ins={"features": dg.AssetIn("ad_click_features")},
        description="The fine-tuned challenger against the champion on the newest day (the holdout neither learned "
        "from), in non-inferiority mode: a day's fine-tune rarely wins by a significant margin, but must never be "
        "worse beyond the tolerance.",
    )
    def fine_tune_not_worse(context: dg.AssetCheckExecutionContext, mlflow_tracking: MlflowTracking,
                            promotion: PromotionSettings, ad_click_source: AdClickSource,
                            ad_click_fine_tuned_model: pl.DataFrame, features) -> dg.AssetCheckResult:
        from dataclasses import replace

        from assets.ad_click.serving import PROMOTION_POLICY
        from models.ad_click.model import model_input
        from models.ad_click.train import evaluate_predictions
        from models.metrics import nce_units

        holdout = date.fromisoformat(ad_click_fine_tuned_model["holdout_day"][0])
        trained_through = date.fromisoformat(ad_click_fine_tuned_model["trained_through"][0])
        frame, _ = matured(pl.concat(partition_frames(features), how="vertical"), ad_click_source)
        day = pl.col("ts").dt.date()
        rows = frame.filter(day == holdout)
        # NCE's background rate: the CTR of the last day the challenger learned from (known before the holdout).
        background_rows = frame.filter(day == trained_through)
        inputs, background = model_input(rows), float(background_rows[LABEL].mean())

        def score(version: str) -> Scores:
            p = mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").predict(inputs)
            report = evaluate_predictions(background_rows, rows, p)
            return Scores({k: report[k] for k in ("nce", "log_loss", "calibration_error")},
                          nce_units(rows[LABEL].to_numpy(), p, background))

        policy = replace(PROMOTION_POLICY, mode="non_inferiority")
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL,
                    str(ad_click_fine_tuned_model["version"][0]), policy, score, unit="impression")

    return [ad_click_fine_tuned_model, fine_tune_not_worse]


def _scores(network, frame: pl.DataFrame):
    from models.ad_click.deep import design
    from models.ad_click.features import ID_COLUMNS

    return network.predict(design(frame, network.encoder.vocabularies), network.encoder.id_codes(frame.select(ID_COLUMNS)))


def fine_tune_job():
    return case_job(
        GROUP, FINE_TUNE_JOB,
        selection=dg.AssetSelection.assets("ad_click_fine_tuned_model", "ad_click_champion", "ad_click_bento_model",
                                           "ad_click_bento"),
        run_tags={PROMOTION_MODE_TAG: "non_inferiority"},
        description="Continual learning: train the champion network further on the days since it last learned, judge "
        "it on the newest day (non-inferiority), promote and repackage it. Run it daily after ad_click_daily_job, "
        "instead of a full retrain; a GBDT champion cannot be fine-tuned and the run says so.",
    )


def fine_tune_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="ad_click_daily_fine_tune",
        job_name=FINE_TUNE_JOB,
        cron_schedule="0 4 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        tags={"mlsd/trigger": "schedule", PROMOTION_MODE_TAG: "non_inferiority"},
        description="Fine-tune the champion network every day at 04:00 UTC, after the day's ingestion; the gate "
        "(non-inferiority) decides whether the champion moves.",
    )

