"""Similar listings (book ch. 9): listing embeddings learned from search sessions (skip-gram with the booked listing
as a global context and hard negatives from the same city), an HNSW index with cold-start embeddings for new
listings, judged by the mean rank of the booked listing against popularity and co-occurrence."""


import dagster as dg

from assets.case import CaseStudy, GatedTraining, LatestPartition, Platform
from assets.common import case_definitions, case_job
from assets.continual import build_fine_tune_assets, fine_tune_job, fine_tune_schedule
from assets.release import gated_schedule, rollback_job
from assets.similar_listings.continual import fine_tuning
from assets.similar_listings.monitoring import REPORT, build_monitoring_assets, build_similar_listings_drift_sensor
from assets.similar_listings.raw import GROUP, build_raw_assets
from assets.similar_listings.resources import SimilarListingsSource, SimilarListingsTimeSplit, SimilarListingsTraining
from assets.similar_listings.serving import BENTO, PROMOTION_CHECK, build_serving_assets
from assets.similar_listings.settings import SimilarListingsSettings
from assets.similar_listings.training import REGISTERED_MODEL, build_training_assets

TRAINING_JOB = "similar_listings_training_job"
ROLLBACK_JOB = "similar_listings_rollback_job"
MONITORING_JOB = "similar_listings_monitoring_job"


def build_source(platform: Platform, settings: SimilarListingsSettings) -> SimilarListingsSource:
    return SimilarListingsSource(
        raw_dir=settings.raw_dir, raw_dir_setting="MLSD_SIMILAR_LISTINGS_RAW_DIR",
        landing_dir=platform.landing_dir(GROUP), start_date=settings.start_date.isoformat(), days=settings.days,
        seed=settings.seed, cities=settings.cities, listings=settings.listings,
        new_listings_per_day=settings.new_listings_per_day, guests=settings.guests,
        sessions_per_day=settings.sessions_per_day, drift_kind=settings.simulated_drift.kind,
        drift_day=settings.simulated_drift.day,
    )


def build_definitions(platform: Platform, settings: SimilarListingsSettings) -> dg.Definitions:
    source = build_source(platform, settings)
    continual = fine_tuning(TRAINING_JOB)
    definitions = [*build_raw_assets(), *build_training_assets(), *build_fine_tune_assets(continual),
                   *build_serving_assets(), *build_monitoring_assets(source.daily_partitions("sessions"))]
    jobs = [
        case_job(
            GROUP, TRAINING_JOB,
            selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets(continual.asset_name, REPORT),
            description="Ingest and validate listings and sessions; split by time; train the book's skip-gram and "
            "gensim's plain one; index every listing (cold-start embeddings for new ones); register and evaluate "
            "the challenger; promote it if it beats the champion (the gate); package the bento; describe the "
            "champion's held-out days for monitoring. The weekly schedule and the drift sensor launch it too.",
        ),
        case_job(
            GROUP, MONITORING_JOB, selection=dg.AssetSelection.assets(REPORT),
            description="Judge a day of sessions against the champion's held-out days: drift of what guests clicked, "
            "volumes, and the champion's live mean booked rank. Run it for each day after ingestion; its alarms "
            "drive similar_listings_drift_sensor.",
        ),
        fine_tune_job(continual),
        rollback_job(GROUP),
    ]
    return case_definitions(
        definitions,
        jobs=jobs,
        sensors=[build_similar_listings_drift_sensor(TRAINING_JOB)],
        schedules=[
            gated_schedule("similar_listings_weekly_retrain", TRAINING_JOB, "0 3 * * 1",
                           "Retrain the listing embeddings weekly from scratch: new listings need sessions of their "
                           "own to leave the cold-start embedding."),
            fine_tune_schedule(continual),
        ],
        resources={
            "similar_listings_source": source,
            "similar_listings_time_split": SimilarListingsTimeSplit(validation_window=settings.validation_window,
                                                                    test_window=settings.test_window),
            "similar_listings_training": SimilarListingsTraining(dim=settings.dim, epochs=settings.epochs,
                                                                 min_clicks=settings.min_clicks),
        },
    )


CASE = CaseStudy(
    name=GROUP,
    chapter=9,
    title="Similar listings",
    predicts="listings similar to the one a guest views",
    metric="mean rank of the booked listing (lower is better)",
    serving="online",
    settings_type=SimilarListingsSettings,
    small=dict(days=12, listings=800, new_listings_per_day=8, guests=1_500, sessions_per_day=250,
               validation_window="2d", test_window="3d", epochs=4),
    build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL,
    evaluation_asset="similar_listings_evaluation",
    training_job=TRAINING_JOB,
    rollback_job=ROLLBACK_JOB,
    promotion_check=PROMOTION_CHECK,
    run_steps=(
        GatedTraining(TRAINING_JOB, PROMOTION_CHECK, "ingest, validate, split, skip-gram embeddings, gensim reference, "
                      "ANN index, registry, evaluation, promotion, bento, monitoring reference"),
        LatestPartition(MONITORING_JOB, "drift report"),
    ),
    monitoring_job=MONITORING_JOB,
    bento=BENTO,
    example_requests={"/similar": {"listing_id": "L000001", "k": 5}},
    outside_the_run={
        "similar_listings_fine_tuned_model": "needs a champion and a day after its training data; "
        "tests/pipeline/test_similar_listings_pipeline.py runs similar_listings_fine_tune_job",
    },
)
