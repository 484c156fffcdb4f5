"""Face detection on real photographs: 100 WIDER FACE validation photos (../shared/data/realfaces), every
detector edgefer offers and the `mtcnn` package as reference.

Recall: counted faces (`ignore` false) matched one-to-one at IoU >= 0.5 (and 0.3); a detection matching an
ignored face is neither hit nor false positive. Recall by face size (sqrt(w*h)). Milliseconds per image:
median over --repeats passes (detectors alternate within each pass) at 1 and 2 threads.

    python profiles/benchmarks/realfaces.py --out profiles/benchmarks/realfaces.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from edgefer import records
from edgefer.detect import Detection, make_detector
from edgefer.pipeline.tracks import box_iou

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "realfaces"
SIZE_BANDS = ((20, 40), (40, 80), (80, 160), (160, 100000))


class MTCNNPackage:
    """The `mtcnn` package (TensorFlow) as the reference MTCNN."""

    def __init__(self, min_face_size: int = 20, threads: int | None = None):
        from mtcnn import MTCNN

        self.model, self.min_face_size = MTCNN(), min_face_size

    def detect(self, image):
        found = self.model.detect_faces(np.ascontiguousarray(image[..., ::-1]), min_face_size=self.min_face_size)
        return [Detection(*map(int, d["box"]), float(d["confidence"])) for d in found]


def load(folder: Path) -> list[dict]:
    meta = json.loads((folder / "faces.json").read_text())
    images = []
    for entry in meta["images"]:
        image = cv2.imread(str(folder / entry["file"]), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"error: {folder / entry['file']}: unreadable image")
        images.append({"image": image, "file": entry["file"], "faces": entry["faces"]})
    return images


def match(truth: list[dict], found: list[list[float]], threshold: float) -> tuple[set[int], int]:
    """Greedy one-to-one matching by IoU: (indices of counted faces hit, false positives)."""
    pairs = sorted(((box_iou([t["x"], t["y"], t["w"], t["h"]], f), i, j) for i, t in enumerate(truth)
                    for j, f in enumerate(found)), reverse=True)
    used_t, used_f, hits = set(), set(), set()
    for value, i, j in pairs:
        if value < threshold:
            break
        if i in used_t or j in used_f:
            continue
        used_t.add(i)
        used_f.add(j)
        if not truth[i]["ignore"]:
            hits.add(i)
    return hits, len(found) - len(used_f)


def score(images, detections) -> dict:
    counted = [(k, i) for k, im in enumerate(images) for i, f in enumerate(im["faces"]) if not f["ignore"]]
    result = {}
    for threshold in (0.5, 0.3):
        hit_sets, fps = zip(*(match(im["faces"], [d.box for d in found], threshold)
                              for im, found in zip(images, detections)))
        hits = {(k, i) for k, h in enumerate(hit_sets) for i in h}
        result[f"recall@{threshold}"] = len(hits) / len(counted)
        if threshold == 0.5:
            result["fp_per_image"] = sum(fps) / len(images)
            for low, high in SIZE_BANDS:
                band = [(k, i) for k, i in counted if low <= images[k]["faces"][i]["size"] < high]
                result[f"{low}-{high}"] = (sum(f in hits for f in band) / len(band)) if band else float("nan")
                result[f"n {low}-{high}"] = len(band)
    result["faces"] = len(counted)
    return result


def timed_pass(detector, images) -> tuple[float, list]:
    found, started = [], time.perf_counter()
    for im in images:
        found.append(detector.detect(im["image"]))
    return (time.perf_counter() - started) * 1000 / len(images), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--min-face-size", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detectors", default="mtcnn,yunet,blazeface,blazeface_full,haar,mtcnn_package")
    parser.add_argument("--yunet-scores", default="", help="also YuNet at these score thresholds, e.g. 0.5,0.7,0.9")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    images = load(args.data)
    variants = []   # (label, factory(threads))
    for name in args.detectors.split(","):
        if name == "mtcnn_package":
            variants.append(("mtcnn package (reference, TensorFlow)", lambda t: MTCNNPackage(args.min_face_size, t)))
        else:
            variants.append((name, lambda t, n=name: make_detector(n, min_face_size=args.min_face_size, threads=t)))
    for value in filter(None, args.yunet_scores.split(",")):
        variants.append((f"yunet, score {value}", lambda t, v=float(value): make_detector(
            "yunet", min_face_size=args.min_face_size, threads=t, score_threshold=v)))

    rows, reference_ms = [], None
    for threads in (1, 2):
        detectors = [(label, make(threads)) for label, make in variants]
        times = {label: [] for label, _ in detectors}
        found = {}
        for _ in range(args.repeats):
            for label, detector in detectors:
                ms, found[label] = timed_pass(detector, images)
                times[label].append(ms)
        for label, _ in detectors:
            ms = statistics.median(times[label])
            if threads == 1:
                rows.append({"detector": label, **score(images, found[label]), "ms1": ms})
            else:
                next(r for r in rows if r["detector"] == label)["ms2"] = ms
    reference_ms = next((r["ms1"] for r in rows if r["detector"] == "mtcnn"), None)
    bands = [f"{a}-{b}" for a, b in SIZE_BANDS]
    table = records.table(
        ["detector", "recall IoU 0.5", "recall IoU 0.3", "false pos. / image", *[f"recall {b} px".replace("-100000", "+")
                                                                                 for b in bands],
         "ms/image 1 thread", "ms/image 2 threads", "time vs mtcnn (1 thread)"],
        [[r["detector"], round(r["recall@0.5"], 3), round(r["recall@0.3"], 3), round(r["fp_per_image"], 2),
          *[round(r[b], 3) for b in bands], round(r["ms1"], 2), round(r.get("ms2", float("nan")), 2),
          f"{r['ms1'] / reference_ms:.2f}x" if reference_ms else "-"] for r in rows])
    counts = ", ".join(f"{b.replace('-100000', '+')} px: {rows[0]['n ' + b]}" for b in bands)
    text = (records.header("Face detection on real photographs (WIDER FACE val, 100 photos)") +
            f"\n{len(images)} photos (longer side 416 px), {rows[0]['faces']} counted faces ({counts}); "
            f"--min-face-size {args.min_face_size}; median of {args.repeats} passes.\n\n{table}\n")
    print(text)
    if args.out:
        records.write(args.out, text)


if __name__ == "__main__":
    main()
