"""The book's offline metrics for the news feed: each head's ROC-AUC and PR-AUC, and the feed's nDCG@10 of the
weighted engagement users actually gave.

The weighted score is the book's: score = sum over heads of w_h * P(h), plus w_dwell * E[capped dwell seconds], with
the business's weights (negative for hide, block and skip). The feed's unit is a session of the test days: its
impressions are the candidates, their gain is the weighted engagement the user gave (the same weights over what
happened: reactions, capped dwell, a skip) where it is positive, and an approach orders them by its score with every
post scored as if at the top (position 1), so the logged order's position bias is not replayed. nDCG@10 = DCG@10 /
ideal DCG@10 over sessions with some positive gain. nDCG takes no negative gain, so what users pushed away is judged
apart: the share of sessions whose top 3 holds a post the user hid or blocked (lower is better). Ties are broken by
a seeded random order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.news_feed.data import DWELL, HEADS

DEFAULT_WEIGHTS = {"click": 1.0, "like": 3.0, "comment": 6.0, "share": 8.0, "hide": -10.0, "block": -30.0,
                   "skip": -0.5, DWELL: 0.05}
K = 10
TIE_SEED = 7
MAX_WEIGHT = 1_000.0


def check_weights(weights: dict[str, float]) -> dict[str, float]:
    """Weights by head, each a finite number within +-MAX_WEIGHT; raises ValueError naming the head."""
    import math

    for head, weight in weights.items():
        if head not in DEFAULT_WEIGHTS:
            raise ValueError(f"{head!r} is not a head: the heads are {', '.join(DEFAULT_WEIGHTS)}")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) \
                or abs(weight) > MAX_WEIGHT:
            raise ValueError(f"{head}: the weight must be a number between {-MAX_WEIGHT:g} and {MAX_WEIGHT:g}")
    return {**DEFAULT_WEIGHTS, **{h: float(w) for h, w in weights.items()}}


def parse_weights(text: str) -> dict[str, float]:
    """The business's weights as a setting writes them ("share=10 hide=-20"), over DEFAULT_WEIGHTS."""
    weights = {}
    for part in (text or "").replace(",", " ").split():
        head, _, value = part.partition("=")
        try:
            weights[head.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{part!r} is not head=number (e.g. share=10 hide=-20)") from None
    return check_weights(weights)


def weighted_score(predictions: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """sum over heads of w_h * P(h), plus w_dwell * E[dwell]; a head without a weight counts 0."""
    total = None
    for head, weight in weights.items():
        if weight and head in predictions:
            part = weight * np.asarray(predictions[head], np.float64)
            total = part if total is None else total + part
    if total is None:
        return np.zeros(len(next(iter(predictions.values()))))
    return total


def realized_engagement(frame: pl.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """The weighted engagement each impression actually got: the weights over its labels and its capped dwell."""
    return weighted_score({h: frame[h].to_numpy().astype(np.float64) for h in (*HEADS, DWELL)}, weights)


def feed_gains(frame: pl.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """nDCG's gains: the realized weighted engagement where positive, else 0."""
    return np.maximum(realized_engagement(frame, weights), 0.0)


@dataclass
class Feeds:
    report: dict[str, float]
    sessions: list[str]  # sessions judged (ideal DCG > 0), in order
    ndcg: np.ndarray  # per session of `sessions`


def feed_ndcg(frame: pl.DataFrame, scores: np.ndarray, gains: np.ndarray, k: int = K) -> Feeds:
    """Per-session nDCG@k of `gains` ordered by `scores` (both aligned with `frame`'s rows: session_id, hide,
    block), and the share of sessions whose top 3 holds a hide or a block."""
    ties = np.random.default_rng(TIE_SEED).random(frame.height)
    pushed_away = (frame["hide"].cast(pl.Int8) | frame["block"].cast(pl.Int8)).to_numpy() if "hide" in frame.columns else np.zeros(frame.height)
    ranked = (frame.select("session_id").with_columns(score=pl.Series(np.asarray(scores, np.float64)),
                                                      away=pl.Series(pushed_away.astype(np.float64)),
                                                      gain=pl.Series(np.asarray(gains, np.float64)), tie=pl.Series(ties))
              .sort("session_id", "score", "tie", descending=[False, True, False])
              .with_columns(rank=pl.int_range(1, pl.len() + 1).over("session_id"),
                            ideal=pl.col("gain").sort(descending=True).over("session_id")))
    discount = 1 / (pl.col("rank") + 1).log(2)
    with_away = ranked.group_by("session_id").agg((pl.col("away") > 0).any().alias("any_away"),
                                                  (pl.col("away").filter(pl.col("rank") <= 3) > 0).any().alias("top_away"))
    away = with_away.filter("any_away")
    per_session = (ranked.filter(pl.col("rank") <= k)
                   .group_by("session_id").agg(dcg=(pl.col("gain") * discount).sum(), idcg=(pl.col("ideal") * discount).sum(),
                                               shown=pl.len())
                   .filter(pl.col("idcg") > 0).sort("session_id")
                   .with_columns(ndcg=pl.col("dcg") / pl.col("idcg")))
    return Feeds({f"ndcg_at_{k}": float(per_session["ndcg"].mean() or 0.0), "sessions": per_session.height,
                  # among sessions with a hide or block at all: how often it reached the top 3
                  "hide_or_block_in_top_3": float(away["top_away"].mean()) if away.height else 0.0},
                 per_session["session_id"].to_list(), per_session["ndcg"].to_numpy())


def head_report(labels: dict[str, np.ndarray], predictions: dict[str, np.ndarray]) -> dict[str, float]:
    """ROC-AUC and PR-AUC of each binary head (NaN where the test rows hold one class only), dwell's RMSE."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    report = {}
    for head in HEADS:
        y, p = labels[head], predictions[head]
        two = 0 < y.sum() < len(y)
        report[f"{head}_roc_auc"] = float(roc_auc_score(y, p)) if two else float("nan")
        report[f"{head}_pr_auc"] = float(average_precision_score(y, p)) if two else float("nan")
        report[f"{head}_positives"] = int(y.sum())
    report["dwell_rmse"] = float(np.sqrt(np.mean((predictions[DWELL] - labels[DWELL]) ** 2)))
    return report


def _weighted_average_precision(order: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision of rows taken in `order` (best first) under each row of `weights` (resamples x rows)."""
    y_sorted, w = y[order], weights[:, order]
    hits = np.cumsum(w * y_sorted, axis=1)
    seen = np.cumsum(w, axis=1)
    precision = np.divide(hits, seen, out=np.zeros_like(hits), where=seen > 0)
    positives = hits[:, -1]
    return np.divide((w * y_sorted * precision).sum(axis=1), positives, out=np.full(len(w), np.nan), where=positives > 0)


@dataclass(frozen=True)
class Margin:
    point: float
    low: float
    high: float
    resamples: int

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def pr_auc_margin(y: np.ndarray, model: np.ndarray, baseline: np.ndarray, clusters: np.ndarray, resamples: int = 400,
                  seed: int = 0, confidence: float = 0.95) -> Margin:
    """PR-AUC of `model` minus `baseline` with a paired bootstrap interval over clusters (sessions: a session's
    impressions are not independent), each resample weighing both models' rows alike (Poisson(1) per cluster)."""
    y = np.asarray(y, np.float64)
    codes, index = np.unique(clusters, return_inverse=True)
    rng = np.random.default_rng(seed)
    order_model, order_baseline = np.argsort(-np.asarray(model), kind="stable"), np.argsort(-np.asarray(baseline), kind="stable")
    point = float(_weighted_average_precision(order_model, y, np.ones((1, len(y))))[0]
                  - _weighted_average_precision(order_baseline, y, np.ones((1, len(y))))[0])
    differences = []
    for start in range(0, resamples, 50):
        weights = rng.poisson(1.0, (min(50, resamples - start), len(codes))).astype(np.float64)[:, index]
        differences.append(_weighted_average_precision(order_model, y, weights)
                           - _weighted_average_precision(order_baseline, y, weights))
    values = np.concatenate(differences)
    values = values[np.isfinite(values)]
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2]) if len(values) else (np.nan, np.nan)
    return Margin(point, float(low), float(high), resamples)


def top_changed(frame: pl.DataFrame, scores_a: np.ndarray, scores_b: np.ndarray, top: int = 3) -> float:
    """The mean share of a session's top `top` that differs between two orderings (0: the same feeds)."""
    ranked = frame.select("session_id", "impression_id").with_columns(a=pl.Series(scores_a), b=pl.Series(scores_b))
    tops = ranked.group_by("session_id").agg(
        pl.col("impression_id").sort_by("a", descending=True).head(top).alias("top_a"),
        pl.col("impression_id").sort_by("b", descending=True).head(top).alias("top_b"))
    changed = [1 - len(set(a) & set(b)) / max(len(a), 1) for a, b in tops.select("top_a", "top_b").iter_rows()]
    return float(np.mean(changed)) if changed else 0.0


def passive_users(history: pl.DataFrame, min_impressions: int = 5) -> set[str]:
    """Users of `history` (labelled rows before the test window) with at least `min_impressions` impressions and not one
    like, comment or share: the readers the explicit heads know nothing about."""
    from models.news_feed.data import EXPLICIT

    per_user = history.group_by("user_id").agg(pl.len().alias("n"), pl.sum_horizontal(*EXPLICIT).sum().alias("explicit"))
    return set(per_user.filter((pl.col("n") >= min_impressions) & (pl.col("explicit") == 0))["user_id"].to_list())


def passive_effect(test: pl.DataFrame, predictions: dict[str, np.ndarray], weights: dict[str, float],
                   passive: set[str]) -> dict[str, dict[str, float]]:
    """What the dwell and skip heads do to feeds: for passive and for active users' test sessions, nDCG@10 of the
    realized engagement with every weight and with dwell's and skip's set to 0, a paired bootstrap interval of the
    difference over sessions, and the share of the top 3 that changes between the two."""
    from models.promotion import paired_bootstrap

    without = {**weights, DWELL: 0.0, "skip": 0.0}
    gains = feed_gains(test, weights)
    full, reduced = weighted_score(predictions, weights), weighted_score(predictions, without)
    is_passive = test["user_id"].is_in(list(passive)).to_numpy()
    out = {}
    for name, mask in (("passive", is_passive), ("active", ~is_passive)):
        part = test.filter(pl.Series(mask))
        if part.is_empty():
            continue
        with_heads = feed_ndcg(part, full[mask], gains[mask])
        without_heads = feed_ndcg(part, reduced[mask], gains[mask])
        gain = paired_bootstrap(with_heads.ndcg, without_heads.ndcg, resamples=2000) if len(with_heads.ndcg) > 1 else None
        out[name] = {"users": part["user_id"].n_unique(), "sessions": with_heads.report["sessions"],
                     "ndcg_at_10": with_heads.report[f"ndcg_at_{K}"],
                     "ndcg_at_10_without_dwell_and_skip": without_heads.report[f"ndcg_at_{K}"],
                     "difference_low": gain.low if gain else float("nan"),
                     "difference_high": gain.high if gain else float("nan"),
                     "top_3_changed": top_changed(part, full[mask], reduced[mask])}
    return out
