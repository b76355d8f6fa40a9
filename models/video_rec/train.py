"""Training and evaluation of the video recommender on a time split (see features.Cutoffs).

The two-tower model learns from relevant views before `retrieval_end`; the ranker learns which candidates
became relevant in [retrieval_end, test_start), from features as of `retrieval_end`; evaluation asks every
approach for top-k lists as of `test_start` and compares them with what users found relevant afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

from models.ann import AnnIndex
from models.promotion import Interval, paired_bootstrap
from models.ranking_metrics import ndcg_at_k, ndcg_curve, ranking_report, recall_at_k, recall_curve
from models.video_rec import two_tower as tt
from models.video_rec.baselines import als_with_history, fit_als_on_split, fit_ease_on_split, with_history
from models.video_rec.features import Cutoffs, before, ground_truth, popular_videos, user_profiles, video_stats
from models.video_rec.recommender import (
    RANKER_FEATURES,
    ChainConfig,
    Recommender,
    ServingState,
    build_state,
    candidate_features,
    candidates,
    train_ranker,
)

METRIC_KS = (1, 5, 10)
CURVE_KS = (1, 5, 10, 20, 50, 100)
APPROACHES = ("popularity", "ease", "mf", "two_tower", "two_stage", "oracle")
BASELINES = ("popularity", "ease", "mf")


def fit_retrieval(
    labeled: pl.DataFrame,
    users: pl.DataFrame,
    videos: pl.DataFrame,
    cutoffs: Cutoffs,
    config: tt.TwoTowerConfig,
    progress: Callable[[str], None] = print,
    validation_users: int = 1_000,
) -> tuple[tt.TwoTower, tt.Vocabulary, tt.TrainingReport]:
    """Two-tower on relevant views before retrieval_end, early-stopped on recall@100 of the ranker window."""
    train = before(labeled, cutoffs.retrieval_end)
    stats = video_stats(labeled, videos, cutoffs.retrieval_end)
    active_users = users.join(train.select("user_id").unique(), on="user_id", how="semi")
    vocab = tt.Vocabulary.fit(active_users, stats.join(train.select("video_id").unique(), on="video_id", how="semi"))
    examples = tt.training_examples(vocab, train.filter(pl.col("relevant")).select("user_id", "video_id", "ts"), users, stats)
    progress(f"two-tower: {len(examples.log_frequency):,} relevant views, {len(vocab.users):,} users, "
             f"{len(vocab.videos):,} videos in the vocabulary")

    truth = ground_truth(labeled, videos, cutoffs.retrieval_end, cutoffs.test_start)
    truth = truth.sample(min(validation_users, truth.height), seed=0) if truth.height else truth
    profiles = user_profiles(labeled, users, cutoffs.retrieval_end).join(truth, on="user_id", how="inner")
    relevant = dict(zip(profiles["user_id"], (set(r) for r in profiles["relevant"])))
    seen = [set(s) for s in profiles["seen"].to_list()]
    tags = tt.video_tag_lookup(stats)
    encoded_videos = tt.encode_videos(vocab, stats)
    video_ids = stats["video_id"].to_list()

    def validate(model: tt.TwoTower) -> float:
        index = AnnIndex.build(tt.embed_videos(model, encoded_videos), stats["video_id"].to_numpy(), None)
        _, positions = index.search_positions(tt.embed_users(model, tt.encode_users(vocab, profiles, tags)), 300)
        lists = {
            user: [video_ids[p] for p in row if p >= 0 and video_ids[p] not in seen[i]][:100]
            for i, (user, row) in enumerate(zip(profiles["user_id"], positions))
        }
        return recall_curve(lists, relevant, [100])[0]

    model, report = tt.train_two_tower(vocab, examples, config, validate, progress)
    return model, vocab, report


def ranker_examples(state: ServingState, labeled: pl.DataFrame, videos: pl.DataFrame, start, end,
                    config: ChainConfig, max_users: int = 3_000, seed: int = 0) -> pl.DataFrame:
    """Candidates as of `state.as_of` for users active in [start, end), labelled 1 when the user found the video
    relevant in that window. Only users with at least one relevant candidate teach the ranker anything."""
    truth = ground_truth(labeled, videos, start, end)
    truth = truth.sample(min(max_users, truth.height), seed=seed).sort("user_id") if truth.height else truth
    users = [u for u in truth["user_id"].to_list() if u in state.user_row]
    rows = [state.user_row[u] for u in users]
    profiles = state.profiles[rows]
    frame = candidates(state, users, state.user_embeddings[rows], [set(s) for s in profiles["seen"].to_list()], config,
                       profiles["history"].to_list())
    features = candidate_features(state, frame, profiles)
    positives = truth.explode("relevant").select("user_id", video_id="relevant", label=pl.lit(1, pl.Int32))
    labeled_rows = features.join(positives, on=["user_id", "video_id"], how="left").with_columns(pl.col("label").fill_null(0))
    useful = labeled_rows.group_by("user_id").agg(pl.col("label").max()).filter(pl.col("label") > 0).select("user_id")
    return labeled_rows.join(useful, on="user_id", how="semi").sort("user_id", maintain_order=True)


def split_by_user(frame: pl.DataFrame, valid_share: float = 0.15, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    users = frame["user_id"].unique().sort()
    valid = set(users.sample(fraction=valid_share, seed=seed).to_list())
    flag = frame["user_id"].is_in(list(valid))
    return frame.filter(~flag), frame.filter(flag)


def fit_ranker(examples: pl.DataFrame, seed: int = 0, features: list[str] = RANKER_FEATURES, params: dict | None = None):
    """The ranker on 85% of the examples' users, early-stopped on the rest; `params` override XGBoost's."""
    train, valid = split_by_user(examples, seed=seed)
    return train_ranker(train, valid, seed, features, params)


@dataclass
class Evaluation:
    reports: dict[str, dict[str, float]]  # approach -> metric -> value
    curves: dict[str, list[float]]  # approach -> recall at CURVE_KS
    ndcg_curves: dict[str, list[float]]
    users: int
    catalogue: int
    per_user_ndcg: dict[str, dict[str, float]]  # approach -> user -> nDCG@k (the units a paired bootstrap resamples)
    ease_l2: float = 0.0  # the item-item model's l2 (chosen on the ranker window); 0 without one
    mf_iterations: int = 0  # matrix factorization's ALS iterations and factors (chosen on the ranker window)
    mf_factors: int = 0
    margins: dict[tuple[str, str], Interval] = field(default_factory=dict)  # (baseline, metric) -> chain minus it

    def margin_lines(self) -> list[str]:
        return [f"two-stage minus {baseline}: {interval.describe(metric)}" for (baseline, metric), interval in self.margins.items()]


def evaluate(
    recommender: Recommender,
    labeled: pl.DataFrame,
    users: pl.DataFrame,
    videos: pl.DataFrame,
    cutoffs: Cutoffs,
    oracle: Callable[[list[str], datetime], np.ndarray] | None = None,
    max_users: int = 2_000,
    k: int = 10,
    seed: int = 0,
    baselines: tuple[str, ...] = BASELINES,
) -> Evaluation:
    """Every approach's top lists as of test_start against the test window's relevant videos.

    `recommender` must hold a state as of test_start (see `state_at`). `oracle(user_ids, as_of)` is the
    generator's P(next view is the video and relevant), users x raw videos, when the data is simulated.
    `baselines` (popularity always among them) limits the fitted ones: a champion's re-scoring needs none.
    """
    state = recommender.state
    truth = ground_truth(labeled, videos, cutoffs.test_start, cutoffs.test_end)
    truth = truth.filter(pl.col("user_id").is_in(list(state.user_row)))
    truth = truth.sample(min(max_users, truth.height), seed=seed).sort("user_id") if truth.height else truth
    user_ids = truth["user_id"].to_list()
    relevant = dict(zip(user_ids, (set(r) for r in truth["relevant"].to_list())))
    depth = max(CURVE_KS)
    seen_lists = state.profiles["seen"].to_list()
    seen = {u: set(seen_lists[state.user_row[u]] or []) for u in user_ids}
    lists: dict[str, dict[str, list[str]]] = {}
    popular = popular_videos(state.videos, depth + 500)
    lists["popularity"] = {u: [v for v in popular if v not in seen[u]][:depth] for u in user_ids}
    ease = als = None
    if "ease" in baselines:
        ease = state.ease or fit_ease_on_split(labeled, cutoffs.retrieval_end, cutoffs.test_start)[0]
        lists["ease"] = with_history(ease, labeled, cutoffs.test_start).recommend(user_ids, seen, depth, fallback=popular)
    if "mf" in baselines:
        als, _ = fit_als_on_split(labeled, cutoffs.retrieval_end, cutoffs.test_start)
        lists["mf"] = als_with_history(als, labeled, cutoffs.test_start).recommend(user_ids, seen, depth, fallback=popular)
    lists["two_tower"] = recommender.retrieval_only(user_ids, depth)
    chain = recommender.recommend(user_ids, depth)
    lists["two_stage"] = {u: g["video_id"].to_list() for (u,), g in chain.group_by("user_id", maintain_order=True)}
    if oracle is not None:
        truth_scores = oracle(user_ids, cutoffs.test_start)
        catalogue_rows = _oracle_rows(state, videos)
        ids = state.video_ids
        lists["oracle"] = {}
        for i, u in enumerate(user_ids):
            order = np.argsort(-truth_scores[i, catalogue_rows], kind="stable")
            lists["oracle"][u] = [ids[j] for j in order[: depth + len(seen[u])] if ids[j] not in seen[u]][:depth]
    features = {v: set(t or []) for v, t in zip(state.video_ids, state.videos["tags"].to_list())}
    reports, curves, ndcg_curves = {}, {}, {}
    for name, recs in lists.items():
        reports[name] = ranking_report(recs, relevant, (*METRIC_KS, 100), state.videos.height, features, diversity_k=k)
        curves[name] = recall_curve(recs, relevant, CURVE_KS)
        ndcg_curves[name] = ndcg_curve(recs, relevant, CURVE_KS)
    per_user = {name: {u: ndcg_at_k(recs.get(u, []), relevant[u], k) for u in user_ids if relevant[u]}
                for name, recs in lists.items()}
    margins = {}
    units = [u for u in user_ids if relevant[u]]
    if len(units) >= 2:
        for metric, unit_value in ((f"ndcg_at_{k}", ndcg_at_k), (f"recall_at_{k}", recall_at_k)):
            chain_units = [unit_value(lists["two_stage"].get(u, []), relevant[u], k) for u in units]
            for baseline in (b for b in BASELINES if b in lists):
                margins[(baseline, metric)] = paired_bootstrap(
                    chain_units, [unit_value(lists[baseline].get(u, []), relevant[u], k) for u in units], seed=seed)
    return Evaluation(reports, curves, ndcg_curves, len(user_ids), state.videos.height, per_user,
                      ease.l2 if ease else 0.0, als.iterations if als else 0, als.video_factors.shape[1] if als else 0, margins)


def _oracle_rows(state: ServingState, videos: pl.DataFrame) -> np.ndarray:
    """Row of each catalogue video in the raw videos table (the simulator's order)."""
    order = {v: i for i, v in enumerate(videos["video_id"].to_list())}
    return np.array([order[v] for v in state.video_ids])


def state_at(recommender: Recommender, labeled: pl.DataFrame, users: pl.DataFrame, videos: pl.DataFrame, as_of) -> Recommender:
    """The same models over a state as of another time (evaluation: test_start)."""
    state = build_state(recommender.model, recommender.vocab, labeled, users, videos, as_of, recommender.config,
                        ease=recommender.state.ease)
    return Recommender(recommender.model, recommender.vocab, recommender.ranker, state, recommender.config)
