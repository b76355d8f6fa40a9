"""YouTube video search (book ch. 4): a text query in, relevant videos out, from two paths side by side (a BM25 index
over titles, descriptions, tags and an auto-tagger's tags; a dual encoder searching video vectors made from frames and
metadata with the query's) fused with popularity and freshness; judged by MRR@10 of the clicked video against BM25,
frozen MiniLM and their tuned hybrid; served online."""

import dagster as dg

from assets.case import CaseStudy, GatedTraining, LatestPartition, Platform
from assets.common import case_definitions, case_job
from assets.release import gated_schedule, rollback_job
from assets.video_search.monitoring import REPORT, build_monitoring_assets, build_video_search_drift_sensor
from assets.video_search.raw import GROUP, build_raw_assets
from assets.video_search.resources import VideoSearchSource, VideoSearchTimeSplit, VideoSearchTraining
from assets.video_search.serving import BENTO, PROMOTION_CHECK, build_serving_assets
from assets.video_search.settings import VideoSearchSettings
from assets.video_search.training import REGISTERED_MODEL, build_training_assets

TRAINING_JOB = "video_search_training_job"
ROLLBACK_JOB = "video_search_rollback_job"
MONITORING_JOB = "video_search_monitoring_job"


def build_source(platform: Platform, settings: VideoSearchSettings) -> VideoSearchSource:
    return VideoSearchSource(
        raw_dir=settings.raw_dir, raw_dir_setting="MLSD_VIDEO_SEARCH_RAW_DIR", landing_dir=platform.landing_dir(GROUP),
        start_date=settings.start_date.isoformat(), days=settings.days, seed=settings.seed, catalogue=settings.catalogue,
        uploads_per_day=settings.uploads_per_day, queries_per_day=settings.queries_per_day,
        poor_metadata_share=settings.poor_metadata_share, drift_kind=settings.simulated_drift.kind,
        drift_day=settings.simulated_drift.day,
    )


def build_definitions(platform: Platform, settings: VideoSearchSettings) -> dg.Definitions:
    source = build_source(platform, settings)
    definitions = [*build_raw_assets(), *build_training_assets(), *build_serving_assets(),
                   *build_monitoring_assets(source.daily_partitions("queries"))]
    jobs = [
        case_job(
            GROUP, TRAINING_JOB, selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets(REPORT),
            description="Ingest and validate videos, frames, queries and clicks; split by time; train the auto-tagger "
            "and the dual encoder; build the BM25 and vector index with fusion weights chosen on validation; register "
            "the challenger; evaluate it against BM25, frozen MiniLM, their hybrid and the oracle; promote it if it "
            "beats the champion (the gate); package the bento; describe the champion's held-out days for monitoring. "
            "The weekly schedule and the drift sensor launch it too.",
        ),
        case_job(
            GROUP, MONITORING_JOB, selection=dg.AssetSelection.assets(REPORT),
            description="Judge a day of queries against the champion's held-out days: drift of what people typed and "
            "clicked and of the champion's scores, volumes, and its live MRR@10. Its alarms drive "
            "video_search_drift_sensor.",
        ),
        rollback_job(GROUP),
    ]
    return case_definitions(
        definitions,
        jobs=jobs,
        sensors=[build_video_search_drift_sensor(TRAINING_JOB)],
        schedules=[
            gated_schedule("video_search_weekly_retrain", TRAINING_JOB, "0 3 * * 1",
                           "Retrain and re-index weekly: new uploads enter the index, popularity moves, and the "
                           "encoder learns the words people now search with."),
        ],
        resources={
            "video_search_source": source,
            "video_search_time_split": VideoSearchTimeSplit(validation_window=settings.validation_window,
                                                            test_window=settings.test_window),
            "video_search_training": VideoSearchTraining(dim=settings.dim, epochs=settings.epochs),
        },
    )


CASE = CaseStudy(
    name=GROUP,
    chapter=4,
    title="Video search",
    predicts="the videos a text query is looking for",
    metric="MRR@10 (higher is better)",
    serving="online",
    settings_type=VideoSearchSettings,
    small=dict(days=10, catalogue=700, uploads_per_day=15, queries_per_day=160, validation_window="2d",
               test_window="3d", epochs=6),
    build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL,
    evaluation_asset="video_search_evaluation",
    training_job=TRAINING_JOB,
    rollback_job=ROLLBACK_JOB,
    promotion_check=PROMOTION_CHECK,
    run_steps=(
        GatedTraining(TRAINING_JOB, PROMOTION_CHECK, "ingest, validate, split, embed texts, auto-tagger, dual encoder, "
                      "BM25 and vector index, fusion weights, registry, evaluation, promotion, bento, monitoring "
                      "reference"),
        LatestPartition(MONITORING_JOB, "drift report"),
    ),
    monitoring_job=MONITORING_JOB,
    bento=BENTO,
    example_requests={"/search": {"q": "easy pasta tutorial", "k": 5}},
)
