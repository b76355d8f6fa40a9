"""Strong simple baselines for the recommender's evaluation: what a chain of learned models must beat to be worth it.

EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", 2019) is an item-item linear model: the weights B
minimise ||X - XB||^2 + l2 ||B||^2 with a zero diagonal, X the users x videos matrix of relevant views. The closed
form is B = I - P diag(1/diag(P)) with P = (X'X + l2 I)^-1, one inverse of a catalogue-sized matrix. On public
ratings data it is among the strongest top-k recommenders of any kind, and on the movie-ratings data of issue 13 it
scored nDCG@10 0.487 against popularity's 0.247 and the chain's 0.145.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
from scipy import sparse

from models.video_rec.features import before, between


NEIGHBOURS = 200  # weights kept per video: the strongest, so the model's size and a score's cost grow with the catalogue, not its square
MAX_VIDEOS = 8_000  # the gram matrix's inverse costs the cube of its side; beyond this, the most often relevant videos


@dataclass(frozen=True)
class Ease:
    video_ids: list[str]
    weights: sparse.csr_matrix  # videos x videos: row h holds the NEIGHBOURS largest weights of h on other videos
    history: dict[str, np.ndarray]  # user -> rows of the videos they found relevant
    l2: float

    def scores(self, user_ids: list[str]) -> np.ndarray:
        """users x videos; a user without relevant views scores 0 everywhere (the caller's fallback decides)."""
        return (history_matrix([self.history.get(u, _NONE) for u in user_ids], len(self.video_ids)) @ self.weights).toarray()

    def recommend(self, user_ids: list[str], seen: dict[str, set[str]], k: int,
                  fallback: list[str] | None = None) -> dict[str, list[str]]:
        """Top-k unseen videos per user by EASE score; ties and users without history take `fallback`'s order."""
        scores = self.scores(user_ids)
        position = {v: i for i, v in enumerate(self.video_ids)}
        prior = np.zeros(len(self.video_ids), np.float32)
        for rank, video in enumerate(fallback or []):
            if video in position:
                prior[position[video]] = (len(fallback) - rank) / (len(fallback) + 1)
        ids = np.array(self.video_ids, dtype=object)
        out = {}
        for i, user in enumerate(user_ids):
            if not len(ids):
                out[user] = [v for v in (fallback or []) if v not in seen.get(user, ())][:k]
                continue
            # The fallback's order breaks ties only: its values are below the smallest gap between distinct scores.
            row = scores[i] + prior * 1e-6
            blocked = [position[v] for v in seen.get(user, ()) if v in position]
            row[blocked] = -np.inf
            top = np.argpartition(-row, min(k + len(blocked), len(row) - 1))[: k + len(blocked)]
            top = top[np.argsort(-row[top], kind="stable")]
            out[user] = [v for v in ids[top].tolist() if v not in seen.get(user, ())][:k]
        return out

    def save(self, path: Path) -> None:
        np.savez(path, video_ids=np.array(self.video_ids, dtype=str), l2=self.l2, data=self.weights.data,
                 indices=self.weights.indices, indptr=self.weights.indptr)

    @classmethod
    def load(cls, path: Path, history: dict[str, np.ndarray] | None = None) -> Ease:
        with np.load(path) as saved:
            n = len(saved["video_ids"])
            weights = sparse.csr_matrix((saved["data"], saved["indices"], saved["indptr"]), shape=(n, n))
            return cls(saved["video_ids"].tolist(), weights, history or {}, float(saved["l2"]))


_NONE = np.zeros(0, np.int64)


def history_matrix(rows: list[np.ndarray], n: int) -> sparse.csr_matrix:
    """users x videos, 1 where the user found the video relevant."""
    lengths = [len(r) for r in rows]
    return sparse.csr_matrix((np.ones(sum(lengths), np.float32), (np.repeat(np.arange(len(rows)), lengths),
                              np.concatenate([*rows, _NONE]).astype(np.int64))), shape=(len(rows), n))


def relevant_rows(labeled: pl.DataFrame, video_ids: list[str], as_of: datetime) -> dict[str, np.ndarray]:
    """Per user, the rows (in `video_ids`) of the videos they found relevant before `as_of`."""
    position = pl.DataFrame({"video_id": video_ids, "row": np.arange(len(video_ids))},
                            schema={"video_id": pl.String, "row": pl.Int64})
    pairs = (before(labeled, as_of).filter(pl.col("relevant")).select("user_id", "video_id").unique()
             .join(position, on="video_id", how="inner").group_by("user_id").agg("row"))
    return {u: np.array(r, np.int64) for u, r in zip(pairs["user_id"].to_list(), pairs["row"].to_list())}


def fit_ease(history: dict[str, np.ndarray], video_ids: list[str], l2: float, neighbours: int = NEIGHBOURS) -> Ease:
    n = len(video_ids)
    x = history_matrix(list(history.values()), n)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices(n)] += l2
    # float32 halves the inverse's time; the weights are compared, not accumulated, so its precision is plenty.
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    weights[np.diag_indices(n)] = 0.0
    return Ease(video_ids, _strongest(weights, neighbours), history, l2)


