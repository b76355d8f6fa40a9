"""Promotion policy as code: when does a challenger replace the champion?

Both models are scored on the same holdout. In superiority mode the primary metric must improve by a relative
margin and a paired bootstrap interval of the difference must clear zero, so a lucky holdout does not promote a
model that is no better; in non-inferiority mode (fine-tunes, scheduled retrains on fresh data) a fresh model
replaces a stale one unless it may be worse beyond a margin. Guard metrics must not get worse beyond their
tolerance. With no champion yet, a challenger that passes the absolute limits is promoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

# Values summed per gather in the bootstrap: a few MB of indices and values, which stay in cache.
_GATHER_BUDGET = 1 << 18


@dataclass(frozen=True)
class Interval:
    """Paired bootstrap percentile interval of mean(challenger_units) - mean(champion_units)."""

    low: float
    high: float
    point: float
    confidence: float
    resamples: int
    units: int

    def describe(self, metric: str) -> str:
        return (f"{metric} difference {_num(self.point)} [{self.confidence * 100:g}% CI {_num(self.low)}, "
                f"{_num(self.high)}]")

    def tags(self, metric: str) -> dict[str, str]:
        return {
            f"{metric}_difference": f"{self.point:.6f}",
            f"{metric}_difference_ci_low": f"{self.low:.6f}",
            f"{metric}_difference_ci_high": f"{self.high:.6f}",
            "bootstrap_units": str(self.units),
            "bootstrap_resamples": str(self.resamples),
            "bootstrap_confidence": f"{self.confidence:.6f}",
        }


def _num(value: float) -> str:
    return f"{value:.4g}"


def _units(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one value per unit (1-D), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has {int((~np.isfinite(array)).sum())} non-finite values (NaN or inf)")
    return array


def paired_bootstrap(
    challenger_units: Sequence[float] | np.ndarray,
    champion_units: Sequence[float] | np.ndarray,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile interval of the mean per-unit difference, both models reweighted by the same draw per resample.

    `challenger_units[i]` and `champion_units[i]` are the two models' values for the same holdout unit (row, user,
    query), scaled so that the metric is their mean. Deterministic for a seed.
    """
    challenger = _units(challenger_units, "challenger_units")
    champion = _units(champion_units, "champion_units")
    if len(challenger) != len(champion):
        raise ValueError(f"challenger_units has {len(challenger)} units but champion_units has {len(champion)}: "
                         "the bootstrap pairs them unit by unit")
    if len(challenger) < 2:
        raise ValueError(f"the bootstrap needs at least 2 units, got {len(challenger)}")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")

    # The mean is linear, so resampling both models with the same weights is resampling their difference.
    difference = challenger - champion
    units = len(difference)
    point = float(difference.mean())
    # Why not indices drawn with replacement (or multinomial / Poisson weights): those cost a 19-bit draw and a
    # cache-missing gather per unit per resample, 600M of each for 300k units x 2000 resamples, several seconds.
    # Double-or-nothing weights (each unit weighs 0 or 2, one random bit; Owen & Eckles 2012) have the same mean
    # and variance as bootstrap weights, and point + 2/n * sum(selected centred values) has exactly the variance of
    # the resampled mean. It does not reproduce the bootstrap's small skew, which at holdout sizes moves the bounds
    # far less than resampling noise does. One random byte picks 8 units at once from a table of that byte's 256
    # subset sums, and we go through the units in blocks so the tables and the gathers stay in cache: memory is
    # bounded by the block, not by units x resamples.
    centred = np.zeros(-(-units // 8) * 8)
    centred[:units] = difference - point  # padding units are zero: picking them adds nothing
    octets = centred.reshape(-1, 8)
    step = min(len(octets), max(8, _GATHER_BUDGET // resamples))
    offsets = np.arange(step, dtype=np.intp) * 256
    # Buffers are reused across blocks: fresh multi-MB arrays would page-fault on every block.
    table = np.zeros((step, 256))
    flat_picks = np.empty((resamples, step), dtype=np.intp)
    gathered = np.empty((resamples, step))
    rng = np.random.default_rng(seed)
    sums = np.zeros(resamples)
    for start in range(0, len(octets), step):
        block = octets[start:start + step]
        width = len(block)
        for bit in range(8):
            table[:width, 1 << bit:2 << bit] = table[:width, :1 << bit] + block[:, bit, None]
        size = resamples * width
        picks = rng.bit_generator.random_raw(-(-size // 8)).view(np.uint8)[:size].reshape(resamples, width)
        index = np.add(picks, offsets[:width], out=flat_picks[:, :width])
        sums += table.ravel().take(index, out=gathered[:, :width]).sum(axis=1)
    means = point + 2.0 * sums / units
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(low), float(high), point, float(confidence), int(resamples), units)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    unusable: bool = False  # the challenger breaks an absolute limit: a broken model, not merely a worse one
    interval: Interval | None = None
    mode: str = "superiority"
    metric: str = "primary"  # names the interval's tags

    def tags(self) -> dict[str, str]:
        tags = {"promotion_decision": "promote" if self.promote else "keep_champion", "promotion_reason": self.reason,
                "promotion_mode": self.mode}
        tags.update({f"challenger_{k}": f"{v:.6f}" for k, v in self.challenger.items()})
        if self.champion:
            tags.update({f"champion_{k}": f"{v:.6f}" for k, v in self.champion.items()})
        if self.interval is not None:
            tags.update(self.interval.tags(self.metric))
        return tags


@dataclass(frozen=True)
class PromotionPolicy:
    """Lower is better for every metric named here (NCE, log loss, calibration error), unless
    `higher_is_better` (ranking metrics: nDCG, recall); limits and guard tolerances then point the other way.

    Superiority: the point estimate must beat the champion by `min_relative_improvement` and the interval must
    clear zero in the better direction. Non-inferiority: the interval's worse bound may not be worse than the
    champion by more than `non_inferiority_margin` of the champion's value. With `require_interval` False, the point
    difference stands in for the interval in both modes.
    """

    metric: str = "nce"
    min_relative_improvement: float = 0.001  # 0.1% lower NCE
    guards: dict[str, float] = field(default_factory=lambda: {"log_loss": 0.0, "calibration_error": 0.002})
    absolute_limits: dict[str, float] = field(default_factory=lambda: {"nce": 1.0, "calibration_error": 0.02})
    higher_is_better: bool = False
    mode: Literal["superiority", "non_inferiority"] = "superiority"
    require_interval: bool = True
    non_inferiority_margin: float = 0.005  # relative to the champion's value: 0.5%

    def __post_init__(self) -> None:
        if self.mode not in ("superiority", "non_inferiority"):
            raise ValueError(f"mode must be 'superiority' or 'non_inferiority', got {self.mode!r}")
        if self.non_inferiority_margin < 0:
            raise ValueError(f"non_inferiority_margin must be >= 0, got {self.non_inferiority_margin}")

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def decide(
        self, challenger: dict[str, float], champion: dict[str, float] | None, interval: Interval | None = None
    ) -> Decision:
        def decision(promote: bool, reason: str, unusable: bool = False) -> Decision:
            return Decision(promote, reason, challenger, champion, unusable, interval, self.mode, self.metric)

        if champion is not None and interval is None and self.require_interval:
            # The caller's bug, not a decision: raised before any outcome (even an unusable challenger) can hide it.
            raise ValueError(f"policy requires a paired bootstrap interval of {self.metric} against the champion; "
                             "pass decide(..., interval=paired_bootstrap(...)) or set require_interval=False")
        side = "above" if self.higher_is_better else "below"
        for name, limit in self.absolute_limits.items():
            if not self._better(challenger[name], limit):
                return decision(False, f"challenger {name} {challenger[name]:.4f} is not {side} the limit {limit:.4f}",
                                unusable=True)
        if champion is None:
            return decision(True, "no champion yet; challenger passes the absolute limits")
        sign = 1 if self.higher_is_better else -1
        gated = interval if self.require_interval else None
        if self.mode == "superiority":
            passed, verdict = self._superiority(challenger, champion, gated, side, sign)
        else:
            passed, verdict = self._non_inferiority(challenger, champion, gated)
        if not passed:
            return decision(False, verdict)
        for name, tolerance in self.guards.items():
            if self._better(champion[name] - sign * tolerance, challenger[name]):
                return decision(False, f"guard {name}: challenger {challenger[name]:.5f} is worse than champion's "
                                       f"{champion[name]:.5f} (tolerance {tolerance})")
        return decision(True, f"{verdict}; guards hold")

    def _superiority(
        self, challenger: dict[str, float], champion: dict[str, float], interval: Interval | None, side: str, sign: int
    ) -> tuple[bool, str]:
        m = self.metric
        needed = champion[m] * (1 + sign * self.min_relative_improvement)
        if not self._better(challenger[m], needed):
            noise = f" ({interval.describe(m)})" if interval else ""
            return False, (f"challenger {m} {challenger[m]:.5f} is not {side} champion's {champion[m]:.5f} by "
                           f"{self.min_relative_improvement:.2%}{noise}")
        improvement = f"{abs(1 - challenger[m] / champion[m]):.2%} better than the champion"
        if interval is None:
            return True, f"{m} {improvement}"
        if not (interval.low > 0 if self.higher_is_better else interval.high < 0):
            return False, f"{interval.describe(m)} does not clear zero: not better beyond noise (point {improvement})"
        return True, f"{interval.describe(m)} clears zero; {improvement}"

    def _non_inferiority(
        self, challenger: dict[str, float], champion: dict[str, float], interval: Interval | None
    ) -> tuple[bool, str]:
        m = self.metric
        allowed = self.non_inferiority_margin * abs(champion[m])
        # Judged by the bound on the worse side: the challenger may be that much worse and the holdout still agree.
        if interval is None:
            bound = challenger[m] - champion[m]
            shown = f"{m} difference {_num(bound)}"
        else:
            bound = interval.low if self.higher_is_better else interval.high
            shown = f"{interval.describe(m)}, worse bound {_num(bound)}"
        margin = (f"the {self.non_inferiority_margin:.2%} non-inferiority margin ({_num(allowed)} of champion's "
                  f"{champion[m]:.5f})")
        if bound >= -allowed if self.higher_is_better else bound <= allowed:
            return True, f"{shown}: not worse than the champion beyond {margin}"
        return False, f"{shown}: may be worse than the champion beyond {margin}"
