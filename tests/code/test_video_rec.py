"""Unit tests of the video recommender's pieces: simulator, features without leakage, metrics, re-ranking, ANN."""

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from models.ann import AnnIndex, HnswParams, recall_at_k
from models.ranking_metrics import (
    average_precision_at_k,
    intra_list_diversity,
    ndcg_at_k,
    ndcg_curve,
    precision_at_k,
    ranking_report,
    recall_at_k as rec_at_k,
)
from models.video_rec.features import Cutoffs, ground_truth, label_interactions, user_profiles, video_stats
from models.video_rec.rerank import Candidate, RerankRules, duplicate_threshold, rerank, title_key
from models.video_rec.simulator import VideoSimulationConfig, simulate

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def world():
    return simulate(VideoSimulationConfig(n_days=10, n_users=400, n_videos=400, new_videos_per_day=10))


def test_simulator_is_seeded_and_follows_the_contract(world):
    again = simulate(world.config)
    assert again.interactions.equals(world.interactions)
    assert world.interactions.schema["ts"] == pl.Datetime("us", "UTC")
    assert world.interactions["watch_fraction"].drop_nulls().is_between(0, 1).all()
    # no view before the video exists, and no user-video pair twice
    joined = world.interactions.join(world.videos.select("video_id", "upload_ts"), on="video_id")
    assert (joined["ts"] > joined["upload_ts"]).all()
    assert world.interactions.select("user_id", "video_id").is_unique().all()
    share = label_interactions(world.interactions)["relevant"].mean()
    assert 0.3 < share < 0.75


def test_generator_truth_is_a_distribution_over_videos(world):
    p = world.choice_probability(np.arange(5), 5.0)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert (p[:, world.video_upload > 5.0] == 0).all()  # videos not uploaded yet cannot be picked


def test_relevance_label_follows_the_book():
    frame = pl.DataFrame({
        "watch_fraction": [0.9, 0.2, 0.6, None, None, 0.5],
        "liked": [None, True, False, True, None, None],
    })
    assert label_interactions(frame)["relevant"].to_list() == [True, True, False, True, False, True]


def test_features_ignore_everything_after_as_of(world):
    labeled = label_interactions(world.interactions)
    as_of = T0 + timedelta(days=6)
    later = labeled.filter(pl.col("ts") >= as_of).with_columns(watch_fraction=pl.lit(1.0), liked=pl.lit(True), relevant=pl.lit(True))
    changed = pl.concat([labeled.filter(pl.col("ts") < as_of), later])
    assert video_stats(labeled, world.videos, as_of).equals(video_stats(changed, world.videos, as_of))
    assert user_profiles(labeled, world.users, as_of).equals(user_profiles(changed, world.users, as_of))
    stats = video_stats(labeled, world.videos, as_of)
    assert (stats["age_days"].drop_nulls() > 0).all()  # only videos uploaded before as_of


def test_ground_truth_excludes_seen_and_future_videos(world):
    labeled = label_interactions(world.interactions)
    start, end = T0 + timedelta(days=7), T0 + timedelta(days=10)
    truth = ground_truth(labeled, world.videos, start, end).explode("relevant")
    seen = labeled.filter(pl.col("ts") < start).select("user_id", video_id="video_id")
    assert truth.rename({"relevant": "video_id"}).join(seen, on=["user_id", "video_id"], how="semi").height == 0
    uploads = truth.join(world.videos.select(relevant="video_id", upload_ts="upload_ts"), on="relevant")
    assert (uploads["upload_ts"] < start).all()


def test_cutoffs_split_the_days_and_refuse_too_few(world):
    cutoffs = Cutoffs.from_interactions(world.interactions, "2d", "2d")
    assert cutoffs.start == T0 and cutoffs.test_end == T0 + timedelta(days=10)
    assert cutoffs.retrieval_end == T0 + timedelta(days=6) and cutoffs.test_start == T0 + timedelta(days=8)
    with pytest.raises(ValueError, match="too few"):
        Cutoffs.from_interactions(world.interactions, "4d", "4d")


