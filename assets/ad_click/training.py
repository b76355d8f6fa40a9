"""Training data split by time, the logistic-regression baseline, the candidates (XGBoost, DeepFM, DCN-v2), the
challenger chosen among them on validation days, and their evaluation."""


from datetime import datetime, time, timedelta, timezone

import dagster as dg
import numpy as np
import polars as pl

from assets.ad_click.raw import GROUP
from assets.common import (
    frame_markdown,
    frame_metadata,
    images_markdown,
    log_plots,
    metric_metadata,
    metrics_table,
    one_row,
    partition_frames,
    plot_links,
    suite_check,
)
from expectations import ad_click as suites
from models.ad_click.features import FEATURE_COLUMNS, LABEL
from assets.ad_click.resources import AdClickSource, AdClickTimeSplit
from assets.ad_click.settings import CANDIDATES  # what may become the challenger; each an asset ad_click_<name>_model
from assets.continual import TRAINED_THROUGH_TAG
from assets.release import register_challenger
from assets.resources import MlflowTracking
from models.ad_click.train import SPLITS, XGBoostParams, evaluate_predictions
from models.windows import split_rows

EXPERIMENT = "ad_click"
REGISTERED_MODEL = "ad_click_ctr"
METRICS = ["nce", "log_loss", "roc_auc", "pr_auc", "calibration_error"]


def matured(rows: pl.DataFrame, source: AdClickSource) -> tuple[pl.DataFrame, int]:
    """The rows whose label is known when training runs, once the newest day is in (the end of that day): with
    click times, an impression's label is known only when its click window has closed. Also the count left out."""
    if not rows.height or not source.has_click_times():
        return rows, 0
    trained_at = datetime.combine(rows["ts"].max().date() + timedelta(days=1), time(), tzinfo=timezone.utc)
    mature = rows.filter(pl.col("ts") + source.click_window <= trained_at)
    return mature, rows.height - mature.height


NETWORK_TITLES = {"deepfm": "DeepFM", "dcn": "DCN-v2"}


def _candidate_result(mlflow_tracking: MlflowTracking, run, info, kind: str, validation_log_loss: float,
                      report: dict, images: dict, **extra) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, kind=kind,
                               validation_log_loss=validation_log_loss, test_nce=report["nce"]),
        metadata={
            "validation_log_loss": validation_log_loss,
            **{f"test_{k}": v for k, v in report.items()},
            **extra,
            **mlflow_tracking.run_link(run),
            **plot_links(mlflow_tracking, run, images),
            "plots": images_markdown(images),
        },
    )


