"""The served search: a BM25 text index over titles, descriptions, tags and auto-tags; the dual encoder's video
vectors searched by the query's; and their fusion with popularity and freshness. The evaluation scores every video
with the same paths and weights; the service fuses only the union of each path's best candidates (a test holds the
two to the same top 10).

Fused score = text * BM25 / (the query's best BM25) + vector * cosine + popularity * log1p(clicks) / log1p(most
clicks) + freshness * exp(-age in days / 7), weights tuned on the validation window's queries.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from models.video_search.data import Catalogue
from models.video_search.encoders import DualEncoder
from models.video_search.text import tokens

FRESHNESS_DAYS = 7.0
PATHS = ("text", "vector", "popularity", "freshness")


@dataclass(frozen=True)
class FusionWeights:
    text: float = 1.0
    vector: float = 1.0
    popularity: float = 0.0
    freshness: float = 0.0


class TextIndex:
    """BM25 (bm25s, Lucene's formula) over the stems of each document."""

    def __init__(self, retriever, size: int):
        self.retriever, self.size = retriever, size

    @classmethod
    def build(cls, documents: list[str]) -> TextIndex:
        import bm25s

        retriever = bm25s.BM25()
        # An empty document still needs a row: bm25s keeps positions only for what it indexes.
        retriever.index([tokens(d) or [""] for d in documents], show_progress=False)
        return cls(retriever, len(documents))

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every document for the query's stems (zeros when no stem is indexed)."""
        known = [t for t in tokens(query) if t in self.retriever.vocab_dict]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(known), dtype=np.float32)

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> TextIndex:
        import bm25s

        return cls(bm25s.BM25.load(str(folder)), size)


def normalized_text(scores: np.ndarray) -> np.ndarray:
    best = scores.max(axis=-1, keepdims=True) if scores.size else np.ones(1)
    return np.where(best > 0, scores / np.maximum(best, 1e-9), 0.0).astype(np.float32)


def freshness(upload_seconds: np.ndarray, now_seconds: np.ndarray | float) -> np.ndarray:
    age_days = (np.asarray(now_seconds, dtype=np.float64)[..., None] - upload_seconds) / 86_400
    return np.exp(-np.clip(age_days, 0, None) / FRESHNESS_DAYS).astype(np.float32)


@dataclass
class Popularity:
    values: np.ndarray  # log1p(clicks) per video, scaled to [0, 1]
    last_click: datetime | None  # the newest click counted (the leakage check reads it)


def popularity(catalogue: Catalogue, clicks: pl.DataFrame, before: datetime) -> Popularity:
    """Each video's clicks before `before`."""
    counted = clicks.filter(pl.col("ts") < before)
    by_id = dict(counted.group_by("video_id").len().iter_rows())
    raw = np.log1p(np.asarray([by_id.get(v, 0) for v in catalogue.ids.tolist()], dtype=np.float64))
    values = (raw / max(raw.max(), 1e-9)).astype(np.float32) if len(raw) else raw.astype(np.float32)
    return Popularity(values, counted["ts"].max() if counted.height else None)


@dataclass
class Hit:
    video_id: str
    title: str
    score: float
    text_score: float
    vector_score: float
    paths: tuple[str, ...]


