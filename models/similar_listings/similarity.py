"""How alike two listings are, by each approach the evaluation compares: popularity within the price band,
co-occurrence counts, listing embeddings (with the cold-start embedding of listings that have none), and the
generator's truth. Each scores candidate listings for a query listing, all as catalogue positions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse

from models.similar_listings.data import Catalogue, sentences

COLD_START_NEIGHBOURS = 10


class Scorer:
    def scores(self, query: int, candidates: np.ndarray) -> np.ndarray:  # pragma: no cover - each scorer has its own
        raise NotImplementedError


def click_counts(sessions: pl.DataFrame, catalogue: Catalogue) -> np.ndarray:
    counts = np.zeros(len(catalogue))
    clicked = catalogue.positions(sessions.filter(pl.col("event") == "click")["listing_id"].to_list())
    np.add.at(counts, clicked[clicked >= 0], 1)
    return counts


@dataclass
class Popularity(Scorer):
    """The baseline a rules engine would ship: listings in the query's price band first, each part by clicks."""

    catalogue: Catalogue
    clicks: np.ndarray

    def scores(self, query: int, candidates: np.ndarray) -> np.ndarray:
        band = self.catalogue.same_price_band(query, candidates)
        return band * 1e9 + self.clicks[candidates]


@dataclass
class Cooccurrence(Scorer):
    """Listings clicked in the same sessions as the query (counted once per session), ties by popularity: the
    strong simple baseline; it knows nothing of a listing no session has clicked together with another."""

    counts: sparse.csr_matrix
    clicks: np.ndarray

    @classmethod
    def fit(cls, sessions: pl.DataFrame, catalogue: Catalogue) -> Cooccurrence:
        rows, cols = [], []
        for clicks in sentences(sessions)["clicks"].to_list():
            positions = np.unique(catalogue.positions(clicks))
            positions = positions[positions >= 0]
            if len(positions) > 1:
                a, b = np.meshgrid(positions, positions)
                keep = a != b
                rows.append(a[keep])
                cols.append(b[keep])
        n = len(catalogue)
        data = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
        counts = sparse.csr_matrix((np.ones(len(data)), (data, np.concatenate(cols) if cols else data)), shape=(n, n))
        return cls(counts, click_counts(sessions, catalogue))

    def scores(self, query: int, candidates: np.ndarray) -> np.ndarray:
        together = np.asarray(self.counts[query, candidates].todense()).ravel()
        return together + self.clicks[candidates] / (self.clicks.max() + 1)


@dataclass
class Embeddings(Scorer):
    """Listings scored by the inner product of the query's vector and theirs. `cosine`: one unit vector per listing
    on both sides (the book's similarity). `likelihood`: the skip-gram's centre vector for the query and context
    vectors for the rest, whose product estimates how likely the two are clicked in one session (README says why
    the served model uses it). `learned` marks the listings whose vectors came from sessions; the rest have the
    cold-start vectors."""

    queries: np.ndarray  # (catalogue, dim)
    items: np.ndarray
    learned: np.ndarray  # bool

    def scores(self, query: int, candidates: np.ndarray) -> np.ndarray:
        return self.items[candidates] @ self.queries[query]

    @classmethod
    def cosine(cls, catalogue: Catalogue, vocabulary: list[str], centre: np.ndarray) -> Embeddings:
        vectors, learned = _every_listing(catalogue, vocabulary, _unit(centre))
        vectors = _unit(vectors)
        return cls(vectors, vectors, learned)

    @classmethod
    def likelihood(cls, catalogue: Catalogue, vocabulary: list[str], centre: np.ndarray, context: np.ndarray) -> Embeddings:
        queries, learned = _every_listing(catalogue, vocabulary, centre)
        items, _ = _every_listing(catalogue, vocabulary, context)
        return cls(queries, items, learned)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1)).astype(np.float32)


def _every_listing(catalogue: Catalogue, vocabulary: list[str], trained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every catalogue listing's vector: its own when sessions taught one, otherwise the mean of the learned vectors
    of the nearest listings of the same city, type and price band (the book's cold start), falling back to the same
    city and type, then the same city."""
    vectors = np.zeros((len(catalogue), trained.shape[1]), dtype=np.float32)
    learned = np.zeros(len(catalogue), dtype=bool)
    positions = catalogue.positions(vocabulary)
    known = positions >= 0
    vectors[positions[known]] = trained[known]
    learned[positions[known]] = True
    for i in np.flatnonzero(~learned):
        vectors[i] = cold_start_vector(catalogue, i, vectors, learned)
    return vectors, learned


def cold_start_vector(catalogue: Catalogue, position: int, vectors: np.ndarray, learned: np.ndarray) -> np.ndarray:
    city = catalogue.in_city(catalogue.city[position])
    city = city[learned[city]]
    if len(city) == 0:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    same_type = city[catalogue.type[city] == catalogue.type[position]]
    banded = same_type[catalogue.same_price_band(position, same_type)]
    for pool in (banded, same_type, city):
        if len(pool):
            nearest = vectors[pool[np.argsort(catalogue.km(position, pool))[:COLD_START_NEIGHBOURS]]]
            # The mean direction at the neighbours' typical length (a mean of vectors pointing different ways is
            # shorter than any of them). Measured, it is no better than the plain mean (README "Similar listings").
            mean = nearest.mean(axis=0)
            return mean * (np.linalg.norm(nearest, axis=1).mean() / max(np.linalg.norm(mean), 1e-9))
    return np.zeros(vectors.shape[1], dtype=np.float32)  # pragma: no cover - city is not empty


@dataclass
class Oracle(Scorer):
    """The generator's similarity of two listings (models.similar_listings.simulator.oracle_similarity)."""

    truth: dict[str, np.ndarray]  # the generator's listing attributes, in catalogue order
    similarity: object

    @classmethod
    def from_truth(cls, catalogue: Catalogue, truth: pl.DataFrame) -> Oracle:
        from models.similar_listings.simulator import oracle_arrays, oracle_similarity

        ordered = pl.DataFrame({"listing_id": catalogue.ids}).join(truth, on="listing_id", how="left", maintain_order="left")
        return cls(oracle_arrays(ordered), oracle_similarity)

    def scores(self, query: int, candidates: np.ndarray) -> np.ndarray:
        return self.similarity(self.truth, query, candidates)
