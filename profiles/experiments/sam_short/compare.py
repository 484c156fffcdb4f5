"""Side by side, epoch by epoch: two `edgefer train` runs' history.csv (PublicTest accuracy, training accuracy).

python profiles/experiments/sam_short/compare.py runs/train/short_plain runs/train/short_sam
"""
import sys
from pathlib import Path

from edgefer.training import read_history


def main(first: str, second: str) -> None:
    runs = [read_history(Path(run) / "history.csv") for run in (first, second)]
    names = [Path(run).name for run in (first, second)]
    print(f"| epoch | lr | {names[0]} val | {names[1]} val | {names[0]} train | {names[1]} train |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for a, b in zip(*runs):
        print(f"| {int(a['epoch'])} | {float(a['lr']):.2e} | {float(a['val_accuracy']):.4f} | "
              f"{float(b['val_accuracy']):.4f} | {float(a['accuracy']):.4f} | {float(b['accuracy']):.4f} |")
    for name, rows in zip(names, runs):
        best = max(rows, key=lambda row: float(row["val_accuracy"]))
        seconds = sorted(float(row["seconds"]) for row in rows)
        print(f"\n{name}: best {float(best['val_accuracy']):.4f} (epoch {int(best['epoch'])}), "
              f"last 5 mean {sum(float(r['val_accuracy']) for r in rows[-5:]) / 5:.4f}, "
              f"median epoch {seconds[len(seconds) // 2]:.1f} s", end="")
    print()


if __name__ == "__main__":
    main(*sys.argv[1:3])
