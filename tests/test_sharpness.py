"""SAM (`--sam-rho`): one step equals the textbook update, on both backends edgefer trains with."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefer.train.sharpness import check_rho


def _tiny_model(seed):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(6, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy")
    return model


def _plain_step(weights, x, y):
    """Weights after one plain SGD step from `weights` and the gradient that step followed."""
    model = _tiny_model(0)
    model.set_weights(weights)
    model.train_on_batch(x, y)
    after = model.get_weights()
    gradient = [(before - moved) / 0.1 if trainable else None
                for before, moved, trainable in zip(weights, after, _trainable_mask(model))]
    return after, gradient


def _trainable_mask(model):
    return [variable.trainable for variable in model.weights]  # the order of get_weights()


def check_one_sam_step(rho=0.3):
    """SAM from w: w - lr * grad(w + rho * g / ||g||), with the batch-norm statistics of the step at w."""
    from edgefer.train.sharpness import enable_sharpness_aware

    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    model = _tiny_model(0)
    start = model.get_weights()
    trainable = _trainable_mask(model)

    plain_after, gradient = _plain_step(start, x, y)
    norm = np.sqrt(sum(float((g ** 2).sum()) for g in gradient if g is not None))
    ascent = [w + rho * g / norm if g is not None else w for w, g in zip(start, gradient)]
    _, sharp_gradient = _plain_step(ascent, x, y)
    # trainable weights: a step along the gradient at the ascent point; batch-norm statistics: the plain step's
    expected = [w - 0.1 * g if g is not None else statistic
                for w, g, statistic in zip(start, sharp_gradient, plain_after)]

    enable_sharpness_aware(model, rho)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    got = model.get_weights()
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-5)
    # the step really differs from a plain one, or the comparison above proves nothing
    assert max(np.abs(a - b).max() for a, b, t in zip(got, plain_after, trainable) if t) > 1e-3


def test_sam_step_matches_the_textbook_update_on_tensorflow():
    check_one_sam_step()


def test_sam_step_matches_the_textbook_update_on_jax():
    pytest.importorskip("jax")
    script = ("import os, sys; os.environ['KERAS_BACKEND'] = 'jax'; sys.modules['tensorflow'] = None; "
              f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
              "import test_sharpness as t; t.check_one_sam_step(); "
              "import keras; assert keras.backend.backend() == 'jax'")
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_sam_rho_must_not_be_negative():
    with pytest.raises(ValueError, match=r"--sam-rho -0.1: expected a radius >= 0"):
        check_rho(-0.1)
