"""The built similar listings bento as a real HTTP server: the city and filters, cold start, 404 and 4xx."""

import httpx
import polars as pl
import pytest


def _post(served, body, timeout=30):
    return httpx.post(f"{served['url']}/similar", json=body, timeout=timeout)


def _listings(served) -> pl.DataFrame:
    return pl.read_parquet(served["settings"].lake_dir / "assets" / "similar_listings_listings.parquet")


def test_similar_listings_are_in_the_city_best_first(served_similar_listings):
    listings = _listings(served_similar_listings)
    city = dict(zip(listings["listing_id"], listings["city"]))
    for listing in listings.sort("created_ts")["listing_id"].head(5):
        response = _post(served_similar_listings, {"listing_id": listing, "k": 8})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == served_similar_listings["version"]
        ids = [s["listing_id"] for s in body["similar"]]
        assert len(ids) == 8 and listing not in ids and {city[i] for i in ids} == {city[listing]}
        scores = [s["score"] for s in body["similar"]]
        assert scores == sorted(scores, reverse=True)


def test_the_price_and_type_filters_and_exclusions_hold(served_similar_listings):
    listing = _listings(served_similar_listings).sort("created_ts")["listing_id"][0]
    first = _post(served_similar_listings, {"listing_id": listing, "k": 5}).json()["similar"]
    body = _post(served_similar_listings, {
        "listing_id": listing, "k": 5, "exclude_listing_ids": [first[0]["listing_id"]],
        "filters": {"min_price": 40, "max_price": 120, "types": ["entire_home", "private_room"]}}).json()
    assert body["similar"] and first[0]["listing_id"] not in {s["listing_id"] for s in body["similar"]}
    for similar in body["similar"]:
        assert 40 <= similar["price"] <= 120 and similar["type"] in ("entire_home", "private_room")


def test_a_new_listing_answers_from_its_cold_start_embedding(served_similar_listings):
    newest = _listings(served_similar_listings).sort("created_ts")["listing_id"][-1]  # listed after training ended
    body = _post(served_similar_listings, {"listing_id": newest, "k": 5}).json()
    assert body["strategy"] == "cold_start" and len(body["similar"]) == 5


def test_an_unknown_listing_is_a_404_that_says_so(served_similar_listings):
    response = _post(served_similar_listings, {"listing_id": "L999999", "k": 5})
    assert response.status_code == 404
    assert "listing_id" in response.text and "L999999" in response.text


@pytest.mark.parametrize(
    "body, field",
    [
        ({"k": 10}, "listing_id"),
        ({"listing_id": "", "k": 10}, "listing_id"),
        ({"listing_id": "L1; drop", "k": 10}, "listing_id"),
        ({"listing_id": "L000001", "k": 0}, "k"),
        ({"listing_id": "L000001", "k": 1000}, "k"),
        ({"listing_id": "L000001", "colour": "red"}, "colour"),
        ({"listing_id": "L000001", "filters": {"min_price": -1}}, "min_price"),
        ({"listing_id": "L000001", "filters": {"min_price": 90, "max_price": 50}}, "min_price"),
        ({"listing_id": "L000001", "filters": {"types": ["castle"]}}, "types"),
        ({"listing_id": "L000001", "exclude_listing_ids": "L2"}, "exclude_listing_ids"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(served_similar_listings, body, field):
    response = _post(served_similar_listings, body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text
