"""Similar listings judged day by day: the reference the champion's held-out days make, and the daily drift report
the retraining sensor reads (the drift kit, assets/monitoring.py)."""

from datetime import datetime, timezone

import dagster as dg
import polars as pl

from assets.monitoring import MonitoredDay, build_drift_report, build_drift_sensor, held_out_days
from assets.resources import MlflowTracking
from assets.similar_listings.raw import GROUP
from assets.similar_listings.resources import SimilarListingsTimeSplit
from assets.similar_listings.training import REGISTERED_MODEL, load_model
from models.drift import Described
from models.similar_listings.monitoring import MONITORS, describe_day, describe_days

MONITORING_EXPERIMENT = "similar_listings_monitoring"
REPORT = "similar_listings_drift_report"
raw_ins = {"listings": dg.AssetIn("similar_listings_listings"), "sessions": dg.AssetIn("similar_listings_sessions")}


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"similar_listings_champion": dg.AssetIn(), **raw_ins})
    def similar_listings_monitoring_reference(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        similar_listings_time_split: SimilarListingsTimeSplit,
        similar_listings_champion: pl.DataFrame,
        listings: pl.DataFrame,
        sessions: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """What a normal day looks like for this champion: its held-out days described as the drift report describes
        a day (clicked cities and prices, clicks per session, booking rate, clicks on listings it has no learned
        vector for, its booked-rank shares and mean booked rank)."""
        version = str(similar_listings_champion["version"][0])
        def current():
            cutoffs = similar_listings_time_split.cutoffs(sessions)
            return cutoffs.test_start, cutoffs.end

        start, end = held_out_days(mlflow_tracking, REGISTERED_MODEL, version, current)
        reference = describe_days(sessions, listings, load_model(mlflow_tracking, version).trained, start, end)
        return dg.MaterializeResult(
            value=pl.DataFrame({"model_version": [version], "reference": [reference.to_json()]}),
            metadata={"model_version": version, "days": ", ".join(reference.days),
                      "live_mean_booked_rank": reference.live["mean_booked_rank"],
                      **{f"mean_{name}": sum(v) / len(v) for name, v in reference.levels.items() if v}},
        )

    def monitored_day(context: dg.AssetExecutionContext, similar_listings_monitoring_reference: pl.DataFrame,
                      listings: pl.DataFrame, sessions: pl.DataFrame) -> MonitoredDay:
        day = context.partition_key
        start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        if sessions.is_empty() or start > sessions["ts"].max():
            raise dg.Failure(f"{day} has not arrived: ingest the day's sessions first")
        version = str(similar_listings_monitoring_reference["model_version"][0])
        reference = Described.from_json(similar_listings_monitoring_reference["reference"][0])
        trained = load_model(context.resources.mlflow_tracking, version).trained
        current = describe_day(sessions, listings, trained, start)
        return MonitoredDay.of(reference, current, version, sessions=int(current.levels["sessions"][0]))

    report = build_drift_report(
        REPORT, GROUP, daily, MONITORS, monitored_day,
        ins={"similar_listings_monitoring_reference": dg.AssetIn(), **raw_ins},
        experiment=MONITORING_EXPERIMENT,
        required_resource_keys={"mlflow_tracking"},
        description="A day against the champion's held-out days: the cities and prices guests clicked, clicks per "
        "session, sessions, booking rate, clicks on listings without a learned vector (PSI and levels), the "
        "champion's booked-rank shares, and its live mean booked rank. Its `alarm` drives the sensor.",
    )
    return [similar_listings_monitoring_reference, report]


def build_similar_listings_drift_sensor(training_job: str):
    return build_drift_sensor(GROUP, REPORT, training_job)
