"""The live loop on 640x480 frames with two faces: FPS, per-stage ms and peak RSS, plus detection recall
and end-to-end emotion accuracy on frames composed from PublicTest faces (ground truth known).

Runs without TensorFlow (like a device). Prints Markdown tables; medians over --repeats runs.

    python profiles/benchmarks/run_loop.py --data ../shared/data/fer2013_train_publictest.csv.gz --record profiles/benchmarks/run_loop.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

for blocked in ("tensorflow", "keras", "mtcnn"):
    sys.modules[blocked] = None  # prove the loop needs none of them


from edgefer import records
from edgefer.compose import compose_frames, write_video
from edgefer.data import read_fer_csv
from edgefer.runtime import DEFAULT_MODEL
from edgefer.live import RunConfig, box_iou, run
from edgefer.machine import high_water_mark


def loop_speed(video: str, model: str, detector: str, min_face: int, threads: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        summary = run(RunConfig(source=video, model=model, detector=detector, min_face_size=min_face,
                                threads=threads, show=False))
        runs.append(summary)
    best = {k: statistics.median(r.mean_ms()[k] for r in runs) for k in runs[0].mean_ms()}
    return {"fps": statistics.median(r.fps for r in runs), "ms": best, "faces_per_frame": runs[0].faces / runs[0].frames}


def recall_and_accuracy(frames, detector_name: str, min_face: int, model: str) -> dict:
    from edgefer.pipeline import FacePipeline

    pipeline = FacePipeline.create(model, detector_name, min_face, threads=1, track=False)
    found = correct = total = false_positives = 0
    for frame in frames:
        faces = pipeline.faces(frame.image)
        for box, label in zip(frame.boxes, frame.labels):
            total += 1
            iou, match = max(((box_iou(box, f.box), f) for f in faces), key=lambda x: x[0], default=(0.0, None))
            if iou >= 0.4:
                found += 1
                correct += int(match.expression == pipeline.class_names[label])
        false_positives += sum(1 for f in faces if max(box_iou(b, f.box) for b in frame.boxes) < 0.4)
    return {"recall": found / total, "accuracy_end_to_end": correct / total,
            "accuracy_on_detected": correct / max(found, 1), "false_positives": false_positives, "faces": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--accuracy-frames", type=int, default=600, help="frames (2 faces each) for recall/accuracy")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="/tmp/edgefer_bench_clip.avi")
    parser.add_argument("--record", default=None, help="write the record here, e.g. profiles/benchmarks/run_loop.md")
    args = parser.parse_args()

    faces = read_fer_csv(args.data, "PublicTest")
    clip_frames = compose_frames(faces.images, faces.labels, args.frames, 2, seed=1)
    video = write_video(clip_frames, args.out)
    speed = []
    for detector, min_face in (("mtcnn", 40), ("mtcnn", 60), ("mtcnn", 20), ("yunet", 40), ("yunet", 20),
                               ("haar", 40)):
        r = loop_speed(video, args.model, detector, min_face, args.threads, args.repeats)
        ms = r["ms"]
        speed.append([detector, min_face, round(r["fps"], 1), *[round(ms[k], 2) for k in ("capture", "detect",
                                                                                       "classify", "draw")],
                      round(r["faces_per_frame"], 2)])
        print(speed[-1], flush=True)
    rss = high_water_mark(os.getpid()) / 1e6

    truth = compose_frames(faces.images, faces.labels, args.accuracy_frames, 2, seed=7)
    accuracy = []
    for detector, min_face in (("mtcnn", 40), ("yunet", 40), ("haar", 40)):
        r = recall_and_accuracy(truth, detector, min_face, args.model)
        accuracy.append([detector, min_face, round(r["recall"], 3), r["false_positives"],
                         round(r["accuracy_end_to_end"], 3), round(r["accuracy_on_detected"], 3)])
        print(accuracy[-1], flush=True)
    text = (records.header("The live loop on 640x480 frames with two pasted PublicTest faces") +
            f"\nmodel {args.model}; {args.frames} frames of 640x480 with 2 faces; {args.threads} thread(s); "
            f"detection on every frame; no display; medians of {args.repeats} runs\n\n" +
            records.table(["detector", "min face px", "FPS (median)", "capture ms", "detect ms", "classify ms",
                           "draw ms", "faces/frame"], speed) +
            f"\n\npeak RSS of this process (loop, every detector, decoded PublicTest): {rss:.0f} MB\n\n"
            f"Detection recall and end-to-end accuracy on {2 * args.accuracy_frames} PublicTest faces pasted into "
            f"640x480 frames (a face counts as found at IoU >= 0.4)\n\n" +
            records.table(["detector", "min face px", "recall", "false positives", "expression accuracy (all faces)",
                           "accuracy on found faces"], accuracy))
    print(text)
    if args.record:
        records.write(args.record, text)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
