"""Epoch times of a real training run, before and after a change: median, and how many epochs stalled.

Reads `<run>/history.csv` (the `seconds` column). Epochs longer than `--paused` seconds are left out:
they include time the process spent stopped (SIGSTOP while tests ran) or restarting.

    python benchmarks/epoch_times.py runs/train/long_cpu --split 177 --first 100
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path


def epoch_seconds(run: Path) -> dict[int, float]:
    with open(run / "history.csv", newline="") as handle:
        return {int(row["epoch"]): float(row["seconds"]) for row in csv.DictReader(handle)}


def summarise(seconds: list[float], stall: float) -> str:
    stalled = sum(s > stall for s in seconds)
    return (f"{len(seconds)} | {statistics.median(seconds):.1f} | {min(seconds):.1f} | {max(seconds):.1f} | "
            f"{stalled} ({100 * stalled / len(seconds):.0f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", type=int, required=True, help="first epoch trained by the changed code")
    parser.add_argument("--first", type=int, default=1, help="first epoch to count")
    parser.add_argument("--stall", type=float, default=60.0, help="an epoch longer than this stalled (s)")
    parser.add_argument("--paused", type=float, default=200.0, help="leave out epochs longer than this (s)")
    args = parser.parse_args()
    times = {e: s for e, s in epoch_seconds(args.run).items() if e >= args.first and s <= args.paused}
    before = [s for e, s in times.items() if e < args.split]
    after = [s for e, s in times.items() if e >= args.split]
    print(f"{args.run}: epochs {args.first}-{max(times)}, stalled = longer than {args.stall:.0f} s\n")
    print("| epochs | count | median s | min s | max s | stalled |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {args.first}-{args.split - 1} (before) | {summarise(before, args.stall)} |")
    print(f"| {args.split}-{max(times)} (after) | {summarise(after, args.stall)} |")


if __name__ == "__main__":
    main()
