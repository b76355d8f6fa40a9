"""Model behaviour on a mid-size simulation: quality against the oracle, calibration, position effect, round trip."""

import numpy as np
import polars as pl
import pytest

from models.ad_click.features import LABEL
from models.ad_click.train import XGBoostParams, predict_xgboost, train_xgboost
from models.metrics import binary_report


@pytest.fixture(scope="module")
def trained(ad_click_splits):
    train, validation, test = ad_click_splits
    booster, encoder, curve = train_xgboost(train, validation, XGBoostParams(num_boost_round=400))
    return train, test, booster, encoder, curve


def test_xgboost_beats_the_background_and_stays_near_the_oracle(trained):
    train, test, booster, encoder, _ = trained
    rate = float(train[LABEL].mean())
    model = binary_report(test[LABEL].to_numpy(), predict_xgboost(booster, encoder, test), rate)
    oracle = binary_report(test[LABEL].to_numpy(), test["p_click"].to_numpy(), rate)
    assert model["nce"] < 0.97
    assert oracle["nce"] <= model["nce"] < 1.08 * oracle["nce"]
    assert model["roc_auc"] > 0.68


def test_predictions_are_calibrated_on_average(trained):
    _, test, booster, encoder, _ = trained
    p = predict_xgboost(booster, encoder, test)
    assert abs(p.mean() - test[LABEL].mean()) < 0.15 * test[LABEL].mean()


def test_a_lower_slot_lowers_the_predicted_click_probability(trained):
    _, test, booster, encoder, _ = trained
    top = predict_xgboost(booster, encoder, test.with_columns(position=pl.lit(1, pl.Int32)))
    low = predict_xgboost(booster, encoder, test.with_columns(position=pl.lit(8, pl.Int32)))
    assert np.mean(low < top) > 0.9


def test_unseen_categories_are_scored_not_rejected(trained):
    _, test, booster, encoder, _ = trained
    p = predict_xgboost(booster, encoder, test.head(50).with_columns(country=pl.lit("ZZ"), device=pl.lit("watch")))
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


def test_early_stopping_used_the_validation_curve(trained):
    _, _, booster, _, curve = trained
    assert booster.best_iteration < len(curve)
    assert curve[booster.best_iteration] == pytest.approx(min(curve), rel=1e-6)


def test_logged_pyfunc_model_predicts_exactly_like_the_booster(trained, tmp_path):
    import mlflow

    from models.ad_click.model import log_xgboost_model, model_input

    _, test, booster, encoder, _ = trained
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_xgboost_model(booster, encoder, test.head(100))
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    sample = test.head(500)
    np.testing.assert_allclose(loaded.predict(model_input(sample)), predict_xgboost(booster, encoder, sample), rtol=1e-6)
    # Logged from code, not pickled: the serving fast path of the shipped code is there.
    python_model = loaded.unwrap_python_model()
    assert type(python_model).__module__ == "models.ad_click.pyfunc"
    np.testing.assert_allclose(python_model.predict_frame(sample), predict_xgboost(booster, encoder, sample), rtol=1e-6)
