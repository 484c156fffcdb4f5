"""What `edgefer prune` is told (PruneConfig, checked before any work) and what it reports (a leaf)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgefer.data import DATA_HELP
from edgefer.errors import EdgeferError
from edgefer.options import check, option
from edgefer.prune.channels import Merge


CRITERIA = ("kernel", "angle", "zero")


METRICS = ("loss", "accuracy")


@dataclass
class PruneConfig:
    model: str
    data: str = option(help=DATA_HELP, show_default=False)
    criterion: str | tuple[str, ...] = option(
        "kernel", help="Comma-separated, applied in order: kernel (filter importance sqrt(sum w^2 / k^2)), angle "
                       "(merge near-parallel/opposite units), zero (dead units).")
    metric: str = option("loss", choices=METRICS,
                         help="Stop on validation 'loss' rising or 'accuracy' falling by --threshold.")
    rank: str = option("global", choices=("global", "layer"),
                       help="kernel criterion: 'global' (least important filter anywhere) or 'layer'.")
    threshold: float = option(0.1, min=0, help="Largest allowed rise in loss (or fall in accuracy) vs the "
                                               "unpruned model.")
    step: int = option(1, min=1, help="Channels removed per step.")
    target_fraction: float | None = option(None, min=0, max=1, min_open=True, max_open=True, show_default=False,
                                           help="Stop once parameters are at most this fraction of the original.")
    max_steps: int | None = option(None, min=1, help="Stop after this many steps.", show_default="no limit")
    step_finetune_epochs: int = option(0, min=0, help="Fine-tuning epochs after every kept step.")
    finetune_epochs: int = option(0, min=0, help="Fine-tuning epochs once pruning stops.")
    finetune_lr: float = option(3e-4, min=0, min_open=True, help="Adam learning rate of the fine-tuning.")
    batch_size: int = 64
    angle_degrees: float = option(15.0, min=0, max=90, min_open=True, max_open=True, flag="--angle",
                                  help="angle criterion: merge units within this many degrees of parallel/opposite.")
    activation_faces: int = 512
    calibration_faces: int = 1024
    train_split: str = "Training"
    val_split: str = "PublicTest"
    limit: int | None = option(None, min=1, help="At most this many images per split (quick runs).",
                               show_default="all")
    seed: int = 0
    name: str = option("", help="Run name; <project>/<name>[N].", show_default="the trained model's run name")
    project: str = option("runs/prune", help="Parent folder of run directories.")

    @property
    def criteria(self) -> tuple[str, ...]:
        """The criteria in order: `criterion` as "zero,kernel" or a sequence of names."""
        names = self.criterion.split(",") if isinstance(self.criterion, str) else self.criterion
        return tuple(c.strip() for c in names if c.strip())

    def validate(self) -> None:
        check(self)
        unknown = [c for c in self.criteria if c not in CRITERIA]
        if unknown or not self.criteria:
            raise EdgeferError(f"--criterion: unknown {', '.join(unknown) or '(none)'}; "
                               f"expected a comma-separated list of {', '.join(CRITERIA)}")


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
