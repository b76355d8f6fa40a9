"""The built people-you-may-know bento as a real HTTP server over the batch's online-store snapshot: a member's
precomputed list with its snapshot time, the shared-attributes fallback for members without connections and for
newcomers (whose spellings are standardized), and 4xx for bad requests."""

import httpx
import polars as pl
import pytest


def _post(served, body, timeout=30):
    return httpx.post(f"{served['url']}/pymk", json=body, timeout=timeout)


@pytest.fixture(scope="module")
def batch(served_people_you_may_know):
    return pl.read_parquet(served_people_you_may_know["settings"].lake_dir / "assets" / "people_you_may_know_suggestions")


def test_a_member_gets_their_precomputed_list_with_the_snapshot_time(served_people_you_may_know, batch):
    member = batch.filter(pl.col("source") == "friends of friends")["user_id"][0]
    expected = batch.filter(pl.col("user_id") == member).sort("rank")
    body = _post(served_people_you_may_know, {"user_id": member, "k": 5}).json()
    assert body["source"] == "friends of friends" and body["model_version"] == served_people_you_may_know["version"]
    assert [s["user_id"] for s in body["suggestions"]] == expected["suggested_id"].head(5).to_list()
    assert body["snapshot_as_of"].startswith("20")  # an ISO time: when the batch read the graph
    scores = [s["score"] for s in body["suggestions"] if s["source"] == "friends of friends"]
    assert scores == sorted(scores, reverse=True)


def test_a_member_without_connections_gets_shared_attributes_and_the_response_says_so(served_people_you_may_know, batch):
    alone = batch.group_by("user_id").agg(pl.col("source").unique()).filter(
        pl.col("source").list.len() == 1, pl.col("source").list.first() == "shared school, company or city")
    member = alone["user_id"][0]
    body = _post(served_people_you_may_know, {"user_id": member, "k": 3}).json()
    assert body["source"] == "shared school, company or city" and any("no friend of a friend" in n for n in body["notes"])
    assert all(s["shared_attributes"] >= 1 for s in body["suggestions"])


def test_a_newcomer_is_matched_whatever_the_spelling(served_people_you_may_know):
    users = pl.read_parquet(served_people_you_may_know["settings"].lake_dir / "assets" / "people_you_may_know_users.parquet")
    school = users["school"].drop_nulls().mode()[0]
    one = _post(served_people_you_may_know, {"user_id": "newcomer-1", "k": 5, "school": school}).json()
    two = _post(served_people_you_may_know, {"user_id": "newcomer-1", "k": 5, "school": f"  {school.upper()}."}).json()
    assert one["source"] == "shared school, company or city" and any("new member" in n for n in one["notes"])
    assert len(one["suggestions"]) == 5 and one["suggestions"] == two["suggestions"]
    strangers = _post(served_people_you_may_know, {"user_id": "newcomer-2", "school": "Mars Academy"}).json()
    assert strangers["suggestions"] == [] and any("no member shares" in n for n in strangers["notes"])


def test_an_unknown_member_without_attributes_gets_a_404_naming_user_id(served_people_you_may_know):
    response = _post(served_people_you_may_know, {"user_id": "nobody-at-all"})
    assert response.status_code == 404 and "user_id" in response.text


@pytest.mark.parametrize(
    "body, field",
    [
        ({"k": 10}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "a b"}, "user_id"),
        ({"user_id": 7}, "user_id"),
        ({"user_id": "m1", "k": 0}, "k"),
        ({"user_id": "m1", "k": 101}, "k"),
        ({"user_id": "m1", "school": ""}, "school"),
        ({"user_id": "m1", "city": "x" * 201}, "city"),
        ({"user_id": "m1", "friends": ["m2"]}, "friends"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(served_people_you_may_know, body, field):
    response = _post(served_people_you_may_know, body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text
