"""Ad click prediction (book ch. 8): raw impressions to validated features to a registered XGBoost model."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import dagster as dg

from assets.ad_click.continual import fine_tuning
from assets.ad_click.features import build_feature_assets
from assets.ad_click.monitoring import build_ad_click_drift_sensor, build_monitoring_assets, build_retrain_schedule
from assets.ad_click.raw import GROUP, build_raw_assets
from assets.ad_click.resources import AdClickSource, AdClickTimeSplit
from assets.ad_click.serving import BENTO, PROMOTION_CHECK, build_serving_assets
from assets.ad_click.settings import AdClickSettings
from assets.ad_click.streaming import ad_click_stream_consumer_job, ad_click_stream_consumer_schedule
from assets.ad_click.training import REGISTERED_MODEL, build_training_assets
from assets.common import case_definitions, case_job
from assets.continual import build_fine_tune_assets, fine_tune_job, fine_tune_schedule
from assets.case import CaseStudy, EveryPartition, GatedTraining, LatestPartition, Platform
from assets.release import rollback_job
from assets.resources import EventStream
from models.windows import parse_duration

DAILY_JOB = "ad_click_daily_job"
TRAINING_JOB = "ad_click_training_job"
BATCH_SCORING_JOB = "ad_click_batch_scoring_job"
ROLLBACK_JOB = "ad_click_rollback_job"
MONITORING_JOB = "ad_click_monitoring_job"
SIMULATED_START = date(2026, 1, 1)
SIMULATED_DAYS = 28


def daily_partitions(start_date: str, days: int) -> dg.DailyPartitionsDefinition:
    end = date.fromisoformat(start_date) + timedelta(days=days)
    return dg.DailyPartitionsDefinition(start_date=start_date, end_date=end.isoformat())


def build_source(platform: Platform, settings: AdClickSettings) -> AdClickSource:
    """The source, with its window: set by hand, else your files' dates, else the simulator's 28 days."""
    source = AdClickSource(
        raw_dir=settings.raw_dir, raw_dir_setting="MLSD_AD_CLICK_RAW_DIR", landing_dir=platform.landing_dir(GROUP),
        start_date=(settings.start_date or SIMULATED_START).isoformat(), days=settings.days or SIMULATED_DAYS,
        seed=settings.seed, users=settings.users, ads=settings.ads, advertisers=settings.advertisers,
        impressions_per_day=settings.impressions_per_day, drift_kind=settings.simulated_drift.kind,
        drift_day=settings.simulated_drift.day,
        click_window_s=parse_duration(settings.click_window).total_seconds(),
    )
    if settings.raw_dir and (settings.start_date is None or settings.days is None):
        first, days = source.data_window("impressions")
        start = settings.start_date or first
        days = settings.days or days - (start - first).days
        source = source.model_copy(update={"start_date": start.isoformat(), "days": days})
    return source


def build_definitions(platform: Platform, settings: AdClickSettings) -> dg.Definitions:
    source = build_source(platform, settings)
    daily = daily_partitions(source.start_date, source.days)
    with warnings.catch_warnings():
        # Chosen knowingly: partitioned checks (preview) load only their day, and the look-back mapping (beta)
        # lets the first days start with a shorter history.
        warnings.simplefilter("ignore", (dg.BetaWarning, dg.PreviewWarning))
        raw = build_raw_assets(daily)
        features = build_feature_assets(daily)
        serving = build_serving_assets(daily)
        monitoring = build_monitoring_assets(daily)
    training = build_training_assets(settings.candidate_models)
    continual = fine_tuning(TRAINING_JOB)
    group = dg.AssetSelection.groups(GROUP)
    raw_tables = ("ad_click_users", "ad_click_ads", "ad_click_impressions")
    daily_assets = dg.AssetSelection.assets(
        *raw_tables, *(f"{table}_quarantine" for table in raw_tables), "ad_click_oracle", "ad_click_features"
    )
    jobs = [
        case_job(
            GROUP, DAILY_JOB,
            selection=daily_assets,
            partitions_def=daily,
            description="Ingest, validate and featurize days of ad impressions. Run it when days arrive (pick the "
            "days in the Launchpad; a range runs as one run); a day that fails its blocking suite stops here.",
        ),
        case_job(
            GROUP, TRAINING_JOB,
            selection=group - daily_assets - dg.AssetSelection.assets(
                "ad_click_batch_predictions", "ad_click_drift_report", "ad_click_fine_tuned_model"),
            description="Time split, baseline and the candidates (XGBoost, DeepFM, DCN-v2), register the one with the "
            "lowest validation log loss as the challenger, evaluate, promote it if it beats the champion (the gate), "
            "package the champion as a bento and publish the online features. Run it after the days are in; the "
            "weekly schedule and the drift sensor launch it too.",
        ),
        case_job(
            GROUP, BATCH_SCORING_JOB,
            selection=dg.AssetSelection.assets("ad_click_batch_predictions"),
            partitions_def=daily,
            description="Score a day's candidate set offline with the champion (needs a champion).",
        ),
        case_job(
            GROUP, MONITORING_JOB,
            selection=dg.AssetSelection.assets("ad_click_drift_report"),
            partitions_def=daily,
            description="Judge an ingested day against the champion's training days: feature and prediction drift, "
            "live NCE. Run it after each day's ingestion; its alarms drive ad_click_drift_sensor.",
        ),
        rollback_job(GROUP),
        fine_tune_job(continual),
    ]
    definitions = [*raw, *features, *training, *build_fine_tune_assets(continual), *serving, *monitoring]
    return case_definitions(
        definitions,
        jobs=[*jobs, ad_click_stream_consumer_job],
        sensors=[build_ad_click_drift_sensor(TRAINING_JOB)],
        schedules=[build_retrain_schedule(TRAINING_JOB), fine_tune_schedule(continual), ad_click_stream_consumer_schedule],
        resources={
            "ad_click_source": source,
            "ad_click_time_split": AdClickTimeSplit(
                warmup_days=settings.warmup_days, validation_window=settings.validation_window,
                test_window=settings.test_window
            ),
            "ad_click_stream": EventStream(url=platform.stream_url, lake_dir=str(platform.lake_dir / "landing" / "ad_click_stream")),
        },
    )


CASE = CaseStudy(
    name=GROUP,
    chapter=8,
    title="Ad click prediction",
    predicts="P(click) of an ad impression",
    metric="NCE (lower is better)",
    serving="online",
    settings_type=AdClickSettings,
    small=dict(days=10, users=1_000, ads=100, advertisers=20, impressions_per_day=3_000, warmup_days=2,
               validation_window="2d", test_window="2d"),
    build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL,
    evaluation_asset="ad_click_model_evaluation",
    training_job=TRAINING_JOB,
    rollback_job=ROLLBACK_JOB,
    promotion_check=PROMOTION_CHECK,
    run_steps=(
        EveryPartition(DAILY_JOB, "ingest, validate and featurize", single_run=True),
        GatedTraining(TRAINING_JOB, PROMOTION_CHECK,
                      "time split, baseline, candidates (XGBoost, DeepFM, DCN-v2), registry, promotion, bento, "
                      "online features"),
        LatestPartition(BATCH_SCORING_JOB, "batch predictions"),
        LatestPartition(MONITORING_JOB, "drift report"),
    ),
    bento=BENTO,
    daily_job=DAILY_JOB,
    monitoring_job=MONITORING_JOB,
    example_requests={
        "/rank": {"user_id": "u0000042", "candidates": [{"ad_id": "ad000001"}, {"ad_id": "ad000002"}]},
        "/score": {"rows": [{"device": "mobile", "position": 1.0}]},
    },
    serving_env=lambda platform: {"MLSD_ONLINE_STORE_URL": platform.online_store_url},
    outside_the_run={
        "ad_click_fine_tuned_model": "needs a network champion and a day after its training data; "
        "tests/pipeline/test_ad_click_continual.py runs ad_click_fine_tune_job",
    },
)
