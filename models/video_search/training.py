"""The steps from validated tables to a judged search: the catalogue and query vectors, the auto-tagger, the dual
encoder, the index with its fusion weights, and the comparison on the test window. The assets call these; so do the
tests, on a small world."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl

from models.video_search.data import Catalogue, Cutoffs, JudgedQueries, judged_queries, with_click_times
from models.video_search.encoders import (
    AutoTagger,
    DualEncoder,
    EncoderConfig,
    TrainingHistory,
    tagger_report,
    train_dual_encoder,
    train_tagger,
    video_inputs,
)
from models.video_search.evaluation import (
    Paths,
    margin,
    oracle_ranks,
    per_query,
    poor_metadata,
    ranks_for,
    report,
    tune_weights,
    weight_grid,
)
from models.video_search.search import FusionWeights, TextIndex, VideoSearch, popularity

Embed = Callable[[list[str]], np.ndarray]


@dataclass
class SearchData:
    """The catalogue (every video up to the end), the split and every query's text embedding."""

    catalogue: Catalogue
    cutoffs: Cutoffs
    queries: pl.DataFrame
    clicks: pl.DataFrame
    query_rows: dict[str, int]
    query_vectors: np.ndarray

    @classmethod
    def prepare(cls, videos: pl.DataFrame, frames: pl.DataFrame, queries: pl.DataFrame, clicks: pl.DataFrame,
                cutoffs: Cutoffs, embed: Embed) -> SearchData:
        catalogue = Catalogue.build(videos, frames, embed, as_of=cutoffs.end)
        return cls(catalogue, cutoffs, queries, with_click_times(clicks, queries),
                   {q: i for i, q in enumerate(queries["query_id"].to_list())}, embed(queries["text"].to_list()))

    def judged(self, start: datetime | None, end: datetime | None) -> JudgedQueries:
        return judged_queries(self.queries, self.clicks, self.catalogue.positions(), start, end)

    def vectors_of(self, judged: JudgedQueries) -> np.ndarray:
        return self.query_vectors[[self.query_rows[q] for q in judged.ids]].reshape(len(judged), -1)

    def before(self, when: datetime) -> np.ndarray:
        return self.catalogue.upload_seconds < when.timestamp()


def fit_tagger(data: SearchData) -> tuple[AutoTagger, dict[str, float], datetime | None]:
    """The auto-tagger learns from tagged videos uploaded before the validation window and is judged on those after;
    returns it, its precision and recall, and the last upload it learned from."""
    cat, cutoffs = data.catalogue, data.cutoffs
    learn = data.before(cutoffs.validation_start) & cat.tagged
    judge = ~data.before(cutoffs.validation_start) & cat.tagged
    tagger = train_tagger(cat.frames[learn], [cat.tags[i] for i in np.flatnonzero(learn)])
    figures = tagger_report(tagger, cat.frames[judge], [cat.tags[i] for i in np.flatnonzero(judge)])
    last = datetime.fromtimestamp(cat.upload_seconds[learn].max(), timezone.utc) if learn.any() else None
    return tagger, {**figures, "tagger_vocabulary": float(len(tagger.vocabulary)), "tagger_training_videos": float(learn.sum())}, last


