"""The built news feed bento as a real HTTP server: retrieve, rank with every head, re-rank; the business's weights;
the chronological feed of a new user; 4xx naming the field."""

import httpx
import polars as pl
import pytest

HEADS = {"click", "like", "comment", "share", "hide", "block", "skip", "dwell"}


def _post(served, body, timeout=30):
    return httpx.post(f"{served['url']}/feed", json=body, timeout=timeout)


def _table(served, name) -> pl.DataFrame:
    return pl.read_parquet(served["settings"].lake_dir / "assets" / f"news_feed_{name}.parquet")


def _as_of(served) -> str:
    """The online features' snapshot time: the day after the data's last."""
    from datetime import timedelta

    last = _table(served, "impressions")["ts"].max()
    return (last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def known_feed(served_news_feed):
    """The most active user whose feed holds posts, and that feed."""
    served = served_news_feed
    users = _table(served, "impressions").group_by("user_id").len().sort("len", descending=True)["user_id"].head(30)
    for user in users:
        response = _post(served, {"user_id": user, "k": 5, "ts": _as_of(served)})
        assert response.status_code == 200, response.text
        if response.json()["posts"]:
            return user, response.json()
    pytest.fail("none of the 30 most active users has an unseen recent post")


def test_a_known_user_gets_unseen_posts_of_their_ties_ranked_with_every_head(served_news_feed, known_feed):
    user, body = known_feed
    assert body["strategy"] == "personalized" and body["model_version"] == served_news_feed["version"]
    assert 0 < len(body["posts"]) <= 5 and [p["rank"] for p in body["posts"]] == list(range(1, len(body["posts"]) + 1))
    seen = set(_table(served_news_feed, "impressions").filter(pl.col("user_id") == user)["post_id"])
    assert not seen & {p["post_id"] for p in body["posts"]}
    ties = _table(served_news_feed, "friendships")
    authors = set(ties.filter(pl.col("user_id") == user)["friend_id"]) | set(
        ties.filter((pl.col("friend_id") == user) & (pl.col("kind") != "follow"))["user_id"])
    assert {p["author_id"] for p in body["posts"]} <= authors
    for post in body["posts"]:
        assert set(post["heads"]) == HEADS
        assert all(0 <= post["heads"][h] <= 1 for h in HEADS - {"dwell"})
    assert body["counts"]["ranked"] >= len(body["posts"])


def test_the_businesss_weights_reorder_the_feed(served_news_feed, known_feed):
    user, _ = known_feed
    only_hides = {h: 0.0 for h in HEADS} | {"hide": 1.0}
    body = _post(served_news_feed, {"user_id": user, "k": 5, "ts": _as_of(served_news_feed), "weights": only_hides}).json()
    assert body["weights"]["hide"] == 1.0 and body["weights"]["like"] == 0.0
    scores = [p["score"] for p in body["posts"]]
    assert scores[0] == max(scores) and scores[0] == pytest.approx(body["posts"][0]["heads"]["hide"])


def test_an_unknown_user_gets_the_chronological_feed_and_is_told(served_news_feed):
    body = _post(served_news_feed, {"user_id": "someone-new", "k": 5, "ts": _as_of(served_news_feed)}).json()
    assert body["strategy"] == "chronological" and body["notes"] and len(body["posts"]) == 5
    times = [p["created_ts"] for p in body["posts"]]
    assert times == sorted(times, reverse=True) and all(p["heads"] is None for p in body["posts"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"k": 10}, "user_id"),
        ({"user_id": "", "k": 10}, "user_id"),
        ({"user_id": "U1; drop", "k": 10}, "user_id"),
        ({"user_id": "U000001", "k": 0}, "k"),
        ({"user_id": "U000001", "k": 1000}, "k"),
        ({"user_id": "U000001", "colour": "red"}, "colour"),
        ({"user_id": "U000001", "weights": {"wow": 3}}, "wow"),
        ({"user_id": "U000001", "weights": {"like": 1e9}}, "like"),
        ({"user_id": "U000001", "weights": {"like": "lots"}}, "weights"),
        ({"user_id": "U000001", "weights": [1, 2]}, "weights"),
        ({"user_id": "U000001", "device": "phone; rm"}, "device"),
        ({"user_id": "U000001", "ts": "2026-04-01T10:00:00"}, "ts"),
        ({"user_id": "U000001", "ts": "yesterday"}, "ts"),
        ({"user_id": "U000001", "ts": "9999-12-31T23:59:59-00:01"}, "ts"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(served_news_feed, body, field):
    response = _post(served_news_feed, body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text
