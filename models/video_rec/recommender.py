"""The whole serving chain: candidates (two-tower + ANN, item-item EASE, popular, trending), ranker features,
XGBoost ranking, re-ranking. One code path serves the batch asset, the evaluation and the BentoML service.

A `ServingState` is everything the chain reads as of one time: the catalogue with its statistics and
embeddings, the ANN index over them, and each user's profile and embedding. The registered model version
carries the state it was built with, so the bento and the batch recommendations answer identically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
from scipy import sparse

from models.ann import AnnIndex, HnswParams
from models.video_rec import two_tower as tt
from models.video_rec.baselines import Ease, history_matrix
from models.video_rec.features import popular_videos, user_profiles, video_stats
from models.video_rec.rerank import Candidate, RerankRules, duplicate_threshold, rerank, title_key

RANKER_FEATURES = [
    "tt_score", "tt_rank", "from_ann", "from_popular", "from_trending",
    "log_views_7d", "log_views_1d", "trending", "relevance_rate", "log_age_days", "log_duration",
    "language_share", "tag_overlap", "channel_share",
    "user_log_views", "user_mean_watch", "user_like_rate", "user_relevant_rate", "user_history_length",
    "ease_score", "ease_rank", "from_ease",
]
NOT_RETRIEVED = 1_000.0  # tt_rank (ease_rank) of a candidate the ANN search (the item-item model) did not return


@dataclass(frozen=True)
class ChainConfig:
    ann_candidates: int = 200
    popular_candidates: int = 50
    trending_candidates: int = 50
    ease_candidates: int = 100
    hnsw: HnswParams = field(default_factory=HnswParams)
    rules: RerankRules = field(default_factory=RerankRules)

    @classmethod
    def from_state(cls, state: dict) -> ChainConfig:
        return cls(
            ann_candidates=state["ann_candidates"],
            popular_candidates=state["popular_candidates"],
            trending_candidates=state["trending_candidates"],
            ease_candidates=state.get("ease_candidates", 0),  # versions from before the item-item source
            hnsw=HnswParams(**state["hnsw"]),
            rules=RerankRules(**state["rules"]),
        )


@dataclass
class ServingState:
    as_of: datetime
    videos: pl.DataFrame  # video_stats, row i = index position i
    video_embeddings: np.ndarray
    index: AnnIndex
    profiles: pl.DataFrame  # user_profiles, row j = user_embeddings[j]
    user_embeddings: np.ndarray
    popular: list[str]
    trending: list[str]
    ease: Ease | None = None  # the item-item model, over its own videos

    def __post_init__(self):
        self.video_ids = self.videos["video_id"].to_list()
        self.video_row = {v: i for i, v in enumerate(self.video_ids)}
        self.popular_rows = np.array([self.video_row[v] for v in self.popular], dtype=np.int64)
        self.trending_rows = np.array([self.video_row[v] for v in self.trending], dtype=np.int64)
        self.user_row = {u: i for i, u in enumerate(self.profiles["user_id"].to_list())}
        self.item_item = None if self.ease is None else _on_rows(self.ease, self.video_row)
        self.history_length = self.profiles["history"].list.len().to_list()
        # The catalogue's side of the ranker features, row = index position: computed once per state and gathered
        # by position per request, so a request costs its candidates, not the catalogue's size.
        self.video_features = self.videos.select(
            "tags", "language", "channel_id",
            log_views_7d=pl.col("views_7d").log1p(),
            log_views_1d=pl.col("views_1d").log1p(),
            trending=pl.col("trending"),
            relevance_rate=pl.col("relevance_rate"),
            log_age_days=pl.col("age_days").clip(0.0).log1p(),
            log_duration=pl.col("log_duration"),
        )

    def gather_videos(self, positions: pl.Series, columns: list[str] | None = None) -> pl.DataFrame:
        frame = self.video_features if columns is None else self.video_features.select(columns)
        return frame.select(pl.all().gather(positions))


def build_state(
    model: tt.TwoTower,
    vocab: tt.Vocabulary,
    labeled: pl.DataFrame,
    users: pl.DataFrame,
    videos: pl.DataFrame,
    as_of: datetime,
    config: ChainConfig,
    index_bytes: bytes | None = None,
    ease: Ease | None = None,
) -> ServingState:
    """Everything the chain reads as of `as_of`. `index_bytes` reuses a serialized ANN index built over the same
    catalogue (video_stats order) instead of building one."""
    stats = video_stats(labeled, videos, as_of)
    profiles = user_profiles(labeled, users, as_of)
    video_embeddings = tt.embed_videos(model, tt.encode_videos(vocab, stats))
    user_embeddings = tt.embed_users(model, tt.encode_users(vocab, profiles, tt.video_tag_lookup(stats)))
    if index_bytes is None:
        index = AnnIndex.build(video_embeddings, stats["video_id"].to_numpy(), config.hnsw)
    else:
        index = AnnIndex.from_bytes(index_bytes, stats["video_id"].to_numpy(), config.hnsw)
        if len(index) != stats.height:
            raise ValueError(f"the ANN index holds {len(index)} videos, the catalogue as of {as_of} {stats.height}")
    return ServingState(
        as_of=as_of,
        videos=stats,
        video_embeddings=video_embeddings,
        index=index,
        profiles=profiles,
        user_embeddings=user_embeddings,
        popular=popular_videos(stats, config.popular_candidates + 200),
        trending=popular_videos(stats, config.trending_candidates + 200, by="trending"),
        ease=ease,
    )


def _on_rows(ease: Ease, video_row: dict[str, int]):
    """The item-item weights re-indexed by catalogue row; videos the catalogue lacks drop out."""
    mapping = np.array([video_row.get(v, -1) for v in ease.video_ids], dtype=np.int64)
    weights = ease.weights.tocoo()
    rows, cols = mapping[weights.row], mapping[weights.col]
    keep = (rows >= 0) & (cols >= 0)
    n = len(video_row)
    matrix = sparse.csr_matrix((weights.data[keep], (rows[keep], cols[keep])), shape=(n, n))
    matrix.sort_indices()
    return matrix


def _lookup(keys: np.ndarray, values: np.ndarray, sorted_keys: np.ndarray, default: float) -> np.ndarray:
    """values[i] where sorted_keys[i] == key, else default, for every key."""
    found = np.searchsorted(sorted_keys, keys)
    found = np.minimum(found, max(len(sorted_keys) - 1, 0))
    hit = (sorted_keys[found] == keys) if len(sorted_keys) else np.zeros(len(keys), bool)
    return np.where(hit, values[found] if len(values) else default, default)


def candidates(state: ServingState, user_ids: list[str], embeddings: np.ndarray, seen: list[set[str]], config: ChainConfig,
               histories: list[list[str]] | None = None) -> pl.DataFrame:
    """Union of the sources per user (seen videos dropped), with the two-tower and item-item scores of every
    candidate: the ANN's first `ann_candidates`, then the popular, the trending and the item-item model's best for
    the user's `histories` (recent relevant videos); a video from several sources keeps its first row and carries
    every source's flag."""
    _, found = state.index.search_positions(embeddings, config.ann_candidates + 50)
    pools = ((2, state.popular_rows, config.popular_candidates), (4, state.trending_rows, config.trending_candidates))
    ease_scores = _ease_scores(state, histories or [[] for _ in user_ids])
    columns: dict[str, list[np.ndarray]] = {"user": [], "position": [], "tt_rank": [], "source": [], "ease_score": [], "ease_rank": []}
    for u in range(len(user_ids)):
        seen_rows = np.fromiter((state.video_row[v] for v in seen[u] if v in state.video_row), dtype=np.int64)
        ranks = np.flatnonzero((found[u] >= 0) & ~np.isin(found[u], seen_rows))[: config.ann_candidates]
        positions, tt_rank, source = [found[u][ranks].astype(np.int64)], [ranks.astype(np.float64)], [np.ones(len(ranks), np.int64)]
        scored = ease_scores.indices[ease_scores.indptr[u]:ease_scores.indptr[u + 1]]
        score = ease_scores.data[ease_scores.indptr[u]:ease_scores.indptr[u + 1]]
        unseen = (score > 0) & ~np.isin(scored, seen_rows)
        best = scored[unseen][np.argsort(-score[unseen], kind="stable")][: config.ease_candidates]
        for flag, pool, limit in (*pools, (8, best, config.ease_candidates)):
            kept = pool[~np.isin(pool, seen_rows)][:limit]
            positions.append(kept)
            tt_rank.append(np.full(len(kept), NOT_RETRIEVED))
            source.append(np.full(len(kept), flag, np.int64))
        positions, tt_rank, source = np.concatenate(positions), np.concatenate(tt_rank), np.concatenate(source)
        unique, first, inverse = np.unique(positions, return_index=True, return_inverse=True)
        flags = np.zeros(len(unique), np.int64)
        np.bitwise_or.at(flags, inverse, source)
        rows = np.sort(first)
        columns["user"].append(np.full(len(rows), u, np.int64))
        columns["position"].append(positions[rows])
        columns["tt_rank"].append(tt_rank[rows])
        columns["source"].append(flags[inverse[rows]])
        columns["ease_score"].append(_lookup(positions[rows], score.astype(np.float64), scored, 0.0))
        by_position = np.argsort(best, kind="stable")
        columns["ease_rank"].append(_lookup(positions[rows], by_position.astype(np.float64), best[by_position], NOT_RETRIEVED))
    joined = {name: np.concatenate(parts) if parts else np.zeros(0, np.int64) for name, parts in columns.items()}
    users, positions = joined["user"], joined["position"]
    video_ids = state.video_ids
    frame = pl.DataFrame({
        "user_id": pl.Series(user_ids, dtype=pl.String)[users],
        "position": positions,
        "tt_rank": joined["tt_rank"].astype(np.float64),
        "source": joined["source"],
        "ease_score": joined["ease_score"].astype(np.float64),
        "ease_rank": joined["ease_rank"].astype(np.float64),
    }, schema={"user_id": pl.String, "position": pl.Int64, "tt_rank": pl.Float64, "source": pl.Int64,
               "ease_score": pl.Float64, "ease_rank": pl.Float64})
    tt_score = np.einsum("ij,ij->i", embeddings[users], state.video_embeddings[positions])
    return frame.with_columns(
        video_id=pl.Series(video_ids, dtype=pl.String)[frame["position"]],
        tt_score=pl.Series(tt_score, dtype=pl.Float64),
        from_ann=(pl.col("source") & 1 > 0).cast(pl.Float64),
        from_popular=(pl.col("source") & 2 > 0).cast(pl.Float64),
        from_trending=(pl.col("source") & 4 > 0).cast(pl.Float64),
        from_ease=(pl.col("source") & 8 > 0).cast(pl.Float64),
    )


