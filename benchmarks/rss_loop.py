"""Memory of `edgefer run` alone (a fresh process without TensorFlow, as on a device) over a long run:
RSS after warm-up and at the end, and the peak.

    python benchmarks/rss_loop.py CLIP.avi [--model MODEL] [--passes 10]
"""

import argparse
import sys

for blocked in ("tensorflow", "keras", "mtcnn"):
    sys.modules[blocked] = None

import psutil

from edgefer.inference import DEFAULT_MODEL
from edgefer.live import RunConfig, run
from edgefer.sampler import high_water_mark

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("clip")
parser.add_argument("--model", default=str(DEFAULT_MODEL))
parser.add_argument("--passes", type=int, default=10, help="times to run over the clip")
args = parser.parse_args()

process = psutil.Process()
rss, frames, fps = [], 0, []
for _ in range(args.passes):
    summary = run(RunConfig(source=args.clip, model=args.model, show=False, threads=1))
    frames += summary.frames
    fps.append(summary.fps)
    rss.append(process.memory_info().rss / 1e6)
print(f"{frames} frames in {args.passes} passes, FPS per pass {min(fps):.1f}-{max(fps):.1f}; RSS after pass 1 "
      f"{rss[0]:.1f} MB, after pass {args.passes} {rss[-1]:.1f} MB; peak RSS {high_water_mark(process.pid) / 1e6:.1f} MB")
