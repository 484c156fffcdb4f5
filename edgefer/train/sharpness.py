"""Sharpness-aware minimisation (SAM; Foret et al., 2021) for `edgefer train --sam-rho RHO`.

Each step takes the gradient g at the weights w, moves to the worst nearby point w + rho * g / ||g|| (one
ascent step, ||.|| the global L2 norm over all trainable weights), takes the gradient there and lets the
optimizer apply that second gradient to w. The model is pushed toward minima that stay low in a rho-ball,
which is reported to help most when labels are noisy, as FER-2013's are. A step costs two forward and
backward passes.

Keras 3 has no SAM, so `enable_sharpness_aware` replaces the model's `train_step` with one written per
backend (TensorFlow: variables and a gradient tape; JAX: the stateless step). Loss, metrics and the batch
norm statistics come from the first pass, at the weights the model really has; the second pass only
supplies the gradient. The replacement lives on the model object, not in its saved file, so a resumed run
installs it again.
"""

from __future__ import annotations

import types

from edgefer.errors import EdgeferError


def check_rho(rho: float) -> None:
    if not rho >= 0:
        raise EdgeferError(f"--sam-rho {rho}: expected a radius >= 0 (0 turns SAM off; 0.05 is usual)")


def enable_sharpness_aware(model, rho: float) -> None:
    """Make `model.fit` take SAM steps of radius `rho` (call after compile; rho 0 leaves the model as is)."""
    import keras

    check_rho(rho)
    if rho == 0:
        return
    steps = {"tensorflow": _tensorflow_step, "jax": _jax_step}
    backend = keras.backend.backend()
    if backend not in steps:
        raise EdgeferError(f"--sam-rho: supported on the tensorflow and jax backends, not {backend!r}")
    model.train_step = types.MethodType(steps[backend](rho), model)
    model.train_function = None  # a function compiled before would still take plain steps


def _ascent(weights, gradients, rho, ops):
    """w + rho * g / ||g||, the point of highest loss (to first order) within radius rho."""
    norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in gradients))
    scale = rho / (norm + 1e-12)
    return [w + scale * g for w, g in zip(weights, gradients)]


def _tensorflow_step(rho: float):
    import tensorflow as tf
    from keras import ops
    from keras.src.trainers.data_adapters import data_adapter_utils

    def train_step(self, data):
        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        weights = self.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        gradients = tape.gradient(loss, weights)

        saved_weights = [tf.identity(w.value) for w in weights]
        saved_statistics = [tf.identity(v.value) for v in self.non_trainable_variables]
        for w, moved in zip(weights, _ascent(saved_weights, gradients, rho, ops)):
            w.assign(moved)
        with tf.GradientTape() as tape:
            perturbed_loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True),
                                               sample_weight=sample_weight, training=True)
        sharp_gradients = tape.gradient(perturbed_loss, weights)
        for variable, value in zip(list(weights) + list(self.non_trainable_variables),
                                   saved_weights + saved_statistics):
            variable.assign(value)

        self.optimizer.apply_gradients(zip(sharp_gradients, weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    return train_step


def _jax_step(rho: float):
    import jax
    from keras import ops
    from keras.src.trainers.data_adapters import data_adapter_utils

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        loss_and_gradients = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)

        def at(weights):
            return loss_and_gradients(weights, non_trainable, metrics_variables, x, y, sample_weight,
                                      training=True, optimizer_variables=optimizer_variables)

        (_, (loss, y_pred, new_non_trainable, new_metrics_variables)), gradients = at(trainable)
        _, sharp_gradients = at(_ascent(trainable, gradients, rho, ops))
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, sharp_gradients, trainable)
        logs, new_metrics_variables = self._update_metrics_variables(
            new_metrics_variables, loss, x, y, y_pred, sample_weight)
        return logs, (trainable, new_non_trainable, optimizer_variables, new_metrics_variables)

    return train_step
