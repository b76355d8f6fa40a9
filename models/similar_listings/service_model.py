"""The served model: every listing's embedding (learned, or the cold-start one), an ANN index over them, and the
re-ranking rules (same city, the price filter, the type filter), in one versioned folder.

A request fetches the listing's query vector, asks the index for more neighbours than it needs, keeps those that pass
the rules, and when too few pass (a narrow price filter), searches the listing's city exactly, so a filter never
makes an answer shorter than the city allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from models.ann import AnnIndex, HnswParams, IvfParams
from models.similar_listings.data import Catalogue
from models.similar_listings.similarity import Embeddings
from models.similar_listings.skipgram import Trained

INDEX_PARAMS = HnswParams(m=32, ef_construction=100, ef_search=128)
# From this many listings on, inverted lists: at 1M listings HNSW reached recall@20 0.94 only at 8x exact search's
# throughput (and took 167 s to build), IVF-Flat with 16 of 1,024 lists 0.977 at 50x (2.6 s to build; README,
# `./dev.sh bench listings_ann`).
IVF_FROM = 200_000
IVF_PARAMS = IvfParams(nlist=1024, nprobe=16)


def index_params(listings: int) -> HnswParams | IvfParams:
    return IVF_PARAMS if listings >= IVF_FROM else INDEX_PARAMS
OVERFETCH = 20  # neighbours asked of the index per listing returned, before the rules filter them


def indexed_items(items: np.ndarray) -> np.ndarray:
    """Item vectors of unequal length, made searchable by an HNSW graph: each gets one more coordinate,
    sqrt(M^2 - |v|^2) with M the longest, so all have length M and a query's inner product (its extra coordinate
    is 0) is unchanged. A graph built on raw inner products of unequal vectors finds few true neighbours (recall@20
    0.08 measured here); on equal lengths inner product ranks as cosine does, which HNSW searches well."""
    norms = np.linalg.norm(items, axis=1)
    extra = np.sqrt(np.maximum(norms.max() ** 2 - norms ** 2, 0.0))
    return np.hstack([items, extra[:, None]]).astype(np.float32)


def indexed_queries(queries: np.ndarray) -> np.ndarray:
    return np.hstack([queries, np.zeros((len(queries), 1))]).astype(np.float32)


class UnknownListing(KeyError):
    """The listing id is not in the model's catalogue (never listed, or listed after the model was built)."""


@dataclass(frozen=True)
class Similar:
    listing_id: str
    strategy: str  # "learned" (its own embedding) or "cold_start" (its neighbours' mean)
    search: str  # "ann", or "exact_in_city" when the rules left too few of the index's neighbours
    results: list[tuple[str, float, float, str]]  # (listing_id, score, price, type), best first


@dataclass
class SimilarListings:
    catalogue: Catalogue
    embeddings: Embeddings
    index: AnnIndex
    trained: Trained
    as_of: datetime

    @classmethod
    def build(cls, listings: pl.DataFrame, trained: Trained, as_of: datetime, index_bytes: bytes | None = None) -> SimilarListings:
        catalogue = Catalogue.from_listings(listings, as_of)
        embeddings = Embeddings.likelihood(catalogue, trained.ids, trained.vectors, trained.context_vectors)
        if index_bytes is None:
            index = AnnIndex.build(indexed_items(embeddings.items), np.arange(len(catalogue)), index_params(len(catalogue)))
        else:
            index = AnnIndex.from_bytes(index_bytes, np.arange(len(catalogue)), index_params(len(catalogue)))
            if len(index) != len(catalogue):
                raise ValueError(f"the index holds {len(index)} listings, the catalogue {len(catalogue)}")
        return cls(catalogue, embeddings, index, trained, as_of)

    def similar(self, listing_id: str, k: int, min_price: float | None = None, max_price: float | None = None,
                types: set[str] | None = None, exclude: set[str] | None = None) -> Similar:
        position = self.catalogue.position.get(listing_id)
        if position is None:
            raise UnknownListing(listing_id)
        query = indexed_queries(self.embeddings.queries[[position]])
        city = self.catalogue.city[position]
        excluded = {position} | {self.catalogue.position[e] for e in (exclude or ()) if e in self.catalogue.position}

        def passes(candidates: np.ndarray) -> np.ndarray:
            keep = (candidates >= 0) & (self.catalogue.city[np.clip(candidates, 0, None)] == city)
            keep &= ~np.isin(candidates, list(excluded))
            price = self.catalogue.price[np.clip(candidates, 0, None)]
            if min_price is not None:
                keep &= price >= min_price
            if max_price is not None:
                keep &= price <= max_price
            if types:
                keep &= np.isin(self.catalogue.type[np.clip(candidates, 0, None)], list(types))
            return keep

        scores, positions = self.index.search_positions(query, min(len(self.index), OVERFETCH * k + len(excluded)))
        keep = passes(positions[0])
        chosen, chosen_scores, search = positions[0][keep][:k], scores[0][keep][:k], "ann"
        if len(chosen) < k:
            pool = self.catalogue.in_city(city)
            pool = pool[passes(pool)]
            pool_scores = self.embeddings.scores(position, pool)
            order = np.argsort(-pool_scores, kind="stable")[:k]
            chosen, chosen_scores, search = pool[order], pool_scores[order], "exact_in_city"
        results = [(str(self.catalogue.ids[c]), float(s), float(self.catalogue.price[c]), str(self.catalogue.type[c]))
                   for c, s in zip(chosen, chosen_scores)]
        return Similar(listing_id, "learned" if self.embeddings.learned[position] else "cold_start", search, results)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.trained.save(folder / "skipgram.pt")
        (folder / "index.faiss").write_bytes(self.index.to_bytes())
        (folder / "state.json").write_text(json.dumps({"as_of": self.as_of.isoformat()}))
        self.listings_frame().write_parquet(folder / "listings.parquet")

    def listings_frame(self) -> pl.DataFrame:
        c = self.catalogue
        return pl.DataFrame({
            "listing_id": c.ids, "city": c.city, "lat": c.lat, "lon": c.lon, "type": c.type, "price": c.price,
            "beds": c.beds, "created_ts": pl.Series(c.created, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        })

    @classmethod
    def load(cls, folder: Path) -> SimilarListings:
        state = json.loads((folder / "state.json").read_text())
        return cls.build(pl.read_parquet(folder / "listings.parquet"), Trained.load(folder / "skipgram.pt"),
                         datetime.fromisoformat(state["as_of"]), (folder / "index.faiss").read_bytes())
