import numpy as np
import pytest

from models.metrics import binary_report, expected_calibration_error, log_loss, normalized_cross_entropy


def test_background_predictor_has_nce_one():
    y = np.array([0, 0, 0, 1] * 50)
    assert normalized_cross_entropy(y, np.full(len(y), 0.25), background_rate=0.25) == pytest.approx(1.0)


def test_informative_predictor_beats_background_and_wrong_one_loses():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.3, 20_000)
    y = (rng.random(len(p)) < p).astype(int)
    assert normalized_cross_entropy(y, p, y.mean()) < 0.95
    assert normalized_cross_entropy(y, 1 - p, y.mean()) > 1.0


def test_log_loss_matches_the_definition():
    y = np.array([1, 0])
    p = np.array([0.8, 0.4])
    assert log_loss(y, p) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_calibration_error_is_zero_for_calibrated_bins_and_large_for_shifted_ones():
    y = np.array([0, 1] * 500)
    assert expected_calibration_error(y, np.full(1000, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(1000, 0.9)) == pytest.approx(0.4)


def test_report_has_every_metric_and_handles_one_class():
    report = binary_report(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9]), 0.5)
    assert report["roc_auc"] == 1.0 and report["pr_auc"] == 1.0
    assert np.isnan(binary_report(np.zeros(4), np.full(4, 0.1), 0.1)["roc_auc"])
