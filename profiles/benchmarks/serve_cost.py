"""What `edgefer run --serve` costs the loop: FPS without the server, with it and no viewer, and with one
viewer reading /stream.mjpg (JPEG encoding happens in the viewer's thread). Goal: <= 5 % with one viewer.

Runs alternate (A, B, C, A, B, C, ...) so that a noisy shared machine hits every setting alike; medians.

    python profiles/benchmarks/serve_cost.py --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from edgefer import records
from edgefer.detect.types import DEFAULT_DETECTOR
from edgefer.compose import compose_frames, write_video
from edgefer.data import read_fer_csv
from edgefer.live import RunConfig
from edgefer.live.loop import run
from edgefer.runtime import DEFAULT_MODEL

OUT = Path(__file__).with_suffix(".md")


def viewer(url: str, stop: threading.Event, counts: list[int]) -> None:
    """A browser-like client that keeps reading the MJPEG stream until told to stop."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                while not stop.is_set():
                    chunk = response.read(65536)
                    if not chunk:
                        break
                    counts[0] += chunk.count(b"--frame")
        except OSError:
            time.sleep(0.05)


def one_run(video: str, mode: str, port: int) -> tuple[float, int]:
    config = RunConfig(source=video, model=str(DEFAULT_MODEL), show=False,
                       serve=f"127.0.0.1:{port}" if mode != "plain" else None)
    stop, counts, thread = threading.Event(), [0], None
    if mode == "viewer":
        thread = threading.Thread(target=viewer, args=(f"http://127.0.0.1:{port}/stream.mjpg", stop, counts),
                                  daemon=True)
        thread.start()
    summary = run(config)
    stop.set()
    if thread:
        thread.join(timeout=5)
    return summary.fps, counts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    faces = read_fer_csv(args.data, "PublicTest", limit=200)
    with tempfile.TemporaryDirectory() as folder:
        video = write_video(compose_frames(faces.images, faces.labels, args.frames, 2, seed=9), f"{folder}/clip.avi")
        results = {"plain": [], "serve": [], "viewer": []}
        viewed = []
        for k in range(args.repeats):
            for mode in results:
                fps, frames_seen = one_run(video, mode, 18700 + k)
                results[mode].append(fps)
                if mode == "viewer":
                    viewed.append(frames_seen)
    base = statistics.median(results["plain"])
    lines = [f"`edgefer run` on {args.frames} frames of 640x480 with 2 faces, shipped int8 model, {DEFAULT_DETECTOR} 40 px, "
             f"1 thread; medians of {args.repeats} alternating runs ({time.strftime('%Y-%m-%d')})", "",
             "| setting | FPS (median) | runs | vs no server |", "| --- | ---: | --- | ---: |"]
    names = {"plain": "no --serve", "serve": "--serve, no viewer", "viewer": "--serve, one viewer on /stream.mjpg"}
    for mode, values in results.items():
        median = statistics.median(values)
        lines.append(f"| {names[mode]} | {median:.1f} | {', '.join(f'{v:.1f}' for v in values)} | "
                     f"{(median / base - 1) * 100:+.1f} % |")
    lines += ["", f"The viewer received a median of {statistics.median(viewed):.0f} JPEG frames per run "
              f"(it skips frames when it is slower than the loop; the loop never waits for it)."]
    text = records.header("FPS cost of --serve") + "\n" + "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
