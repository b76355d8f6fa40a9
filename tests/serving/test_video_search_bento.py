"""The built video search bento as a real HTTP server: both paths and their fusion, normalization, a query only the
vector path can answer, and 4xx for bad requests."""

import httpx
import polars as pl
import pytest


def _post(served, body, timeout=30):
    return httpx.post(f"{served['url']}/search", json=body, timeout=timeout)


def test_a_query_returns_videos_best_first_with_both_scores(served_video_search):
    videos = pl.read_parquet(served_video_search["settings"].lake_dir / "assets" / "video_search_videos.parquet")
    titled = videos.filter(pl.col("tags").is_not_null()).row(0, named=True)
    response = _post(served_video_search, {"q": titled["title"], "k": 8})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == served_video_search["version"] and len(body["videos"]) == 8
    assert titled["video_id"] in [v["video_id"] for v in body["videos"]]  # its own title finds it
    scores = [v["score"] for v in body["videos"]]
    assert scores == sorted(scores, reverse=True)
    assert any("text" in v["paths"] for v in body["videos"]) and any("vector" in v["paths"] for v in body["videos"])
    assert set(body["weights"]) == {"text", "vector", "popularity", "freshness"}


def test_accents_and_case_do_not_change_the_answer(served_video_search):
    one = _post(served_video_search, {"q": "Crème Brûlée TUTORIAL", "k": 5}).json()
    two = _post(served_video_search, {"q": "creme brulee tutorial", "k": 5}).json()
    assert one["normalized"] == two["normalized"] == "creme brulee tutorial"
    assert [v["video_id"] for v in one["videos"]] == [v["video_id"] for v in two["videos"]]


def test_a_query_with_no_word_in_the_index_answers_from_the_vector_path_and_says_so(served_video_search):
    body = _post(served_video_search, {"q": "zzqxv wvkq", "k": 5}).json()
    assert len(body["videos"]) == 5 and all(v["paths"] == ["vector"] for v in body["videos"])
    assert any("vector path" in note for note in body["notes"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"k": 10}, "q"),
        ({"q": "", "k": 10}, "q"),
        ({"q": "   !!! ", "k": 10}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": 42}, "q"),
        ({"q": "pasta", "k": 0}, "k"),
        ({"q": "pasta", "k": 1000}, "k"),
        ({"q": "pasta", "user_id": "u1"}, "user_id"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(served_video_search, body, field):
    response = _post(served_video_search, body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text


def test_a_query_in_another_script_is_searched_not_refused(served_video_search):
    response = _post(served_video_search, {"q": "паста рецепт", "k": 3})
    assert response.status_code == 200, response.text
    assert response.json()["normalized"] == "паста рецепт" and len(response.json()["videos"]) == 3
