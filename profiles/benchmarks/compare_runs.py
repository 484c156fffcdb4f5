"""Side by side, epoch by epoch: several `edgefer train` runs' history.csv (validation and training accuracy),
then each run's best epoch, the mean of its last five epochs and its median epoch time.

    python benchmarks/compare_runs.py runs/train/short_plain runs/train/short_sam [more runs ...]
"""
import sys
from pathlib import Path

from edgefer.train import read_history


def main(run_dirs: list[str]) -> None:
    runs = [read_history(Path(run) / "history.csv") for run in run_dirs]
    names = [Path(run).name for run in run_dirs]
    columns = [f"{name} val" for name in names] + [f"{name} train" for name in names]
    print(f"| epoch | lr | {' | '.join(columns)} |")
    print("| ---: | ---: |" + " ---: |" * len(columns))
    for rows in zip(*runs):
        values = [row["val_accuracy"] for row in rows] + [row["accuracy"] for row in rows]
        print(f"| {rows[0]['epoch']} | {rows[0]['lr']:.2e} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    for name, rows in zip(names, runs):
        best = max(rows, key=lambda row: row["val_accuracy"])
        seconds = sorted(row["seconds"] for row in rows)
        print(f"\n{name}: best {best['val_accuracy']:.4f} (epoch {best['epoch']}), "
              f"last 5 mean {sum(r['val_accuracy'] for r in rows[-5:]) / 5:.4f}, "
              f"median epoch {seconds[len(seconds) // 2]:.1f} s", end="")
    print()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: compare_runs.py RUN_DIR RUN_DIR [RUN_DIR ...]")
    main(sys.argv[1:])