def test_ranking_metrics_on_hand_computed_lists():
    recommended, relevant = ["a", "b", "c", "d"], {"b", "d", "z"}
    assert precision_at_k(recommended, relevant, 4) == 0.5
    assert rec_at_k(recommended, relevant, 4) == pytest.approx(2 / 3)
    assert average_precision_at_k(recommended, relevant, 4) == pytest.approx((1 / 2 + 2 / 4) / 3)
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(recommended, relevant, 4) == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / ideal)
    assert ndcg_at_k(["b", "d", "z"], relevant, 3) == pytest.approx(1.0)
    assert intra_list_diversity(["x", "y"], {"x": {"t1"}, "y": {"t1"}}) == 0.0
    assert intra_list_diversity(["x", "y"], {"x": {"t1"}, "y": {"t2"}}) == 1.0


def test_ndcg_curve_is_the_reports_ndcg_at_each_k():
    recommendations = {"u1": ["a", "b", "c", "d"], "u2": ["d", "x"], "u3": []}
    relevant = {"u1": {"b", "d"}, "u2": {"x", "y", "z"}, "u3": {"a"}, "u4": set()}
    expected = [ranking_report(recommendations, relevant, (k,), 10)[f"ndcg_at_{k}"] for k in (1, 2, 4)]
    assert ndcg_curve(recommendations, relevant, (1, 2, 4)) == pytest.approx(expected)
    assert expected[1] > 0


def _candidate(i, channel="c1", topic="t1", vector=None, title=None):
    vector = np.eye(8)[i % 8] if vector is None else vector
    return Candidate(f"v{i}", 1.0 - i / 100, channel, topic, vector.astype(np.float32), title)


def test_rerank_drops_seen_and_duplicates():
    pool = [_candidate(0, "a"), _candidate(1, "b"), _candidate(2, "c", title="same"), _candidate(3, "d", title="same"),
            _candidate(4, "e", vector=np.eye(8)[0])]
    picked = rerank(pool, seen={"v1"}, k=5, rules=RerankRules(max_per_topic=10))
    assert [c.video_id for c in picked] == ["v0", "v2"]  # v1 seen; v3 same title as v2; v4 same embedding as v0


def test_duplicate_threshold_stands_in_a_spread_space_and_rises_in_a_crowded_one():
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(500, 32))
    spread /= np.linalg.norm(spread, axis=1, keepdims=True)
    assert duplicate_threshold(spread, 0.97) == 0.97
    crowded = spread * 0.05 + np.ones(32)  # every video near one direction: most pairs above 0.97
    crowded /= np.linalg.norm(crowded, axis=1, keepdims=True)
    assert np.median(crowded @ crowded.T) > 0.97
    raised = duplicate_threshold(crowded, 0.97)
    assert 0.97 < raised < 1.0
    similarity = crowded @ crowded.T
    assert (similarity[np.triu_indices(500, 1)] >= raised).mean() == pytest.approx(0.01, abs=0.002)


def test_rerank_limits_channels_and_topics_then_backfills():
    pool = [_candidate(i, channel="a" if i < 3 else f"c{i}", topic="t" if i < 6 else f"t{i}") for i in range(8)]
    picked = [c.video_id for c in rerank(pool, set(), k=6, rules=RerankRules(max_per_channel=2, max_per_topic=4))]
    assert picked[:5] == ["v0", "v1", "v3", "v4", "v6"]  # v2: third of channel a; v5: fifth of topic t
    assert picked[5] == "v7"
    full = [c.video_id for c in rerank(pool, set(), k=8, rules=RerankRules(max_per_channel=2, max_per_topic=4))]
    assert sorted(full) == sorted(f"v{i}" for i in range(8))  # held-back videos fill the list when nothing else is left
    assert title_key("  Cats   Dogs ") == "cats dogs"


