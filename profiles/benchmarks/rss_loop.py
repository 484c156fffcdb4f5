"""Memory of one long `edgefer run` (a fresh process without TensorFlow, as on a device): RSS sampled
along the run, and the peak.

    python benchmarks/rss_loop.py --data ../shared/data/fer2013_train_publictest.csv.gz [--frames 1500]
"""

import argparse
import sys
import tempfile

for blocked in ("tensorflow", "keras", "mtcnn"):
    sys.modules[blocked] = None

import psutil

from edgefer.compose import iter_composed_frames, write_video
from edgefer.data import read_fer_csv
from edgefer.runtime import DEFAULT_MODEL
from edgefer.live import RunConfig, run
from edgefer.profile.sampler import high_water_mark

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", required=True)
parser.add_argument("--model", default=str(DEFAULT_MODEL))
parser.add_argument("--frames", type=int, default=1500)
args = parser.parse_args()

faces = read_fer_csv(args.data, "PublicTest", limit=400)
clip = write_video(iter_composed_frames(faces.images, faces.labels, args.frames, 2, seed=11),
                   tempfile.mktemp(suffix=".avi"))
del faces
process = psutil.Process()
marks = {}


def record(frame_record):
    index = frame_record["frame"]
    if index % (args.frames // 5) == 0 or index == args.frames - 1:
        marks[index] = process.memory_info().rss / 1e6


summary = run(RunConfig(source=clip, model=args.model, show=False, threads=1), on_frame=record)
print(f"{summary.frames} frames, {summary.faces} faces, {summary.fps:.1f} FPS (1 thread, detection every frame)")
print("\n| frame | " + " | ".join(str(k) for k in marks) + " |")
print("| --- | " + " | ".join("---:" for _ in marks) + " |")
print("| RSS MB | " + " | ".join(f"{v:.1f}" for v in marks.values()) + " |")
print(f"peak RSS of the process: {high_water_mark(process.pid) / 1e6:.1f} MB")
