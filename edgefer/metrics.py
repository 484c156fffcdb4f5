"""Classification metrics, numpy only: accuracy, per-class accuracy, macro-F1, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from edgefer.labels import CLASS_NAMES, NUM_CLASSES


@dataclass
class Metrics:
    accuracy: float
    macro_f1: float
    loss: float
    per_class_accuracy: list[float]
    per_class_f1: list[float]
    confusion: list[list[int]]
    samples: int

    def as_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "loss": self.loss,
            "samples": self.samples,
            "per_class_accuracy": dict(zip(CLASS_NAMES, self.per_class_accuracy)),
            "per_class_f1": dict(zip(CLASS_NAMES, self.per_class_f1)),
            "confusion": self.confusion,
        }

    def normalised_confusion(self) -> np.ndarray:
        matrix = np.asarray(self.confusion, dtype=np.float64)
        return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    return np.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))


def compute_metrics(probabilities: np.ndarray, labels: np.ndarray) -> Metrics:
    """Accuracy, per-class accuracy (recall), per-class and macro F1, cross-entropy, confusion counts."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = probabilities.shape[1]
    matrix = confusion_matrix(labels, probabilities.argmax(axis=1), num_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    recall = np.divide(true_positive, support, out=np.zeros(num_classes), where=support > 0)
    precision = np.divide(true_positive, predicted, out=np.zeros(num_classes), where=predicted > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(num_classes), where=denominator > 0)
    present = support > 0
    return Metrics(
        accuracy=float(true_positive.sum() / max(len(labels), 1)),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        loss=cross_entropy(probabilities, labels),
        per_class_accuracy=[float(v) for v in recall],
        per_class_f1=[float(v) for v in f1],
        confusion=matrix.tolist(),
        samples=int(len(labels)),
    )


def format_metrics(metrics: Metrics, title: str = "") -> str:
    """A plain-text report: headline numbers, per-class table, normalised confusion matrix."""
    lines = [title] if title else []
    lines.append(f"accuracy {metrics.accuracy:.4f}   macro-F1 {metrics.macro_f1:.4f}   "
                 f"loss {metrics.loss:.4f}   samples {metrics.samples}")
    lines.append("")
    lines.append(f"{'class':<10}{'accuracy':>10}{'F1':>8}{'support':>9}")
    support = np.asarray(metrics.confusion).sum(axis=1)
    for name, acc, f1, n in zip(CLASS_NAMES, metrics.per_class_accuracy, metrics.per_class_f1, support):
        lines.append(f"{name:<10}{acc:>10.3f}{f1:>8.3f}{int(n):>9}")
    lines.append("")
    lines.append("confusion (rows: true, columns: predicted, row-normalised)")
    lines.append(" " * 10 + "".join(f"{name[:7]:>8}" for name in CLASS_NAMES))
    for name, row in zip(CLASS_NAMES, metrics.normalised_confusion()):
        lines.append(f"{name:<10}" + "".join(f"{value:>8.2f}" for value in row))
    return "\n".join(lines)