def test_hnsw_finds_the_exact_neighbours_of_clustered_vectors():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    vectors = centres[rng.integers(0, 50, 5_000)] + 0.3 * rng.normal(size=(5_000, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.array([f"v{i}" for i in range(5_000)])
    exact = AnnIndex.build(vectors, ids, None)
    hnsw = AnnIndex.build(vectors, ids, HnswParams(ef_search=200))
    queries = vectors[:200]
    recall = recall_at_k(hnsw.search_positions(queries, 50)[1], exact.search_positions(queries, 50)[1])
    assert recall > 0.95
    restored = AnnIndex.from_bytes(hnsw.to_bytes(), ids, hnsw.params)
    assert (restored.search(queries, 10)[1] == hnsw.search(queries, 10)[1]).all()
    assert exact.search(queries[:1], 1)[1][0, 0] == "v0"


def test_ivf_finds_the_exact_neighbours_of_clustered_vectors():
    from models.ann import IvfParams

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, 32))
    vectors = centres[rng.integers(0, 50, 5_000)] + 0.3 * rng.normal(size=(5_000, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.array([f"v{i}" for i in range(5_000)])
    exact = AnnIndex.build(vectors, ids, None)
    ivf = AnnIndex.build(vectors, ids, IvfParams(nlist=64, nprobe=16))
    queries = vectors[:200]
    assert recall_at_k(ivf.search_positions(queries, 50)[1], exact.search_positions(queries, 50)[1]) > 0.95
    restored = AnnIndex.from_bytes(ivf.to_bytes(), ids, ivf.params)
    assert (restored.search(queries, 10)[1] == ivf.search(queries, 10)[1]).all()


DRIFT_WORLD = dict(n_days=8, n_users=500, n_videos=400, new_videos_per_day=10)


@pytest.mark.parametrize("kind", ["taste", "catalogue"])
def test_days_before_a_video_drift_are_identical_to_the_world_without_it(kind):
    stable = simulate(VideoSimulationConfig(**DRIFT_WORLD))
    drifted = simulate(VideoSimulationConfig(**DRIFT_WORLD, drift_kind=kind, drift_day=5))
    before_drift = pl.col("ts") < T0 + timedelta(days=5)
    assert drifted.interactions.filter(before_drift).equals(stable.interactions.filter(before_drift))
    assert drifted.users.equals(stable.users)
    uploaded_before = pl.col("upload_ts") < T0 + timedelta(days=5)
    assert drifted.videos.filter(uploaded_before).equals(stable.videos.filter(uploaded_before))
    assert not drifted.interactions.equals(stable.interactions)


def test_a_taste_shift_moves_topics_and_a_catalogue_shift_brings_a_language():
    stable = simulate(VideoSimulationConfig(**DRIFT_WORLD))
    taste = simulate(VideoSimulationConfig(**DRIFT_WORLD, drift_kind="taste", drift_day=5))
    catalogue = simulate(VideoSimulationConfig(**DRIFT_WORLD, drift_kind="catalogue", drift_day=5))
    after = pl.col("ts") >= T0 + timedelta(days=5)

    def topic_shares(world):
        views = world.interactions.filter(after).join(world.videos.select("video_id", topic=pl.col("tags").list.first()),
                                                        on="video_id")
        return views.group_by("topic").len().with_columns(share=pl.col("len") / pl.col("len").sum())

    shares = topic_shares(stable).join(topic_shares(taste), on="topic", how="full", suffix="_taste").fill_null(0)
    assert (shares["share"] - shares["share_taste"]).abs().sum() > 0.2
    assert "hi" not in stable.videos["language"].to_list()
    new = catalogue.videos.filter(pl.col("upload_ts") >= T0 + timedelta(days=5))
    assert (new["language"] == "hi").sum() > 20
    watched = catalogue.interactions.filter(after).join(catalogue.videos.select("video_id", "language"), on="video_id")
    assert (watched["language"] == "hi").sum() > 0


def test_video_drift_settings_are_validated():
    with pytest.raises(ValueError, match="drift_kind"):
        VideoSimulationConfig(drift_kind="sideways")
    with pytest.raises(ValueError, match="drift_day"):
        VideoSimulationConfig(n_days=5, drift_kind="taste", drift_day=9)


def test_a_long_held_out_window_is_referenced_by_a_week_of_its_days_spread_from_first_to_last():
    from models.video_rec.monitoring import reference_days

    assert reference_days(T0, T0 + timedelta(days=4)) == [T0 + timedelta(days=i) for i in range(4)]
    spread = reference_days(T0, T0 + timedelta(days=61))
    assert len(spread) == 7 and spread[0] == T0 and spread[-1] == T0 + timedelta(days=60)
    assert len(set(spread)) == 7


def _views(pairs, day=0, relevant=True):
    return pl.DataFrame({"user_id": [u for u, _ in pairs], "video_id": [v for _, v in pairs],
                         "ts": [T0 + timedelta(days=day, minutes=i) for i in range(len(pairs))],
                         "relevant": [relevant] * len(pairs)})


def test_ease_recommends_what_co_occurs_and_never_what_was_seen():
    from models.video_rec.baselines import fit_ease, relevant_rows

    # a and b go together for many users; c and d for others: a user who found a should get b next.
    pairs = [(f"u{i}", v) for i in range(20) for v in ("a", "b")] + [(f"w{i}", v) for i in range(20) for v in ("c", "d")]
    labeled = pl.concat([_views(pairs), _views([("new", "a")], day=1)])
    video_ids = ["a", "b", "c", "d"]
    model = fit_ease(relevant_rows(labeled, video_ids, T0 + timedelta(days=2)), video_ids, l2=1.0)
    weights = model.weights.toarray()
    assert np.allclose(np.diag(weights), 0.0)  # a video does not explain itself
    assert weights[0, 1] > 0.3 and abs(weights[0, 2]) < 1e-6
    lists = model.recommend(["new", "stranger"], {"new": {"a"}}, k=2, fallback=["d", "c", "b", "a"])
    assert lists["new"][0] == "b" and "a" not in lists["new"]
    assert lists["stranger"] == ["d", "c"]  # no history: the fallback's order


def test_ease_fits_before_the_validation_window_and_picks_its_l2_there():
    from models.video_rec.baselines import fit_ease_on_split

    pairs = [(f"u{i}", v) for i in range(30) for v in ("a", "b")] + [(f"w{i}", v) for i in range(30) for v in ("c", "d")]
    later = [(f"u{i}", "x") for i in range(5)]  # a video first found relevant in the validation window
    labeled = pl.concat([_views(pairs), _views([(f"u{i}", "a") for i in range(30, 40)], day=1),
                         _views([(f"u{i}", "b") for i in range(30, 40)] + later, day=3)])
    model, by_l2 = fit_ease_on_split(labeled, T0 + timedelta(days=2), T0 + timedelta(days=4), grid=(1.0, 1000.0))
    assert "x" not in model.video_ids  # weights come only from views before the validation window
    assert {1.0, 1000.0} <= set(by_l2) and model.l2 in by_l2 and by_l2[model.l2] == max(by_l2.values())
    assert by_l2[model.l2] > 0.5  # the validation users who found a get b


def test_the_l2_grid_extends_past_an_edge_that_wins(monkeypatch):
    from models.video_rec import baselines

    pairs = [(f"u{i}", v) for i in range(30) for v in ("a", "b")] + [(f"w{i}", v) for i in range(30) for v in ("c", "d")]
    labeled = pl.concat([_views(pairs), _views([(f"u{i}", "c") for i in range(10)], day=3)])
    # A validation score that peaks at l2 = 900: the search must walk past the grid's top (300) to find it.
    tried, recommend = [], baselines.Ease.recommend

    def recording(self, *args, **kwargs):
        tried.append(self.l2)
        return recommend(self, *args, **kwargs)

    monkeypatch.setattr(baselines.Ease, "recommend", recording)
    monkeypatch.setattr("models.ranking_metrics.ndcg_at_k", lambda *_: -abs(tried[-1] - 900.0))
    model, by_l2 = baselines.fit_ease_on_split(labeled, T0 + timedelta(days=2), T0 + timedelta(days=4))
    assert tried == [30.0, 100.0, 300.0, 900.0, 2700.0] and model.l2 == 900.0 and list(by_l2) == tried


def test_ease_keeps_each_videos_strongest_weights_and_survives_a_round_trip(tmp_path):
    from models.video_rec.baselines import Ease, fit_ease

    rng = np.random.default_rng(0)
    video_ids = [f"v{i}" for i in range(30)]
    history = {f"u{i}": np.unique(rng.integers(0, 30, 6)) for i in range(200)}
    full, pruned = fit_ease(history, video_ids, 10.0, neighbours=30), fit_ease(history, video_ids, 10.0, neighbours=5)
    assert (np.diff(pruned.weights.indptr) == 5).all()
    dense = full.weights.toarray()
    for row in range(30):  # the kept weights are the row's largest
        assert np.allclose(np.sort(pruned.weights[row].data), np.sort(dense[row])[-5:], atol=1e-6)
    pruned.save(tmp_path / "ease.npz")
    loaded = Ease.load(tmp_path / "ease.npz", history)
    assert loaded.video_ids == video_ids and loaded.l2 == 10.0
    assert np.allclose(loaded.scores(["u1", "nobody"]), pruned.scores(["u1", "nobody"]))
    assert not loaded.scores(["nobody"]).any()


@pytest.fixture(scope="module")
def ratings_world():
    from models.video_rec.ratings import RatingsSimulationConfig, simulate_ratings

    return simulate_ratings(RatingsSimulationConfig(n_users=300, n_movies=400, n_days=90, seed=3))


def test_the_ratings_world_follows_the_contract_and_is_shaped_like_ratings_data(ratings_world):
    from expectations.video_rec import INTERACTIONS_SCHEMA, USERS_SCHEMA, VIDEOS_SCHEMA

    world = ratings_world
    for frame, schema in ((world.interactions, INTERACTIONS_SCHEMA), (world.users, USERS_SCHEMA)):
        assert {c: frame.schema[c] for c in schema} == schema
    assert {c: world.videos.schema[c] for c in VIDEOS_SCHEMA if c != "channel_id"} == {
        c: t for c, t in VIDEOS_SCHEMA.items() if c != "channel_id"}
    views = world.interactions
    assert views.select("user_id", "video_id").n_unique() == views.height  # a movie is rated once
    assert (views["watch_fraction"] == 1.0).all()
    # Bursty: most ratings share their second with another of the same user's.
    assert views.select("user_id", "ts").n_unique() < 0.5 * views.height
    # Activity tails off: the last fifth of the days holds well under a fifth of the ratings.
    last_fifth = views["ts"].min() + timedelta(days=0.8 * world.config.n_days)
    assert views.filter(pl.col("ts") >= last_fifth).height < 0.12 * views.height
    # A long tail: the most rated movies have several times the median's ratings, the least rated a fraction.
    counts = views["video_id"].value_counts()["count"]
    assert counts.quantile(0.9) > 2.5 * counts.median() > 6 * counts.quantile(0.1)
    # Dirt: some views dated before their movie's release, and one impossible age.
    early = views.join(world.videos.select("video_id", "upload_ts"), on="video_id").filter(pl.col("ts") < pl.col("upload_ts"))
    assert 0 < early.height < 0.01 * views.height
    assert (world.users["age"] > 120).sum() == 1
    assert set(views["liked"].unique().to_list()) == {True, False, None}


def test_the_ratings_worlds_truth_ranks_what_users_rate_next(ratings_world):
    from models.ranking_metrics import ndcg_at_k

    world = ratings_world
    start = world.interactions["ts"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    day = 60
    cut = start + timedelta(days=day)
    later = world.interactions.filter(pl.col("ts") >= cut)
    before = world.interactions.filter(pl.col("ts") < cut)
    users = sorted(set(later["user_id"]) & set(before["user_id"]))
    truth = world.expected_relevant(users, day)
    assert truth.shape == (len(users), world.videos.height) and (truth >= 0).all() and (truth.sum(axis=1) <= 1 + 1e-9).all()
    unreleased = world.release_day > day
    assert not truth[:, unreleased].any()
    ids = np.array(world.videos["video_id"].to_list())
    seen = {u: set(g) for u, g in before.group_by("user_id").agg("video_id").iter_rows()}
    relevant = {u: set(g) for u, g in later.filter(pl.col("liked") != False).group_by("user_id").agg("video_id").iter_rows()}  # noqa: E712
    oracle, shuffled = [], []
    rng = np.random.default_rng(0)
    for i, u in enumerate(users):
        order = [v for v in ids[np.argsort(-truth[i])] if v not in seen[u]][:10]
        oracle.append(ndcg_at_k(order, relevant.get(u, set()), 10))
        shuffled.append(ndcg_at_k(list(rng.permutation([v for v in ids if v not in seen[u]]))[:10], relevant.get(u, set()), 10))
    assert np.mean(oracle) > 3 * np.mean(shuffled)


def test_the_ratings_world_is_a_setting_with_its_own_size():
    from assets.case import InvalidSetting
    from assets.video_rec.settings import VideoRecSettings

    ratings = VideoRecSettings(world="ratings")
    assert (ratings.simulated_days, ratings.simulated_users, ratings.simulated_videos) == (210, 1_000, 1_700)
    assert VideoRecSettings().simulated_days == 28 and VideoRecSettings(world="ratings", days=60).simulated_days == 60
    for bad, field_name in ((dict(world="movies"), "world"), (dict(world="ratings", drift="taste@5"), "drift"),
                            (dict(world="ratings", days=7), "days")):
        with pytest.raises(InvalidSetting) as error:
            VideoRecSettings(**bad)
        assert error.value.field_name == field_name


def test_als_learns_who_watches_what_and_folds_in_new_histories():
    from models.video_rec.baselines import als_with_history, fit_als

    # Two groups of users, each watching its own five videos: factors must separate them.
    rows = {f"a{i}": np.array([j for j in range(5) if j != i % 5]) for i in range(40)}
    rows |= {f"b{i}": np.array([5 + j for j in range(5) if j != i % 5]) for i in range(40)}
    video_ids = [f"v{j}" for j in range(10)]
    model = fit_als(rows, video_ids, factors=4, reg=1.0, alpha=5.0, iterations=6)
    scores = model.scores(["a0", "b0", "nobody"])
    assert scores[0, :5].mean() > scores[0, 5:].mean() + 0.3 and scores[1, 5:].mean() > scores[1, :5].mean() + 0.3
    assert not scores[2].any()  # no history: zero factors, the fallback decides
    lists = model.recommend(["a0", "nobody"], {"a0": {f"v{j}" for j in range(1, 5)}}, k=2, fallback=["v9", "v8"])
    assert lists["a0"][0] == "v0" and lists["nobody"] == ["v9", "v8"]
    # Fold-in: a new user's factors come from their views as of a time, the video factors stay.
    labeled = _views([("new", "v6"), ("new", "v7")])
    folded = als_with_history(model, labeled, T0 + timedelta(days=1))
    assert (folded.video_factors == model.video_factors).all()
    assert folded.recommend(["new"], {"new": {"v6", "v7"}}, k=1)["new"][0] in {"v5", "v8", "v9"}

