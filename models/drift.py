"""Drift monitoring: how far a day's features and predictions are from the training reference, and when to retrain.

The kit every case study monitors with: a case names its distributions (PSI against the reference; quantile bins of
the reference for numbers, categories otherwise; KS is the two-sample Kolmogorov-Smirnov statistic), its levels (a
number per day, such as volume) and its live metrics (quality once labels arrive), each with its threshold, and
`judge_day` turns a day into signals and an alarm. The retraining policy is code, here, with its thresholds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

EPS = 1e-4


@dataclass
class Described:
    """Values per distribution, one number per level, and the live metric, for one or more days."""

    distributions: dict[str, list] = field(default_factory=dict)
    levels: dict[str, list[float]] = field(default_factory=dict)  # one value per day
    live: dict[str, float | None] = field(default_factory=dict)
    days: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"distributions": self.distributions, "levels": self.levels, "live": self.live, "days": self.days})

    @classmethod
    def from_json(cls, text: str) -> Described:
        return cls(**json.loads(text))

    @classmethod
    def pooled(cls, parts: Sequence[Described], weights: Sequence[float]) -> Described:
        """Several days as one (the reference): values concatenated, levels one per day, each live metric the mean of
        the days' weighted by `weights` (the units each day's figure averages over; days without one are skipped)."""
        pooled = cls()
        for part in parts:
            for name, values in part.distributions.items():
                pooled.distributions.setdefault(name, []).extend(values)
            for name, values in part.levels.items():
                pooled.levels.setdefault(name, []).extend(values)
            pooled.days += part.days
        for name in {n for part in parts for n in part.live}:
            figures = [(part.live.get(name), w) for part, w in zip(parts, weights)]
            total = sum(w for value, w in figures if value is not None)
            pooled.live[name] = sum(value * w for value, w in figures if value is not None) / total if total else None
        return pooled


@dataclass(frozen=True)
class SimulatedDrift:
    """A simulator's drift setting, `none` or `KIND@DAY` (the 0-based day it starts), parsed once for every case."""

    kind: str = "none"
    day: int = 0

    @classmethod
    def parse(cls, text: str, kinds: Sequence[str], days: int | None = None) -> SimulatedDrift:
        if text == "none":
            return cls()
        kind, _, day = text.partition("@")
        last = f"1 to {days - 1}" if days else "1 or later"
        usage = f"use none or KIND@DAY with KIND one of {', '.join(kinds)} and DAY the 0-based day it starts ({last})"
        if kind not in kinds or not day.isdigit() or int(day) < 1 or (days is not None and int(day) >= days):
            raise ValueError(usage)
        return cls(kind, int(day))


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


# --- What a case monitors, and how a day is judged -------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """A column whose day's values are compared with the reference's by PSI (KS too when numeric)."""

    name: str
    categorical: bool = False
    max_psi: float = 0.25  # the customary "significant shift"
    label: str = "covariate"  # how the alarm names it: covariate (inputs) or prediction (the model's outputs)


@dataclass(frozen=True)
class Level:
    """A number per day (volume, a share) against the mean of the reference days': a relative change when
    `relative`, else a difference; an alarm past `max_rise` above or `max_fall` below it."""

    name: str
    relative: bool = True
    max_rise: float | None = None
    max_fall: float | None = None


@dataclass(frozen=True)
class LiveMetric:
    """The model's quality once a day's labels are in, against its reference figure: an alarm when it is worse by
    more than `tolerance` (relative)."""

    name: str
    higher_is_better: bool
    tolerance: float


@dataclass(frozen=True)
class Monitors:
    distributions: tuple[Distribution, ...] = ()
    levels: tuple[Level, ...] = ()
    live: tuple[LiveMetric, ...] = ()


@dataclass(frozen=True)
class Signal:
    """One monitored quantity on one day: its value, what it is compared with, and whether it raised the alarm."""

    name: str
    kind: str  # distribution, level or live
    value: float | None
    reference: float | None
    breached: bool
    message: str