def _ease_scores(state: ServingState, histories: list[list[str]]):
    """users x catalogue item-item scores (sparse: a user reaches only their videos' neighbours)."""
    n = len(state.video_ids)
    if state.item_item is None:
        return sparse.csr_matrix((len(histories), n), dtype=np.float32)
    rows = [np.unique(np.fromiter((state.video_row[v] for v in h or [] if v in state.video_row), dtype=np.int64)) for h in histories]
    scores = (history_matrix(rows, n) @ state.item_item).tocsr()
    scores.sort_indices()
    return scores


class _Pool(Sequence):
    """A user's ranked candidates, each built when the re-ranker reads it (it stops once the list is full)."""

    def __init__(self, make, positions: np.ndarray, scores: np.ndarray):
        self.make, self.positions, self.scores = make, positions, scores
        self.built: dict[int, Candidate] = {}

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> Candidate:
        candidate = self.built.get(i)
        if candidate is None:
            if not -len(self.positions) <= i < len(self.positions):
                raise IndexError(i)
            candidate = self.built[i] = self.make(int(self.positions[i]), float(self.scores[i]))
        return candidate

    def __iter__(self):
        return (self[i] for i in range(len(self.positions)))


def candidate_features(state: ServingState, frame: pl.DataFrame, profiles: pl.DataFrame) -> pl.DataFrame:
    """Ranker features of (user, candidate) rows; `profiles` holds the users' rows of user_profiles."""
    watched = profiles.select("user_id", video_id=pl.col("history")).explode("video_id").drop_nulls("video_id")
    watched = watched.with_columns(
        position=pl.Series([state.video_row.get(v) for v in watched["video_id"].to_list()], dtype=pl.Int64)
    ).drop_nulls("position")
    history = pl.concat(
        [watched.select("user_id"), state.gather_videos(watched["position"], ["tags", "language", "channel_id"])],
        how="horizontal",
    )
    sizes = history.group_by("user_id").agg(n=pl.len().cast(pl.Float64))
    tag_weights = (
        history.explode("tags").group_by("user_id", "tags").agg(c=pl.len()).join(sizes, on="user_id")
        .select("user_id", tag="tags", weight=pl.col("c") / pl.col("n"))
    )
    language_share = history.group_by("user_id", "language").agg(c=pl.len()).join(sizes, on="user_id").select(
        "user_id", "language", language_share=pl.col("c") / pl.col("n")
    )
    channel_share = history.group_by("user_id", "channel_id").agg(c=pl.len()).join(sizes, on="user_id").select(
        "user_id", "channel_id", channel_share=pl.col("c") / pl.col("n")
    )
    rows = pl.concat([frame.with_row_index("row"), state.gather_videos(frame["position"])], how="horizontal")
    overlap = (
        rows.select("row", "user_id", tag=pl.col("tags")).explode("tag")
        .join(tag_weights, on=["user_id", "tag"], how="inner")
        .group_by("row").agg(tag_overlap=pl.col("weight").sum())
    )
    user_columns = profiles.select(
        "user_id",
        user_log_views=pl.col("n_views").log1p(),
        user_mean_watch=pl.col("mean_watch"),
        user_like_rate=pl.col("like_rate"),
        user_relevant_rate=pl.col("relevant_rate"),
        user_history_length=pl.col("history").list.len().cast(pl.Float64),
    )
    return (
        rows.join(overlap, on="row", how="left")
        .join(language_share, on=["user_id", "language"], how="left")
        .join(channel_share, on=["user_id", "channel_id"], how="left")
        .join(user_columns, on="user_id", how="left")
        .with_columns(pl.col("tag_overlap", "language_share", "channel_share").fill_null(0.0))
        .sort("row")
        .drop("row")
    )


