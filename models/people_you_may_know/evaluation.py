"""The book's metrics for edge formation: ROC-AUC over candidate pairs and mAP@10 of each member's ranked list, with
recall@10 of the member's new connections (reachable or not).

A member is judged when they had at least one connection at the snapshot and made at least one new one in the label
window. Their AP@10 divides by min(10, their new connections among their candidates): when none is a friend of a
friend, no ranking can find one and AP@10 is 0 for every approach alike; recall@10 divides by all their new
connections, so it also shows what the friends-of-friends cut costs.
"""

from __future__ import annotations

import numpy as np

K = 10


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC-AUC (sklearn's: ties count half), None with one class."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores)) if 0 < int(y.sum()) < len(y) else None


def top_k(u: np.ndarray, scores: np.ndarray, k: int, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Positions of each member's k best-scored pairs, members in index order and best first within a member."""
    keys = [u, -scores] if tiebreak is None else [u, -scores, tiebreak]
    order = np.lexsort(tuple(reversed(keys)))
    sorted_u = u[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_u, sorted_u, side="left")
    return order[rank < k]


def per_member(u: np.ndarray, y: np.ndarray, scores: np.ndarray, new_per_member: dict[int, int], k: int = K,
               tiebreak: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(judged members, AP@k, recall@k), members sorted; `new_per_member` counts each member's new connections."""
    judged = np.array(sorted(m for m, count in new_per_member.items() if count > 0), dtype=np.int64)
    reachable = np.bincount(u[y == 1], minlength=int(max(judged.max() + 1 if len(judged) else 0, u.max() + 1 if len(u) else 0)))
    best = top_k(u, scores, k, tiebreak)
    bu, by = u[best], y[best]
    # precision at each position of a member's list, where it is a hit
    position = np.arange(len(best)) - np.searchsorted(bu, bu, side="left") + 1
    hits_so_far = np.cumsum(by) - np.concatenate([[0], np.cumsum(by)])[np.searchsorted(bu, bu, side="left")]
    precision_at_hit = np.where(by == 1, hits_so_far / position, 0.0)
    size = len(reachable)
    ap_sum = np.bincount(bu, weights=precision_at_hit, minlength=size)
    hits = np.bincount(bu, weights=by, minlength=size)
    denominator = np.minimum(k, reachable[judged])
    ap = np.where(denominator > 0, ap_sum[judged] / np.maximum(denominator, 1), 0.0)
    total = np.array([new_per_member[m] for m in judged], dtype=np.float64)
    recall = hits[judged] / total
    return judged, ap, recall


def report(u: np.ndarray, y: np.ndarray, scores: np.ndarray, new_per_member: dict[int, int],
           tiebreak: np.ndarray | None = None) -> dict[str, float | None]:
    judged, ap, recall = per_member(u, y, scores, new_per_member, tiebreak=tiebreak)
    return {"roc_auc": roc_auc(y, scores), "map_at_10": float(ap.mean()) if len(ap) else None,
            "recall_at_10": float(recall.mean()) if len(recall) else None, "members_judged": float(len(judged))}


def new_per_member(new_edges, members_with_friends: np.ndarray) -> dict[int, int]:
    """Each member (with a connection at the snapshot) and how many new connections they made in the window."""
    ends = np.concatenate([new_edges["lo"].to_numpy(), new_edges["hi"].to_numpy()]).astype(np.int64)
    counts = np.bincount(ends, minlength=int(members_with_friends.max() + 1) if len(members_with_friends) else 0)
    return {int(m): int(counts[m]) for m in members_with_friends if m < len(counts) and counts[m] > 0}
