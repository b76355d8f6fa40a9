"""The news feed's ML code without Dagster: the simulator, labels and sessions, point-in-time features and their
audit, the per-head XGBoost models and the multi-task network, the metrics, the online snapshot and the served
retrieve-rank-re-rank."""

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from models.news_feed.data import DWELL, HEADS, cutoffs, labelled_impressions, with_sessions
from models.news_feed.evaluation import DEFAULT_WEIGHTS, feed_gains, feed_ndcg, pr_auc_margin, weighted_score
from models.news_feed.features import (
    FEATURES,
    compose,
    feature_matrix,
    leaky_end_of_data,
    point_in_time_audit,
    point_in_time_features,
)
from models.news_feed.online import serving_aggregates, snapshot_records
from models.news_feed.ranker import (
    EngagementModel,
    MultiTaskParams,
    XGBoostParams,
    labels_of,
    train_multitask,
    train_xgboost,
)
from models.news_feed.service_model import Diversity, FeedRanker, rerank
from models.news_feed.simulator import SimulationConfig, simulate
from models.online_store import SqliteOnlineStore

CONFIG = SimulationConfig(n_days=10, n_users=900, sessions_per_day=300)
WINDOW = timedelta(hours=1)
SKIP = 2.0
DIM = 16
UTC = timezone.utc


