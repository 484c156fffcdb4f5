"""The epoch-end logic of a training run as Keras callbacks: validate (after precise BN), average weights,
checkpoint atomically, step the plateau schedule, stop early; and the run-wide progress bar.

Imports Keras at module level: only the training loop imports this module, when it starts fitting.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from edgefer.tfenv import configure_tensorflow

configure_tensorflow()

import keras  # noqa: E402 - after the environment that quiets TensorFlow

from edgefer.data import FaceSet  # noqa: E402
from edgefer.files import write_json  # noqa: E402
from edgefer.metrics import compute_metrics  # noqa: E402
from edgefer.runtime.keras import predict_probabilities  # noqa: E402
from edgefer.train.averaging import WeightAverage  # noqa: E402
from edgefer.train.config import TrainConfig, folds_into_average  # noqa: E402
from edgefer.train.distribute import local_view  # noqa: E402
from edgefer.train.history import append_history  # noqa: E402
from edgefer.train.keras_utils import current_lr, recalibrate_batchnorm, save_model  # noqa: E402
from edgefer.train.results import LoopState  # noqa: E402


class EpochEnd(keras.callbacks.Callback):
    """Validate (after precise BN), average weights, checkpoint atomically, step the plateau schedule,
    stop early. `state` is updated in place and written to state.json after every epoch."""

    def __init__(self, config: TrainConfig, run_dir: Path, state: LoopState, val: FaceSet, calibration, steps: int,
                 on_epoch=None, average: WeightAverage | None = None):
        super().__init__()
        self.config, self.run_dir, self.state, self.val = config, run_dir, state, val
        self.calibration, self.steps, self.on_epoch, self.average = calibration, steps, on_epoch, average

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        config, state = self.config, self.state
        logs = logs if logs is not None else {}
        seconds = time.perf_counter() - self.started
        state.train_seconds += seconds
        state.images_seen += self.steps * config.batch_size
        with local_view(self.model, write_back=config.precise_bn) as model:
            if config.precise_bn:
                recalibrate_batchnorm(model, self.calibration)
            probabilities = predict_probabilities(model, self.val.images)
        metrics = compute_metrics(probabilities, self.val.labels)
        logs.update(val_loss=metrics.loss, val_accuracy=metrics.accuracy, val_macro_f1=metrics.macro_f1)
        row = {"epoch": epoch + 1, "lr": current_lr(self.model.optimizer),
               "loss": float(logs.get("loss", float("nan"))),
               "accuracy": float(logs.get("accuracy", float("nan"))),
               "val_loss": metrics.loss, "val_accuracy": metrics.accuracy,
               "val_macro_f1": metrics.macro_f1, "seconds": round(seconds, 2)}
        improved = self._keep_if_best(metrics.accuracy, epoch, is_average=False)
        if self.average is not None:
            row["swa_val_accuracy"] = float("nan")
            if folds_into_average(config, epoch + 1):
                row["swa_val_accuracy"], average_is_best = self._validate_average(epoch)
                improved = improved or average_is_best
            logs["swa_val_accuracy"] = row["swa_val_accuracy"]
        append_history(self.run_dir / "history.csv", row)
        state.epoch = epoch + 1
        state.stop_wait = 0 if improved else state.stop_wait + 1
        if config.schedule == "plateau":
            self._step_plateau(metrics.loss)
        save_model(self.model, self.run_dir / "weights" / "last.keras")
        write_json(self.run_dir / "state.json", dataclasses.asdict(state))
        if self.on_epoch:
            self.on_epoch(row, improved)
        if state.stop_wait >= config.patience:
            self.model.stop_training = True

    def _keep_if_best(self, accuracy, epoch, is_average):
        state = self.state
        if accuracy <= state.best_score:
            return False
        state.best_score, state.best_epoch, state.best_is_average = accuracy, epoch + 1, is_average
        save_model(self.model, self.run_dir / "weights" / "best.keras")
        return True

    def _validate_average(self, epoch):
        """Fold this epoch's weights into the average, validate the average (with exact BN statistics)
        and keep it if it is the best so far; training then goes on from the epoch's own weights."""
        current = self.model.get_weights()
        self.average.add(current)
        self.average.save(self.run_dir / "weights" / "swa.npz")
        self.model.set_weights(self.average.weights_like(current))
        try:
            with local_view(self.model, write_back=True) as model:
                recalibrate_batchnorm(model, self.calibration)
                accuracy = compute_metrics(predict_probabilities(model, self.val.images), self.val.labels).accuracy
            return accuracy, self._keep_if_best(accuracy, epoch, is_average=True)
        finally:
            self.model.set_weights(current)

    def _step_plateau(self, val_loss):
        config, state = self.config, self.state
        if val_loss < state.plateau_best - 1e-4:
            state.plateau_best, state.plateau_wait = val_loss, 0
            return
        state.plateau_wait += 1
        if state.plateau_wait >= config.plateau_patience:
            lr = current_lr(self.model.optimizer)
            self.model.optimizer.learning_rate.assign(max(lr * config.plateau_factor, config.min_lr))
            state.plateau_wait = 0


class RunProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress printer, counting "Epoch N/total" against the whole run rather than the phase that
    one fit() call trains (the augmented phase of a --clean-epochs run ends before the run does)."""

    def __init__(self, total_epochs: int):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.total_epochs
