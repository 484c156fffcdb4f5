"""history.csv: one row per epoch, rewritten atomically so a killed run never leaves a torn file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgefer.files import write_text


_HISTORY_FIELDS = ["epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1", "seconds"]


def append_history(path: Path, row: dict) -> None:
    """Rewrite history.csv atomically with the new row (never a torn file, rows past a resume kept)."""
    rows = read_history(path)
    rows = [r for r in rows if int(r["epoch"]) < row["epoch"]] + [row]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_HISTORY_FIELDS + [k for k in row if k not in _HISTORY_FIELDS])
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def read_history(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) if k != "epoch" else int(v) for k, v in r.items()} for r in csv.DictReader(handle)]
