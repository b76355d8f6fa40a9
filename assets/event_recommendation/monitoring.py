"""Event recommendation judged day by day: the reference the champion's held-out days make, and the daily drift
report the retraining sensor reads (the drift kit, assets/monitoring.py)."""

from datetime import datetime, timezone

import dagster as dg
import polars as pl

from assets.event_recommendation.raw import GROUP
from assets.event_recommendation.training import REGISTERED_MODEL, load_version
from assets.monitoring import MonitoredDay, build_drift_report, build_drift_sensor, held_out_days
from assets.resources import MlflowTracking
from models.drift import Described
from models.event_recommendation.monitoring import MONITORS, describe_day, describe_days

MONITORING_EXPERIMENT = "event_recommendation_monitoring"
REPORT = "event_recommendation_drift_report"
feature_ins = {"features": dg.AssetIn("event_recommendation_features"), "events": dg.AssetIn("event_recommendation_events")}


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"event_recommendation_champion": dg.AssetIn(), **feature_ins})
    def event_recommendation_monitoring_reference(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, event_recommendation_champion: pl.DataFrame,
        features: pl.DataFrame, events: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """What a normal day looks like for this champion: its held-out days described as the drift report describes
        a day (distances, prices, lead times and categories shown, its predictions, volumes and its mAP@10)."""
        version = str(event_recommendation_champion["version"][0])

        def unknown_split():
            raise dg.Failure(f"{REGISTERED_MODEL} v{version} has no test_start/test_end tags: retrain it")

        start, end = held_out_days(mlflow_tracking, REGISTERED_MODEL, version, unknown_split)
        reference = describe_days(features, events, load_version(mlflow_tracking, version), start, end)
        return dg.MaterializeResult(
            value=pl.DataFrame({"model_version": [version], "reference": [reference.to_json()]}),
            metadata={"model_version": version, "days": ", ".join(reference.days),
                      "live_map_at_10": reference.live["map_at_10"],
                      **{f"mean_{name}": sum(v) / len(v) for name, v in reference.levels.items() if v}},
        )

    def monitored_day(context: dg.AssetExecutionContext, event_recommendation_monitoring_reference: pl.DataFrame,
                      features: pl.DataFrame, events: pl.DataFrame) -> MonitoredDay:
        day = context.partition_key
        start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        if features.is_empty() or start > features["ts"].max():
            raise dg.Failure(f"{day} has not arrived: ingest the day's interactions first")
        version = str(event_recommendation_monitoring_reference["model_version"][0])
        reference = Described.from_json(event_recommendation_monitoring_reference["reference"][0])
        current = describe_day(features, events, load_version(context.resources.mlflow_tracking, version), start)
        return MonitoredDay.of(reference, current, version, impressions=int(current.levels["impressions"][0]))

    report = build_drift_report(
        REPORT, GROUP, daily, MONITORS, monitored_day,
        ins={"event_recommendation_monitoring_reference": dg.AssetIn(), **feature_ins},
        experiment=MONITORING_EXPERIMENT,
        required_resource_keys={"mlflow_tracking"},
        description="A day against the champion's held-out days: distances, prices, lead times and categories of what "
        "users were shown, the champion's predictions (PSI), impressions, registration rate and share of users without "
        "history (levels), and its live mAP@10 once the day's labels are in. Its `alarm` drives the sensor.",
    )
    return [event_recommendation_monitoring_reference, report]


def build_event_recommendation_drift_sensor(training_job: str):
    return build_drift_sensor(GROUP, REPORT, training_job)
