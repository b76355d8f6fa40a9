"""The built event recommendation bento as a real HTTP server: filter then rank, cold start, 404 and 4xx."""

import httpx
import polars as pl
import pytest


def _post(served, body, timeout=30):
    return httpx.post(f"{served['url']}/recommend", json=body, timeout=timeout)


def _table(served, name) -> pl.DataFrame:
    return pl.read_parquet(served["settings"].lake_dir / "assets" / f"event_recommendation_{name}.parquet")


def _as_of(served):
    """A request time inside the online features' snapshot: the day after the data's last."""
    last = _table(served, "interactions")["ts"].max()
    return (last.replace(hour=0, minute=0, second=0, microsecond=0)).isoformat()


def test_a_known_user_gets_ranked_events_near_home_with_the_filter_counts(served_event_recommendation):
    served = served_event_recommendation
    registered = _table(served, "interactions").filter(pl.col("kind") == "register")
    user = registered.group_by("user_id").len().sort("len", descending=True)["user_id"][0]
    response = _post(served, {"user_id": user, "k": 5, "ts": _as_of(served), "radius_km": 40})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["strategy"] == "personalized" and body["location"] == "home"
    assert body["model_version"] == served["version"]
    filters = body["filters"]
    assert filters["live"] >= filters["upcoming"] >= filters["within_radius"] >= filters["capacity_left"] >= filters["not_registered"]
    assert 0 < len(body["events"]) <= 5 and all(e["distance_km"] <= 40 for e in body["events"])
    scores = [e["score"] for e in body["events"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert not set(registered.filter(pl.col("user_id") == user)["event_id"]) & {e["event_id"] for e in body["events"]}


def test_an_unknown_user_gets_popular_events_near_the_location_sent(served_event_recommendation):
    served = served_event_recommendation
    home = _table(served, "users").row(0, named=True)
    body = _post(served, {"user_id": "someone-new", "k": 5, "ts": _as_of(served),
                          "location": {"lat": home["lat"], "lon": home["lon"]}}).json()
    assert body["strategy"] == "cold_start" and body["location"] == "request" and body["notes"]
    registrations = [e["score"] for e in body["events"]]
    assert registrations == sorted(registrations, reverse=True)


def test_an_unknown_user_without_a_location_is_a_404_that_says_what_to_send(served_event_recommendation):
    response = _post(served_event_recommendation, {"user_id": "someone-new", "k": 5})
    assert response.status_code == 404
    assert "someone-new" in response.text and "location" in response.text


@pytest.mark.parametrize(
    "body, field",
    [
        ({"k": 10}, "user_id"),
        ({"user_id": "", "k": 10}, "user_id"),
        ({"user_id": "U1; drop", "k": 10}, "user_id"),
        ({"user_id": "U000001", "k": 0}, "k"),
        ({"user_id": "U000001", "k": 1000}, "k"),
        ({"user_id": "U000001", "colour": "red"}, "colour"),
        ({"user_id": "U000001", "location": {"lat": 123, "lon": 0}}, "lat"),
        ({"user_id": "U000001", "location": {"lat": 40}}, "lon"),
        ({"user_id": "U000001", "radius_km": 0}, "radius_km"),
        ({"user_id": "U000001", "ts": "2026-04-01T10:00:00"}, "ts"),
        ({"user_id": "U000001", "ts": "yesterday"}, "ts"),
        ({"user_id": "U000001", "ts": "0001-01-01T00:00:00+00:01"}, "ts"),
        ({"user_id": "U000001", "ts": "9999-12-31T23:59:59-00:01"}, "ts"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(served_event_recommendation, body, field):
    response = _post(served_event_recommendation, body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text
