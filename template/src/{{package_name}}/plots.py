"""Figures logged with runs and reports. Matplotlib without a display."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    RocCurveDisplay.from_predictions(y_true, scores, ax=ax, name="holdout")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    return _done(fig, "ROC curve")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, ax=ax, colorbar=False)
    return _done(fig, "Confusion matrix (holdout)")


def bars(values: dict[str, float], title: str, threshold: float | None = None) -> Figure:
    names = sorted(values, key=values.get)
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    ax.barh(names, [values[n] for n in names], color="#4C72B0")
    if threshold is not None:
        ax.axvline(threshold, color="#C44E52", linestyle="--", label=f"threshold {threshold:g}")
        ax.legend(loc="lower right")
    return _done(fig, title)


def _done(fig: Figure, title: str) -> Figure:
    fig.axes[0].set_title(title)
    fig.tight_layout()
    return fig
