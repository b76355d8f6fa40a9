"""The DeepFM and DCN-v2 click networks on a mid-size simulation: quality against the oracle, ids, round trips,
and the continual-learning step (a fine-tune on fresh rows)."""

import numpy as np
import polars as pl
import pytest

from models.ad_click.deep import DeepParams, IdVocabulary, fine_tune, train_click_net
from models.ad_click.features import ID_COLUMNS, LABEL
from models.ad_click.train import CategoryEncoder
from models.metrics import binary_report


@pytest.fixture(scope="module")
def splits(ad_click_splits):
    train, validation, test = ad_click_splits
    return train, validation, test, CategoryEncoder.fit(train).vocabularies


@pytest.fixture(scope="module", params=["deepfm", "dcn"])
def trained(request, splits):
    train, validation, _, vocabularies = splits
    epochs = []
    network, curve = train_click_net(train, validation, vocabularies, DeepParams(kind=request.param), on_epoch=epochs.append)
    return network, curve, epochs


def _predict(network, frame):
    return network.predict_frame(frame)


def test_networks_beat_the_background_and_stay_near_the_oracle(splits, trained):
    train, _, test, _ = splits
    network = trained[0]
    rate = float(train[LABEL].mean())
    model = binary_report(test[LABEL].to_numpy(), _predict(network, test), rate)
    oracle = binary_report(test[LABEL].to_numpy(), test["p_click"].to_numpy(), rate)
    assert model["nce"] < 0.97
    assert oracle["nce"] <= model["nce"] < 1.10 * oracle["nce"]
    assert abs(model["mean_prediction"] - model["positive_rate"]) < 0.2 * model["positive_rate"]


def test_training_reports_every_epoch_and_keeps_the_best_one(splits, trained):
    _, validation, _, _ = splits
    network, curve, epochs = trained
    assert epochs == curve and len(curve) >= 2
    kept = binary_report(validation[LABEL].to_numpy(), _predict(network, validation), 0.03)["log_loss"]
    assert kept == pytest.approx(min(e.validation_log_loss for e in curve), rel=1e-4)


def test_a_lower_slot_lowers_the_predicted_click_probability(splits, trained):
    _, _, test, _ = splits
    network = trained[0]
    top = _predict(network, test.with_columns(position=pl.lit(1, pl.Int32)))
    low = _predict(network, test.with_columns(position=pl.lit(8, pl.Int32)))
    # The simulator's slot 8 has under 2% of the rows, so its embedding is noisier than a booster's split.
    assert np.mean(low < top) > 0.85 and low.mean() < 0.8 * top.mean()


def test_ids_rare_or_new_share_hashed_rows_and_missing_ids_have_row_zero():
    vocabulary = IdVocabulary.fit(pl.Series("ad_id", ["a"] * 5 + ["b"] * 5 + ["rare"]), min_count=3, ids_per_bucket=8)
    assert vocabulary.ids == ["a", "b"] and vocabulary.size == 1 + 2 + 16
    values = pl.Series("ad_id", ["a", "b", "rare", "new", None, "new"])
    codes = vocabulary.encode(values)
    assert codes[:2].tolist() == [1, 2] and codes[4] == 0
    assert all(3 <= c < vocabulary.size for c in codes[[2, 3, 5]]) and codes[3] == codes[5]
    assert codes.tolist() == vocabulary.encode_list(values.to_list()).tolist()  # the serving form agrees
    assert IdVocabulary(vocabulary.ids, vocabulary.buckets).encode(values).tolist() == codes.tolist()  # stable hash


def test_saved_and_logged_network_predicts_exactly_like_the_trained_one(splits, trained, tmp_path):
    import mlflow

    from models.ad_click.deep import DeepClickModel
    from models.ad_click.model import log_deep_model, model_input

    _, _, test, _ = splits
    network = trained[0]
    sample = test.head(500)
    expected = _predict(network, sample)
    network.save(tmp_path / "network")
    np.testing.assert_allclose(_predict(DeepClickModel.load(tmp_path / "network"), sample), expected, rtol=1e-6)
    import dataclasses

    calibrated = dataclasses.replace(network, calibration=(0.8, -0.1))  # Platt scaling travels with the model
    calibrated.save(tmp_path / "calibrated")
    np.testing.assert_allclose(_predict(DeepClickModel.load(tmp_path / "calibrated"), sample), _predict(calibrated, sample),
                               rtol=1e-6)
    assert not np.allclose(_predict(calibrated, sample), expected)

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_deep_model(network, test.head(100))
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_allclose(loaded.predict(model_input(sample)), expected, rtol=1e-5)
    python_model = loaded.unwrap_python_model()
    assert python_model.kind == network.params.kind
    # The online path: the encoded matrix and the ids as lists, as the service passes them.
    ids = {c: sample[c].to_list() for c in ID_COLUMNS}
    np.testing.assert_allclose(python_model.predict_matrix(python_model.encoder.transform(sample), ids), expected, rtol=1e-5)


def test_fine_tuning_learns_fresh_rows_and_leaves_the_original_alone(splits, trained):
    _, _, test, _ = splits
    network = trained[0]
    days = test["ts"].dt.date()
    fresh, later = test.filter(days == days.min()), test.filter(days == days.max())
    before = _predict(network, later)
    tuned, curve = fine_tune(network, fresh, later)
    assert curve and curve[-1].epoch <= network.params.fine_tune_epochs
    np.testing.assert_array_equal(_predict(network, later), before)  # the champion is not changed in place
    assert tuned.encoder is network.encoder  # rows keep their meaning: fine-tuned and champion share the encoders
    y = fresh[LABEL].to_numpy()
    assert binary_report(y, _predict(tuned, fresh), 0.03)["log_loss"] < binary_report(y, _predict(network, fresh), 0.03)["log_loss"]


def test_the_logged_model_takes_rows_without_ids(splits, trained, tmp_path):
    """The ids are optional inputs: feature rows alone score as unknown users and ads, not as an error."""
    import mlflow

    from models.ad_click.features import FEATURE_COLUMNS
    from models.ad_click.model import log_deep_model, model_input

    _, _, test, _ = splits
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_deep_model(trained[0], test.head(100))
    p = mlflow.pyfunc.load_model(info.model_uri).predict(model_input(test.head(50).select(FEATURE_COLUMNS)))
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


def test_platt_scaling_is_kept_only_where_it_helps_the_rows_it_did_not_see(splits, trained):
    import dataclasses

    from models.ad_click.deep import calibrate

    _, validation, test, _ = splits
    original = trained[0]
    # A network whose log-odds are twice too steep: the scaling is kept, and brings them back near half.
    steep = dataclasses.replace(original)
    steep.logits = lambda matrix, codes, batch_size=65_536: 2.0 * original.logits(matrix, codes, batch_size)
    result = calibrate(steep, validation)
    assert result.kept and result.log_loss_after < result.log_loss_before and 0.35 < steep.calibration[0] < 0.65
    y = test[LABEL].to_numpy()
    uncalibrated = dataclasses.replace(steep, calibration=(1.0, 0.0))
    uncalibrated.logits = steep.logits
    assert binary_report(y, _predict(steep, test), 0.03)["log_loss"] < binary_report(y, _predict(uncalibrated, test), 0.03)["log_loss"]
    assert original.calibration == (1.0, 0.0)  # the module's network is left as trained


def test_platt_fit_recovers_a_known_scale_and_shift():
    from models.ad_click.deep import _platt

    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 200_000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(float)
    scale, shift = _platt(z, y)
    assert abs(scale - 0.5) < 0.02 and abs(shift + 1.0) < 0.03
