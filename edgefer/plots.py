"""PNG plots people would rather look at than read: confusion matrix, training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.files import atomic_path
from edgefer.labels import CLASS_NAMES
from edgefer.metrics import Metrics


def plots_available() -> bool:
    """matplotlib is part of the train extra; a device's base install writes no PNGs."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(metrics: Metrics, path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG (the paper's Fig. 12), written atomically."""
    plt = _pyplot()
    matrix = metrics.normalised_confusion()
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=120)
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=45, ha="right")
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center",
                color="white" if value > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {metrics.accuracy:.3f}, macro-F1 {metrics.macro_f1:.3f}")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    return Path(path)


def plot_history(history: list[dict], path: str | Path) -> Path:
    """Accuracy and loss per epoch for train and validation (the paper's training curves)."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation"),
                       ("swa_val_accuracy", "validation, weight average")):
        if any(key in row for row in history):  # the average's points: markers, it may skip epochs
            acc_ax.plot(epochs, [row.get(key, float("nan")) for row in history], label=label,
                        marker="o" if key.startswith("swa") else None, markersize=3)
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        loss_ax.plot(epochs, [row.get(key) for row in history], label=label)
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (train includes L2)")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    return Path(path)
