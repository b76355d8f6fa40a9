"""Promotion policy as code: when does a challenger replace the champion?

Both models are scored on the same holdout. The primary metric must improve by a relative margin; guard
metrics must not get worse beyond their tolerance. With no champion yet, a challenger that passes the
absolute guards is promoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    unusable: bool = False  # the challenger breaks an absolute limit: a broken model, not merely a worse one

    def tags(self) -> dict[str, str]:
        tags = {"promotion_decision": "promote" if self.promote else "keep_champion", "promotion_reason": self.reason}
        tags.update({f"challenger_{k}": f"{v:.6f}" for k, v in self.challenger.items()})
        if self.champion:
            tags.update({f"champion_{k}": f"{v:.6f}" for k, v in self.champion.items()})
        return tags


@dataclass(frozen=True)
class PromotionPolicy:
    """Lower is better for every metric named here (NCE, log loss, calibration error), unless
    `higher_is_better` (ranking metrics: nDCG, recall); limits and guard tolerances then point the other way."""

    metric: str = "nce"
    min_relative_improvement: float = 0.001  # 0.1% lower NCE
    guards: dict[str, float] = field(default_factory=lambda: {"log_loss": 0.0, "calibration_error": 0.002})
    absolute_limits: dict[str, float] = field(default_factory=lambda: {"nce": 1.0, "calibration_error": 0.02})
    higher_is_better: bool = False

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def decide(self, challenger: dict[str, float], champion: dict[str, float] | None) -> Decision:
        side = "above" if self.higher_is_better else "below"
        for name, limit in self.absolute_limits.items():
            if not self._better(challenger[name], limit):
                reason = f"challenger {name} {challenger[name]:.4f} is not {side} the limit {limit:.4f}"
                return Decision(False, reason, challenger, champion, unusable=True)
        if champion is None:
            return Decision(True, "no champion yet; challenger passes the absolute limits", challenger, None)
        sign = 1 if self.higher_is_better else -1
        needed = champion[self.metric] * (1 + sign * self.min_relative_improvement)
        if not self._better(challenger[self.metric], needed):
            return Decision(
                False,
                f"challenger {self.metric} {challenger[self.metric]:.5f} is not {side} champion's "
                f"{champion[self.metric]:.5f} by {self.min_relative_improvement:.2%}",
                challenger,
                champion,
            )
        for name, tolerance in self.guards.items():
            if self._better(champion[name] - sign * tolerance, challenger[name]):
                return Decision(
                    False,
                    f"guard {name}: challenger {challenger[name]:.5f} is worse than champion's {champion[name]:.5f} "
                    f"(tolerance {tolerance})",
                    challenger,
                    champion,
                )
        improvement = abs(1 - challenger[self.metric] / champion[self.metric])
        return Decision(True, f"{self.metric} {improvement:.2%} better than the champion; guards hold", challenger, champion)