@pytest.fixture(scope="module")
def world():
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def vectors(world):
    # Random unit vectors stand in for MiniLM here: these tests are about counting, not about text.
    rng = np.random.default_rng(0)
    v = rng.normal(size=(world.posts.height, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _features(world, vectors, impressions=None, reactions=None, dwell=None):
    impressions = world.impressions if impressions is None else impressions
    reactions = world.reactions if reactions is None else reactions
    dwell = world.dwell if dwell is None else dwell
    rows = labelled_impressions(impressions, reactions, dwell, WINDOW, SKIP)
    return point_in_time_features(rows, impressions, reactions, dwell, world.users, world.friendships, world.posts,
                                  vectors, SKIP)


@pytest.fixture(scope="module")
def features(world, vectors):
    return _features(world, vectors)


def test_the_simulator_repeats_itself_and_keeps_its_own_rules(world):
    again = simulate(CONFIG)
    assert again.impressions.equals(world.impressions) and again.reactions.equals(world.reactions)
    shown = world.impressions.join(world.posts.select("post_id", "author_id", "created_ts"), on="post_id")
    assert (shown["created_ts"] < shown["ts"]).all()  # a post is shown after it is written
    ties = pl.concat([world.friendships.select("user_id", author_id="friend_id"),
                      world.friendships.filter(pl.col("kind") != "follow").select(user_id="friend_id", author_id="user_id")])
    assert shown.join(ties, on=["user_id", "author_id"], how="anti").is_empty()  # only posts of the user's ties
    assert world.impressions.select("user_id", "post_id").is_unique().all()  # never the same post twice
    reacted = world.reactions.join(world.impressions.select("impression_id", shown_ts="ts"), on="impression_id")
    assert reacted.height == world.reactions.height and (reacted["ts"] >= reacted["shown_ts"]).all()
    truth = world.impression_truth
    assert truth.height == world.impressions.height
    assert all(truth[f"p_{h}"].is_between(0, 1).all() for h in HEADS)
    # Position bias: what is lower on the page is read less, so the oracle at the top is at least as likely.
    assert (truth["top_like"] >= truth["p_like"] - 1e-12).all()


def test_a_reaction_labels_its_impression_within_the_window_and_a_missing_dwell_is_a_skip():
    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    impressions = pl.DataFrame({"impression_id": ["a", "b", "c"], "user_id": ["u", "u", "v"], "post_id": ["p", "q", "p"],
                                "ts": [t0, t0 + timedelta(seconds=4), t0 + timedelta(hours=2)], "position": [1, 2, 1],
                                "device": ["mobile"] * 3}).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    reactions = pl.DataFrame({"impression_id": ["a", "b", "c", "c"], "reaction": ["like", "comment", "hide", "unknown"],
                              "ts": [t0 + timedelta(seconds=30), t0 + timedelta(hours=3), t0 + timedelta(hours=2, minutes=1),
                                     t0 + timedelta(hours=2, minutes=1)]}).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    dwell = pl.DataFrame({"impression_id": ["a", "c"], "seconds": [75.0, 1.0]})
    labelled = labelled_impressions(impressions, reactions, dwell, WINDOW, SKIP).sort("impression_id")
    assert labelled["like"].to_list() == [1, 0, 0]
    assert labelled["comment"].to_list() == [0, 0, 0]  # three hours later: outside the window
    assert labelled["hide"].to_list() == [0, 0, 1]
    assert labelled["skip"].to_list() == [0, 1, 1]  # b has no dwell row: 0 seconds
    assert labelled["dwell"].to_list() == [60.0, 0.0, 1.0]  # capped at a minute
    assert labelled["dwell_missing"].to_list() == [0, 1, 0]
    assert labelled["engaged"].to_list() == [1, 0, 0]


def test_sessions_break_on_a_half_hour_gap():
    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    rows = pl.DataFrame({"impression_id": ["1", "2", "3", "4"], "user_id": ["u", "u", "u", "v"],
                         "ts": [t0, t0 + timedelta(minutes=20), t0 + timedelta(minutes=51), t0], "position": [1, 2, 1, 1]})
    sessions = with_sessions(rows).sort("impression_id")["session_id"].to_list()
    assert sessions[0] == sessions[1] != sessions[2] and sessions[3] != sessions[0]


def test_features_of_an_impression_do_not_move_when_later_events_change(world, vectors, features):
    cut = world.impressions["ts"].min() + timedelta(days=5)
    reactions = world.reactions.with_columns(
        reaction=pl.when(pl.col("ts") >= cut).then(pl.lit("like")).otherwise("reaction"))
    dwell = world.dwell.join(world.impressions.select("impression_id", "ts"), on="impression_id").with_columns(
        seconds=pl.when(pl.col("ts") >= cut).then(pl.col("seconds") * 7).otherwise("seconds")).drop("ts")
    changed = _features(world, vectors, reactions=reactions, dwell=dwell)
    # Dwell counts when a view ends: a view that started before the cut and ran past it moved too.
    settled = pl.col("ts") < cut - timedelta(minutes=10)
    before = features.filter(settled).sort("impression_id").select(FEATURES)
    after = changed.filter(settled).sort("impression_id").select(FEATURES)
    assert before.height > 1_000
    for feature in FEATURES:  # sums may add the same numbers in another order: equal to the last bits
        assert np.allclose(before[feature].to_numpy().astype(float), after[feature].to_numpy().astype(float),
                           equal_nan=True, rtol=1e-9), feature
    later = features.filter(~settled).sort("impression_id")
    assert not np.allclose(later["user_like_rate"].to_numpy(), changed.filter(~settled).sort("impression_id")["user_like_rate"].to_numpy())


def test_the_audit_passes_and_catches_a_like_count_taken_at_the_end(world, features):
    audit = point_in_time_audit(features, world.impressions, world.reactions, world.dwell, world.posts, SKIP, sample=60)
    assert audit["rows_not_as_of_impression"].sum() == 0 and (audit["rows_checked"] == 60).all()
    leaky = leaky_end_of_data(features, world.impressions, world.reactions)
    audit = point_in_time_audit(leaky, world.impressions, world.reactions, world.dwell, world.posts, SKIP, sample=60)
    wrong = dict(audit.select("feature", "rows_not_as_of_impression").iter_rows())
    assert wrong["post_like_rate"] > 0 and sum(v for k, v in wrong.items() if k != "post_like_rate") == 0


@pytest.fixture(scope="module")
def split(features):
    rows = cutoffs(features, "2d", "2d", WINDOW).split(features)
    return {name: rows.filter(pl.col("split") == name) for name in ("train", "validation", "test")}


@pytest.fixture(scope="module")
def trained(split):
    x = {n: feature_matrix(f) for n, f in split.items()}
    y = {n: labels_of(f) for n, f in split.items()}
    xgb = train_xgboost(x["train"], y["train"], x["validation"], y["validation"], XGBoostParams(num_boost_round=120))
    multitask = train_multitask(x["train"], y["train"], x["validation"], y["validation"], MultiTaskParams(max_epochs=6))
    return {"xgboost": xgb.model, "multitask": multitask.model}


@pytest.mark.parametrize("kind", ["xgboost", "multitask"])
def test_each_model_learns_every_head_and_saves_to_bytes_and_back(split, trained, kind):
    from sklearn.metrics import roc_auc_score

    model, test = trained[kind], split["test"]
    x = feature_matrix(test)
    predicted = model.predict(x)
    assert set(predicted) == {*HEADS, DWELL}
    for head in ("click", "like", "skip"):
        assert roc_auc_score(test[head].to_numpy(), predicted[head]) > 0.6, head
    assert 0 <= predicted[DWELL].min() and predicted[DWELL].max() <= 60
    again = EngagementModel.from_bytes(kind, model.to_bytes()).predict(x)
    assert all(np.allclose(again[h], predicted[h]) for h in predicted)


def test_downsampled_heads_are_corrected_back_to_probabilities(split, trained):
    """The multi-task network saw a fifth to a third of the rare heads' negatives; its predictions must not be
    inflated by that."""
    predicted = trained["multitask"].predict(feature_matrix(split["test"]))
    for head in ("comment", "share", "hide", "block"):
        rate = split["test"][head].mean()
        assert 0.4 * rate < predicted[head].mean() < 2.0 * rate, head


def test_fine_tuning_changes_the_model_and_keeps_it_working(split, trained):
    from sklearn.metrics import roc_auc_score

    for kind in ("xgboost", "multitask"):
        model = EngagementModel.from_bytes(kind, trained[kind].to_bytes())
        before = model.predict(feature_matrix(split["test"]))["like"]
        model.fine_tune(feature_matrix(split["validation"]), labels_of(split["validation"]))
        after = model.predict(feature_matrix(split["test"]))["like"]
        assert not np.allclose(before, after) and roc_auc_score(split["test"]["like"].to_numpy(), after) > 0.6


def test_feed_ndcg_rewards_putting_the_engaged_post_first():
    frame = pl.DataFrame({"session_id": ["s"] * 3 + ["t"] * 2, "hide": [0, 0, 1, 0, 0], "block": [0] * 5})
    gains = np.array([0.0, 5.0, 0.0, 0.0, 0.0])  # t has nothing to find: left out
    best = feed_ndcg(frame, np.array([0.1, 0.9, 0.5, 1, 2]), gains)
    worst = feed_ndcg(frame, np.array([0.9, 0.1, 0.5, 1, 2]), gains)
    assert best.sessions == ["s"] and best.report["ndcg_at_10"] == pytest.approx(1.0)
    assert worst.report["ndcg_at_10"] == pytest.approx(0.5)  # third place: 1 / log2(4)
    assert worst.report["hide_or_block_in_top_3"] == 1.0


def test_the_weighted_score_and_the_gains_use_the_business_weights():
    predictions = {"like": np.array([0.5, 0.1]), "hide": np.array([0.0, 0.3]), DWELL: np.array([10.0, 0.0])}
    assert weighted_score(predictions, {"like": 2, "hide": -10, DWELL: 0.1}).tolist() == pytest.approx([2.0, -2.8])
    frame = pl.DataFrame({**{h: [0, 0] for h in HEADS}, DWELL: [20.0, 0.0]}).with_columns(like=pl.Series([1, 0]), hide=pl.Series([0, 1]))
    assert feed_gains(frame, DEFAULT_WEIGHTS).tolist() == pytest.approx([DEFAULT_WEIGHTS["like"] + 20 * DEFAULT_WEIGHTS[DWELL], 0.0])


def test_the_pr_auc_margin_sees_a_better_model_and_not_a_copy():
    rng = np.random.default_rng(0)
    y = (rng.random(4_000) < 0.1).astype(float)
    good, noise = y + rng.normal(0, 0.5, len(y)), rng.random(len(y))
    clusters = np.arange(len(y)) // 5
    better = pr_auc_margin(y, good, noise, clusters, resamples=200)
    assert better.significant and better.low > 0
    same = pr_auc_margin(y, good, good, clusters, resamples=200)
    assert same.point == 0 and not same.significant


def test_rerank_keeps_authors_apart_and_fills_the_feed():
    authors = ["a", "a", "a", "b", "c"]
    topics = ["x", "x", "y", "x", "x"]
    chosen = rerank([0, 1, 2, 3, 4], authors, topics, 5, Diversity(max_per_author=2, max_per_topic=2))
    picked = [authors[i] for i in chosen]
    assert len(chosen) == 5 and chosen[0] == 0
    assert all(a != b for a, b in zip(picked, picked[1:-1]))  # only the forced last one may repeat
    assert picked.count("a") == 3  # relaxed rather than a short feed


@pytest.fixture(scope="module")
def snapshot(world, vectors, tmp_path_factory):
    as_of = world.impressions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0)
    store = SqliteOnlineStore(tmp_path_factory.mktemp("store") / "online.sqlite", "news_feed")
    store.publish(snapshot_records(world.users, world.friendships, world.posts, world.impressions, world.reactions,
                                   world.dwell, vectors, as_of, 3, SKIP), "test", as_of.isoformat())
    return store, as_of


def test_serving_features_equal_training_features_at_the_snapshot(world, vectors, snapshot):
    """The training-serving skew test: for users and their candidate posts at the snapshot's time, the online
    path's features equal the training path's."""
    store, as_of = snapshot
    info = store.current()
    users = world.impressions.filter(pl.col("ts") < as_of)["user_id"].unique().sort().head(25).to_list()
    targets, served = [], []
    for user_id in users:
        (user,) = store.get_in(info.snapshot_id, "user", [user_id])
        authors = list(user["ties"])
        ids = [pid for r in store.get_in(info.snapshot_id, "author", authors) if r for pid in r["recent"]]
        if not ids:
            continue
        posts = {i: r for i, r in zip(ids, store.get_in(info.snapshot_id, "post", ids))}
        served.append(compose(serving_aggregates({**user, "user_id": user_id}, posts, as_of, DIM, 1, "mobile")))
        targets.append(pl.DataFrame({"user_id": [user_id] * len(ids), "post_id": ids, "position": [1] * len(ids),
                                     "device": ["mobile"] * len(ids)}).with_columns(ts=pl.lit(as_of, dtype=pl.Datetime("us", "UTC"))))
    targets, served = pl.concat(targets), pl.concat(served)
    assert targets.height > 50
    trained = point_in_time_features(targets, world.impressions, world.reactions, world.dwell, world.users,
                                     world.friendships, world.posts, vectors, SKIP)
    key = ["user_id", "post_id"]
    left, right = trained.sort(key).select(*key, *FEATURES), served.sort(key).select(*key, *FEATURES)
    for feature in FEATURES:
        a, b = left[feature].to_numpy(), right[feature].to_numpy()
        assert np.allclose(a.astype(float), b.astype(float), equal_nan=True, atol=1e-5), feature


def test_the_feed_ranks_unseen_posts_of_the_users_ties_and_falls_back_to_chronological(world, snapshot, trained):
    store, as_of = snapshot
    ranker = FeedRanker(trained["multitask"], store, dim=DIM)
    by_activity = world.impressions.filter(pl.col("ts") < as_of).group_by("user_id").len().sort("len", descending=True)
    # The most active user who has unseen recent posts from their ties.
    active, feed = next((u, f) for u in by_activity["user_id"] if (f := ranker.feed(u, k=5, ts=as_of)).posts)
    assert feed.strategy == "personalized" and 0 < len(feed.posts) <= 5
    seen = set(world.impressions.filter((pl.col("user_id") == active) & (pl.col("ts") < as_of))["post_id"])
    assert not seen & {p["post_id"] for p in feed.posts}
    assert all(set(p["heads"]) == {*HEADS, DWELL} for p in feed.posts)
    assert feed.counts["ranked"] >= len(feed.posts) and feed.counts["unseen"] >= feed.counts["in_window"]
    # The business's weights change the order: all weight on hides puts the likeliest hide first.
    hides = ranker.feed(active, k=5, ts=as_of, weights={h: 0.0 for h in (*HEADS, DWELL)} | {"hide": 1.0})
    assert hides.posts[0]["heads"]["hide"] == max(p["heads"]["hide"] for p in hides.posts)
    unknown = ranker.feed("someone-new", k=5, ts=as_of)
    assert unknown.strategy == "chronological" and unknown.notes
    times = [p["created_ts"] for p in unknown.posts]
    assert times == sorted(times, reverse=True) and len(times) == 5


def test_the_day_description_alarms_when_posts_get_worse_and_not_on_a_stable_day():
    """The drift kit's judgement of a day (models.drift.judge_day) on the case's description: from the day posts get
    worse (quality@11), engagement falls as the new posts fill the feeds; the level alarm sounds by the third day,
    and not on the day before the drift."""
    from models.drift import judge_day
    from models.news_feed.monitoring import MONITORS, describe_day, describe_days

    world = simulate(SimulationConfig(n_days=16, n_users=900, sessions_per_day=300, drift_kind="quality", drift_day=11))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(world.posts.height, DIM)).astype(np.float32)
    features = _features(world, vectors)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    train = features.filter(pl.col("ts") < start + timedelta(days=7))
    model = train_xgboost(feature_matrix(train), labels_of(train), None, None, XGBoostParams(),
                          rounds={h: 60 for h in (*HEADS, DWELL)}).model
    reference = describe_days(features, model, DEFAULT_WEIGHTS, start + timedelta(days=7), start + timedelta(days=10))

    def judged(n: int):
        day = describe_day(features, model, DEFAULT_WEIGHTS, start + timedelta(days=n))
        current = {**day.distributions, **{k: v[0] for k, v in day.levels.items()}}
        return judge_day(day.days[0], MONITORS, reference.distributions, current, reference.levels, day.live,
                         reference.live)

    stable, drifted = judged(10), judged(13)
    assert not stable.alarm, stable.messages
    assert drifted.alarm and any("engaged_rate" in m for m in drifted.messages), drifted.messages