def _strongest(weights: np.ndarray, keep: int) -> sparse.csr_matrix:
    n = weights.shape[0]
    if n <= keep:
        return sparse.csr_matrix(weights)
    columns = np.argpartition(-weights, keep - 1, axis=1)[:, :keep]
    values = np.take_along_axis(weights, columns, axis=1)
    matrix = sparse.csr_matrix((values.ravel(), columns.ravel(), np.arange(0, n * keep + 1, keep)), shape=(n, n))
    matrix.sort_indices()
    return matrix


L2_GRID = (30.0, 100.0, 300.0)
GRID_STEPS = 4  # at most this many more l2 values, each 3x beyond the edge, while the edge keeps winning


def fit_ease_on_split(labeled: pl.DataFrame, fit_end: datetime, valid_end: datetime, grid: tuple[float, ...] = L2_GRID,
                      k: int = 10, max_users: int = 1_000, seed: int = 0) -> tuple[Ease, dict[float, float]]:
    """EASE as the two-tower model is trained: weights from the relevant views before `fit_end` (the retrieval
    window), over the videos those views reached; l2 is the grid's best nDCG@k on the validation window [fit_end,
    valid_end) (the ranker's; the test window is never looked at). Videos first found relevant later have no
    weights: an item-item model cannot recommend a video nobody has watched, which the two-tower's content
    features can."""
    from models.ranking_metrics import ndcg_at_k

    counts = before(labeled, fit_end).filter(pl.col("relevant")).group_by("video_id").agg(n=pl.col("user_id").n_unique())
    video_ids = sorted(counts.sort("n", "video_id", descending=[True, False]).head(MAX_VIDEOS)["video_id"].to_list())
    history = relevant_rows(labeled, video_ids, fit_end)
    truth = (between(labeled, fit_end, valid_end).filter(pl.col("relevant")).group_by("user_id")
             .agg(pl.col("video_id").unique()).filter(pl.col("user_id").is_in(list(history))).sort("user_id"))
    truth = truth.sample(min(max_users, truth.height), seed=seed) if truth.height else truth
    users = truth["user_id"].to_list()
    relevant = {u: set(v) for u, v in zip(users, truth["video_id"].to_list())}
    seen = {u: set(v) for u, v in before(labeled, fit_end).filter(pl.col("user_id").is_in(users))
            .group_by("user_id").agg("video_id").iter_rows()}
    by_l2, models = {}, {}

    def fit(l2: float) -> None:
        models[l2] = fit_ease(history, video_ids, l2)
        lists = models[l2].recommend(users, seen, k)
        by_l2[l2] = float(np.mean([ndcg_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0

    for l2 in grid:
        fit(l2)
    # The best l2 grows with how often videos co-occur (ratings data wanted 10x the simulator's): a winner at the
    # grid's edge means the grid stopped too soon, so it extends that way.
    for _ in range(GRID_STEPS if len(grid) > 1 else 0):
        tried = sorted(by_l2)
        if by_l2[tried[-1]] > max(by_l2[l2] for l2 in tried[:-1]):
            fit(tried[-1] * 3)
        elif by_l2[tried[0]] > max(by_l2[l2] for l2 in tried[1:]):
            fit(tried[0] / 3)
        else:
            break
    best = max(by_l2, key=lambda l2: (by_l2[l2], -l2))
    return models[best], dict(sorted(by_l2.items()))


def with_history(model: Ease, labeled: pl.DataFrame, as_of: datetime) -> Ease:
    """The same weights over the users' relevant views up to `as_of` (as the chain's state updates histories)."""
    return Ease(model.video_ids, model.weights, relevant_rows(labeled, model.video_ids, as_of), model.l2)
