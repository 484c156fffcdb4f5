"""What `edgefer prune` is told (PruneConfig, checked before any work) and what it reports (a leaf)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgefer.errors import EdgeferError
from edgefer.prune.channels import Merge


CRITERIA = ("kernel", "angle", "zero")


METRICS = ("loss", "accuracy")


@dataclass
class PruneConfig:
    model: str
    data: str
    criteria: tuple[str, ...] = ("kernel",)
    metric: str = "loss"
    rank: str = "global"                # kernel criterion: global | layer
    threshold: float = 0.1
    step: int = 1                       # channels removed per step
    target_fraction: float | None = None  # stop once parameters <= this fraction of the original
    max_steps: int | None = None
    step_finetune_epochs: int = 0       # fine-tuning after every kept step
    finetune_epochs: int = 0            # fine-tuning once at the end
    finetune_lr: float = 3e-4
    batch_size: int = 64
    angle_degrees: float = 15.0
    activation_faces: int = 512
    calibration_faces: int = 1024
    train_split: str = "Training"
    val_split: str = "PublicTest"
    limit: int | None = None
    seed: int = 0
    name: str = ""
    project: str = "runs/prune"

    def validate(self) -> None:
        unknown = [c for c in self.criteria if c not in CRITERIA]
        if unknown or not self.criteria:
            raise EdgeferError(f"--criterion: unknown {', '.join(unknown) or '(none)'}; "
                             f"expected a comma-separated list of {', '.join(CRITERIA)}")
        if self.rank not in ("global", "layer"):
            raise EdgeferError(f"--rank {self.rank!r}: expected global or layer")
        if self.metric not in METRICS:
            raise EdgeferError(f"--metric {self.metric!r}: expected loss or accuracy")
        if self.threshold < 0:
            raise EdgeferError(f"--threshold {self.threshold}: expected a non-negative number")
        if self.step < 1:
            raise EdgeferError(f"--step {self.step}: expected at least 1 channel per step")
        if self.target_fraction is not None and not 0 < self.target_fraction < 1:
            raise EdgeferError(f"--target-fraction {self.target_fraction}: expected a number between 0 and 1")
        if not 0 < self.angle_degrees < 90:
            raise EdgeferError(f"--angle {self.angle_degrees}: expected degrees between 0 and 90")


@dataclass
class Proposal:
    criterion: str
    removals: dict[str, list[int]]
    merges: list[Merge] = field(default_factory=list)
    statistic: float = float("nan")     # kernel: largest importance removed; angle: most extreme angle

    @property
    def count(self) -> int:
        return sum(len(channels) for channels in self.removals.values())

    def describe(self) -> str:
        return ", ".join(f"{group}[{','.join(map(str, sorted(channels)))}]"
                         for group, channels in self.removals.items())


@dataclass
class StepRow:
    step: int
    criterion: str
    removed: str
    units_removed: int
    statistic: float
    val_loss: float
    val_accuracy: float
    parameters: int
    keras_kb: float
    kept: bool
    seconds: float


@dataclass
class PruneResult:
    run_dir: Path
    model_path: Path
    rows: list[StepRow]
    stop_reason: str
    summary: dict