@dataclass(frozen=True)
class DriftReport:
    """One day's comparison with the reference: every monitored quantity as a signal."""

    day: str
    signals: tuple[Signal, ...]
    psi: dict[str, float]
    ks: dict[str, float]
    label_of: dict[str, str] = field(default_factory=dict)  # distribution -> covariate or prediction

    def value(self, name: str) -> float | None:
        return next((s.value for s in self.signals if s.name == name), None)

    @property
    def breaches(self) -> list[Signal]:
        return [s for s in self.signals if s.breached]

    @property
    def messages(self) -> list[str]:
        """The alarm's reasons: drifted distributions grouped by label (largest PSI first), then the rest."""
        drifted = sorted((s for s in self.breaches if s.kind == "distribution"), key=lambda s: -(s.value or 0))
        found = []
        for label in [label for label in dict.fromkeys(self.label_of.values())
                      if any(self.label_of[s.name] == label for s in drifted)]:
            names = [s.name for s in drifted if self.label_of[s.name] == label]
            found.append(f"{label}: " + ", ".join(names[:5]) if label == "covariate"
                         else "; ".join(s.message for s in drifted if s.name in names))
        return found + [s.message for s in self.breaches if s.kind != "distribution"]

    @property
    def alarm(self) -> bool:
        return bool(self.breaches)

    @property
    def max_psi(self) -> float:
        return max(self.psi.values(), default=0.0)


def judge_day(
    day: str,
    monitors: Monitors,
    reference: Mapping[str, object],
    current: Mapping[str, object],
    reference_levels: Mapping[str, Sequence[float]] | None = None,
    live: Mapping[str, float | None] | None = None,
    live_reference: Mapping[str, float | None] | None = None,
) -> DriftReport:
    """Judge a day: `reference` and `current` map each distribution to its values; `reference_levels` map each
    level to the reference days' values and `current` to the day's; `live` and `live_reference` hold the live
    metrics (None while the day's labels are not in)."""
    signals, psi, ks = [], {}, {}
    for monitor in monitors.distributions:
        ref, cur = reference[monitor.name], current[monitor.name]
        if monitor.categorical:
            value = psi_categorical(list(ref), list(cur))
        else:
            ref_values, cur_values = np.asarray(ref, float), np.asarray(cur, float)
            value = psi_numeric(ref_values, cur_values)
            ks[monitor.name] = ks_statistic(ref_values, cur_values)
        psi[monitor.name] = value
        signals.append(Signal(monitor.name, "distribution", value, monitor.max_psi, value > monitor.max_psi,
                              f"{monitor.label} PSI {value:.3f}" if monitor.label != "covariate" else f"{monitor.name} PSI {value:.3f}"))
    for level in monitors.levels:
        values = (reference_levels or {}).get(level.name) or []
        value = current.get(level.name)
        base = float(np.mean(values)) if len(values) else None
        change = None
        if value is not None and base is not None:
            change = (value / base - 1 if base else (0.0 if value == 0 else float("inf"))) if level.relative else value - base
        breached = change is not None and (
            (level.max_rise is not None and change > level.max_rise) or (level.max_fall is not None and change < -level.max_fall)
        )
        shown = "n/a" if change is None else (f"{change:+.1%}" if level.relative else f"{change:+.3f}")
        signals.append(Signal(level.name, "level", None if value is None else float(value), base, breached,
                              f"{level.name} {shown} against the reference days"))
    for metric in monitors.live:
        value, base = (live or {}).get(metric.name), (live_reference or {}).get(metric.name)
        worse = None
        if value is not None and base:
            worse = (1 - value / base) if metric.higher_is_better else (value / base - 1)
        breached = worse is not None and worse > metric.tolerance
        message = (f"concept: live {metric.name} {value:.4f} is {worse:.1%} worse than the reference {base:.4f}"
                   if worse is not None else f"live {metric.name}: no labels yet")
        signals.append(Signal(metric.name, "live", value, base, breached, message))
    return DriftReport(day, tuple(signals), psi, ks, {m.name: m.label for m in monitors.distributions})


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
