"""Offline metrics for top-k recommendation lists with binary relevance (video, event, listing, feed...).

Each function takes, per user, the recommended ids in rank order and the set of relevant ids; per-user values
are averaged over users with at least one relevant item.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _hits(recommended: Sequence, relevant: set, k: int) -> np.ndarray:
    return np.array([item in relevant for item in list(recommended)[:k]], dtype=float)


def precision_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    return float(_hits(recommended, relevant, k).sum() / k)


def recall_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    return float(_hits(recommended, relevant, k).sum() / len(relevant)) if relevant else 0.0


def average_precision_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    """AP@k: the mean of precision@i over the ranks i that hold a relevant item, divided by min(k, |relevant|)."""
    hits = _hits(recommended, relevant, k)
    if not relevant or not hits.any():
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / min(k, len(relevant)))


def ndcg_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    hits = _hits(recommended, relevant, k)
    discounts = 1 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, len(relevant))].sum()
    return float((hits * discounts[: len(hits)]).sum() / ideal) if ideal else 0.0


def intra_list_diversity(recommended: Sequence, features: dict[str, set]) -> float:
    """Mean pairwise Jaccard distance of the items' feature sets (tags): 0 = all alike, 1 = nothing shared."""
    items = [features.get(i, set()) for i in recommended]
    distances = []
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            union = items[a] | items[b]
            distances.append(1 - len(items[a] & items[b]) / len(union) if union else 0.0)
    return float(np.mean(distances)) if distances else 0.0


def ranking_report(
    recommendations: dict[str, list],
    relevant: dict[str, set],
    ks: Sequence[int],
    catalogue_size: int,
    features: dict[str, set] | None = None,
    diversity_k: int = 10,
) -> dict[str, float]:
    """Metrics averaged over the users in `relevant` (a user without recommendations counts as all misses)."""
    users = [u for u, items in relevant.items() if items]
    report: dict[str, float] = {}
    for k in ks:
        lists = [(recommendations.get(u, []), relevant[u]) for u in users]
        report[f"precision_at_{k}"] = float(np.mean([precision_at_k(r, g, k) for r, g in lists]))
        report[f"recall_at_{k}"] = float(np.mean([recall_at_k(r, g, k) for r, g in lists]))
        report[f"map_at_{k}"] = float(np.mean([average_precision_at_k(r, g, k) for r, g in lists]))
        report[f"ndcg_at_{k}"] = float(np.mean([ndcg_at_k(r, g, k) for r, g in lists]))
    shown = {item for items in recommendations.values() for item in items[:diversity_k]}
    report[f"coverage_at_{diversity_k}"] = len(shown) / catalogue_size if catalogue_size else 0.0
    if features is not None:
        report[f"diversity_at_{diversity_k}"] = float(
            np.mean([intra_list_diversity(recommendations.get(u, [])[:diversity_k], features) for u in users])
        )
    report["users"] = float(len(users))
    return report


def recall_curve(recommendations: dict[str, list], relevant: dict[str, set], ks: Sequence[int]) -> list[float]:
    users = [u for u, items in relevant.items() if items]
    return [float(np.mean([recall_at_k(recommendations.get(u, []), relevant[u], k) for u in users])) for k in ks]


def ndcg_curve(recommendations: dict[str, list], relevant: dict[str, set], ks: Sequence[int]) -> list[float]:
    users = [u for u, items in relevant.items() if items]
    return [float(np.mean([ndcg_at_k(recommendations.get(u, []), relevant[u], k) for u in users])) for k in ks]
