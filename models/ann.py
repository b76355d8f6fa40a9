"""Approximate nearest-neighbour search over embeddings (faiss), with the exact search it is measured against.

faiss because one library gives the exact inner-product index (the reference) and the approximate ones (HNSW,
IVF) with the same API, serializes an index to bytes (so it is versioned as an MLflow artifact next to the
model that made the vectors), batches queries across cores, and has IVF/PQ indexes for catalogues that
outgrow memory. hnswlib and usearch also install here but offer only the approximate half.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np


@dataclass(frozen=True)
class HnswParams:
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 128


@dataclass(frozen=True)
class IvfParams:
    """Inverted lists: k-means cells, of which the `nprobe` nearest are searched. At a million two-tower vectors these
    defaults reach the recall and speed-up aims where HNSW does not (README "Benchmarks", `./dev.sh bench ann`)."""

    nlist: int = 1024
    nprobe: int = 32
    train_size: int = 100_000


class AnnIndex:
    """Inner-product search (cosine for normalized vectors) returning the caller's ids."""

    def __init__(self, index: faiss.Index, ids: np.ndarray, params: HnswParams | IvfParams | None):
        self.index, self.ids, self.params = index, np.asarray(ids), params
        if isinstance(params, IvfParams):
            faiss.extract_index_ivf(index).nprobe = params.nprobe

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, params: HnswParams | IvfParams | None = HnswParams()) -> AnnIndex:
        """HNSW or IVF with `params`, or exact search when params is None."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if params is None:
            index = faiss.IndexFlatIP(vectors.shape[1])
        elif isinstance(params, IvfParams):
            quantizer = faiss.IndexFlatIP(vectors.shape[1])
            index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], params.nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(len(vectors), min(params.train_size, len(vectors)), replace=False)]
            index.train(sample)
            index.add(vectors)
            return cls(index, ids, params)
        else:
            index = faiss.IndexHNSWFlat(vectors.shape[1], params.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.ef_construction
            index.hnsw.efSearch = params.ef_search
        index.add(vectors)
        return cls(index, ids, params)

    @property
    def exact(self) -> bool:
        return self.params is None

    def __len__(self) -> int:
        return self.index.ntotal

    def set_ef_search(self, ef_search: int) -> None:
        if isinstance(self.params, HnswParams):
            self.index.hnsw.efSearch = ef_search

    def set_nprobe(self, nprobe: int) -> None:
        if isinstance(self.params, IvfParams):
            faiss.extract_index_ivf(self.index).nprobe = nprobe

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row positions); -1 where fewer than k vectors exist."""
        k = min(k, len(self))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, positions = self.search_positions(queries, k)
        return scores, self.ids[np.clip(positions, 0, None)]

    def to_bytes(self) -> bytes:
        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, ids: np.ndarray, params: HnswParams | IvfParams | None) -> AnnIndex:
        return cls(faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8)), ids, params)


def recall_at_k(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k positions the approximate search also returned (row by row, then averaged)."""
    k = exact.shape[1]
    hits = [len(np.intersect1d(a[a >= 0], e[e >= 0])) for a, e in zip(approximate, exact)]
    return float(np.sum(hits) / (k * len(exact)))
