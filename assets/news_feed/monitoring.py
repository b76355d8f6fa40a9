"""The news feed judged day by day: the reference the champion's held-out days make, and the daily drift report the
retraining sensor reads (the drift kit, assets/monitoring.py)."""

from datetime import datetime, timezone

import dagster as dg
import polars as pl

from assets.monitoring import MonitoredDay, build_drift_report, build_drift_sensor, held_out_days
from assets.news_feed.raw import GROUP
from assets.news_feed.resources import NewsFeedObjective
from assets.news_feed.training import REGISTERED_MODEL, load_version
from assets.resources import MlflowTracking
from models.drift import Described
from models.news_feed.monitoring import MONITORS, describe_day, describe_days

MONITORING_EXPERIMENT = "news_feed_monitoring"
REPORT = "news_feed_drift_report"
feature_ins = {"features": dg.AssetIn("news_feed_features")}


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"news_feed_champion": dg.AssetIn(), **feature_ins})
    def news_feed_monitoring_reference(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, news_feed_objective: NewsFeedObjective,
        news_feed_champion: pl.DataFrame, features: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """What a normal day looks like for this champion: its held-out days described as the drift report describes
        a day (the age, topic and media of what users were shown, its predictions, volumes and its feed nDCG@10)."""
        version = str(news_feed_champion["version"][0])

        def unknown_split():
            raise dg.Failure(f"{REGISTERED_MODEL} v{version} has no test_start/test_end tags: retrain it")

        start, end = held_out_days(mlflow_tracking, REGISTERED_MODEL, version, unknown_split)
        reference = describe_days(features, load_version(mlflow_tracking, version), news_feed_objective.resolved, start, end)
        return dg.MaterializeResult(
            value=pl.DataFrame({"model_version": [version], "reference": [reference.to_json()]}),
            metadata={"model_version": version, "days": ", ".join(reference.days),
                      "live_ndcg_at_10": reference.live["ndcg_at_10"],
                      **{f"mean_{name}": sum(v) / len(v) for name, v in reference.levels.items() if v}},
        )

    def monitored_day(context: dg.AssetExecutionContext, news_feed_monitoring_reference: pl.DataFrame,
                      features: pl.DataFrame) -> MonitoredDay:
        day = context.partition_key
        start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        if features.is_empty() or start > features["ts"].max():
            raise dg.Failure(f"{day} has not arrived: ingest the day's impressions first")
        version = str(news_feed_monitoring_reference["model_version"][0])
        reference = Described.from_json(news_feed_monitoring_reference["reference"][0])
        weights = context.resources.news_feed_objective.resolved
        current = describe_day(features, load_version(context.resources.mlflow_tracking, version), weights, start)
        return MonitoredDay.of(reference, current, version, impressions=int(current.levels["impressions"][0]))

    report = build_drift_report(
        REPORT, GROUP, daily, MONITORS, monitored_day,
        ins={"news_feed_monitoring_reference": dg.AssetIn(), **feature_ins},
        experiment=MONITORING_EXPERIMENT,
        required_resource_keys={"mlflow_tracking", "news_feed_objective"},
        description="A day against the champion's held-out days: the age, topic and media of the posts users were "
        "shown, the champion's weighted score and P(like) (PSI), impressions, engagement and skip rates and the share "
        "of users without history (levels), and its live feed nDCG@10 once the day's labels are in. Its `alarm` drives "
        "the sensor.",
    )
    return [news_feed_monitoring_reference, report]


def build_news_feed_drift_sensor(training_job: str):
    return build_drift_sensor(GROUP, REPORT, training_job)
