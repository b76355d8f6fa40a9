"""Evaluation plots as PNG bytes: ROC, precision-recall, calibration, feature importance."""

from __future__ import annotations

import io

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    _figure().close(fig)
    return buffer.getvalue()


def classifier_curves(y: np.ndarray, scores: dict[str, np.ndarray], bins: int = 15) -> dict[str, bytes]:
    """ROC, PR and calibration curves of several scorers on the same labels, one PNG each."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _figure()
    plots = {}
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend()
    plots["roc.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=name)
    ax.axhline(np.mean(y), linestyle=":", color="grey", label="positive rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax.legend()
    plots["precision_recall.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    top = 0.0
    for name, p in scores.items():
        chunks = np.array_split(np.argsort(p, kind="stable"), bins)
        mean_p = [p[c].mean() for c in chunks]
        mean_y = [y[c].mean() for c in chunks]
        top = max(top, *mean_p, *mean_y)
        ax.plot(mean_p, mean_y, marker="o", label=name)
    ax.plot([0, top], [0, top], ":", color="grey")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration (equal-count bins)")
    ax.legend()
    plots["calibration.png"] = _png(fig)
    return plots


def feature_importance(importance: dict[str, float], top: int = 20) -> bytes:
    plt = _figure()
    items = sorted(importance.items(), key=lambda kv: kv[1])[-top:]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(xlabel="total gain", title="Feature importance")
    return _png(fig)


def bar_chart(values: dict[str, float], title: str, threshold: float | None = None) -> bytes:
    plt = _figure()
    items = list(values.items())[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items])
    if threshold is not None:
        ax.axvline(threshold, color="red", linestyle=":", label=f"threshold {threshold}")
        ax.legend()
    ax.set(title=title)
    return _png(fig)


def line_chart(x: list, series: dict[str, list[float]], title: str, xlabel: str, ylabel: str, log_x: bool = False) -> bytes:
    """One line per series over the same x (recall@k curves, loss curves)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, values in series.items():
        ax.plot(x[: len(values)], values, marker="o", markersize=3, label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)
