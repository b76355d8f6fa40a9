"""Offline metrics for probabilistic binary classifiers (click, harmful, connection...)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

EPS = 1e-7


def row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(y, dtype=np.float64)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(row_log_loss(y, p)))


def normalized_cross_entropy(y: np.ndarray, p: np.ndarray, background_rate: float) -> float:
    """NCE: the model's log loss over the log loss of always predicting the background (training) rate.

    Below 1 beats the background predictor; the book's metric for ad click prediction (He et al. 2014).
    """
    background = np.full(len(y), background_rate)
    return log_loss(y, p) / log_loss(y, background)


def nce_units(y: np.ndarray, p: np.ndarray, background_rate: float) -> np.ndarray:
    """Each row's share of the NCE (their mean is the NCE): the units a paired bootstrap resamples."""
    return row_log_loss(y, p) / log_loss(y, np.full(len(y), background_rate))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 20) -> float:
    """Weighted mean |mean(p) - mean(y)| over equal-count bins of p."""
    order = np.argsort(p, kind="stable")
    chunks = np.array_split(order, bins)
    n = len(p)
    return float(sum(len(c) / n * abs(np.mean(p[c]) - np.mean(y[c])) for c in chunks if len(c)))


def binary_report(y: np.ndarray, p: np.ndarray, background_rate: float) -> dict[str, float]:
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    two_classes = 0 < y.sum() < len(y)
    return {
        "nce": normalized_cross_entropy(y, p, background_rate),
        "log_loss": log_loss(y, p),
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if two_classes else float("nan"),
        "calibration_error": expected_calibration_error(y, p),
        "mean_prediction": float(p.mean()),
        "positive_rate": float(y.mean()),
    }
