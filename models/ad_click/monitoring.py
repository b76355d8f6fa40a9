"""One day of ad click monitoring against the training reference (shared by the asset and the drift benchmark)."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.ad_click.features import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES
from models.drift import DayDrift, DriftThresholds, day_drift
from models.metrics import normalized_cross_entropy

# Not monitored, because they move on stable days by construction: the calendar (one weekday against the training
# week), ages that grow every day (ad age, user tenure), ad and advertiser impression and click counts (they follow
# traffic volume and ads launching, not the audience; their CTRs are monitored), and the segment x category
# aggregates, which have a few dozen distinct values a day. Concept drift in them shows in the live NCE instead.
NOT_MONITORED = (
    "day_of_week", "ad_age_days", "user_tenure_days", "age_category_", "gender_category_", "country_category_",
    "ad_impressions_", "ad_clicks_", "advertiser_impressions_", "advertiser_clicks_",
)
MONITORED_NUMERIC = tuple(f for f in NUMERIC_FEATURES if not f.startswith(NOT_MONITORED))


def monitor_day(
    day: str,
    reference: pl.DataFrame,
    reference_p: np.ndarray,
    current: pl.DataFrame,
    current_p: np.ndarray,
    background_rate: float,
    reference_nce: float | None,
    thresholds: DriftThresholds = DriftThresholds(),
) -> DayDrift:
    labels = current[LABEL].to_numpy()
    live_nce = normalized_cross_entropy(labels, current_p, background_rate) if len(labels) else None
    return day_drift(
        day, reference, current, MONITORED_NUMERIC, CATEGORICAL_FEATURES, reference_p, current_p, live_nce,
        reference_nce, thresholds,
    )
