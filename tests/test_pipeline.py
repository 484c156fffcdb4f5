"""Augmentation pipeline: shapes, value range, full batches only, class weights, mixup."""

from __future__ import annotations

import numpy as np

from edgefer.pipeline import (
    NO_AUGMENT,
    AugmentConfig,
    class_weights,
    make_train_dataset,
)


def test_batches_are_full_scaled_and_augmented(fer_train):
    images, labels = fer_train.images[:1000], fer_train.labels[:1000]
    batches = list(make_train_dataset(images, labels, 64, AugmentConfig(), seed=1))
    assert len(batches) == 1000 // 64  # the uneven remainder is dropped, never a short batch
    for x, y in batches:
        assert x.shape == (64, 48, 48, 1) and y.shape == (64, 7)
        assert -1.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
        np.testing.assert_allclose(np.sum(y, axis=1), 1.0)
    plain = next(iter(make_train_dataset(images[:64], labels[:64], 64, NO_AUGMENT, seed=1)))[0]
    assert plain.shape == (64, 48, 48, 1)
    # without augmentation a batch is exactly the scaled faces (shuffled); with it, it differs
    scaled = np.sort(images[:64].astype(np.float32).ravel() / 127.5 - 1)
    np.testing.assert_allclose(np.sort(np.asarray(plain).ravel()), scaled, atol=1e-6)
    augmented = next(iter(make_train_dataset(images[:64], labels[:64], 64, AugmentConfig(), seed=1)))[0]
    assert not np.allclose(np.sort(np.asarray(augmented).ravel()), scaled, atol=1e-3)


def test_class_weights_and_mixup(fer_train):
    weights = class_weights(fer_train.labels)
    counts = fer_train.class_counts()
    np.testing.assert_allclose(weights * counts, len(fer_train) / 7, rtol=1e-5)
    assert weights[1] > weights[3]  # disgust is rare, happy is common
    config = AugmentConfig(0, 0, 0, False, mixup_alpha=0.4)
    x, y, w = next(iter(make_train_dataset(fer_train.images[:128], fer_train.labels[:128], 128, config, 0, weights)))
    y = np.asarray(y)
    assert x.shape == (128, 48, 48, 1) and w.shape == (128,)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    assert (y.max(axis=1) < 0.999).any()  # some labels are really mixed
