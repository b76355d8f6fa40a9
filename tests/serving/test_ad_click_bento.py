"""The built ad click bento as a real HTTP server: offline parity, ranking, bad requests, clean stop."""

import math
from datetime import datetime, timezone

import httpx
import mlflow
import numpy as np
import polars as pl
import pytest

from models.ad_click.features import FEATURE_COLUMNS, ID_COLUMNS
from models.ad_click.model import model_input


def _test_rows(settings, n=200) -> pl.DataFrame:
    training = pl.read_parquet(settings.lake_dir / "assets" / "ad_click_training_data.parquet")
    return training.filter(pl.col("split") == "test").head(n)


def _json_rows(frame: pl.DataFrame) -> list[dict]:
    rows = frame.select(*FEATURE_COLUMNS, *ID_COLUMNS).to_dicts()  # the ids for a network champion
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


def test_health_metrics_and_openapi_are_served(served):
    assert httpx.get(f"{served['url']}/readyz").status_code == 200
    assert "bentoml" in httpx.get(f"{served['url']}/metrics").text
    spec = httpx.get(f"{served['url']}/docs.json").json()
    assert {"/rank", "/score"} <= set(spec["paths"])


def test_http_scores_equal_the_offline_model_on_the_same_feature_rows(served):
    settings = served["settings"]
    rows = _test_rows(settings)
    response = httpx.post(f"{served['url']}/score", json={"rows": _json_rows(rows)}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == served["version"]
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    offline = mlflow.pyfunc.load_model(f"models:/ad_click_ctr/{served['version']}").predict(model_input(rows))
    np.testing.assert_allclose(body["scores"], offline, rtol=1e-6)


def test_rank_sorts_candidates_by_the_model_score_from_online_features(served):
    from models.ad_click.serving import fetch_features
    from models.online_store import open_store

    ts = datetime(2026, 1, 11, tzinfo=timezone.utc)  # the snapshot's moment: features exactly as published
    ads = [f"ad{i:06d}" for i in range(0, 40, 2)]
    response = httpx.post(
        f"{served['url']}/rank",
        json={"user_id": "u0000042", "candidates": [{"ad_id": a} for a in ads], "device": "desktop",
              "ts": ts.isoformat(), "slots": [1, 2, 3]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    ranked = body["ranked"]
    assert [r["rank"] for r in ranked] == list(range(1, len(ads) + 1))
    assert [r["slot"] for r in ranked[:4]] == [1, 2, 3, None]
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert body["feature_snapshot"] == ts.isoformat() and body["fallbacks"] == []
    # The same features assembled here and scored by the offline model give the same scores.
    store = open_store(served["store_url"], "ad_click")
    requests = pl.DataFrame({"user_id": ["u0000042"] * len(ads), "ad_id": ads, "ts": [ts] * len(ads),
                             "position": [1] * len(ads), "device": ["desktop"] * len(ads)},
                            schema_overrides={"ts": pl.Datetime("us", "UTC")})
    features, _ = fetch_features(store, requests)
    store.close()
    mlflow.set_tracking_uri(served["settings"].mlflow_tracking_uri)
    offline = mlflow.pyfunc.load_model(f"models:/ad_click_ctr/{served['version']}").predict(model_input(features))
    by_ad = {r["ad_id"]: r["score"] for r in ranked}
    np.testing.assert_allclose([by_ad[a] for a in ads], offline, rtol=1e-6)


def test_unknown_user_and_ad_fall_back_and_the_response_says_so(served):
    response = httpx.post(
        f"{served['url']}/rank",
        json={"user_id": "someone-new", "candidates": [{"ad_id": "ad000001"}, {"ad_id": "ad-never-seen"}]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    fallbacks = " ".join(response.json()["fallbacks"])
    assert "unknown user someone-new" in fallbacks and "unknown ad ad-never-seen" in fallbacks


BAD_RANK_REQUESTS = {
    "unknown field": {"user_id": "u1", "candidates": [{"ad_id": "a"}], "colour": "red"},
    "unknown candidate field": {"user_id": "u1", "candidates": [{"ad_id": "a", "bid": 3}]},
    "wrong type": {"user_id": "u1", "candidates": "ad000001"},
    "user id of the wrong type": {"user_id": 42, "candidates": [{"ad_id": "a"}]},
    "missing user": {"candidates": [{"ad_id": "a"}]},
    "empty candidates": {"user_id": "u1", "candidates": []},
    "oversized candidates": {"user_id": "u1", "candidates": [{"ad_id": f"a{i}"} for i in range(501)]},
    "malformed id": {"user_id": "u 1; drop", "candidates": [{"ad_id": "a"}]},
    "duplicate candidates": {"user_id": "u1", "candidates": [{"ad_id": "a"}, {"ad_id": "a"}]},
    "slot below one": {"user_id": "u1", "candidates": [{"ad_id": "a"}], "slots": [0]},
    "time without zone": {"user_id": "u1", "candidates": [{"ad_id": "a"}], "ts": "2026-01-11T00:00:00"},
}


@pytest.mark.parametrize("case", BAD_RANK_REQUESTS)
def test_bad_rank_requests_get_a_4xx_naming_the_problem(served, case):
    response = httpx.post(f"{served['url']}/rank", json=BAD_RANK_REQUESTS[case], timeout=30)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"rows": {}}', b'{"rows": []}', b'{"rows": [{"position": "top"}]}', b'{"rows": [{"nope": 1}]}'],
)
def test_bad_score_requests_get_a_4xx(served, body):
    response = httpx.post(f"{served['url']}/score", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


def test_error_message_names_the_field(served):
    response = httpx.post(f"{served['url']}/rank", json=BAD_RANK_REQUESTS["empty candidates"], timeout=30)
    assert "candidates" in response.text
