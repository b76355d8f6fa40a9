"""Strong simple baselines for the recommender's evaluation: what a chain of learned models must beat to be worth it.

EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", 2019) is an item-item linear model: the weights B
minimise ||X - XB||^2 + l2 ||B||^2 with a zero diagonal, X the users x videos matrix of relevant views. The closed
form is B = I - P diag(1/diag(P)) with P = (X'X + l2 I)^-1, one inverse of a catalogue-sized matrix. On public
ratings data it is among the strongest top-k recommenders of any kind, and on the movie-ratings data of issue 13 it
scored nDCG@10 0.487 against popularity's 0.247 and the chain's 0.145.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
        return _top_unseen(self.scores(user_ids), self.video_ids, user_ids, seen, k, fallback)

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
    video_ids, history, score = _validation(labeled, fit_end, valid_end, k, max_users, seed)
    by_l2, models = {}, {}

    def fit(l2: float) -> None:
        models[l2] = fit_ease(history, video_ids, l2)
        by_l2[l2] = score(models[l2])

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


def _validation(labeled: pl.DataFrame, fit_end: datetime, valid_end: datetime, k: int, max_users: int, seed: int):
    """What a baseline fits on before `fit_end` (its videos, at most MAX_VIDEOS of the most often relevant, and each
    user's relevant rows), and its validation score: mean nDCG@k on [fit_end, valid_end) of sampled users."""
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

    def score(model) -> float:
        lists = model.recommend(users, seen, k)
        return float(np.mean([ndcg_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0

    return video_ids, history, score


def with_history(model: Ease, labeled: pl.DataFrame, as_of: datetime) -> Ease:
    """The same weights over the users' relevant views up to `as_of` (as the chain's state updates histories)."""
    return Ease(model.video_ids, model.weights, relevant_rows(labeled, model.video_ids, as_of), model.l2)


@dataclass(frozen=True)
class Als:
    """Matrix factorization for implicit feedback (Hu, Koren & Volinsky 2008; the book's WALS): users x videos
    relevance as U V', every unobserved pair a weak zero, every relevant view weighted 1 + alpha. reg 30 and
    alpha 2 were chosen on the validation windows of both simulated worlds among reg 1-100 and alpha 1-40
    (`./dev.sh bench video_diagnosis --als-grid`; README "The strong simple baselines")."""

    video_ids: list[str]
    user_factors: dict[str, np.ndarray]
    video_factors: np.ndarray  # videos x factors
    reg: float
    alpha: float
    iterations: int

    def scores(self, user_ids: list[str]) -> np.ndarray:
        zero = np.zeros(self.video_factors.shape[1], np.float32)
        return np.stack([self.user_factors.get(u, zero) for u in user_ids]) @ self.video_factors.T if user_ids else (
            np.zeros((0, len(self.video_ids)), np.float32))

    def recommend(self, user_ids: list[str], seen: dict[str, set[str]], k: int,
                  fallback: list[str] | None = None) -> dict[str, list[str]]:
        return _top_unseen(self.scores(user_ids), self.video_ids, user_ids, seen, k, fallback)


def _top_unseen(scores: np.ndarray, video_ids: list[str], user_ids: list[str], seen: dict[str, set[str]], k: int,
                fallback: list[str] | None) -> dict[str, list[str]]:
    """Top-k unseen videos per row of `scores`; ties and all-zero rows (no history) take `fallback`'s order."""
    position = {v: i for i, v in enumerate(video_ids)}
    prior = np.zeros(len(video_ids), np.float32)
    for rank, video in enumerate(fallback or []):
        if video in position:
            prior[position[video]] = (len(fallback) - rank) / (len(fallback) + 1)
    ids = np.array(video_ids, dtype=object)
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


def _solve_side(relevant: sparse.csr_matrix, other: np.ndarray, reg: float, alpha: float, chunk: int = 20_000) -> np.ndarray:
    """One half-step of ALS: each row's factors given the other side's, in closed form. Row u solves
    (Y'Y + alpha Y_u'Y_u + reg I) x = (1 + alpha) Y_u' 1, Y_u the other side's rows u found relevant; rows go in
    chunks of about `chunk` nonzeros, so their outer products stay small."""
    n, f = relevant.shape[0], other.shape[1]
    gram = other.T @ other + reg * np.eye(f, dtype=other.dtype)
    out = np.zeros((n, f), other.dtype)
    active = np.flatnonzero(np.diff(relevant.indptr) > 0)  # a row without relevant views keeps zero factors
    begin = 0
    while begin < len(active):
        end = int(np.searchsorted(relevant.indptr[active + 1], relevant.indptr[active[begin]] + chunk, side="right"))
        rows = active[begin:max(end, begin + 1)]
        starts = relevant.indptr[rows]
        nonzero = np.concatenate([relevant.indices[a:b] for a, b in zip(starts, relevant.indptr[rows + 1])])
        offsets = np.r_[0, np.cumsum(relevant.indptr[rows + 1] - starts)[:-1]]
        vectors = other[nonzero]
        outer = np.add.reduceat(np.einsum("ni,nj->nij", vectors, vectors), offsets, axis=0)
        b = (1 + alpha) * np.add.reduceat(vectors, offsets, axis=0)
        out[rows] = np.linalg.solve(gram + alpha * outer, b[:, :, None])[:, :, 0]
        begin += len(rows)
    return out


def fit_als(history: dict[str, np.ndarray], video_ids: list[str], factors: int = 32, reg: float = 30.0, alpha: float = 2.0,
            iterations: int = 8, seed: int = 0, after_each=None) -> Als:
    """ALS from random factors; `after_each(model)` is called after every iteration and stops the fit by returning
    True (the caller's early stopping keeps the best)."""
    users = list(history)
    relevant = history_matrix([history[u] for u in users], len(video_ids))
    by_video = relevant.T.tocsr()
    rng = np.random.default_rng(seed)
    video_factors = rng.normal(0, 0.1, (len(video_ids), factors)).astype(np.float32)
    model = None
    for iteration in range(1, iterations + 1):
        user_factors = _solve_side(relevant, video_factors, reg, alpha)
        video_factors = _solve_side(by_video, user_factors, reg, alpha)
        model = Als(video_ids, dict(zip(users, user_factors)), video_factors, reg, alpha, iteration)
        if after_each is not None and after_each(model):
            break
    return model


def als_with_history(model: Als, labeled: pl.DataFrame, as_of: datetime) -> Als:
    """The same video factors, each user's factors solved again from their relevant views up to `as_of` (fold-in)."""
    history = relevant_rows(labeled, model.video_ids, as_of)
    users = list(history)
    solved = _solve_side(history_matrix([history[u] for u in users], len(model.video_ids)), model.video_factors,
                         model.reg, model.alpha)
    return replace(model, user_factors=dict(zip(users, solved)))


ALS_ITERATIONS = 15
ALS_PATIENCE = 2


ALS_FACTORS = (16, 32)


def fit_als_on_split(labeled: pl.DataFrame, fit_end: datetime, valid_end: datetime,
                     factors: int | tuple[int, ...] = ALS_FACTORS, reg: float = 30.0, alpha: float = 2.0, k: int = 10,
                     max_users: int = 1_000, seed: int = 0) -> tuple[Als, list[float]]:
    """ALS fitted as EASE is (relevant views before `fit_end`, the same videos); the number of factors and of
    iterations are chosen on nDCG@k of the validation window: the best iteration is kept, and a fit stops after
    ALS_PATIENCE iterations without gain. Returns the model and its validation curve."""
    video_ids, history, score = _validation(labeled, fit_end, valid_end, k, max_users, seed)
    chosen: tuple[Als, list[float]] | None = None
    for size in (factors,) if isinstance(factors, int) else factors:
        curve: list[float] = []
        best: list[Als] = []

        def after_each(model: Als) -> bool:
            curve.append(score(model))
            if curve[-1] >= max(curve):
                best[:] = [model]
            return len(curve) - 1 - int(np.argmax(curve)) >= ALS_PATIENCE

        fit_als(history, video_ids, size, reg, alpha, ALS_ITERATIONS, seed, after_each)
        if chosen is None or max(curve) > max(chosen[1]):
            chosen = (best[0], curve)
    return chosen
