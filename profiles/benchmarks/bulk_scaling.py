"""`edgefer bulk` on this machine: frames per second with 1 and 2 workers (local Ray), against one
`edgefer run` process over the same files; peak memory per worker; CPU-seconds per 1,000 frames.

    python profiles/benchmarks/bulk_scaling.py --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from edgefer.records import header as record_header
from edgefer.detect.types import DEFAULT_DETECTOR
from edgefer.compose import compose_frames, write_video
from edgefer.data import read_fer_csv

OUT = Path(__file__).with_suffix(".md")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds of every process of the job (sampled: Ray's workers are not our children)
    and the largest RSS of one worker (the process itself for `run`), MB."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root_peak, worker_peak, cpu = 0.0, 0.0, {}
    tree = psutil.Process(child.pid)
    before = {p.pid for p in psutil.process_iter()}
    while child.poll() is None:
        try:
            root_peak = max(root_peak, tree.memory_info().rss / 1e6)
            for process in psutil.process_iter(["pid", "cmdline"]):
                if process.pid in before and process.pid != child.pid:
                    continue
                times = process.cpu_times()
                cpu[process.pid] = times.user + times.system
                name = (process.info["cmdline"] or [""])[0]
                if name.startswith("ray::MapWorker"):
                    worker_peak = max(worker_peak, process.memory_info().rss / 1e6)
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - started
    return wall, sum(cpu.values()), worker_peak or root_peak


def pipeline_rate(out: str) -> float:
    """Frames per second while the workers ran: from the first task's start to the last task's end."""
    records = [json.loads(p.read_text()) for p in Path(out).glob("tasks/*/part-*.json")]
    span = max(r["finished_at"] for r in records) - min(r["started_at"] for r in records)
    return sum(r["frames"] for r in records) / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=400, help="frames per video")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    faces = read_fer_csv(args.data, "PublicTest", limit=600)
    with tempfile.TemporaryDirectory() as folder:
        videos = []
        for k in range(args.videos):
            frames = compose_frames(faces.images, faces.labels, args.frames, 2, seed=100 + k)
            videos.append(write_video(frames, f"{folder}/clip{k}.avi"))
        total = args.videos * args.frames
        results: dict[str, list] = {"run": [], "bulk 1 worker": [], "bulk 2 workers": []}
        for repeat in range(args.repeats):
            started = time.perf_counter()
            cpu, peak = 0.0, 0.0
            for video in videos:   # `edgefer run`: one process per file, one after the other
                _, used, rss = timed([sys.executable, "-m", "edgefer", "run", "--source", video, "--no-show", "-q"])
                cpu, peak = cpu + used, max(peak, rss)
            wall = time.perf_counter() - started
            results["run"].append((wall, cpu, peak, total / wall))
            for workers in (1, 2):
                out = f"{folder}/out{workers}_{repeat}"
                wall, cpu, peak = timed([sys.executable, "-m", "edgefer", "bulk", *videos, "--out", out,
                                         "--workers", str(workers), "--chunk-frames", "50"])
                results[f"bulk {workers} worker" + ("s" if workers > 1 else "")].append(
                    (wall, cpu, peak, pipeline_rate(out)))
                assert len(Path(out, "summary.csv").read_text().splitlines()) == args.videos + 1
    lines = [f"{args.videos} videos x {args.frames} frames of 640x480 with 2 faces ({total} frames), {DEFAULT_DETECTOR} 40 px, "
             f"shipped int8 model, {os.cpu_count()} cores; medians of {args.repeats} runs; {time.strftime('%Y-%m-%d')}",
             "", "| how | wall s | frames/s (wall) | frames/s while processing | vs 1 worker (processing) "
             "| CPU-s per 1,000 frames | peak RSS of one worker MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    one = statistics.median(r[3] for r in results["bulk 1 worker"])
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        peak = statistics.median(r[2] for r in runs)
        rate = statistics.median(r[3] for r in runs)
        lines.append(f"| {name} | {wall:.1f} | {total / wall:.1f} | {rate:.1f} | {rate / one:.2f}x | "
                     f"{cpu / total * 1000:.1f} | {peak:.0f} |")
    lines += ["", "Wall time includes starting Python, loading the models and (bulk) starting a local Ray instance; "
              "'while processing' runs from the first task's start to the last task's end (for `run`: wall). "
              "`run` is one process per video, one after another, as a shell loop would do it."]
    text = record_header("edgefer bulk scaling on this machine") + "\n" + "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