def build_training_assets(candidates: tuple[str, ...] = CANDIDATES) -> list:
    """The training graph with the chosen candidates (MLSD_AD_CLICK_CANDIDATES) as the challenger's choices."""
    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, ins={"features": dg.AssetIn("ad_click_features")})
    def ad_click_training_data(
        context: dg.AssetExecutionContext, ad_click_time_split: AdClickTimeSplit, ad_click_source: AdClickSource,
        features
    ) -> dg.MaterializeResult:
        """Feature rows labelled train, validation or test by day; warm-up days with short history, and impressions
        whose click window had not closed by the end of the newest day (delayed feedback), are left out."""
        rows, immature = matured(pl.concat(partition_frames(features), how="vertical"), ad_click_source)
        labelled = ad_click_time_split.split().assign(rows)
        training = labelled.filter(pl.col("split").is_not_null())
        windows = suites.split_windows(training)
        context.log.info(f"time split:\n{windows}")
        metadata = {
            **frame_metadata(training),
            "warmup_rows_dropped": labelled.height - training.height,
            "immature_rows_dropped": immature,
            "split_windows": dg.MetadataValue.md(frame_markdown(windows)),
        }
        for name in SPLITS:
            part = split_rows(training, name)
            metadata[f"{name}_rows"] = part.height
            metadata[f"{name}_ctr"] = float(part[LABEL].mean() or 0.0)
        return dg.MaterializeResult(value=training, metadata=metadata)

    @dg.asset_check(asset=ad_click_training_data, blocking=True, description="Train, validation, test disjoint and ordered in time.")
    def ad_click_time_split_valid(ad_click_training_data: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(suites.split_windows(ad_click_training_data), suites.split_suite())

    @dg.asset_check(asset=ad_click_training_data, blocking=True, description="The label and evaluation-only columns are not model inputs.")
    def ad_click_model_inputs_valid(ad_click_training_data: pl.DataFrame) -> dg.AssetCheckResult:
        inputs = pl.DataFrame({"feature": list(FEATURE_COLUMNS)})
        return suite_check(inputs, suites.model_inputs_suite(), inputs=len(FEATURE_COLUMNS))

    @dg.asset(group_name=GROUP, kinds={"sklearn", "mlflow"})
    def ad_click_baseline_model(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, ad_click_training_data: pl.DataFrame
    ) -> dg.MaterializeResult:
        """The book's baseline: logistic regression on the same features. Its value is a reference to the MLflow run."""
        import mlflow

        from models.ad_click.model import model_input, pinned_requirements
        from models.ad_click.train import baseline_frame, train_logistic_regression

        train, test = split_rows(ad_click_training_data, "train"), split_rows(ad_click_training_data, "test")
        with mlflow_tracking.start_run(EXPERIMENT, "baseline-logistic-regression", {"model": "baseline"}) as run:
            pipeline = train_logistic_regression(train)
            report = evaluate_predictions(train, test, pipeline.predict_proba(baseline_frame(test))[:, 1])
            mlflow.log_params({"model": "logistic_regression", "C": 1.0, "features": len(FEATURE_COLUMNS)})
            mlflow.log_metrics({f"test_{k}": v for k, v in report.items()})
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                skops_trusted_types=["numpy.dtype"],  # the one type the pipeline needs beyond sklearn's own
                input_example=model_input(test.head(3)),
                pip_requirements=pinned_requirements("mlflow", "scikit-learn", "pandas", "numpy"),
            )
        context.log.info(f"baseline test metrics: {report}")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, version=""),
            metadata={
                **{f"test_{k}": v for k, v in report.items()},
                **mlflow_tracking.run_link(run),
            },
        )

    @dg.asset(group_name=GROUP, kinds={"xgboost", "mlflow"})
    def ad_click_xgboost_model(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, ad_click_training_data: pl.DataFrame
    ) -> dg.MaterializeResult:
        """A candidate for the champion: XGBoost on the point-in-time features, early-stopped on validation days."""
        import mlflow

        from models import plots
        from models.ad_click.model import log_xgboost_model
        from models.ad_click.train import predict_xgboost, train_xgboost

        train, validation, test = (split_rows(ad_click_training_data, s) for s in SPLITS)
        params = XGBoostParams()

        def progress(round_, logloss):
            if round_ % 50 == 0:
                context.log.info(f"xgboost round {round_}: validation log loss {logloss:.5f}")

        with mlflow_tracking.start_run(EXPERIMENT, "xgboost", {"model": "xgboost"}) as run:
            booster, encoder, curve = train_xgboost(train, validation, params, on_round=progress)
            p_test = predict_xgboost(booster, encoder, test)
            report = evaluate_predictions(train, test, p_test)
            importance = booster.get_score(importance_type="total_gain")
            images = {
                **plots.classifier_curves(test[LABEL].to_numpy(), {"xgboost": p_test}),
                "feature_importance.png": plots.feature_importance(importance),
            }
            mlflow.log_params({**vars(params), "best_iteration": booster.best_iteration, "features": len(FEATURE_COLUMNS)})
            for step, value in enumerate(curve):
                mlflow.log_metric("validation_log_loss", value, step=step)
            validation_log_loss = curve[booster.best_iteration]
            mlflow.log_metrics({f"test_{k}": v for k, v in report.items()} | {"best_validation_log_loss": validation_log_loss})
            mlflow.log_dict({"features": list(FEATURE_COLUMNS)}, "features.json")
            log_plots(images)
            info = log_xgboost_model(booster, encoder, test.head(200))
        context.log.info(f"xgboost: validation log loss {validation_log_loss:.5f}; test {report}")
        return _candidate_result(mlflow_tracking, run, info, "xgboost", validation_log_loss, report, images,
                                 best_iteration=booster.best_iteration)

    def network_asset(kind: str, title: str):
        @dg.asset(name=f"ad_click_{kind}_model", group_name=GROUP, kinds={"pytorch", "mlflow"},
                  description=f"A candidate for the champion: {title} in PyTorch, learning crosses over embeddings of "
                  "the user, ad and advertiser ids and the categorical fields, beside the point-in-time counts.")
        def network_model(
            context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, ad_click_training_data: pl.DataFrame
        ) -> dg.MaterializeResult:
            import mlflow

            from models import plots
            from models.ad_click.deep import DeepParams, calibrate, train_click_net
            from models.ad_click.model import log_deep_model
            from models.ad_click.train import CategoryEncoder

            train, validation, test = (split_rows(ad_click_training_data, s) for s in SPLITS)
            params = DeepParams(kind=kind)
            vocabularies = CategoryEncoder.fit(train).vocabularies
            with mlflow_tracking.start_run(EXPERIMENT, kind, {"model": kind}) as run:
                mlflow.log_params({k: str(v) for k, v in vars(params).items()})

                def progress(epoch):
                    context.log.info(f"{kind} epoch {epoch.epoch}: train log loss {epoch.train_log_loss:.5f}, "
                                     f"validation {epoch.validation_log_loss:.5f} ({epoch.seconds:.1f} s)")
                    # Steps are hundredths of an epoch: MLflow's steps are whole numbers.
                    mlflow.log_metrics({"train_log_loss": epoch.train_log_loss,
                                        "validation_log_loss": epoch.validation_log_loss}, step=round(epoch.epoch * 100))

                network, curve = train_click_net(train, validation, vocabularies, params, on_epoch=progress)
                calibration = calibrate(network, validation)
                context.log.info(f"{kind} Platt scaling {'kept' if calibration.kept else 'not kept'}: later half of "
                                 f"validation log loss {calibration.log_loss_before:.5f} -> {calibration.log_loss_after:.5f}")
                p_test = network.predict_frame(test)
                report = evaluate_predictions(train, test, p_test)
                best = min(curve, key=lambda e: e.validation_log_loss)
                validation_log_loss = best.validation_log_loss
                images = {
                    **plots.classifier_curves(test[LABEL].to_numpy(), {kind: p_test}),
                    "learning_curve.png": plots.line_chart(
                        [e.epoch for e in curve],
                        {"train": [e.train_log_loss for e in curve], "validation": [e.validation_log_loss for e in curve]},
                        f"{kind}: log loss per epoch", "epoch", "log loss"),
                }
                mlflow.log_metrics({f"test_{k}": v for k, v in report.items()} | {
                    "best_validation_log_loss": validation_log_loss, "best_epoch": best.epoch,
                    "epochs_run": curve[-1].epoch, "calibration_scale": network.calibration[0],
                    "calibration_shift": network.calibration[1],
                    "calibration_check_log_loss_before": calibration.log_loss_before,
                    "calibration_check_log_loss_after": calibration.log_loss_after,
                    "id_rows": sum(v.size for v in network.encoder.ids.values())})
                log_plots(images)
                info = log_deep_model(network, test.head(200))
            context.log.info(f"{kind}: validation log loss {validation_log_loss:.5f}; test {report}")
            return _candidate_result(mlflow_tracking, run, info, kind, validation_log_loss, report, images,
                                     best_epoch=best.epoch, epochs_run=curve[-1].epoch,
                                     platt_scaling="kept" if calibration.kept else "not kept (no gain on held-out "
                                     "validation rows)", calibration_scale=network.calibration[0],
                                     calibration_shift=network.calibration[1])

        return network_model

    @dg.asset(
        group_name=GROUP,
        kinds={"mlflow"},
        ins={name: dg.AssetIn(f"ad_click_{name}_model") for name in candidates},
    )
    def ad_click_ctr_model(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking,
                           ad_click_training_data: pl.DataFrame, **trained) -> dg.MaterializeResult:
        """The challenger: of the candidates, the one with the lowest validation log loss (the test days stay
        unseen), registered in MLflow with the alias `challenger`; the gate then judges it against the champion."""
        table = pl.concat(list(trained.values()), how="diagonal_relaxed")
        chosen = table.sort("validation_log_loss").row(0, named=True)
        # The last day the model learned from (validation days only stopped it): a fine-tune goes on from there.
        trained_through = split_rows(ad_click_training_data, "train")["ts"].max().date().isoformat()
        version = register_challenger(context, GROUP, mlflow_tracking, chosen["model_uri"], REGISTERED_MODEL,
                                      tags={"model_kind": chosen["kind"], TRAINED_THROUGH_TAG: trained_through})
        choice = table.select("kind", "validation_log_loss", "test_nce").sort("validation_log_loss")
        context.log.info(f"challenger: {chosen['kind']} (lowest validation log loss), {REGISTERED_MODEL} v{version}")
        return dg.MaterializeResult(
            value=one_row(run_id=chosen["run_id"], model_uri=chosen["model_uri"], version=str(version),
                                   kind=chosen["kind"]),
            metadata={
                "model_kind": chosen["kind"],
                "candidates": dg.MetadataValue.md(frame_markdown(choice)),
                "registered_model": f"{REGISTERED_MODEL} v{version} @challenger",
                "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
                "mlflow_run_id": chosen["run_id"],
            },
        )

    @dg.asset(
        group_name=GROUP,
        kinds={"mlflow", "polars"},
        ins={"oracle": dg.AssetIn("ad_click_oracle"),
             **{name: dg.AssetIn(f"ad_click_{name}_model") for name in candidates}},
    )
    def ad_click_model_evaluation(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        ad_click_training_data: pl.DataFrame,
        ad_click_baseline_model: pl.DataFrame,
        ad_click_ctr_model: pl.DataFrame,
        oracle,
        **trained,
    ) -> dg.MaterializeResult:
        """Baseline, every candidate (XGBoost, DeepFM, DCN-v2) and, on simulated data, the oracle on the test days,
        from the models as MLflow logged them; the challenger is the candidate chosen on validation days."""
        import mlflow

        from models import plots
        from models.ad_click.model import model_input

        train, test = split_rows(ad_click_training_data, "train"), split_rows(ad_click_training_data, "test")
        y = test[LABEL].to_numpy()
        features = model_input(test)
        with mlflow_tracking.activated():
            baseline = mlflow.sklearn.load_model(ad_click_baseline_model["model_uri"][0])
        scores = {"baseline (logistic regression)": baseline.predict_proba(features)[:, 1]}
        for name in candidates:
            scores[name] = np.asarray(mlflow_tracking.load_pyfunc(trained[name]["model_uri"][0]).predict(features))
        challenger = ad_click_ctr_model["kind"][0]
        truth = pl.concat(partition_frames(oracle), how="vertical")
        oracle_note = "none: user-provided data has no oracle"
        if truth.height:
            matched = test.select("impression_id").join(truth, on="impression_id", how="left")["p_click"]
            if matched.null_count() == 0:
                scores["oracle (true probability)"] = matched.to_numpy()
                oracle_note = "simulator's true click probabilities"
            else:
                oracle_note = f"incomplete: {matched.null_count()} test rows have no oracle value"
        rows = {name: evaluate_predictions(train, test, p) for name, p in scores.items()}
        oracle_row = rows.get("oracle (true probability)")
        for name, row in rows.items():
            row["nce_vs_oracle"] = row["nce"] / oracle_row["nce"] if oracle_row else None
        table = metrics_table(rows, [*METRICS, "nce_vs_oracle"])
        images = plots.classifier_curves(y, scores)
        figures = metric_metadata({name.split(" ")[0]: row for name, row in rows.items()})
        with mlflow_tracking.start_run(EXPERIMENT, "evaluation", {"model": "comparison"}) as run:
            mlflow.log_metrics(figures)
            mlflow.log_text(table, "comparison.md")
            log_plots(images)
        comparison = pl.DataFrame([{"model": name, **row} for name, row in rows.items()])
        context.log.info(f"test-day comparison ({test.height} impressions):\n{table}")
        return dg.MaterializeResult(
            value=comparison,
            metadata={
                "comparison": dg.MetadataValue.md(table),
                "test_rows": test.height,
                "test_days": test["ts"].dt.date().n_unique(),
                "oracle": oracle_note,
                "challenger": challenger,
                "challenger_nce": rows[challenger]["nce"],
                "challenger_nce_vs_oracle": rows[challenger]["nce_vs_oracle"],
                # The front table's figures (README): the book's metric for baseline, challenger and oracle.
                "baseline": "logistic regression",
                "baseline_value": rows["baseline (logistic regression)"]["nce"],
                "model_value": rows[challenger]["nce"],
                "oracle_value": oracle_row["nce"] if oracle_row else None,
                "evaluation_note": f"oracle: {oracle_note}; test impressions: {test.height}",
                "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run.info.experiment_id, run.info.run_id)),
                **plot_links(mlflow_tracking, run, images),
                **figures,
                "plots": images_markdown(images),
            },
        )

    return [
        ad_click_training_data,
        ad_click_time_split_valid,
        ad_click_model_inputs_valid,
        ad_click_baseline_model,
        *[ad_click_xgboost_model if name == "xgboost" else network_asset(name, NETWORK_TITLES[name]) for name in candidates],
        ad_click_ctr_model,
        ad_click_model_evaluation,
    ]

