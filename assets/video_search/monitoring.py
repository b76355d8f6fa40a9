"""Video search judged day by day: the reference the champion's held-out days make, and the daily drift report the
retraining sensor reads (the drift kit, assets/monitoring.py)."""

from datetime import datetime, timezone

import dagster as dg
import polars as pl

from assets.monitoring import MonitoredDay, build_drift_report, build_drift_sensor, held_out_days
from assets.resources import MlflowTracking, TextEmbeddings
from assets.video_search.raw import GROUP
from assets.video_search.training import REGISTERED_MODEL, load_search
from models.drift import Described
from models.video_search.monitoring import MONITORS, describe_day, describe_days

MONITORING_EXPERIMENT = "video_search_monitoring"
REPORT = "video_search_drift_report"
log_ins = {"queries": dg.AssetIn("video_search_queries"), "clicks": dg.AssetIn("video_search_clicks")}


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"video_search_champion": dg.AssetIn(), **log_ins})
    def video_search_monitoring_reference(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, text_embeddings: TextEmbeddings,
        video_search_champion: pl.DataFrame, queries: pl.DataFrame, clicks: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """What a normal day looks like for this champion: its held-out days described as the drift report describes
        a day (words per query, words its index has never seen, click positions, its top score, volumes and its
        MRR@10)."""
        version = str(video_search_champion["version"][0])

        def unknown_split():
            raise dg.Failure(f"{REGISTERED_MODEL} v{version} has no test_start/test_end tags: retrain it")

        start, end = held_out_days(mlflow_tracking, REGISTERED_MODEL, version, unknown_split)
        reference = describe_days(queries, clicks, load_search(mlflow_tracking, version), start, end, text_embeddings.embed)
        return dg.MaterializeResult(
            value=pl.DataFrame({"model_version": [version], "reference": [reference.to_json()]}),
            metadata={"model_version": version, "days": ", ".join(reference.days),
                      "live_mrr_at_10": reference.live["mrr_at_10"],
                      **{f"mean_{name}": sum(v) / len(v) for name, v in reference.levels.items() if v}},
        )

    def monitored_day(context: dg.AssetExecutionContext, video_search_monitoring_reference: pl.DataFrame,
                      queries: pl.DataFrame, clicks: pl.DataFrame) -> MonitoredDay:
        day = context.partition_key
        start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        if queries.is_empty() or start > queries["ts"].max():
            raise dg.Failure(f"{day} has not arrived: ingest the day's queries first")
        version = str(video_search_monitoring_reference["model_version"][0])
        reference = Described.from_json(video_search_monitoring_reference["reference"][0])
        search = load_search(context.resources.mlflow_tracking, version)
        current = describe_day(queries, clicks, search, start, context.resources.text_embeddings.embed)
        return MonitoredDay.of(reference, current, version, queries=int(current.levels["queries"][0]))

    report = build_drift_report(
        REPORT, GROUP, daily, MONITORS, monitored_day,
        ins={"video_search_monitoring_reference": dg.AssetIn(), **log_ins},
        experiment=MONITORING_EXPERIMENT,
        required_resource_keys={"mlflow_tracking", "text_embeddings"},
        description="A day against the champion's held-out days: words per query, the share of words its index has "
        "never seen, click positions and its top fused score (PSI), queries, click rate and queries with no known word "
        "(levels), and its live MRR@10 once the day's clicks are in. Its `alarm` drives the sensor.",
    )
    return [video_search_monitoring_reference, report]


def build_video_search_drift_sensor(training_job: str):
    return build_drift_sensor(GROUP, REPORT, training_job)
