"""Augmentation pipeline: shapes, value range, full batches only, class weights, mixup."""

from __future__ import annotations

import numpy as np

from edgefer.train.pipeline import (
    NO_AUGMENT,
    AugmentConfig,
    _py_batches,
    class_weights,
    make_train_dataset,
    random_affine,
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


def _sharpness(x) -> float:
    import cv2

    return float(np.mean([np.abs(cv2.Laplacian(np.asarray(f, np.float32), cv2.CV_32F)).mean() for f in x]))


def test_augmentation_blurs_little_and_is_seeded_per_epoch(fer_train):
    """One warp per face: the Keras layers it replaced resampled three times (sharpness 0.40 of the
    faces'); one bilinear warp keeps 0.64 on FER-2013. Same --seed, same batches; each epoch new ones."""
    images, labels = fer_train.images[:512], fer_train.labels[:512]
    dataset = make_train_dataset(images, labels, 128, AugmentConfig(), seed=5)
    first = np.concatenate([np.asarray(x)[..., 0] for x, _ in dataset])
    second = np.concatenate([np.asarray(x)[..., 0] for x, _ in dataset])
    ratio = _sharpness(first) / _sharpness(images.astype(np.float32) / 127.5 - 1)
    assert 0.55 < ratio < 0.9, ratio
    again = np.concatenate([np.asarray(x)[..., 0] for x, _ in make_train_dataset(images, labels, 128, AugmentConfig(), seed=5)])
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, second)


def test_endless_dataset_reshuffles_every_epoch_behind_one_iterator(fer_train):
    """What `edgefer train` feeds fit(steps_per_epoch=15): epoch after epoch, each a new permutation of
    960 of the 1,000 faces (a different remainder dropped) and newly augmented; the first is the finite one."""
    images, labels = fer_train.images[:1000].copy(), fer_train.labels[:1000]
    images[:, 0, 0], images[:, 0, 1] = np.divmod(np.arange(1000), 256)
    row_of = {face.tobytes(): i for i, face in enumerate(images)}  # FER-2013 repeats faces: mark each row

    def rows(batches) -> list[int]:
        faces = np.concatenate([np.asarray(x)[..., 0] for x, _ in batches])
        return [row_of[np.rint((face + 1) * 127.5).astype(np.uint8).tobytes()] for face in faces]

    batches = iter(make_train_dataset(images, labels, 64, NO_AUGMENT, seed=2, endless=True))
    epochs = [rows(next(batches) for _ in range(1000 // 64)) for _ in range(3)]
    assert all(len(set(epoch)) == 960 for epoch in epochs)
    assert epochs[0] != epochs[1] != epochs[2] and set(epochs[0]) != set(epochs[1])
    assert rows(make_train_dataset(images, labels, 64, NO_AUGMENT, seed=2)) == epochs[0]
    augmented = iter(make_train_dataset(images[:128], labels[:128], 128, AugmentConfig(), seed=2, endless=True))
    first, second = (np.sort(np.asarray(next(augmented)[0]).ravel()) for _ in range(2))
    assert not np.allclose(first, second)


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


def test_opencv_affine_warp(fer_train):
    """Every backend augments with one OpenCV warp per face."""
    faces = fer_train.images[:64]
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(random_affine(faces, NO_AUGMENT, rng), faces.astype(np.float32))
    flat = np.full((8, 48, 48), 77, np.uint8)  # edge pixels fill the border: a flat face stays flat
    np.testing.assert_allclose(random_affine(flat, AugmentConfig(), rng), 77.0, atol=1e-3)
    flipped = random_affine(faces, AugmentConfig(0, 0, 0, True, 0), rng)
    mirrored = [np.array_equal(f, x[:, ::-1]) for f, x in zip(flipped, faces.astype(np.float32))]
    same = [np.array_equal(f, x) for f, x in zip(flipped, faces.astype(np.float32))]
    assert all(m or s for m, s in zip(mirrored, same)) and 10 < sum(mirrored) < 54
    moved = random_affine(faces, AugmentConfig(10.0, 0.1, 0.1, False, 0), rng)
    correlation = [np.corrcoef(m.ravel(), f.ravel())[0, 1] for m, f in zip(moved, faces.astype(np.float32))]
    assert np.median(correlation) > 0.5 and not np.allclose(moved, faces)  # moved, still the same face


def test_numpy_batches_for_other_backends(fer_train):
    images, labels = fer_train.images[:200], fer_train.labels[:200]
    targets = np.eye(7, dtype=np.float32)[labels]
    batches = _py_batches(images, labels, targets, 64, AugmentConfig(), 0, None)
    assert len(batches) == 3  # 200 // 64: the remainder is dropped here too
    x, y = batches[0]
    assert x.shape == (64, 48, 48, 1) and x.dtype == np.float32 and y.shape == (64, 7)
    assert -1.0 <= x.min() and x.max() <= 1.0
    again = _py_batches(images, labels, targets, 64, AugmentConfig(), 0, None)
    for (x1, y1), (x2, y2) in zip(batches, again):   # the same seed gives the same batches, augmentation included
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    other = _py_batches(images, labels, targets, 64, AugmentConfig(), 1, None)
    assert not np.array_equal(other[0][0], batches[0][0])   # another seed: another order and augmentation