def fit_encoder(data: SearchData, config: EncoderConfig, progress: Callable[[str], None] | None = None
                ) -> tuple[DualEncoder, TrainingHistory, datetime | None]:
    """The dual encoder on the clicked queries before the validation window, its epoch chosen by the validation
    window's MRR@10 (the vector path alone); returns it, its history and the last query it learned from."""
    cat, cutoffs = data.catalogue, data.cutoffs
    train = data.judged(None, cutoffs.validation_start)
    validation = data.judged(cutoffs.validation_start, cutoffs.test_start)
    if not len(train) or not len(validation):
        raise ValueError(f"{len(train)} clicked training queries and {len(validation)} validation ones: the dual "
                         "encoder needs both (set smaller windows, or bring more days)")
    inputs = video_inputs(cat.frames, cat.metadata_vectors, cat.tagged)
    validation_vectors = data.vectors_of(validation)
    no_popularity = np.zeros(len(cat), dtype=np.float32)

    def validate(encoder: DualEncoder) -> float:
        videos = encoder.encode_videos(inputs)
        paths = Paths(None, lambda q: encoder.encode_queries(q) @ videos.T, no_popularity, cat.upload_seconds)
        return float(per_query(ranks_for(paths, [FusionWeights(0, 1, 0, 0)], validation, validation_vectors)[0])["mrr_at_10"].mean())

    # A query with several clicks teaches each of them.
    targets = np.concatenate(train.relevant)
    rows = np.repeat(np.arange(len(train)), [len(r) for r in train.relevant])
    encoder, history = train_dual_encoder(data.vectors_of(train)[rows], targets, inputs, validate, config, progress)
    last = datetime.fromtimestamp(train.seconds.max(), timezone.utc)
    return encoder, history, last


@dataclass
class Built:
    search: VideoSearch
    validation_mrr: float
    build_seconds: float
    last_counted_click: datetime | None


def build_search(data: SearchData, tagger: AutoTagger, encoder: DualEncoder) -> Built:
    """The served search over every video: BM25 over metadata and auto-tags, the encoder's video vectors, popularity
    from clicks before the test window, and fusion weights chosen on the validation window (with popularity as of its
    start, so validation never counts its own clicks)."""
    cat, cutoffs = data.catalogue, data.cutoffs
    started = time.perf_counter()
    auto_tags = tagger.predict(cat.frames)
    text_index = TextIndex.build(cat.documents(auto_tags))
    video_vectors = encoder.encode_videos(video_inputs(cat.frames, cat.metadata_vectors, cat.tagged))
    build_seconds = time.perf_counter() - started
    validation = data.judged(cutoffs.validation_start, cutoffs.test_start)
    paths = Paths(text_index, lambda q: encoder.encode_queries(q) @ video_vectors.T,
                  popularity(cat, data.clicks, cutoffs.validation_start).values, cat.upload_seconds)
    weights, validation_mrr = tune_weights(paths, validation, data.vectors_of(validation), weight_grid())
    served = popularity(cat, data.clicks, cutoffs.test_start)
    search = VideoSearch(cat.ids, cat.titles, cat.upload_seconds, text_index, video_vectors, encoder, served.values,
                         weights, cutoffs.end, auto_tagged=int(sum(1 for a, t in zip(auto_tags, cat.tagged) if a and not t)))
    return Built(search, validation_mrr, build_seconds, served.last_click)


APPROACHES = {
    "bm25": "BM25 over title, description, tags (baseline)",
    "minilm": "frozen MiniLM over title and description (baseline)",
    "bm25_popularity": "BM25 + popularity and freshness, tuned (baseline)",
    "hybrid_frozen": "BM25 + frozen MiniLM + popularity and freshness, tuned (baseline)",
    "dual_encoder": "dual encoder alone (visual search)",
    "bm25_auto_tags": "BM25 with auto-tags (text search)",
    "fusion": "fusion: text search + dual encoder + popularity and freshness (served)",
    "oracle": "oracle: generator's relevance",
}
BASELINES = ("bm25", "minilm", "bm25_popularity", "hybrid_frozen")
MODEL = "fusion"


@dataclass
class Comparison:
    reports: dict[str, dict[str, float]]
    ranks: dict[str, np.ndarray]
    weights: dict[str, FusionWeights]
    margins: dict[str, object]
    poor: np.ndarray
    judged: JudgedQueries

    def margin_lines(self) -> list[str]:
        return [interval.describe(f"MRR@10 {name}") for name, interval in self.margins.items() if interval is not None]


