"""The built video recommender bento as a real HTTP server: parity with batch recommendations, cold start, 4xx."""

import httpx
import polars as pl
import pytest


def _post(served, body, timeout=30):
    return httpx.post(f"{served['url']}/recommend", json=body, timeout=timeout)


def test_openapi_lists_the_endpoint(served_video_rec):
    spec = httpx.get(f"{served_video_rec['url']}/docs.json").json()
    assert "/recommend" in spec["paths"]


def test_http_answers_equal_the_batch_recommendations_for_the_same_users(served_video_rec):
    settings = served_video_rec["settings"]
    batch = pl.read_parquet(settings.lake_dir / "assets" / "video_rec_batch_recommendations.parquet")
    k = settings.of("video_rec").top_k
    users = batch["user_id"].unique().sort().head(25).to_list()
    for user in users:
        response = _post(served_video_rec, {"user_id": user, "k": k})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == served_video_rec["version"]
        expected = batch.filter(pl.col("user_id") == user).sort("rank")
        assert [r["video_id"] for r in body["recommendations"]] == expected["video_id"].to_list(), user
        assert [r["score"] for r in body["recommendations"]] == pytest.approx(expected["score"].to_list(), rel=1e-5)
        assert body["strategy"] == expected["strategy"][0]


def test_excluded_videos_are_not_recommended(served_video_rec):
    first = _post(served_video_rec, {"user_id": "u000001", "k": 10}).json()["recommendations"]
    excluded = [r["video_id"] for r in first[:3]]
    again = _post(served_video_rec, {"user_id": "u000001", "k": 10, "exclude_video_ids": excluded}).json()
    assert not set(excluded) & {r["video_id"] for r in again["recommendations"]}
    assert len(again["recommendations"]) == 10


def test_cold_start_users_get_documented_answers(served_video_rec):
    anonymous = _post(served_video_rec, {"user_id": "new-visitor-1", "k": 5}).json()
    assert anonymous["strategy"] == "popular" and len(anonymous["recommendations"]) == 5
    described = _post(served_video_rec, {"user_id": "new-visitor-2", "k": 5,
                                         "context": {"age": 22, "gender": "f", "country": "DE"}}).json()
    assert described["strategy"] == "demographics" and len(described["recommendations"]) == 5


@pytest.mark.parametrize(
    "body, field",
    [
        ({"k": 10}, "user_id"),
        ({"user_id": "", "k": 10}, "user_id"),
        ({"user_id": "u1; drop", "k": 10}, "user_id"),
        ({"user_id": "u000001", "k": 0}, "k"),
        ({"user_id": "u000001", "k": 1000}, "k"),
        ({"user_id": "u000001", "k": "ten"}, "k"),
        ({"user_id": "u000001", "colour": "red"}, "colour"),
        ({"user_id": "u000001", "context": {"age": -3}}, "age"),
        ({"user_id": "u000001", "context": {"country": "Germany"}}, "country"),
        ({"user_id": "u000001", "exclude_video_ids": ["v1", "v1"]}, "exclude_video_ids"),
        ({"user_id": "u000001", "exclude_video_ids": "v1"}, "exclude_video_ids"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(served_video_rec, body, field):
    response = _post(served_video_rec, body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text


def test_malformed_json_is_a_4xx(served_video_rec):
    response = httpx.post(f"{served_video_rec['url']}/recommend", content=b"{not json", timeout=30,
                          headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
