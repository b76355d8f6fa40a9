"""Drift monitoring of each new day against the training reference, and the triggers that retrain."""

import json

import dagster as dg
import numpy as np
import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.training import REGISTERED_MODEL, split_rows
from assets.common import images_markdown
from assets.release import PROMOTION_MODE_TAG
from models.ad_click.features import LABEL
from models.drift import DriftThresholds, RetrainPolicy
from assets.resources import MlflowTracking

MONITORING_EXPERIMENT = "ad_click_monitoring"
THRESHOLDS = DriftThresholds()
RETRAIN_POLICY = RetrainPolicy()
REFERENCE_ROWS = 100_000


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars", "mlflow"}, partitions_def=daily)
    def ad_click_drift_report(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        ad_click_features: pl.DataFrame,
        ad_click_training_data: pl.DataFrame,
        ad_click_champion: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """A day's features and champion predictions against the champion's training days (PSI, KS), and its live
        NCE once labels are in. Its `alarm` metadata drives the retraining sensor."""
        import mlflow

        from models import plots
        from models.ad_click.model import model_input
        from models.ad_click.monitoring import monitor_day

        train = split_rows(ad_click_training_data, "train")
        reference = train.sample(min(REFERENCE_ROWS, train.height), seed=0)
        version = str(ad_click_champion["version"][0])
        client = mlflow_tracking.client()
        model = mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}")
        current_p = np.asarray(model.predict(model_input(ad_click_features)))
        reference_p = np.asarray(model.predict(model_input(reference)))
        tags = client.get_model_version(REGISTERED_MODEL, version).tags
        reference_nce = float(tags["challenger_nce"]) if "challenger_nce" in tags else None
        report = monitor_day(
            context.partition_key, reference, reference_p, ad_click_features, current_p,
            float(train[LABEL].mean()), reference_nce, THRESHOLDS,
        )
        live_nce = report.live_nce
        top = sorted(report.feature_psi.items(), key=lambda kv: -kv[1])[:15]
        image = plots.bar_chart(dict(top), f"PSI against the training days, {context.partition_key}", THRESHOLDS.feature_psi)
        with mlflow_tracking.start_run(MONITORING_EXPERIMENT, f"drift-{context.partition_key}", {"day": context.partition_key}):
            mlflow.log_metrics(
                {
                    "prediction_psi": report.prediction_psi,
                    "max_feature_psi": top[0][1],
                    "drifted_features": len(report.drifted_features),
                    "alarm": float(report.alarm),
                    **({"live_nce": live_nce} if live_nce is not None else {}),
                    **({"nce_ratio": report.nce_ratio} if report.nce_ratio is not None else {}),
                }
            )
            mlflow.log_dict({"psi": report.feature_psi, "ks": report.feature_ks}, "drift.json")
        table = pl.DataFrame(
            {
                "feature": list(report.feature_psi),
                "psi": list(report.feature_psi.values()),
                "ks": [report.feature_ks.get(f) for f in report.feature_psi],
            }
        ).with_columns(day=pl.lit(context.partition_key), champion_version=pl.lit(version))
        context.log.info(f"{context.partition_key}: alarm={report.alarm} {report.signals}")
        return dg.MaterializeResult(
            value=table,
            metadata={
                "alarm": report.alarm,
                "signals": "; ".join(report.signals) or "none",
                "drifted_features": len(report.drifted_features),
                "max_feature_psi": top[0][1],
                "prediction_psi": report.prediction_psi,
                "live_nce": live_nce,
                "reference_nce": reference_nce,
                "nce_ratio": report.nce_ratio,
                "champion_version": version,
                "psi_plot": images_markdown({"psi.png": image}),
            },
        )

    return [ad_click_drift_report]


def _monitored_days(instance: dg.DagsterInstance) -> dict[str, bool]:
    """Latest alarm per monitored day, from the drift reports' materialization metadata."""
    records = instance.fetch_materializations(dg.AssetKey("ad_click_drift_report"), limit=1000).records
    alarms: dict[str, bool] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        materialization = record.asset_materialization
        if materialization and materialization.partition and "alarm" in materialization.metadata:
            alarms[materialization.partition] = bool(materialization.metadata["alarm"].value)
    return alarms


def build_drift_sensor(training_job_name: str):
    @dg.sensor(
        name="ad_click_drift_sensor",
        job_name=training_job_name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests one retraining run per drift episode: the retrain policy on the drift reports.",
    )
    def ad_click_drift_sensor(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        alarms = _monitored_days(context.instance)
        if not alarms:
            return dg.SkipReason("no drift report yet")
        days = sorted(alarms)
        episode = RETRAIN_POLICY.episode_start(days, [alarms[d] for d in days], state.get("last_trigger_day"))
        if episode is None:
            return dg.SkipReason(f"{sum(alarms.values())} alarm(s) in {len(days)} monitored days: no retraining needed")
        context.update_cursor(json.dumps({"last_trigger_day": days[-1], "episode": episode}))
        return dg.RunRequest(
            run_key=f"drift-episode-{episode}",
            # Retraining on fresh data because the champion's data drifted: the fresh model replaces the stale one
            # unless it is worse beyond the non-inferiority margin.
            tags={"mlsd/trigger": "drift", "mlsd/drift_episode": episode, "mlsd/decided_on": days[-1],
                  PROMOTION_MODE_TAG: "non_inferiority"},
        )

    return ad_click_drift_sensor


def build_retrain_schedule(training_job_name: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="ad_click_weekly_retrain",
        job_name=training_job_name,
        cron_schedule="0 3 * * 1",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        # A scheduled retrain on fresh data replaces a stale champion unless it is worse beyond the margin.
        tags={"mlsd/trigger": "schedule", PROMOTION_MODE_TAG: "non_inferiority"},
        description="Retrain every Monday 03:00 UTC; the promotion gate (non-inferiority mode) decides whether the "
        "champion moves.",
    )
