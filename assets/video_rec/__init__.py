"""Video recommendation (book ch. 6): two-tower candidate generation with ANN retrieval, an XGBoost ranker and
re-ranking rules, judged by precision, recall, mAP, nDCG, diversity and coverage against popularity."""


import dagster as dg

from assets.common import case_definitions, case_job
from assets.case import CaseStudy, GatedTraining, LatestPartition, Platform
from assets.release import gated_schedule, rollback_job
from assets.video_rec.monitoring import build_monitoring_assets, build_video_rec_drift_sensor
from assets.video_rec.raw import GROUP, build_raw_assets
from assets.video_rec.resources import VideoRecSource, VideoRecTimeSplit, VideoRecTraining
from assets.video_rec.serving import BENTO, PROMOTION_CHECK, build_serving_assets
from assets.video_rec.settings import VideoRecSettings
from assets.video_rec.training import REGISTERED_MODEL, build_training_assets

TRAINING_JOB = "video_rec_training_job"
ROLLBACK_JOB = "video_rec_rollback_job"
INGEST_JOB = "video_rec_ingest_job"
MONITORING_JOB = "video_rec_monitoring_job"
RAW_TABLES = ("video_rec_users", "video_rec_videos", "video_rec_interactions")


def build_source(platform: Platform, settings: VideoRecSettings) -> VideoRecSource:
    return VideoRecSource(
        raw_dir=settings.raw_dir, raw_dir_setting="MLSD_VIDEO_REC_RAW_DIR", landing_dir=platform.landing_dir(GROUP),
        world=settings.world, start_date=settings.start_date.isoformat(), days=settings.simulated_days, seed=settings.seed,
        users=settings.simulated_users, videos=settings.simulated_videos, new_videos_per_day=settings.new_videos_per_day,
        drift_kind=settings.simulated_drift.kind,
        drift_day=settings.simulated_drift.day, arrived_days=settings.arrived_days,
    )


def build_definitions(platform: Platform, settings: VideoRecSettings) -> dg.Definitions:
    source = build_source(platform, settings)
    definitions = [*build_raw_assets(), *build_training_assets(), *build_serving_assets(),
                   *build_monitoring_assets(source.daily_partitions("interactions"))]
    group = dg.AssetSelection.groups(GROUP)
    # A raw table and its quarantine are one multi-asset: they materialize together.
    ingested = dg.AssetSelection.assets(*RAW_TABLES, "video_rec_labeled_interactions").required_multi_asset_neighbors()
    daily = dg.AssetSelection.assets("video_rec_served_recommendations", "video_rec_drift_report")
    jobs = [
        case_job(
            GROUP, TRAINING_JOB,
            selection=group - daily,
            description="Ingest and validate, train two-tower, index, ranker; register and evaluate the challenger; "
            "promote it if it beats the champion (the gate); package the bento; write batch recommendations and the "
            "champion's monitoring reference. The weekly schedule and the drift sensor launch it too.",
        ),
        case_job(
            GROUP, INGEST_JOB, selection=ingested,
            description="Ingest and validate the views, uploads and users that have arrived. Run it before monitoring "
            "a day; bad rows are quarantined or stop the run, as each expectation's policy says.",
        ),
        case_job(
            GROUP, MONITORING_JOB, selection=daily,
            description="Serve an arrived day's homepages from the champion and judge the day: drift and live "
            "recall/nDCG. Run it for each day after ingestion; its alarms drive video_rec_drift_sensor.",
        ),
        rollback_job(GROUP),
    ]
    return case_definitions(
        definitions,
        jobs=jobs,
        sensors=[build_video_rec_drift_sensor(TRAINING_JOB)],
        schedules=[
            gated_schedule("video_rec_weekly_retrain", TRAINING_JOB, "0 4 * * 1",
                           "Retrain the recommender weekly: tastes drift and new videos need their ids learned."),
        ],
        resources={
            "video_rec_source": source,
            "video_rec_time_split": VideoRecTimeSplit(ranker_window=settings.ranker_window, test_window=settings.test_window),
            "video_rec_training": VideoRecTraining(epochs=settings.epochs, top_k=settings.top_k,
                                                   evaluation_users=settings.evaluation_users),
        },
    )


CASE = CaseStudy(
    name=GROUP,
    chapter=6,
    title="Video recommendation",
    predicts="a homepage of videos per user",
    metric="nDCG@10 (higher is better)",
    serving="online",
    settings_type=VideoRecSettings,
    small=dict(days=16, users=800, videos=800, new_videos_per_day=20, ranker_window="3d", test_window="3d", epochs=6),
    build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL,
    evaluation_asset="video_rec_evaluation",
    training_job=TRAINING_JOB,
    rollback_job=ROLLBACK_JOB,
    promotion_check=PROMOTION_CHECK,
    run_steps=(
        GatedTraining(TRAINING_JOB, PROMOTION_CHECK, "ingest, validate, two-tower, ANN index, ranker, registry, "
                      "evaluation, promotion, bento, batch recommendations, monitoring reference"),
        LatestPartition(MONITORING_JOB, "served lists and drift report"),
    ),
    monitoring_job=MONITORING_JOB,
    bento=BENTO,
    example_requests={"/recommend": {"user_id": "u000001", "k": 5}},
)
