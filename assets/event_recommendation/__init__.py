"""Event recommendation (book ch. 7): one-off events ranked for a user by P(register) (pointwise learning to rank)
on hand-engineered point-in-time features (location, time, social, price, category, description similarity),
XGBoost and an MLP that learns continually, judged by mAP against popularity, distance and logistic regression;
served online as event filtering then ranking on online features."""


import dagster as dg

from assets.case import CaseStudy, GatedTraining, LatestPartition, Platform
from assets.common import case_definitions, case_job
from assets.continual import build_fine_tune_assets, fine_tune_job, fine_tune_schedule
from assets.event_recommendation.continual import fine_tuning
from assets.event_recommendation.features import build_feature_assets
from assets.event_recommendation.monitoring import REPORT, build_event_recommendation_drift_sensor, build_monitoring_assets
from assets.event_recommendation.raw import GROUP, build_raw_assets
from assets.event_recommendation.resources import EventRecommendationSource, EventRecommendationTimeSplit
from assets.event_recommendation.serving import BENTO, PROMOTION_CHECK, build_serving_assets
from assets.event_recommendation.settings import EventRecommendationSettings
from assets.event_recommendation.streaming import (
    event_recommendation_stream_consumer_job,
    event_recommendation_stream_consumer_schedule,
)
from assets.event_recommendation.training import REGISTERED_MODEL, build_training_assets
from assets.release import gated_schedule, rollback_job
from assets.resources import EventStream

TRAINING_JOB = "event_recommendation_training_job"
ROLLBACK_JOB = "event_recommendation_rollback_job"
MONITORING_JOB = "event_recommendation_monitoring_job"


def build_source(platform: Platform, settings: EventRecommendationSettings) -> EventRecommendationSource:
    return EventRecommendationSource(
        raw_dir=settings.raw_dir, raw_dir_setting="MLSD_EVENT_RECOMMENDATION_RAW_DIR",
        landing_dir=platform.landing_dir(GROUP), start_date=settings.start_date.isoformat(), days=settings.days,
        seed=settings.seed, cities=settings.cities, users=settings.users, events_per_day=settings.events_per_day,
        sessions_per_day=settings.sessions_per_day, drift_kind=settings.simulated_drift.kind,
        drift_day=settings.simulated_drift.day,
    )


def build_definitions(platform: Platform, settings: EventRecommendationSettings) -> dg.Definitions:
    source = build_source(platform, settings)
    continual = fine_tuning(TRAINING_JOB)
    definitions = [*build_raw_assets(), *build_feature_assets(), *build_training_assets(),
                   *build_fine_tune_assets(continual), *build_serving_assets(),
                   *build_monitoring_assets(source.daily_partitions("interactions"))]
    jobs = [
        case_job(
            GROUP, TRAINING_JOB,
            selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets(continual.asset_name, REPORT),
            description="Ingest and validate users, events, friendships and interactions; embed descriptions; compute "
            "point-in-time features and check them; split by time; train logistic regression, XGBoost and the MLP; "
            "register the better of XGBoost and the MLP as challenger; evaluate against popularity, distance and the "
            "oracle; promote it if it beats the champion (the gate); package the bento; publish online features; "
            "describe the champion's held-out days for monitoring. The weekly schedule and the drift sensor launch it.",
        ),
        case_job(
            GROUP, MONITORING_JOB, selection=dg.AssetSelection.assets(REPORT),
            description="Judge a day of impressions against the champion's held-out days: drift of what users were "
            "shown and of the champion's predictions, volumes, and its live mAP@10. Its alarms drive "
            "event_recommendation_drift_sensor.",
        ),
        fine_tune_job(continual),
        rollback_job(GROUP),
        event_recommendation_stream_consumer_job,
    ]
    return case_definitions(
        definitions,
        jobs=jobs,
        sensors=[build_event_recommendation_drift_sensor(TRAINING_JOB)],
        schedules=[
            gated_schedule("event_recommendation_weekly_retrain", TRAINING_JOB, "0 3 * * 1",
                           "Retrain the rankers weekly from scratch: hosts, prices and tastes move, and the daily "
                           "fine-tune only adds to what the model already is."),
            fine_tune_schedule(continual),
            event_recommendation_stream_consumer_schedule,
        ],
        resources={
            "event_recommendation_source": source,
            "event_recommendation_stream": EventStream(url=platform.stream_url),
            "event_recommendation_time_split": EventRecommendationTimeSplit(
                label_window=settings.label_window, validation_window=settings.validation_window,
                test_window=settings.test_window),
        },
    )


CASE = CaseStudy(
    name=GROUP,
    chapter=7,
    title="Event recommendation",
    predicts="events a user will register for",
    metric="mAP@10 (higher is better)",
    serving="online",
    settings_type=EventRecommendationSettings,
    small=dict(days=16, users=1_200, events_per_day=20, sessions_per_day=300, validation_window="2d",
               test_window="3d"),
    build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL,
    evaluation_asset="event_recommendation_evaluation",
    training_job=TRAINING_JOB,
    rollback_job=ROLLBACK_JOB,
    promotion_check=PROMOTION_CHECK,
    run_steps=(
        GatedTraining(TRAINING_JOB, PROMOTION_CHECK, "ingest, validate, embed descriptions, point-in-time features, "
                      "split, logistic regression, XGBoost, MLP, registry, evaluation, promotion, bento, online "
                      "features, monitoring reference"),
        LatestPartition(MONITORING_JOB, "drift report"),
    ),
    monitoring_job=MONITORING_JOB,
    bento=BENTO,
    example_requests={"/recommend": {"user_id": "U000001", "k": 5}},
    serving_env=lambda platform: {"MLSD_ONLINE_STORE_URL": platform.online_store_url},
    outside_the_run={
        "event_recommendation_fine_tuned_model": "needs a champion and a day after its training data; "
        "tests/pipeline/test_event_recommendation_pipeline.py runs event_recommendation_fine_tune_job",
    },
)
