"""Drift monitoring: how far a day's features and predictions are from the training reference, and when to retrain.

PSI (population stability index) uses quantile bins of the reference (categories for categorical features); KS is the
two-sample Kolmogorov-Smirnov statistic. The retraining policy is code, here, with its thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

EPS = 1e-4


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    return _psi(ref, cur)


def psi_categorical(reference: Sequence, current: Sequence) -> float:
    ref_counts = pl.Series(reference, dtype=pl.String).fill_null("<null>").value_counts()
    cur_counts = pl.Series(current, dtype=pl.String).fill_null("<null>").value_counts()
    name = ref_counts.columns[0]
    joined = ref_counts.join(cur_counts, on=name, how="full", coalesce=True, suffix="_cur").fill_null(0)
    ref = joined["count"].to_numpy() / max(1, joined["count"].sum())
    cur = joined["count_cur"].to_numpy() / max(1, joined["count_cur"].sum())
    return _psi(ref, cur)


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref = np.clip(ref, EPS, None)
    cur = np.clip(cur, EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    return float(ks_2samp(reference, current).statistic)


@dataclass(frozen=True)
class DriftThresholds:
    feature_psi: float = 0.25  # a feature whose PSI exceeds this has drifted (the customary "significant shift")
    prediction_psi: float = 0.1
    nce_degradation: float = 0.03  # live NCE more than 3% above the reference NCE (concept drift)


@dataclass(frozen=True)
class DayDrift:
    """One day's comparison with the reference."""

    day: str
    feature_psi: dict[str, float]
    feature_ks: dict[str, float]
    prediction_psi: float
    live_nce: float | None
    reference_nce: float | None
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    @property
    def drifted_features(self) -> list[str]:
        return sorted((f for f, v in self.feature_psi.items() if v > self.thresholds.feature_psi), key=lambda f: -self.feature_psi[f])

    @property
    def nce_ratio(self) -> float | None:
        if self.live_nce is None or not self.reference_nce:
            return None
        return self.live_nce / self.reference_nce

    @property
    def signals(self) -> list[str]:
        found = []
        if self.drifted_features:
            found.append("covariate: " + ", ".join(self.drifted_features[:5]))
        if self.prediction_psi > self.thresholds.prediction_psi:
            found.append(f"prediction PSI {self.prediction_psi:.3f}")
        if self.nce_ratio is not None and self.nce_ratio > 1 + self.thresholds.nce_degradation:
            found.append(f"concept: live NCE {self.live_nce:.4f} is {self.nce_ratio - 1:.1%} above the reference")
        return found

    @property
    def alarm(self) -> bool:
        return bool(self.signals)


def day_drift(
    day: str,
    reference: pl.DataFrame,
    current: pl.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    reference_predictions: np.ndarray,
    current_predictions: np.ndarray,
    live_nce: float | None,
    reference_nce: float | None,
    thresholds: DriftThresholds = DriftThresholds(),
) -> DayDrift:
    psi, ks = {}, {}
    for column in numeric:
        ref = reference[column].cast(pl.Float64).to_numpy()
        cur = current[column].cast(pl.Float64).to_numpy()
        psi[column] = psi_numeric(ref, cur)
        ks[column] = ks_statistic(ref, cur)
    for column in categorical:
        psi[column] = psi_categorical(reference[column].to_list(), current[column].to_list())
    return DayDrift(
        day=day,
        feature_psi=psi,
        feature_ks=ks,
        prediction_psi=psi_numeric(np.asarray(reference_predictions, float), np.asarray(current_predictions, float)),
        live_nce=live_nce,
        reference_nce=reference_nce,
        thresholds=thresholds,
    )


@dataclass(frozen=True)
class RetrainPolicy:
    """Retrain when at least `alarms_needed` of the last `window` days raised a drift alarm, at most once per episode:
    no new request within `cooldown_days` of the last one."""

    alarms_needed: int = 2
    window: int = 3
    cooldown_days: int = 7

    def episode_start(self, days: Sequence[str], alarms: Sequence[bool], last_trigger_day: str | None) -> str | None:
        """The first alarm day of the episode that calls for retraining now, or None.

        `days` are consecutive monitored days in order with their alarms; the decision is for the last day.
        """
        if sum(alarms[-self.window :]) < self.alarms_needed:
            return None
        if last_trigger_day is not None:
            from datetime import date

            if (date.fromisoformat(days[-1]) - date.fromisoformat(last_trigger_day)).days < self.cooldown_days:
                return None
        # The episode began at its first alarm: walk back until a full window without any. Whenever the policy is
        # asked during the episode, it names the same day (the run key that makes the request idempotent).
        start, quiet = None, 0
        for day, alarm in zip(reversed(days), reversed(alarms)):
            if alarm:
                start, quiet = day, 0
            else:
                quiet += 1
                if quiet >= self.window:
                    break
        return start
