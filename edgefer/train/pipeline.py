"""Training input pipelines: augmentation, mixup and class weights.

Augmentation is one random affine warp per face in OpenCV (`random_affine`) on every backend: inside a
`tf.data` pipeline under TensorFlow, in a `keras.utils.PyDataset` under JAX (on a lent GPU). Keras'
preprocessing layers were used before: applied in turn, their three bilinear resamplings blurred the
faces (mean |Laplacian| 19.5 against 31.8 for one warp and 49.3 unaugmented; benchmarks/augment_blur.py), so models trained under
TensorFlow and under JAX saw different data.
Every training batch is full: the remainder is dropped after each epoch's reshuffle, because
TensorFlow's oneDNN kernels crash on an uneven last batch when training mini_xception.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.labels import NUM_CLASSES
from edgefer.options import option


@dataclass(frozen=True)
class AugmentConfig:
    rotation_degrees: float = option(10.0, min=0, max=180, flag="--rotation",
                                     help="Augmentation: largest random rotation, degrees.")
    shift: float = option(0.1, min=0, max=0.5, help="Augmentation: largest random shift, fraction of the size.")
    zoom: float = option(0.1, min=0, max=0.5, help="Augmentation: largest random zoom in or out, fraction.")
    horizontal_flip: bool = option(True, flag="--flip/--no-flip", help="Augmentation: random horizontal flips.")
    mixup_alpha: float = option(0.0, min=0, flag="--mixup", help="Mixup Beta(alpha, alpha); 0 turns it off.")

    @property
    def enabled(self) -> bool:
        return bool(self.rotation_degrees or self.shift or self.zoom or self.horizontal_flip)


NO_AUGMENT = AugmentConfig(0.0, 0.0, 0.0, False, 0.0)


def class_weights(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Balanced weights n / (k * count_c), so the weighted class totals are equal."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0).astype(np.float32)


def steps_per_epoch(samples: int, batch_size: int) -> int:
    steps = samples // batch_size
    if steps == 0:
        raise EdgeferError(f"batch size {batch_size} is larger than the {samples} training samples")
    return steps


def make_train_dataset(images, labels, batch_size, augment: AugmentConfig, seed=0, weights=None, targets=None,
                       endless: bool = False, shard: tuple[int, int] = (0, 1)):
    """Batches of (x in [-1, 1] float32 NHWC, y[, sample weight]), all exactly `batch_size`; with `shard`
    (process, processes) this process's slice of each (JAX on several hosts).

    y is the one-hot label, or the row of `targets` (N, classes) when given (distillation's soft targets).
    `endless` (TensorFlow): repeat the epochs, each reshuffled and newly augmented, behind one iterator, for
    `fit(steps_per_epoch=...)`. A fresh iterator per epoch costs more than the epoch's images: destroying
    the last one waits for tf.data's pool threads, which on this machine idled the process for ~35 s at half
    of the 42 s epochs.
    """
    import keras

    steps_per_epoch(len(labels), batch_size)
    if targets is None:
        targets = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    targets = np.asarray(targets, np.float32)
    if targets.shape != (len(labels), NUM_CLASSES):
        raise EdgeferError(f"targets of shape {targets.shape}: expected ({len(labels)}, {NUM_CLASSES})")
    if keras.backend.backend() == "tensorflow":
        return _tf_dataset(images, labels, targets, batch_size, augment, seed, weights, endless)
    return _py_batches(images, labels, targets, batch_size, augment, seed, weights, shard)


def _tf_dataset(images, labels, targets, batch_size, augment, seed, weights, endless=False):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32), targets))
    ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    # one warp seed per batch, new every epoch, the same sequence for the same --seed
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, batch_seeds)
    if endless:
        ds = ds.repeat()
    weight_table = tf.constant(weights) if weights is not None else None

    def warp(faces, batch_seed):
        return random_affine(faces, augment, np.random.default_rng(int(batch_seed)))

    def transform(batch, batch_seed):
        x, y, one_hot = batch
        if augment.enabled:
            x = tf.numpy_function(warp, [x, batch_seed], tf.float32, stateful=False)
            x.set_shape((batch_size, *images.shape[1:]))
        x = tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 255.0)[..., None] / 127.5 - 1.0  # interpolation overshoots
        sample_weight = tf.gather(weight_table, y) if weight_table is not None else None
        if augment.mixup_alpha > 0:
            x, one_hot, sample_weight = _tf_mixup(x, one_hot, sample_weight, augment.mixup_alpha)
        return (x, one_hot) if sample_weight is None else (x, one_hot, sample_weight)

    return ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _tf_mixup(x, y, w, alpha):
    import tensorflow as tf

    batch = tf.shape(x)[0]
    a = tf.random.gamma([batch], alpha)
    b = tf.random.gamma([batch], alpha)
    lam = a / (a + b)
    order = tf.random.shuffle(tf.range(batch))
    lam_x = tf.reshape(lam, [-1, 1, 1, 1])
    lam_y = tf.reshape(lam, [-1, 1])
    x = lam_x * x + (1 - lam_x) * tf.gather(x, order)
    y = lam_y * y + (1 - lam_y) * tf.gather(y, order)
    if w is not None:
        w = lam * w + (1 - lam) * tf.gather(w, order)
    return x, y, w


def _numpy_mixup(x, y, w, alpha, rng):
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    order = rng.permutation(len(x))
    x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[order]
    y = lam[:, None] * y + (1 - lam[:, None]) * y[order]
    if w is not None:
        w = lam * w + (1 - lam) * w[order]
    return x, y, w


def random_affine(images: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random rotation (± rotation_degrees), shift (± shift of the size), zoom (1 ± zoom) and horizontal
    flip of (N, S, S) faces, as one bilinear warp per face (one resampling: the least blur).

    Edge pixels fill the border. Returns float32 (N, S, S) in pixel units.
    """
    import cv2

    count, height, width = images.shape
    out = np.empty((count, height, width), np.float32)
    angles = rng.uniform(-config.rotation_degrees, config.rotation_degrees, count)
    scales = 1.0 + rng.uniform(-config.zoom, config.zoom, count)
    shifts = rng.uniform(-config.shift, config.shift, (count, 2)) * (width, height)
    flips = rng.random(count) < 0.5 if config.horizontal_flip else np.zeros(count, bool)
    center = ((width - 1) / 2.0, (height - 1) / 2.0)
    for i in range(count):
        matrix = cv2.getRotationMatrix2D(center, float(angles[i]), float(scales[i]))
        matrix[:, 2] += shifts[i]
        face = cv2.warpAffine(images[i].astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        out[i] = face[:, ::-1] if flips[i] else face
    return out


def _py_batches(images, labels, targets, batch_size, augment, seed, weights, shard=(0, 1)):
    """The same batches for non-TensorFlow backends (JAX on a lent GPU) as a keras PyDataset.

    Augmentation runs in OpenCV on worker threads: Keras' preprocessing layers run op by op outside
    tf.data and capped a GPU at about 55 ms per batch whatever the model.
    """
    import keras

    class PyBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=min(4, os.cpu_count() or 1), use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(labels))
            self.epoch = 0

        def __len__(self):
            return len(labels) // batch_size

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(labels))
            self.epoch += 1

        def __getitem__(self, index):
            rows = self.order[index * batch_size:(index + 1) * batch_size]   # the global batch
            part, parts = shard   # on several hosts: this process's slice of it (one order, one seed: all agree)
            rows = rows[part * len(rows) // parts:(part + 1) * len(rows) // parts]
            rng = np.random.default_rng((seed, self.epoch, index))  # one per batch: worker threads share none
            x = random_affine(images[rows], augment, rng) if augment.enabled else images[rows].astype(np.float32)
            x = (np.clip(x, 0.0, 255.0) / 127.5 - 1.0)[..., None]
            y = targets[rows]
            w = weights[labels[rows]] if weights is not None else None
            if augment.mixup_alpha > 0:
                x, y, w = _numpy_mixup(x, y, w, augment.mixup_alpha, rng)
            return (x, y) if w is None else (x, y, w)

    return PyBatches()
