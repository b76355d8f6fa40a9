"""Personalized news feed (book ch. 10): the unseen posts of a user's friends and followed authors ranked by a weighted
sum of predicted reactions (click, like, comment, share, hide, block, skip, dwell) from a multi-task network on
point-in-time post, user, affinity and context features, judged per head by ROC-AUC and PR-AUC against one XGBoost
model per reaction and by the feed's nDCG@10 against reverse chronological order; served online as retrieval,
ranking and re-ranking on online features."""


import dagster as dg

from assets.case import CaseStudy, GatedTraining, LatestPartition, Platform
from assets.common import case_definitions, case_job
from assets.continual import build_fine_tune_assets, fine_tune_job, fine_tune_schedule
from assets.news_feed.continual import fine_tuning
from assets.news_feed.features import build_feature_assets
from assets.news_feed.monitoring import REPORT, build_monitoring_assets, build_news_feed_drift_sensor
from assets.news_feed.raw import GROUP, build_raw_assets
from assets.news_feed.resources import NewsFeedObjective, NewsFeedRetrieval, NewsFeedSource, NewsFeedTimeSplit
from assets.news_feed.serving import BENTO, PROMOTION_CHECK, build_serving_assets
from assets.news_feed.settings import NewsFeedSettings
from assets.news_feed.training import REGISTERED_MODEL, build_training_assets
from assets.release import gated_schedule, rollback_job

TRAINING_JOB = "news_feed_training_job"
ROLLBACK_JOB = "news_feed_rollback_job"
MONITORING_JOB = "news_feed_monitoring_job"


def build_source(platform: Platform, settings: NewsFeedSettings) -> NewsFeedSource:
    return NewsFeedSource(
        raw_dir=settings.raw_dir, raw_dir_setting="MLSD_NEWS_FEED_RAW_DIR", landing_dir=platform.landing_dir(GROUP),
        start_date=settings.start_date.isoformat(), days=settings.days, seed=settings.seed, users=settings.users,
        sessions_per_day=settings.sessions_per_day, drift_kind=settings.simulated_drift.kind,
        drift_day=settings.simulated_drift.day,
    )


def build_definitions(platform: Platform, settings: NewsFeedSettings) -> dg.Definitions:
    source = build_source(platform, settings)
    continual = fine_tuning(TRAINING_JOB)
    definitions = [*build_raw_assets(), *build_feature_assets(), *build_training_assets(),
                   *build_fine_tune_assets(continual), *build_serving_assets(),
                   *build_monitoring_assets(source.daily_partitions("impressions"))]
    jobs = [
        case_job(
            GROUP, TRAINING_JOB,
            selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets(continual.asset_name, REPORT),
            description="Ingest and validate users, friendships, posts, impressions, reactions and dwell; embed the "
            "posts' text; compute point-in-time features and check them; split by time; train XGBoost per head and the "
            "multi-task network; register the one with the lower validation loss as challenger; evaluate the heads and "
            "the feed against chronological order, author affinity and the oracle; promote it if it beats the champion "
            "(the gate); package the bento; publish online features; describe the champion's held-out days for "
            "monitoring. The weekly schedule and the drift sensor launch it.",
        ),
        case_job(
            GROUP, MONITORING_JOB, selection=dg.AssetSelection.assets(REPORT),
            description="Judge a day of impressions against the champion's held-out days: drift of what users were "
            "shown and of the champion's predictions, volumes, and its live feed nDCG@10. Its alarms drive "
            "news_feed_drift_sensor.",
        ),
        fine_tune_job(continual),
        rollback_job(GROUP),
    ]
    return case_definitions(
        definitions,
        jobs=jobs,
        sensors=[build_news_feed_drift_sensor(TRAINING_JOB)],
        schedules=[
            gated_schedule("news_feed_weekly_retrain", TRAINING_JOB, "0 3 * * 1",
                           "Retrain the engagement models weekly from scratch: tastes, ties and what gets posted move, "
                           "and the daily fine-tune only adds to what the model already is."),
            fine_tune_schedule(continual),
        ],
        resources={
            "news_feed_source": source,
            "news_feed_time_split": NewsFeedTimeSplit(
                label_window=settings.label_window, skip_seconds=settings.skip_seconds,
                validation_window=settings.validation_window, test_window=settings.test_window),
            "news_feed_objective": NewsFeedObjective(weights=settings.weights),
            "news_feed_retrieval": NewsFeedRetrieval(candidate_days=settings.candidate_days),
        },
    )


CASE = CaseStudy(
    name=GROUP,
    chapter=10,
    title="Personalized news feed",
    predicts="the weighted engagement a post will get from a user",
    metric="feed nDCG@10 (higher is better)",
    serving="online",
    settings_type=NewsFeedSettings,
    small=dict(days=12, users=900, sessions_per_day=300, validation_window="2d", test_window="3d"),
    build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL,
    evaluation_asset="news_feed_evaluation",
    training_job=TRAINING_JOB,
    rollback_job=ROLLBACK_JOB,
    promotion_check=PROMOTION_CHECK,
    run_steps=(
        GatedTraining(TRAINING_JOB, PROMOTION_CHECK, "ingest, validate, embed posts, point-in-time features, split, "
                      "XGBoost per head, multi-task network, registry, evaluation, promotion, bento, online features, "
                      "monitoring reference"),
        LatestPartition(MONITORING_JOB, "drift report"),
    ),
    monitoring_job=MONITORING_JOB,
    bento=BENTO,
    example_requests={"/feed": {"user_id": "U000001", "k": 5}},
    serving_env=lambda platform: {"MLSD_ONLINE_STORE_URL": platform.online_store_url},
    outside_the_run={
        "news_feed_fine_tuned_model": "needs a champion and a day after its training data; "
        "tests/pipeline/test_news_feed_pipeline.py runs news_feed_fine_tune_job",
    },
)
