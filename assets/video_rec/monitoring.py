"""Video recommendation judged day by day: the lists the champion served each day, the reference its held-out days
make, and the daily drift report the retraining sensor reads (the drift kit, assets/monitoring.py)."""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from assets.monitoring import MonitoredDay, build_drift_report, build_drift_sensor, held_out_days
from assets.resources import MlflowTracking
from assets.video_rec.raw import GROUP
from assets.video_rec.resources import VideoRecTimeSplit
from assets.video_rec.training import REGISTERED_MODEL, load_recommender
from models.video_rec.monitoring import K, MONITORS, Reference, build_reference, day_start, monitored_values, served_lists

MONITORING_EXPERIMENT = "video_rec_monitoring"
REPORT = "video_rec_drift_report"
raw_ins = {
    "users": dg.AssetIn("video_rec_users"),
    "videos": dg.AssetIn("video_rec_videos"),
    "labeled": dg.AssetIn("video_rec_labeled_interactions"),
}


def champion_window(mlflow_tracking: MlflowTracking, version: str, labeled: pl.DataFrame,
                    time_split: VideoRecTimeSplit) -> tuple[datetime, datetime]:
    def current():
        cutoffs = time_split.cutoffs(labeled)
        return cutoffs.test_start, cutoffs.test_end

    return held_out_days(mlflow_tracking, REGISTERED_MODEL, version, current)


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, ins={"video_rec_champion": dg.AssetIn(), **raw_ins})
    def video_rec_monitoring_reference(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_champion: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """What a normal day looks like for this champion: its held-out days, served as a monitored day is, described
        as the drift report describes a day (the values of each distribution, each day's levels, the live recall and
        nDCG), and the fixed probe users whose scores are watched."""
        version = str(video_rec_champion["version"][0])
        start, end = champion_window(mlflow_tracking, version, labeled, video_rec_time_split)
        recommender = load_recommender(mlflow_tracking, version)
        reference = build_reference(recommender, labeled, users, videos, start, end, progress=context.log.info)
        frame = reference.to_frame().with_columns(model_version=pl.lit(version))
        return dg.MaterializeResult(
            value=frame,
            metadata={
                "model_version": version,
                "days": ", ".join(reference.days),
                "probe_users": len(reference.probe),
                **{f"live_{name}": value for name, value in reference.live.items()},
                **{f"mean_{name}": sum(v) / len(v) for name, v in reference.levels.items() if v},
            },
        )

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, partitions_def=daily,
              ins={"video_rec_champion": dg.AssetIn(), **raw_ins})
    def video_rec_served_recommendations(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_champion: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The homepages served on the day: the champion's nightly batch over the views before it, for every user
        who had watched anything by then. The day's own views judge them in the drift report."""
        day = context.partition_key
        start = day_start(day, labeled["ts"].min())
        version = str(video_rec_champion["version"][0])
        held_out_from, _ = champion_window(mlflow_tracking, version, labeled, video_rec_time_split)
        if start < held_out_from:
            raise dg.Failure(f"{day} is before champion v{version}'s held-out days (from {held_out_from.date()}): it "
                             "learned from that day's views, so its lists there judge nothing. Monitor later days.")
        last = labeled["ts"].max()
        if start > last:
            raise dg.Failure(f"{day} has not arrived: the interactions end at {last}. Ingest the day's views first.")
        lists = served_lists(load_recommender(mlflow_tracking, version), labeled, users, videos, start)
        lists = lists.with_columns(day=pl.lit(day), model_version=pl.lit(version))
        context.log.info(f"{day}: {lists['user_id'].n_unique()} users served by v{version}")
        return dg.MaterializeResult(
            value=lists,
            metadata={
                "rows": lists.height,
                "users": lists["user_id"].n_unique(),
                "distinct_videos": lists["video_id"].n_unique(),
                "model_version": version,
                "views_judged": labeled.filter((pl.col("ts") >= start) & (pl.col("ts") < start + timedelta(days=1))).height,
            },
        )

    def monitored_day(context: dg.AssetExecutionContext, video_rec_served_recommendations: pl.DataFrame,
                      video_rec_monitoring_reference: pl.DataFrame, videos: pl.DataFrame,
                      labeled: pl.DataFrame) -> MonitoredDay:
        lists = video_rec_served_recommendations
        served_by = str(lists["model_version"][0]) if lists.height else None
        built_for = str(video_rec_monitoring_reference["model_version"][0])
        if served_by is not None and served_by != built_for:
            raise dg.Failure(f"the lists of {context.partition_key} were served by v{served_by} but the reference "
                             f"describes v{built_for}: rematerialize video_rec_served_recommendations for the day")
        reference = Reference.from_frame(video_rec_monitoring_reference)
        current, levels, live = monitored_values(reference, labeled, videos, context.partition_key, lists)
        return MonitoredDay(
            reference=reference.distributions, current=current, model_version=built_for,
            reference_levels=reference.levels, live=live, live_reference=reference.live,
            metadata={"views": int(levels["views"]), "served_users": lists["user_id"].n_unique(),
                      "reference_days": ", ".join(reference.days)},
        )

    report = build_drift_report(
        REPORT, GROUP, daily, MONITORS, monitored_day,
        ins={"video_rec_served_recommendations": dg.AssetIn(), "video_rec_monitoring_reference": dg.AssetIn(),
             "videos": raw_ins["videos"], "labeled": raw_ins["labeled"]},
        experiment=MONITORING_EXPERIMENT,
        description=f"A day against the champion's held-out days: views, new users and new videos, the popularity, "
        f"language and topic of what was watched, uploads, per-user activity, the chain's scores for the probe users "
        f"(PSI), and the live recall@{K} and nDCG@{K} of the lists served that day. Its `alarm` drives the sensor.",
    )
    return [video_rec_monitoring_reference, video_rec_served_recommendations, report]


def build_video_rec_drift_sensor(training_job: str):
    return build_drift_sensor(GROUP, REPORT, training_job)
