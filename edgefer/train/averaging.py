"""Stochastic weight averaging (Izmailov et al., 2018): the running mean of the weights at each epoch end.

Averaging the end-of-epoch weights of a schedule held at a constant learning rate lands nearer the centre
of the flat region the optimizer wanders around than any single epoch does. Batch-norm statistics of
an average are not the average of the statistics, so the caller recomputes them
(`training.recalibrate_batchnorm`) before the averaged model is evaluated or saved.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.files import atomic_path


class WeightAverage:
    """Running mean of a list of weight arrays (model.get_weights() order)."""

    def __init__(self, mean: list[np.ndarray] | None = None, count: int = 0):
        self.mean = mean
        self.count = count

    def add(self, weights: list[np.ndarray]) -> None:
        """Fold one more snapshot into the mean. Integer state (e.g. seed counters) keeps its latest value."""
        weights = [np.asarray(w) for w in weights]
        self.count += 1
        if self.mean is None:
            self.mean = [w.astype(np.float64) if _is_float(w) else w.copy() for w in weights]
            return
        if len(weights) != len(self.mean):
            raise EdgeferError(f"weight average holds {len(self.mean)} arrays, got a snapshot of {len(weights)}")
        for index, (mean, new) in enumerate(zip(self.mean, weights)):
            if mean.shape != new.shape:
                raise EdgeferError(f"weight {index}: the average is {mean.shape}, the snapshot {new.shape}")
            if _is_float(new):
                mean += (new - mean) / self.count
            else:
                self.mean[index] = new.copy()

    def weights_like(self, reference: list[np.ndarray]) -> list[np.ndarray]:
        """The mean in the dtypes of `reference` (what model.set_weights expects)."""
        return [mean.astype(np.asarray(ref).dtype) for mean, ref in zip(self.mean, reference)]

    def save(self, path: str | os.PathLike) -> Path:
        with atomic_path(path) as temp:
            with open(temp, "wb") as handle:
                np.savez(handle, count=self.count, **{f"w{index}": w for index, w in enumerate(self.mean)})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WeightAverage":
        with np.load(path) as stored:
            arrays = [stored[f"w{index}"] for index in range(len(stored.files) - 1)]
            return cls(arrays, int(stored["count"]))


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating)
