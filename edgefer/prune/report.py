"""The report of a pruning run: steps.csv, steps.md, summary.json and steps.png."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict
from pathlib import Path

from edgefer.files import atomic_path, write_json, write_text
from edgefer.prune.config import PruneConfig, StepRow


_COLUMNS = ["step", "criterion", "units_removed", "statistic", "val_loss", "val_accuracy", "parameters",
            "keras_kb", "kept", "seconds", "removed"]


def summarise(config: PruneConfig, rows: list[StepRow], reason: str, model_path: Path) -> dict:
    kept = [r for r in rows if r.kept]
    first, last = rows[0], kept[-1]
    return {
        "model": config.model, "criteria": list(config.criteria), "metric": config.metric,
        "threshold": config.threshold, "stop_reason": reason, "pruned_model": str(model_path),
        "steps_kept": sum(1 for r in kept if r.criterion not in ("-", "finetune")),
        "units_removed": sum(r.units_removed for r in kept),
        "parameters": {"before": first.parameters, "after": last.parameters,
                       "fraction": round(last.parameters / first.parameters, 4)},
        "keras_kb": {"before": round(first.keras_kb, 1), "after": round(last.keras_kb, 1)},
        "val_loss": {"before": first.val_loss, "after": last.val_loss},
        "val_accuracy": {"before": first.val_accuracy, "after": last.val_accuracy},
    }


def write_reports(run_dir: Path, rows: list[StepRow], summary: dict) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS)
    writer.writeheader()
    writer.writerows({k: asdict(r)[k] for k in _COLUMNS} for r in rows)
    write_text(run_dir / "steps.csv", buffer.getvalue())
    write_text(run_dir / "steps.md", render_table(rows, summary))
    write_json(run_dir / "summary.json", summary)
    plot_steps(rows, run_dir / "steps.png")


def _number(value: float, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def render_table(rows: list[StepRow], summary: dict | None = None, max_rows: int = 60) -> str:
    """The study's per-step table as Markdown (long runs keep the first and last rows)."""
    lines = ["| step | criterion | removed | min importance / angle | val loss | val acc | parameters | "
             ".keras KB | kept |", "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    shown = rows if len(rows) <= max_rows else rows[: max_rows // 2] + rows[-max_rows // 2:]
    for index, r in enumerate(shown):
        if len(rows) > max_rows and index == max_rows // 2:
            lines.append(f"| ... | {len(rows) - max_rows} steps omitted (all in steps.csv) | | | | | | | |")
        removed = r.removed if len(r.removed) <= 48 else r.removed[:45] + "..."
        lines.append(f"| {r.step} | {r.criterion} | {removed} | {_number(r.statistic, '.4g')} | "
                     f"{_number(r.val_loss, '.4f')} | {_number(r.val_accuracy, '.4f')} | {r.parameters:,} | "
                     f"{_number(r.keras_kb, '.1f')} | {'yes' if r.kept else 'no'} |")
    text = "\n".join(lines) + "\n"
    if summary:
        text += (f"\nStopped: {summary['stop_reason']}. Parameters {summary['parameters']['before']:,} -> "
                 f"{summary['parameters']['after']:,} ({summary['parameters']['fraction']:.1%}); "
                 f"validation accuracy {summary['val_accuracy']['before']:.4f} -> "
                 f"{summary['val_accuracy']['after']:.4f}.\n")
    return text


def plot_steps(rows: list[StepRow], path: Path) -> Path:
    from edgefer.plots import _pyplot

    plt = _pyplot()
    kept = [r for r in rows if r.kept]
    steps = [r.step for r in kept]
    figure, left = plt.subplots(figsize=(7, 4))
    left.plot(steps, [r.parameters for r in kept], color="tab:blue", marker=".")
    left.set_xlabel("pruning step")
    left.set_ylabel("parameters", color="tab:blue")
    right = left.twinx()
    right.plot(steps, [r.val_accuracy for r in kept], color="tab:green", marker=".", label="val accuracy")
    right.plot(steps, [r.val_loss for r in kept], color="tab:red", marker=".", label="val loss")
    right.set_ylabel("validation loss / accuracy")
    right.legend(loc="center right")
    left.set_title("structured pruning: parameters, loss and accuracy per step")
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=110, format="png")
    plt.close(figure)
    return Path(path)
