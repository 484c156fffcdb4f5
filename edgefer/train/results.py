"""What a training run records besides weights: the loop's counters (`LoopState`, what --resume needs)
and the result of a run (`TrainResult`). A leaf."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class LoopState:
    """What --resume needs besides the weights and optimizer: counters of the schedule and stopping."""

    epoch: int = 0                      # epochs completed
    best_score: float = -1.0            # best validation accuracy
    best_epoch: int = 0
    best_is_average: bool = False       # the best checkpoint is the weight average, not a single epoch
    plateau_best: float = float("inf")  # best validation loss seen by the plateau schedule
    plateau_wait: int = 0
    stop_wait: int = 0
    train_seconds: float = 0.0
    images_seen: int = 0


@dataclass
class TrainResult:
    run_dir: Path | None              # None: a multi-host process other than 0 (it writes no run)
    best_model: Path | None
    metrics: dict[str, dict]
    epochs_run: int
    seconds: float
    images_per_second: float
    model_path: Path | None = None    # weights/model.keras: the file to evaluate, export and ship