def ranker_matrix(features: pl.DataFrame, names: list[str] = RANKER_FEATURES) -> np.ndarray:
    return features.select(pl.col(names).cast(pl.Float64)).to_numpy()


def train_ranker(train: pl.DataFrame, valid: pl.DataFrame, seed: int = 0, features: list[str] = RANKER_FEATURES,
                 params: dict | None = None):
    """LambdaMART (XGBoost rank:ndcg), one query per user; rows must be grouped by user."""
    import xgboost as xgb

    def matrix(frame: pl.DataFrame) -> xgb.DMatrix:
        qid = frame["user_id"].rank("dense").cast(pl.Int64).to_numpy()
        return xgb.DMatrix(ranker_matrix(frame, features), label=frame["label"].to_numpy(), qid=qid, feature_names=features)

    # Shallow trees with at least 20 rows a leaf: depth 6 with 5 overfitted the few hundred users of a ranker window
    # (bench/video_diagnosis.py; README "Where the chain gains and loses").
    params = {
        "objective": "rank:ndcg", "eval_metric": "ndcg@10", "eta": 0.08, "max_depth": 3, "min_child_weight": 20,
        "subsample": 0.8, "colsample_bytree": 0.9, "lambdarank_pair_method": "topk", "lambdarank_num_pair_per_sample": 10,
        "nthread": 2, "seed": seed, **(params or {}),
    }
    history: dict = {}
    booster = xgb.train(
        params, matrix(train), num_boost_round=400, evals=[(matrix(valid), "valid")],
        early_stopping_rounds=30, evals_result=history, verbose_eval=False,
    )
    return booster, history["valid"]["ndcg@10"]