def compare(data: SearchData, search: VideoSearch, truth: tuple[pl.DataFrame, pl.DataFrame] | None) -> Comparison:
    """Every approach on the test window's clicked queries; the baselines' weights are tuned on validation as the
    model's were."""
    cat, cutoffs = data.catalogue, data.cutoffs
    test = data.judged(cutoffs.test_start, cutoffs.end)
    validation = data.judged(cutoffs.validation_start, cutoffs.test_start)
    test_vectors, validation_vectors = data.vectors_of(test), data.vectors_of(validation)
    plain = TextIndex.build(cat.documents())
    frozen = lambda q: q @ cat.metadata_vectors.T  # noqa: E731
    dual = lambda q: search.encoder.encode_queries(q) @ search.video_vectors.T  # noqa: E731
    popularity_then = popularity(cat, data.clicks, cutoffs.validation_start).values

    def tuned(index, vectors, **grid) -> FusionWeights:
        return tune_weights(Paths(index, vectors, popularity_then, cat.upload_seconds), validation, validation_vectors,
                            weight_grid(**grid))[0]

    weights = {"bm25": FusionWeights(1, 0), "minilm": FusionWeights(0, 1), "dual_encoder": FusionWeights(0, 1),
               "bm25_auto_tags": FusionWeights(1, 0), "fusion": search.weights,
               "bm25_popularity": tuned(plain, None, vector=False), "hybrid_frozen": tuned(plain, frozen)}
    paths = {"bm25": (plain, None), "minilm": (None, frozen), "bm25_popularity": (plain, None),
             "hybrid_frozen": (plain, frozen), "dual_encoder": (None, dual), "bm25_auto_tags": (search.text_index, None),
             "fusion": (search.text_index, dual)}
    ranks = {name: ranks_for(Paths(index, vectors, search.popularity, cat.upload_seconds), [weights[name]], test,
                             test_vectors)[0]
             for name, (index, vectors) in paths.items()}
    if truth is not None:
        ranks["oracle"] = oracle_ranks(cat, test, *truth)
    poor = poor_metadata(test, cat)
    reports = {}
    for name, r in ranks.items():
        figures = report(r)
        poor_figures = report(r[poor])
        reports[name] = {**figures, "mrr_at_10_poor_metadata": poor_figures["mrr_at_10"],
                         "recall_at_10_poor_metadata": poor_figures["recall_at_10"],
                         "queries_poor_metadata": float(poor.sum())}
    margins = {f"{MODEL} - {b}": margin(ranks[MODEL], ranks[b]) for b in (*BASELINES, "dual_encoder")}
    if poor.sum() >= 2:
        margins["dual_encoder - bm25 (poor metadata)"] = margin(ranks["dual_encoder"][poor], ranks["bm25"][poor])
    return Comparison(reports, ranks, weights, margins, poor, test)


NOT_HELD = 10**9  # the rank of a query whose clicked video an index does not hold: a miss


def served_ranks(search: VideoSearch, data: SearchData) -> tuple[np.ndarray, JudgedQueries]:
    """A registered search's rank of every clicked test query, scored as the evaluation scores the challenger; a
    query whose clicked video its index does not hold (an older version's index ends earlier) is a miss, as it would
    be for a searcher."""
    test = data.judged(data.cutoffs.test_start, data.cutoffs.end)
    held = {v: i for i, v in enumerate(search.ids.tolist())}
    answerable = judged_queries(data.queries, data.clicks, held, data.cutoffs.test_start, data.cutoffs.end)
    paths = Paths(search.text_index, lambda q: search.encoder.encode_queries(q) @ search.video_vectors.T,
                  search.popularity, search.upload_seconds)
    ranks = dict(zip(answerable.ids, ranks_for(paths, [search.weights], answerable, data.vectors_of(answerable))[0]))
    return np.asarray([ranks.get(q, NOT_HELD) for q in test.ids], dtype=np.int64), test
