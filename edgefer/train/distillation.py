"""Knowledge distillation from a larger teacher that edgefer trained (`edgefer train --teacher PATH`).

Offline, soft-label distillation: the teacher's class probabilities for every training face (averaged with
its mirror image, so the target does not depend on the random flip) are softened with temperature T and
mixed with the one-hot label. The student then trains on those targets with the usual cross-entropy, in
the same augmented pipeline; the teacher runs once before training, not in every step, which keeps a
2-core epoch as fast as without it. Several teachers (`--teacher A --teacher B`) act as an ensemble: their
flip-averaged probabilities are averaged before softening.

    target = (1 - weight) * one_hot(label) + weight * softmax(log p_teacher / T)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.labels import NUM_CLASSES


def check_options(weight: float, temperature: float) -> None:
    if not 0 <= weight <= 1:
        raise EdgeferError(f"--distill-weight {weight}: expected a number in [0, 1]")
    if not temperature > 0:
        raise EdgeferError(f"--distill-temperature {temperature}: expected a positive number")


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 spreads the teacher's mass over the classes it finds similar."""
    check_options(0.0, temperature)
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def soft_targets(labels: np.ndarray, teacher_probabilities: np.ndarray, weight: float,
                 temperature: float) -> np.ndarray:
    check_options(weight, temperature)
    one_hot = np.eye(NUM_CLASSES)[labels]
    return ((1 - weight) * one_hot + weight * soften(teacher_probabilities, temperature)).astype(np.float32)


def load_teacher(path: str | Path, input_size: int):
    from edgefer.models import load_face_model

    try:
        teacher = load_face_model(path, "distil from")
    except (FileNotFoundError, ValueError) as error:
        raise type(error)(f"--teacher {error}") from None
    if tuple(teacher.input_shape) != (None, input_size, input_size, 1):
        raise EdgeferError(f"--teacher {path}: takes {teacher.input_shape}; expected (None, {input_size}, "
                         f"{input_size}, 1) like the student")
    return teacher


def teacher_probabilities(teachers: list, images_u8: np.ndarray) -> np.ndarray:
    """The teachers' mean probabilities, each averaged over the face and its mirror image."""
    from edgefer.runtime.keras import predict_probabilities

    mirrored_u8 = np.ascontiguousarray(images_u8[:, :, ::-1])
    total = np.zeros((len(images_u8), NUM_CLASSES))
    for teacher in teachers:
        total += predict_probabilities(teacher, images_u8) + predict_probabilities(teacher, mirrored_u8)
    return total / (2 * len(teachers))