@dataclass(frozen=True)
class UserContext:
    """What a request may say about a user the state does not know (cold start)."""

    age: int | None = None
    gender: str | None = None
    country: str | None = None


class Recommender:
    """Two-tower + ANN candidates, XGBoost ranking and re-ranking over one ServingState."""

    def __init__(self, model: tt.TwoTower, vocab: tt.Vocabulary, ranker, state: ServingState, config: ChainConfig):
        self.model, self.vocab, self.ranker, self.state, self.config = model, vocab, ranker, state, config
        self._tags = tt.video_tag_lookup(state.videos)
        self._titles = [title_key(t) for t in state.videos["title"].to_list()]
        self._channels = state.videos["channel_id"].to_list()
        self._topics = [tags[0] if tags else None for tags in state.videos["tags"].to_list()]
        self._rules = replace(config.rules, duplicate_similarity=duplicate_threshold(
            state.video_embeddings, config.rules.duplicate_similarity))

    def _users(self, user_ids: list[str], contexts: list[UserContext | None] | None) -> tuple[pl.DataFrame, np.ndarray, list[str]]:
        """Profiles and embeddings of the requested users; unknown users are embedded from their context alone."""
        contexts = contexts or [None] * len(user_ids)
        known = [u in self.state.user_row for u in user_ids]
        rows = [self.state.user_row[u] for u, k in zip(user_ids, known) if k]
        profiles = self.state.profiles[rows] if rows else self.state.profiles.clear()
        embeddings = self.state.user_embeddings[rows] if rows else np.zeros((0, self.state.user_embeddings.shape[1]), np.float32)
        strategy = [
            ("history" if self.state.history_length[self.state.user_row[u]] else "demographics") if k else ""
            for u, k in zip(user_ids, known)
        ]
        unknown = [(i, u) for i, (u, k) in enumerate(zip(user_ids, known)) if not k]
        if unknown:
            cold = pl.DataFrame(
                {
                    "user_id": [u for _, u in unknown],
                    "age": [(contexts[i] or UserContext()).age for i, _ in unknown],
                    "gender": [(contexts[i] or UserContext()).gender for i, _ in unknown],
                    "country": [(contexts[i] or UserContext()).country for i, _ in unknown],
                },
                schema={"user_id": pl.String, "age": pl.Int64, "gender": pl.String, "country": pl.String},
            )
            cold_profiles = pl.concat([profiles.clear(), cold], how="diagonal_relaxed").with_columns(
                pl.col("history", "seen").fill_null(pl.lit([], pl.List(pl.String))), pl.col("n_views").fill_null(0.0)
            )
            cold_embeddings = tt.embed_users(self.model, tt.encode_users(self.vocab, cold_profiles, self._tags))
            profiles = pl.concat([profiles, cold_profiles], how="vertical_relaxed")
            embeddings = np.concatenate([embeddings, cold_embeddings])
            for i, _ in unknown:
                context = contexts[i]
                has_context = context is not None and any(v is not None for v in asdict(context).values())
                strategy[i] = "demographics" if has_context else "popular"
            order = [u for u, k in zip(user_ids, known) if k] + [u for _, u in unknown]
            position = {u: i for i, u in enumerate(order)}
            take = [position[u] for u in user_ids]
            profiles, embeddings = profiles[take], embeddings[take]
        return profiles, embeddings, strategy

    def recommend(self, user_ids: list[str], k: int = 10, contexts: list[UserContext | None] | None = None,
                  exclude: list[set[str]] | None = None) -> pl.DataFrame:
        """Top-k per user: user_id, rank, video_id, score, strategy (history, demographics or popular)."""
        if not user_ids:
            return _empty_recommendations()
        profiles, embeddings, strategy = self._users(user_ids, contexts)
        seen = [set(s or []) | (exclude[i] if exclude else set()) for i, s in enumerate(profiles["seen"].to_list())]
        out: dict[str, list] = {"user_id": [], "rank": [], "video_id": [], "score": [], "strategy": []}
        personal = [i for i, s in enumerate(strategy) if s != "popular"]
        if personal:
            ids = [user_ids[i] for i in personal]
            frame = candidates(self.state, ids, embeddings[personal], [seen[i] for i in personal], self.config,
                               profiles[personal]["history"].to_list())
            features = candidate_features(self.state, frame, profiles[personal])
            scores = self.score(features)
            ranked = features.select("user_id", "position").with_columns(score=pl.Series(scores, dtype=pl.Float64))
            ranked = ranked.with_row_index("row").sort(["user_id", "score", "row"], descending=[False, True, False])
            where = {u: i for i, u in enumerate(user_ids)}
            counts = ranked.group_by("user_id", maintain_order=True).len()
            ends = np.cumsum(counts["len"].to_numpy())
            positions, ranked_scores = ranked["position"].to_numpy(), ranked["score"].to_numpy()
            for user, start, end in zip(counts["user_id"].to_list(), ends - counts["len"].to_numpy(), ends):
                i = where[user]
                pool = _Pool(self._candidate, positions[start:end], ranked_scores[start:end])
                picked = rerank(pool, seen[i], k, self._rules, embeddings=self.state.video_embeddings[pool.positions])
                self._append(out, user, picked, strategy[i])
        for i, s in enumerate(strategy):
            if s == "popular":
                pool = [self._candidate(self.state.video_row[v], -float(r)) for r, v in enumerate(self.state.trending)]
                self._append(out, user_ids[i], rerank(pool, seen[i], k, self._rules), s)
        result = pl.DataFrame(out, schema=_SCHEMA)
        order = {u: i for i, u in enumerate(user_ids)}
        return result.with_columns(o=pl.col("user_id").replace_strict(order, return_dtype=pl.Int64)).sort("o", "rank").drop("o")

    def score(self, features: pl.DataFrame) -> np.ndarray:
        import xgboost as xgb

        # The ranker's own feature list: a version trained before a feature existed keeps answering.
        names = self.ranker.feature_names or RANKER_FEATURES
        matrix = xgb.DMatrix(ranker_matrix(features, names), feature_names=names)
        return self.ranker.predict(matrix, iteration_range=(0, self.ranker.best_iteration + 1))

    def _candidate(self, position: int, score: float) -> Candidate:
        return Candidate(
            video_id=self.state.video_ids[position],
            score=score,
            channel=self._channels[position],
            topic=self._topics[position],
            embedding=self.state.video_embeddings[position],
            title_key=self._titles[position],
        )

    @staticmethod
    def _append(out: dict, user: str, picked: list[Candidate], strategy: str) -> None:
        for rank, c in enumerate(picked, 1):
            out["user_id"].append(user)
            out["rank"].append(rank)
            out["video_id"].append(c.video_id)
            out["score"].append(c.score)
            out["strategy"].append(strategy)

    def retrieval_only(self, user_ids: list[str], k: int) -> dict[str, list[str]]:
        """The two-tower + ANN stage alone: nearest unseen videos (the evaluation's middle row)."""
        profiles, embeddings, _ = self._users(user_ids, None)
        _, positions = self.state.index.search_positions(embeddings, k + 200)
        video_ids = self.state.video_ids
        result = {}
        for u, (user, seen) in enumerate(zip(user_ids, profiles["seen"].to_list())):
            seen = set(seen or [])
            result[user] = [video_ids[p] for p in positions[u] if p >= 0 and video_ids[p] not in seen][:k]
        return result

    # Persistence: one folder, the artifacts of a registered model version.
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tt.save(self.model, self.vocab, folder / "two_tower.pt")
        self.ranker.save_model(folder / "ranker.ubj")
        (folder / "index.faiss").write_bytes(self.state.index.to_bytes())
        np.save(folder / "video_embeddings.npy", self.state.video_embeddings)
        np.save(folder / "user_embeddings.npy", self.state.user_embeddings)
        self.state.videos.write_parquet(folder / "videos.parquet")
        self.state.profiles.write_parquet(folder / "profiles.parquet")
        if self.state.ease is not None:
            self.state.ease.save(folder / "ease.npz")
        config = asdict(self.config)
        (folder / "chain.json").write_text(json.dumps({
            **config, "as_of": self.state.as_of.isoformat(), "popular": self.state.popular, "trending": self.state.trending,
            "best_iteration": self.ranker.best_iteration,
        }))

    @classmethod
    def load(cls, folder: Path) -> Recommender:
        import xgboost as xgb

        folder = Path(folder)
        saved = json.loads((folder / "chain.json").read_text())
        config = ChainConfig.from_state(saved)
        model, vocab, _ = tt.load(folder / "two_tower.pt")
        ranker = xgb.Booster()
        ranker.load_model(folder / "ranker.ubj")
        ranker.set_param({"nthread": 1})
        ranker.best_iteration = saved["best_iteration"]
        videos = pl.read_parquet(folder / "videos.parquet")
        index = AnnIndex.from_bytes((folder / "index.faiss").read_bytes(), videos["video_id"].to_numpy(), config.hnsw)
        state = ServingState(
            as_of=datetime.fromisoformat(saved["as_of"]),
            videos=videos,
            video_embeddings=np.load(folder / "video_embeddings.npy"),
            index=index,
            profiles=pl.read_parquet(folder / "profiles.parquet"),
            user_embeddings=np.load(folder / "user_embeddings.npy"),
            popular=saved["popular"],
            trending=saved["trending"],
            ease=Ease.load(folder / "ease.npz") if (folder / "ease.npz").exists() else None,
        )
        return cls(model, vocab, ranker, state, config)


_SCHEMA = {"user_id": pl.String, "rank": pl.Int64, "video_id": pl.String, "score": pl.Float64, "strategy": pl.String}


def _empty_recommendations() -> pl.DataFrame:
    return pl.DataFrame(schema=_SCHEMA)