class VideoSearch:
    """Everything a search needs, versioned together: the catalogue it indexed, the text index, the video vectors,
    the query tower, popularity as of training and the fusion weights."""

    def __init__(self, ids: np.ndarray, titles: list[str], upload_seconds: np.ndarray, text_index: TextIndex,
                 video_vectors: np.ndarray, encoder: DualEncoder, popularity: np.ndarray, weights: FusionWeights,
                 as_of: datetime, auto_tagged: int = 0):
        self.ids, self.titles, self.upload_seconds = ids, titles, upload_seconds
        self.text_index, self.video_vectors, self.encoder = text_index, video_vectors, encoder
        self.popularity, self.weights, self.as_of, self.auto_tagged = popularity, weights, as_of, auto_tagged
        self._ann = None

    def __len__(self) -> int:
        return len(self.ids)

    def path_scores(self, text: str, text_vector: np.ndarray, now_seconds: float) -> dict[str, np.ndarray]:
        """Each path's score of every video for one query (`text_vector`: its MiniLM embedding)."""
        return {
            "text": normalized_text(self.text_index.scores(text)),
            "vector": self.video_vectors @ self.encoder.encode_queries(text_vector[None, :])[0],
            "popularity": self.popularity,
            "freshness": freshness(self.upload_seconds, now_seconds),
        }

    def fuse(self, scores: dict[str, np.ndarray], weights: FusionWeights | None = None) -> np.ndarray:
        weights = weights or self.weights
        return sum(getattr(weights, path) * scores[path] for path in PATHS)

    def ann(self):
        """The vector path's index over the catalogue (exact under 20k videos, HNSW above), built on first use."""
        if self._ann is None:
            from models.ann import AnnIndex, HnswParams

            params = None if len(self) < 20_000 else HnswParams()
            self._ann = AnnIndex.build(self.video_vectors, np.arange(len(self)), params)
        return self._ann

    def search(self, text: str, text_vector: np.ndarray, k: int, now: datetime | None = None,
               candidates: int = 200) -> list[Hit]:
        """The k best videos uploaded before `now` by fused score, among the union of each path's `candidates` best
        (popularity and freshness re-rank them; they propose none)."""
        now_seconds = (now or datetime.now(timezone.utc)).timestamp()
        uploaded = self.upload_seconds < now_seconds
        text_scores = normalized_text(np.where(uploaded, self.text_index.scores(text), 0.0))
        query = self.encoder.encode_queries(text_vector[None, :])
        _, by_vector = self.ann().search_positions(query, min(candidates, len(self)))
        by_vector = by_vector[0][by_vector[0] >= 0]
        by_vector = by_vector[uploaded[by_vector]]
        matched = np.flatnonzero(text_scores > 0)
        if len(matched) > candidates:  # a common word matches much of a large catalogue: no full sort
            matched = matched[np.argpartition(-text_scores[matched], candidates - 1)[:candidates]]
        by_text = matched
        pool = np.union1d(by_vector, by_text)
        vector_scores = self.video_vectors[pool] @ query[0]
        fused = (self.weights.text * text_scores[pool] + self.weights.vector * vector_scores
                 + self.weights.popularity * self.popularity[pool]
                 + self.weights.freshness * freshness(self.upload_seconds[pool], now_seconds))
        order = np.lexsort((pool, -fused))[:k]
        in_text, in_vector = set(by_text.tolist()), set(by_vector.tolist())
        return [Hit(str(self.ids[pool[i]]), self.titles[pool[i]], float(fused[i]), float(text_scores[pool[i]]),
                    float(vector_scores[i]),
                    tuple(p for p, s in (("text", in_text), ("vector", in_vector)) if int(pool[i]) in s))
                for i in order]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        pl.DataFrame({"video_id": self.ids.tolist(), "title": self.titles, "upload_seconds": self.upload_seconds,
                      "popularity": self.popularity}).write_parquet(folder / "catalogue.parquet")
        np.save(folder / "video_vectors.npy", self.video_vectors)
        (folder / "encoder.npz").write_bytes(self.encoder.to_bytes())
        self.text_index.save(folder / "bm25")
        ann = self.ann()  # saved built: a million-video HNSW takes minutes to build, seconds to read
        (folder / "ann.faiss").write_bytes(ann.to_bytes())
        (folder / "search.json").write_text(json.dumps({
            "weights": asdict(self.weights), "as_of": self.as_of.isoformat(), "auto_tagged": self.auto_tagged,
            "ann": None if ann.params is None else asdict(ann.params)}))

    @classmethod
    def load(cls, folder: Path) -> VideoSearch:
        from models.ann import AnnIndex, HnswParams

        catalogue = pl.read_parquet(folder / "catalogue.parquet")
        meta = json.loads((folder / "search.json").read_text())
        search = cls(np.asarray(catalogue["video_id"].to_list(), dtype=object), catalogue["title"].to_list(),
                     catalogue["upload_seconds"].to_numpy(), TextIndex.load(folder / "bm25", catalogue.height),
                     np.load(folder / "video_vectors.npy"), DualEncoder.from_bytes((folder / "encoder.npz").read_bytes()),
                     catalogue["popularity"].to_numpy().astype(np.float32), FusionWeights(**meta["weights"]),
                     datetime.fromisoformat(meta["as_of"]), meta.get("auto_tagged", 0))
        if (folder / "ann.faiss").exists():
            params = HnswParams(**meta["ann"]) if meta.get("ann") else None
            search._ann = AnnIndex.from_bytes((folder / "ann.faiss").read_bytes(), np.arange(len(search)), params)
        return search

    def round_trip(self) -> VideoSearch:
        with tempfile.TemporaryDirectory() as tmp:
            self.save(Path(tmp))
            return VideoSearch.load(Path(tmp))
