"""People you may know judged day by day: the reference the champion's held-out days make, and the daily drift report
the retraining sensor reads (the drift kit, assets/monitoring.py)."""

from datetime import datetime, timezone

import dagster as dg
import polars as pl

from assets.monitoring import MonitoredDay, build_drift_report, build_drift_sensor, held_out_days
from assets.people_you_may_know.raw import GROUP, raw_ins
from assets.people_you_may_know.training import REGISTERED_MODEL, load_recommender
from assets.resources import MlflowTracking
from models.drift import Described
from models.people_you_may_know.monitoring import LIVE_K, MONITORS, describe_day, describe_days

MONITORING_EXPERIMENT = "people_you_may_know_monitoring"
REPORT = "people_you_may_know_drift_report"


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"people_you_may_know_champion": dg.AssetIn(), **raw_ins})
    def people_you_may_know_monitoring_reference(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, people_you_may_know_champion: pl.DataFrame,
        users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame, profile_views: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """What a normal day looks like for this champion: its held-out days described as the drift report describes
        a day (mutual friends and shared attributes of new connections, requests and their acceptance, its scores and
        the share of new connections it had suggested)."""
        version = str(people_you_may_know_champion["version"][0])

        def unknown_split():
            raise dg.Failure(f"{REGISTERED_MODEL} v{version} has no test_start/test_end tags: retrain it")

        start, end = held_out_days(mlflow_tracking, REGISTERED_MODEL, version, unknown_split)
        reference = describe_days(load_recommender(mlflow_tracking, version), users, connections, requests,
                                  profile_views, start, end)
        return dg.MaterializeResult(
            value=pl.DataFrame({"model_version": [version], "reference": [reference.to_json()]}),
            metadata={"model_version": version, "days": ", ".join(reference.days),
                      f"live_hit_rate_at_{LIVE_K}": reference.live[f"hit_rate_at_{LIVE_K}"],
                      **{f"mean_{name}": sum(v) / len(v) for name, v in reference.levels.items() if v}},
        )

    def monitored_day(context: dg.AssetExecutionContext, people_you_may_know_monitoring_reference: pl.DataFrame,
                      users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame,
                      profile_views: pl.DataFrame) -> MonitoredDay:
        day = context.partition_key
        start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        if connections.is_empty() or start > connections["ts"].max():
            raise dg.Failure(f"{day} has not arrived: ingest the day's connections first")
        version = str(people_you_may_know_monitoring_reference["model_version"][0])
        reference = Described.from_json(people_you_may_know_monitoring_reference["reference"][0])
        recommender = load_recommender(context.resources.mlflow_tracking, version)
        current = describe_day(recommender, users, connections, requests, profile_views, start)
        return MonitoredDay.of(reference, current, version, requests=int(current.levels["requests"][0]))

    report = build_drift_report(
        REPORT, GROUP, daily, MONITORS, monitored_day,
        ins={"people_you_may_know_monitoring_reference": dg.AssetIn(), **raw_ins},
        experiment=MONITORING_EXPERIMENT,
        required_resource_keys={"mlflow_tracking"},
        description="A day against the champion's held-out days: mutual friends and shared attributes of the day's "
        "new connections, how connected request senders are and the champion's top score (PSI), requests, acceptance "
        f"rate and new connections (levels), and the share of new connections it had in a top {LIVE_K} (live). Its "
        "`alarm` drives the sensor.",
    )
    return [people_you_may_know_monitoring_reference, report]


def build_people_you_may_know_drift_sensor(training_job: str):
    return build_drift_sensor(GROUP, REPORT, training_job)
