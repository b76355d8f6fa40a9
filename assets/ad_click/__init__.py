"""Ad click prediction (book ch. 8): raw impressions to validated features to a registered XGBoost model."""

from __future__ import annotations

import warnings

import dagster as dg

from assets.ad_click.features import build_feature_assets
from assets.ad_click.monitoring import build_drift_sensor, build_monitoring_assets, build_retrain_schedule
from assets.ad_click.raw import GROUP, build_raw_assets
from assets.ad_click.serving import build_serving_assets
from assets.ad_click.streaming import ad_click_stream_consumer_job, ad_click_stream_consumer_schedule
from assets.ad_click.training import build_training_assets

DAILY_JOB = "ad_click_daily_job"
TRAINING_JOB = "ad_click_training_job"
BATCH_SCORING_JOB = "ad_click_batch_scoring_job"
ROLLBACK_JOB = "ad_click_rollback_job"
MONITORING_JOB = "ad_click_monitoring_job"


def daily_partitions(start_date: str, days: int) -> dg.DailyPartitionsDefinition:
    from datetime import date, timedelta

    end = date.fromisoformat(start_date) + timedelta(days=days)
    return dg.DailyPartitionsDefinition(start_date=start_date, end_date=end.isoformat())


def build_definitions(start_date: str, days: int) -> dg.Definitions:
    daily = daily_partitions(start_date, days)
    with warnings.catch_warnings():
        # Chosen knowingly: partitioned checks (preview) load only their day, and the look-back mapping (beta)
        # lets the first days start with a shorter history.
        warnings.simplefilter("ignore", (dg.BetaWarning, dg.PreviewWarning))
        raw = build_raw_assets(daily)
        features = build_feature_assets(daily)
        serving = build_serving_assets(daily)
        monitoring = build_monitoring_assets(daily)
    training = build_training_assets()
    group = dg.AssetSelection.groups(GROUP)
    daily_assets = dg.AssetSelection.assets(
        "ad_click_users", "ad_click_ads", "ad_click_impressions", "ad_click_oracle", "ad_click_features"
    )
    jobs = [
        dg.define_asset_job(
            DAILY_JOB,
            selection=daily_assets,
            partitions_def=daily,
            description="Ingest, validate and featurize one day of ad impressions.",
        ),
        dg.define_asset_job(
            TRAINING_JOB,
            selection=group - daily_assets - dg.AssetSelection.assets("ad_click_batch_predictions", "ad_click_drift_report"),
            description="Train, register the challenger, evaluate; promote it if it beats the champion, package the "
            "champion as a bento and publish the online features.",
        ),
        dg.define_asset_job(
            BATCH_SCORING_JOB,
            selection=dg.AssetSelection.assets("ad_click_batch_predictions"),
            partitions_def=daily,
            description="Score a day's candidate set offline with the champion.",
        ),
        dg.define_asset_job(
            MONITORING_JOB,
            selection=dg.AssetSelection.assets("ad_click_drift_report"),
            partitions_def=daily,
            description="Compare a day with the champion's training days: feature and prediction drift, live NCE.",
        ),
        dg.define_asset_job(
            ROLLBACK_JOB,
            selection=dg.AssetSelection.assets("ad_click_champion", "ad_click_bento_model", "ad_click_bento"),
            config={"ops": {"ad_click_champion": {"config": {"action": "rollback"}}}},
            description="Move the champion alias back to the version it replaced and rebuild the bento.",
        ),
    ]
    definitions = [*raw, *features, *training, *serving, *monitoring]
    return dg.Definitions(
        assets=[d for d in definitions if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in definitions if isinstance(d, dg.AssetChecksDefinition)],
        jobs=[*jobs, ad_click_stream_consumer_job],
        sensors=[build_drift_sensor(TRAINING_JOB)],
        schedules=[build_retrain_schedule(TRAINING_JOB), ad_click_stream_consumer_schedule],
    )
