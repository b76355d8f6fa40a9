"""Drift monitoring of each new day against the training reference, and the triggers that retrain."""

import dagster as dg
import numpy as np
import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.training import REGISTERED_MODEL
from assets.monitoring import MonitoredDay, build_drift_report, build_drift_sensor
from assets.release import gated_schedule
from models.ad_click.features import LABEL
from models.ad_click.monitoring import MONITORS, monitored_values
from models.metrics import normalized_cross_entropy
from models.windows import split_rows

MONITORING_EXPERIMENT = "ad_click_monitoring"
REFERENCE_ROWS = 100_000


def _monitored_day(context: dg.AssetExecutionContext, ad_click_features: pl.DataFrame,
                   ad_click_training_data: pl.DataFrame, ad_click_champion: pl.DataFrame) -> MonitoredDay:
    """The champion's training days (a sample) and their predictions as the reference; the day's features and
    predictions; the live NCE once the day's clicks are in, against the champion's test NCE."""
    from models.ad_click.model import model_input

    tracking = context.resources.mlflow_tracking
    train = split_rows(ad_click_training_data, "train")
    reference = train.sample(min(REFERENCE_ROWS, train.height), seed=0)
    version = str(ad_click_champion["version"][0])
    model = tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}")
    current_p = np.asarray(model.predict(model_input(ad_click_features)))
    reference_p = np.asarray(model.predict(model_input(reference)))
    tags = tracking.client().get_model_version(REGISTERED_MODEL, version).tags
    reference_nce = float(tags["challenger_nce"]) if "challenger_nce" in tags else None
    labels = ad_click_features[LABEL].to_numpy()
    live_nce = normalized_cross_entropy(labels, current_p, float(train[LABEL].mean())) if len(labels) else None
    return MonitoredDay(
        reference=monitored_values(reference, reference_p), current=monitored_values(ad_click_features, current_p),
        model_version=version, live={"NCE": live_nce}, live_reference={"NCE": reference_nce},
        metadata={"rows": ad_click_features.height},
    )


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list:
    return [build_drift_report(
        "ad_click_drift_report", GROUP, daily, MONITORS, _monitored_day,
        ins={"ad_click_features": dg.AssetIn("ad_click_features"),
             "ad_click_training_data": dg.AssetIn("ad_click_training_data"),
             "ad_click_champion": dg.AssetIn("ad_click_champion")},
        experiment=MONITORING_EXPERIMENT,
        description="A day's features and champion predictions against the champion's training days (PSI, KS), and "
        "its live NCE once labels are in. Its `alarm` metadata drives the retraining sensor.",
    )]


def build_ad_click_drift_sensor(training_job_name: str):
    return build_drift_sensor(GROUP, "ad_click_drift_report", training_job_name)


def build_retrain_schedule(training_job_name: str) -> dg.ScheduleDefinition:
    return gated_schedule(
        "ad_click_weekly_retrain", training_job_name, "0 3 * * 1",
        "Retrain every Monday 03:00 UTC; the promotion gate (non-inferiority mode) decides whether the champion moves.",
    )
