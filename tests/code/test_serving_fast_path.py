"""The ranking service's fast path computes exactly what the polars online features give the model."""

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from models.ad_click.features import online_snapshot
from models.ad_click.serving import RequestFeatures, fetch_features, publish_snapshot
from models.ad_click.train import CategoryEncoder, train_xgboost

AS_OF = datetime(2026, 1, 8, tzinfo=timezone.utc)


class FakeRealtime:
    """The stream's 1-hour counts, made up per (entity, id) so that overlays are visible."""

    def counts(self, entity, ids, ts_us):
        return [(len(i) + 3 * (entity == "user"), len(i) % 3) for i in ids]


@pytest.fixture
def published(small_world, online_store):
    history = small_world.impressions.filter(pl.col("ts") < AS_OF)
    publish_snapshot(online_store, online_snapshot(history, small_world.users, small_world.ads, AS_OF), AS_OF)
    return online_store


def _vocabularies(small_world) -> dict[str, list[str]]:
    # One value of each left out, so unseen values (NaN codes) are covered too.
    users, ads = small_world.users, small_world.ads
    values = {
        "device": ["desktop", "mobile"],
        "gender": sorted(users["gender"].drop_nulls().unique().to_list())[1:],
        "country": sorted(users["country"].drop_nulls().unique().to_list())[1:],
        "category": sorted(ads["category"].drop_nulls().unique().to_list())[1:],
    }
    return values


def _requests(small_world, n: int, seed: int):
    rng = random.Random(seed)
    users = small_world.users["user_id"].to_list() + ["nobody"]
    ads = small_world.ads["ad_id"].to_list() + ["no-ad", "no-ad-2"]
    for _ in range(n):
        ts = AS_OF + timedelta(seconds=rng.randrange(0, 3 * 86_400), microseconds=rng.randrange(1_000_000))
        yield (rng.choice(users), rng.sample(ads, rng.randrange(1, 40)), ts, rng.randrange(1, 6),
               rng.choice(["mobile", "desktop", "tablet"]))


def _polars_matrix(store, encoder, user_id, ad_ids, ts, position, device, realtime=None):
    rows = pl.DataFrame(
        {"user_id": [user_id] * len(ad_ids), "ad_id": ad_ids, "ts": [ts] * len(ad_ids),
         "position": [position] * len(ad_ids), "device": [device] * len(ad_ids)},
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "position": pl.Int64},
    )
    features, fallbacks = fetch_features(store, rows, realtime=realtime)
    return encoder.transform(features), fallbacks, features["advertiser_id"].to_list()


@pytest.mark.parametrize("realtime", [None, FakeRealtime()], ids=["snapshot", "live_counts"])
def test_the_fast_path_equals_the_polars_features_bit_for_bit(small_world, published, realtime):
    encoder = CategoryEncoder(_vocabularies(small_world))
    fast = RequestFeatures(published, encoder.vocabularies, realtime=realtime)
    for request in _requests(small_world, 60, seed=1):
        expected, expected_fallbacks, expected_advertisers = _polars_matrix(published, encoder, *request,
                                                                            realtime=realtime)
        matrix, fallbacks, info = fast.matrix(*request)
        np.testing.assert_array_equal(matrix, expected, err_msg=str(request))
        assert matrix.dtype == np.float32
        assert fallbacks == expected_fallbacks
        assert info == published.current()
        assert fast.advertisers(request[1]) == expected_advertisers


def test_the_fast_path_sees_a_new_snapshot_and_an_empty_store(small_world, online_store):
    encoder = CategoryEncoder(_vocabularies(small_world))
    fast = RequestFeatures(online_store, encoder.vocabularies)
    request = next(_requests(small_world, 1, seed=2))
    cold, fallbacks, info = fast.matrix(*request)
    assert info is None and "no snapshot" in fallbacks[0]
    np.testing.assert_array_equal(cold, _polars_matrix(online_store, encoder, *request)[0])

    history = small_world.impressions.filter(pl.col("ts") < AS_OF)
    publish_snapshot(online_store, online_snapshot(history, small_world.users, small_world.ads, AS_OF), AS_OF)
    warm, _, info = fast.matrix(*request)
    assert info == online_store.current()
    np.testing.assert_array_equal(warm, _polars_matrix(online_store, encoder, *request)[0])


def test_in_place_prediction_equals_the_dmatrix_prediction(small_world):
    """The booster's in-place predict on an encoded matrix gives the training path's probabilities."""
    from models.ad_click.features import point_in_time_features
    from models.ad_click.train import XGBoostParams, predict_in_place, predict_xgboost

    features = point_in_time_features(small_world.impressions, small_world.users, small_world.ads,
                                      targets_from=datetime(2026, 1, 4, tzinfo=timezone.utc))
    train, valid = features.filter(pl.col("ts") < AS_OF), features.filter(pl.col("ts") >= AS_OF)
    booster, encoder, _ = train_xgboost(train, valid, XGBoostParams(num_boost_round=30, early_stopping_rounds=5))
    rows = valid.head(500)
    expected = predict_xgboost(booster, encoder, rows)
    assert np.array_equal(predict_in_place(booster, encoder.transform(rows), booster.best_iteration), expected)


def test_a_network_champion_scores_the_fast_path_as_it_scores_the_offline_features(small_world, published):
    """The served path for a DeepFM/DCN champion (design matrix, ids as lists) gives the batch path's scores."""
    from models.ad_click.deep import DeepParams, design, train_click_net
    from models.ad_click.features import ID_COLUMNS, point_in_time_features

    features = point_in_time_features(small_world.impressions, small_world.users, small_world.ads,
                                      targets_from=datetime(2026, 1, 4, tzinfo=timezone.utc))
    train, valid = features.filter(pl.col("ts") < AS_OF), features.filter(pl.col("ts") >= AS_OF)
    encoder = CategoryEncoder.fit(train)
    network, _ = train_click_net(train, valid, encoder.vocabularies, DeepParams(kind="dcn", max_epochs=1))
    fast = RequestFeatures(published, encoder.vocabularies)
    for user_id, ad_ids, ts, position, device in _requests(small_world, 20, seed=3):
        matrix, _, _ = fast.matrix(user_id, ad_ids, ts, position, device)
        ids = {"user_id": [user_id] * len(ad_ids), "ad_id": ad_ids, "advertiser_id": fast.advertisers(ad_ids)}
        served = network.predict(matrix, network.encoder.id_codes_of(ids))
        rows = pl.DataFrame({"user_id": [user_id] * len(ad_ids), "ad_id": ad_ids, "ts": [ts] * len(ad_ids),
                             "position": [position] * len(ad_ids), "device": [device] * len(ad_ids)},
                            schema_overrides={"ts": pl.Datetime("us", "UTC"), "position": pl.Int64})
        offline, _ = fetch_features(published, rows)
        expected = network.predict(design(offline, encoder.vocabularies), network.encoder.id_codes(offline.select(ID_COLUMNS)))
        np.testing.assert_array_equal(served, expected)
