"""Memory of one long `edgefer run` per detector, as a device runs it: each run is a fresh `edgefer run`
process without TensorFlow; its RSS is sampled along the run and its peak (VmHWM) read at the end.

    python profiles/benchmarks/rss_loop.py --data ../shared/data/fer2013_train_publictest.csv.gz --record profiles/benchmarks/rss_loop.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys
for blocked in ("tensorflow", "keras", "mtcnn"):
    sys.modules[blocked] = None
import psutil
from edgefer.live import RunConfig, run
clip, detector, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
process, marks = psutil.Process(), {}
def record(frame_record):
    index = frame_record["frame"]
    if index % (frames // 5) == 0 or index == frames - 1:
        marks[index] = round(process.memory_info().rss / 1e6, 1)
summary = run(RunConfig(source=clip, detector=detector, show=False, threads=1), on_frame=record)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1e3
print(json.dumps({"frames": summary.frames, "faces": summary.faces, "fps": round(summary.fps, 1),
                  "marks": marks, "peak": round(peak, 1)}))
"""


def main() -> None:
    from edgefer import records
    from edgefer.compose import iter_composed_frames, write_video
    from edgefer.data import read_fer_csv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--detectors", default="yunet,mtcnn")
    parser.add_argument("--record", default=None)
    args = parser.parse_args()

    faces = read_fer_csv(args.data, "PublicTest", limit=400)
    with tempfile.TemporaryDirectory() as folder:
        clip = write_video(iter_composed_frames(faces.images, faces.labels, args.frames, 2, seed=11),
                           str(Path(folder) / "clip.avi"))
        rows = []
        for detector in args.detectors.split(","):
            done = subprocess.run([sys.executable, "-c", CHILD, clip, detector, str(args.frames)],
                                  capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append([detector, result["frames"], result["faces"], result["fps"],
                         *result["marks"].values(), result["peak"]])
            print(rows[-1], flush=True)
            marks = list(result["marks"])
    text = (records.header("Memory of `edgefer run` per detector (a fresh process, no TensorFlow)") +
            f"\n{args.frames} frames of 640x480 with 2 pasted faces, 1 thread, detection every frame; RSS in MB\n\n" +
            records.table(["detector", "frames", "faces", "FPS", *[f"RSS at frame {m}" for m in marks],
                           "peak RSS (VmHWM)"], rows))
    print(text)
    if args.record:
        records.write(args.record, text)


if __name__ == "__main__":
    main()
