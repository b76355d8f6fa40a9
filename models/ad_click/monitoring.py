"""One day of ad click monitoring against the training reference (shared by the asset and the drift benchmark)."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.ad_click.features import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES
from models.drift import Distribution, DriftReport, LiveMetric, Monitors, judge_day
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
PREDICTION = "prediction"
MONITORS = Monitors(
    distributions=(
        *(Distribution(f) for f in MONITORED_NUMERIC),
        *(Distribution(f, categorical=True) for f in CATEGORICAL_FEATURES),
        Distribution(PREDICTION, max_psi=0.1, label="prediction"),
    ),
    # Live NCE more than 3% above the champion's test NCE: the relation between features and clicks moved.
    live=(LiveMetric("NCE", higher_is_better=False, tolerance=0.03),),
)


def monitored_values(frame: pl.DataFrame, predictions: np.ndarray, monitors: Monitors = MONITORS) -> dict:
    """Each monitored distribution's values: the features' columns and the champion's predictions."""
    columns = {m.name: frame[m.name].to_list() if m.categorical else frame[m.name].cast(pl.Float64).to_numpy()
               for m in monitors.distributions if m.name != PREDICTION}
    return {**columns, PREDICTION: np.asarray(predictions, float)}


def monitor_day(
    day: str,
    reference: pl.DataFrame,
    reference_p: np.ndarray,
    current: pl.DataFrame,
    current_p: np.ndarray,
    background_rate: float,
    reference_nce: float | None,
    monitors: Monitors = MONITORS,
) -> DriftReport:
    """The day judged as the drift report asset judges it (the benchmark's entry point)."""
    labels = current[LABEL].to_numpy()
    live_nce = normalized_cross_entropy(labels, current_p, background_rate) if len(labels) else None
    return judge_day(day, monitors, monitored_values(reference, reference_p, monitors),
                     monitored_values(current, current_p, monitors),
                     live={"NCE": live_nce}, live_reference={"NCE": reference_nce})
