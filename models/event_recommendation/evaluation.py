"""The book's offline metric for event recommendation, mAP, with precision and recall at k and NCE.

The unit is a user of the test window: the events shown to them in it are their candidates (each once, relevant
when they registered after any of its impressions), ranked by an approach's score as of the impression. Ties are
broken by a seeded random order, so a score that ties a lot (popularity of new events) is not flattered by row
order. mAP averages over users with at least one registration; per-user AP@10 is the promotion gate's unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.event_recommendation.data import LABEL
from models.metrics import binary_report

KS = (3, 10)
TIE_SEED = 7


@dataclass
class Ranked:
    report: dict[str, float]
    users: list[str]  # users with a registration, in order
    ap_at_10: np.ndarray  # per user of `users`


def rank_users(test: pl.DataFrame, scores: np.ndarray, ks=KS) -> Ranked:
    """Per-user ranking metrics of `scores` (aligned with `test` rows: user_id, event_id, registered)."""
    frame = (test.select("user_id", "event_id", LABEL).with_columns(score=pl.Series(np.asarray(scores, np.float64)))
             .group_by("user_id", "event_id", maintain_order=True).agg(pl.col(LABEL).max(), pl.col("score").first()))
    ties = np.random.default_rng(TIE_SEED).random(frame.height)
    frame = (frame.with_columns(tie=pl.Series(ties)).sort("user_id", "score", "tie", descending=[False, True, False])
             .with_columns(rank=pl.int_range(1, pl.len() + 1).over("user_id")))
    frame = frame.with_columns(hits=pl.col(LABEL).cum_sum().over("user_id"),
                               relevant=pl.col(LABEL).sum().over("user_id"))
    frame = frame.filter(pl.col("relevant") > 0)
    precision_at_hit = pl.when(pl.col(LABEL) == 1).then(pl.col("hits") / pl.col("rank")).otherwise(0.0)
    per_user = frame.group_by("user_id", maintain_order=True).agg(
        pl.col("relevant").first(), pl.len().alias("candidates"),
        *[(precision_at_hit.filter(pl.col("rank") <= k).sum() / pl.min_horizontal(pl.col("relevant").first(), pl.lit(k))).alias(f"ap_{k}") for k in ks],
        (precision_at_hit.sum() / pl.col("relevant").first()).alias("ap_all"),
        *[(pl.col(LABEL).filter(pl.col("rank") <= k).sum() / k).alias(f"p_{k}") for k in ks],
        *[(pl.col(LABEL).filter(pl.col("rank") <= k).sum() / pl.col("relevant").first()).alias(f"r_{k}") for k in ks],
    ).sort("user_id")
    report = {**{f"map_at_{k}": float(per_user[f"ap_{k}"].mean() or 0.0) for k in ks},
              "map": float(per_user["ap_all"].mean() or 0.0),
              **{f"precision_at_{k}": float(per_user[f"p_{k}"].mean() or 0.0) for k in ks},
              **{f"recall_at_{k}": float(per_user[f"r_{k}"].mean() or 0.0) for k in ks}}
    return Ranked(report, per_user["user_id"].to_list(), per_user["ap_10"].to_numpy())


def evaluate(test: pl.DataFrame, scores: np.ndarray, background_rate: float | None) -> Ranked:
    """Ranking metrics, and for probabilities (a background rate given) NCE and log loss as well."""
    ranked = rank_users(test, scores)
    if background_rate is not None:
        probabilities = binary_report(test[LABEL].to_numpy(), np.clip(scores, 1e-7, 1 - 1e-7), background_rate)
        ranked.report.update({k: probabilities[k] for k in ("nce", "log_loss", "roc_auc", "calibration_error")})
    else:
        ranked.report.update({"nce": None, "log_loss": None, "roc_auc": None, "calibration_error": None})
    ranked.report["users"] = len(ranked.users)
    return ranked


def baseline_scores(test: pl.DataFrame) -> dict[str, np.ndarray]:
    """The issue's simple baselines: popularity (registrations so far) and distance only (nearest first)."""
    return {"popularity": test["registrations_so_far"].to_numpy().astype(np.float64),
            "distance": -test["distance_km"].to_numpy().astype(np.float64)}
