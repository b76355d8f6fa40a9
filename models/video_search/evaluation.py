"""The book's offline metrics for search with one relevant video per query: MRR@10, recall@10 and nDCG@10 of the
clicked video among every video uploaded before the query, for each approach; fusion weights tuned on validation.

A query's rank is 1 + the number of videos (uploaded before it) scoring above its best clicked video; ties are broken
at random (seeded), so a path that scores nothing (BM25 on a query with no indexed word) ranks at random rather than
first or last.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from models.promotion import Interval, paired_bootstrap
from models.video_search.data import Catalogue, JudgedQueries
from models.video_search.search import PATHS, FusionWeights, TextIndex, freshness, normalized_text

K = 10
CHUNK = 256
METRICS = ("mrr_at_10", "recall_at_10", "ndcg_at_10")


def per_query(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Each query's reciprocal rank, hit and nDCG within the first K (zero beyond)."""
    within = ranks <= K
    return {"mrr_at_10": np.where(within, 1 / ranks, 0.0), "recall_at_10": within.astype(float),
            "ndcg_at_10": np.where(within, 1 / np.log2(ranks + 1), 0.0)}


def report(ranks: np.ndarray) -> dict[str, float]:
    if not len(ranks):
        return {**{m: None for m in METRICS}, "queries": 0.0, "median_rank": None}
    return {**{m: float(v.mean()) for m, v in per_query(ranks).items()}, "queries": float(len(ranks)),
            "median_rank": float(np.median(ranks))}


@dataclass
class Paths:
    """How each path scores every video of a catalogue for a batch of queries."""

    text_index: TextIndex | None
    vectors: Callable[[np.ndarray], np.ndarray] | None  # query text vectors (b, 384) -> scores (b, N)
    popularity: np.ndarray
    upload_seconds: np.ndarray

    def scores(self, texts: list[str], text_vectors: np.ndarray, seconds: np.ndarray) -> dict[str, np.ndarray]:
        n = len(self.upload_seconds)
        zeros = np.zeros((len(texts), n), dtype=np.float32)
        uploaded = self.upload_seconds[None, :] < np.asarray(seconds)[:, None]
        # Relative to the best match among the videos the query could find: later uploads must not scale it.
        return {
            "text": (normalized_text(np.where(uploaded, np.stack([self.text_index.scores(t) for t in texts]), 0.0))
                     if self.text_index else zeros),
            "vector": self.vectors(text_vectors).astype(np.float32) if self.vectors else zeros,
            "popularity": np.broadcast_to(self.popularity, (len(texts), n)),
            "freshness": freshness(self.upload_seconds, seconds),
        }


def tie_breaks(seconds: np.ndarray, upload_seconds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Added to a batch's scores: a tiny random tie-break, and -inf for videos uploaded after the query."""
    breaks = rng.uniform(0, 1e-6, (len(seconds), len(upload_seconds))).astype(np.float32)
    breaks[upload_seconds[None, :] >= seconds[:, None]] = -np.inf
    return breaks


def _ranks(fused: np.ndarray, relevant: list[np.ndarray], breaks: np.ndarray) -> np.ndarray:
    # A NaN compares greater than nothing: it would rank its video first. Broken scores rank last instead.
    fused = np.where(np.isnan(fused), -np.inf, fused) + breaks
    best = np.array([fused[i, r].max() for i, r in enumerate(relevant)])
    return 1 + (fused > best[:, None]).sum(axis=1)


def ranks_for(paths: Paths, weights: list[FusionWeights], judged: JudgedQueries, text_vectors: np.ndarray,
              seed: int = 0) -> list[np.ndarray]:
    """Each weighting's rank of every judged query (the paths are scored once per batch of queries)."""
    out = [[] for _ in weights]
    rng = np.random.default_rng(seed)
    for begin in range(0, len(judged), CHUNK):
        end = min(begin + CHUNK, len(judged))
        scores = paths.scores(judged.texts[begin:end], text_vectors[begin:end], judged.seconds[begin:end])
        breaks = tie_breaks(judged.seconds[begin:end], paths.upload_seconds, rng)
        for i, w in enumerate(weights):
            fused = sum(getattr(w, p) * scores[p] for p in PATHS if getattr(w, p))
            out[i].append(_ranks(np.asarray(fused, dtype=np.float32), judged.relevant[begin:end], breaks))
    return [np.concatenate(r) if r else np.zeros(0, dtype=np.int64) for r in out]


def weight_grid(text: bool = True, vector: bool = True) -> list[FusionWeights]:
    """The weightings validation chooses from: each path alone, and their sums with popularity and freshness."""
    grid = []
    for t, v, p, f in itertools.product((0, 0.25, 0.5, 1, 2) if text else (0,), (0, 1) if vector else (0,),
                                        (0, 0.1, 0.25, 0.5), (0, 0.1, 0.25, 0.5)):
        if t or v:
            grid.append(FusionWeights(t, v, p, f))
    return grid


def tune_weights(paths: Paths, judged: JudgedQueries, text_vectors: np.ndarray,
                 grid: list[FusionWeights]) -> tuple[FusionWeights, float]:
    """The weighting with the best validation MRR@10 (ties: the earlier, simpler one in the grid)."""
    ranks = ranks_for(paths, grid, judged, text_vectors)
    mrr = [float(per_query(r)["mrr_at_10"].mean()) if len(r) else 0.0 for r in ranks]
    best = int(np.argmax(mrr))
    return grid[best], mrr[best]


def oracle_ranks(catalogue: Catalogue, judged: JudgedQueries, video_truth: pl.DataFrame,
                 query_truth: pl.DataFrame) -> np.ndarray:
    """The generator's ranking (models.video_search.simulator.oracle_scores) of every judged query."""
    from models.video_search.simulator import oracle_scores

    truth = pl.DataFrame({"video_id": catalogue.ids.tolist()}).join(video_truth, on="video_id", how="left",
                                                                    maintain_order="left")
    by_query = {row["query_id"]: row for row in query_truth.iter_rows(named=True)}
    from datetime import datetime, timezone

    rng = np.random.default_rng(1)
    ranks = []
    for begin in range(0, len(judged), CHUNK):
        end = min(begin + CHUNK, len(judged))
        scores = np.stack([oracle_scores(truth, by_query[q], datetime.fromtimestamp(s, timezone.utc))
                           for q, s in zip(judged.ids[begin:end], judged.seconds[begin:end])])
        scores = np.where(np.isfinite(scores), scores, -1e9)
        ranks.append(_ranks(scores, judged.relevant[begin:end],
                            tie_breaks(judged.seconds[begin:end], catalogue.upload_seconds, rng)))
    return np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)


def margin(a: np.ndarray, b: np.ndarray) -> Interval | None:
    """Paired bootstrap of the MRR@10 difference a - b per query."""
    if len(a) < 2:
        return None
    return paired_bootstrap(per_query(a)["mrr_at_10"], per_query(b)["mrr_at_10"], resamples=1000)


def poor_metadata(judged: JudgedQueries, catalogue: Catalogue) -> np.ndarray:
    """Queries whose clicked video has no tags: what it is must come from its content or its title."""
    return np.array([not catalogue.tagged[r].any() for r in judged.relevant], dtype=bool)
