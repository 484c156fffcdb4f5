"""Where MTCNN's time goes per 640x480 frame, and what each change to edgefer's LiteRT MTCNN bought.

Part 1: one frame's time split by step (pyramid resizes, P-Net per level, candidate boxes and NMS, R-Net,
O-Net), the shipped configuration, 1 thread. Part 2: the levers, each measured in this run against the
detector before the issue (alternating runs, medians), with the recall on pasted PublicTest faces and the
agreement with the `mtcnn` package on the real-photo test set (same count, IoU >= 0.9). Part 3: the networks
alone, float against int8 (converted here with TensorFlow from the `mtcnn` package, [train] extra).

    python profiles/benchmarks/detect_levers.py --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgefer.compose import compose_frames
from edgefer.data import read_fer_csv
from edgefer.detect.mtcnn import (
    MTCNNDetector,
    crop_and_resize,
    multiple_of_16,
    nms,
    square,
)
from edgefer.live import DEMO_IMAGE, box_iou

OUT = Path(__file__).with_suffix(".md")


def photos() -> dict[str, np.ndarray]:
    astronaut = cv2.imread(str(DEMO_IMAGE))
    group = cv2.resize(np.concatenate([np.concatenate([astronaut, astronaut[:, ::-1]], 1)] * 2, 0), (640, 480),
                       interpolation=cv2.INTER_AREA)
    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 256), 12, 0.8), (512, 512))
    return {"astronaut": astronaut, "group": group, "rotated": rotated}


def package_agreement(options: dict, references) -> str:
    """Same count and IoU >= 0.9 against the package, both at the package's default 20 px minimum face."""
    detector, agree = MTCNNDetector(min_face_size=20, threads=1, **options), 0
    for name, image in photos().items():
        ours = [d.box for d in detector.detect(image)]
        theirs = references[name]
        agree += len(ours) == len(theirs) >= 1 and all(max(box_iou(b, o) for o in ours) >= 0.9 for b in theirs)
    return f"{agree}/3"


def recall(detector, frames) -> float:
    hits = total = 0
    for frame in frames:
        found = detector.detect(frame.image)
        for box in frame.boxes:
            total += 1
            hits += any(box_iou(d.box, box) >= 0.4 for d in found)
    return hits / total


def breakdown(detector: MTCNNDetector, frames) -> dict[str, float]:
    times: dict[str, float] = {}

    def add(key, start):
        times[key] = times.get(key, 0.0) + time.perf_counter() - start

    for frame in frames:
        bgr = frame.image
        found = []
        levels = detector.levels(bgr)
        while True:
            t = time.perf_counter()
            item = next(levels, None)
            if item is None:
                break
            scale, level = item
            x = level[None]
            add("pyramid: resize + normalise", t)
            t = time.perf_counter()
            out = detector.pnet(x)
            add(f"P-Net {level.shape[1]}x{level.shape[0]}", t)
            t = time.perf_counter()
            found.append(nms(detector._pnet_boxes(out[4][0], out[2][0, :, :, 1], scale), 0.5, "union", sort=False))
            add("P-Net boxes + NMS (numpy)", t)
        t = time.perf_counter()
        boxes = np.concatenate(found)
        boxes = square(nms(boxes, 0.7, "union")) if len(boxes) else boxes
        add("P-Net boxes + NMS (numpy)", t)
        t = time.perf_counter()
        if len(boxes):
            boxes = detector._stage(bgr, boxes, detector.rnet, 24, detector.thresholds[1], "union")
        add("R-Net (crop + batched invoke + NMS)", t)
        t = time.perf_counter()
        if len(boxes):
            detector._stage(bgr, boxes, detector.onet, 48, detector.thresholds[2], "min", final=True)
        add("O-Net (crop + batched invoke + NMS)", t)
    return {k: v / len(frames) * 1000 for k, v in times.items()}


def int8_networks(folder: Path, data: str) -> Path:
    """P-Net, R-Net and O-Net with int8 weights and activations (float input/output), calibrated on pyramid
    levels and R/O-Net crops of composited Training frames (not the PublicTest faces measured here)."""
    from edgefer.convert.mtcnn_tflite import convert_network

    faces = read_fer_csv(data, "Training", limit=400)
    detector, levels, rnet, onet = MTCNNDetector(min_face_size=40, threads=1), [], [], []
    for frame in compose_frames(faces.images, faces.labels, 40, 2, seed=3):
        levels += [level[None] for _, level in detector.levels(frame.image)]
        boxes = detector._propose(frame.image)
        if len(boxes):
            rnet += list(crop_and_resize(frame.image, boxes, 24, bgr=True)[:, None])
            boxes = detector._stage(frame.image, boxes, detector.rnet, 24, detector.thresholds[1], "union")
            if len(boxes):
                onet += list(crop_and_resize(frame.image, boxes, 48, bgr=True)[:, None])
    for name, samples in (("pnet", levels), ("rnet", rnet[::4]), ("onet", onet)):
        (folder / f"mtcnn_{name}.tflite").write_bytes(convert_network(name, lambda s=samples: ([x] for x in s)))
    return folder


def network_times(detectors: dict[str, MTCNNDetector], repeats: int) -> list[str]:
    """ms per invoke of each network at the shapes a frame uses (P-Net's largest level, R-Net's and O-Net's
    usual batch), float against int8."""
    rng = np.random.default_rng(0)
    lines = ["| network, input | " + " | ".join(detectors) + " |", "| --- |" + " ---: |" * len(detectors)]
    for net, shape in (("pnet", (1, 144, 192, 3)), ("rnet", (32, 24, 24, 3)), ("onet", (4, 48, 48, 3))):
        x, row = rng.standard_normal(shape).astype(np.float32), []
        for detector in detectors.values():
            network = getattr(detector, net)
            network(x)
            start = time.perf_counter()
            for _ in range(repeats * 20):
                network(x)
            row.append(f"{(time.perf_counter() - start) / (repeats * 20) * 1000:.2f}")
        lines.append(f"| {net} {'x'.join(map(str, shape))} | " + " | ".join(row) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-face-size", type=int, default=40)
    args = parser.parse_args()
    faces = read_fer_csv(args.data, "PublicTest", limit=1200)
    frames = compose_frames(faces.images, faces.labels, args.frames, 2, seed=1)
    recall_frames = compose_frames(faces.images, faces.labels, 600, 2, seed=7)
    from mtcnn import MTCNN

    reference_model = MTCNN()
    references = {name: [d["box"] for d in reference_model.detect_faces(np.ascontiguousarray(img[..., ::-1]))]
                  for name, img in photos().items()}
    int8_folder = tempfile.TemporaryDirectory()
    int8 = int8_networks(Path(int8_folder.name), args.data)
    shipped = "pyramid from one integral image (shipped)"
    configs = {
        "before: R/O-Net batches padded to a multiple of 16, OpenCV INTER_AREA per level":
            dict(bucket_of=multiple_of_16, pyramid="opencv_area"),
        "R/O-Net batches padded to the next power of two (shipped)": dict(pyramid="opencv_area"),
        shipped: dict(pyramid="area"),
        "pyramid from the frame halved by the fast integer area path (not shipped: recall)": dict(pyramid="halved"),
        "pyramid by bilinear resize (not shipped: recall)": dict(pyramid="linear"),
        "P-Net proposals merged across scales at IoU 0.6, not 0.7 (not shipped: recall)": dict(proposal_nms=0.6),
        "P-Net proposals merged across scales at IoU 0.5 (not shipped: recall)": dict(proposal_nms=0.5),
        "int8 P-Net, R-Net, O-Net (not shipped: slower)": dict(weights=int8),
    }
    detectors = {name: MTCNNDetector(min_face_size=args.min_face_size, threads=1, **options)
                 for name, options in configs.items()}
    for detector in detectors.values():
        for frame in frames[:5]:
            detector.detect(frame.image)
    runs = {name: [] for name in detectors}
    for _ in range(args.repeats):
        for name, detector in detectors.items():
            start = time.perf_counter()
            for frame in frames:
                detector.detect(frame.image)
            runs[name].append((time.perf_counter() - start) / len(frames) * 1000)
    steps = breakdown(detectors[shipped], frames)
    before_steps = breakdown(detectors["R/O-Net batches padded to the next power of two (shipped)"], frames)
    nets = network_times({"float": detectors[shipped], "int8": detectors["int8 P-Net, R-Net, O-Net (not shipped: slower)"]},
                         args.repeats)
    lines = [f"MTCNN (edgefer, LiteRT, 1 thread) on {args.frames} frames of 640x480 with 2 pasted faces, min face "
             f"{args.min_face_size} px; medians of {args.repeats} alternating runs; {time.strftime('%Y-%m-%d')}", "",
             "Where one frame's time goes (shipped configuration; before the integral-image pyramid in brackets):", "",
             "| step | ms/frame | share |", "| --- | ---: | ---: |"]
    total = sum(steps.values())
    for key, value in sorted(steps.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {key} | {value:.2f} ({before_steps.get(key, 0):.2f}) | {value / total:.0%} |")
    before = statistics.median(next(iter(runs.values())))
    lines += [f"| total | {total:.2f} ({sum(before_steps.values()):.2f}) | |", "",
              f"(The issue's baseline: 18.9 ms of detection per frame in run_loop.md of 2026-11-24; the detector "
              f"before the issue measured {before:.2f} ms in this run.)", "",
              "Levers, each against the first row (the detector before the issue):", "",
              "| configuration | ms/frame (median) | vs before | recall (1,200 pasted faces) | same boxes as the `mtcnn` package (3 photos) |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name, values in runs.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.2f} | {median / before:.2f}x | {recall(detectors[name], recall_frames):.3f} | "
                     f"{package_agreement(configs[name], references)} |")
    lines += ["", "The networks alone, ms per invoke (int8: weights and activations, float input and output; "
              "on this x86 CPU the int8 kernels of ai-edge-litert are slower than XNNPACK's float ones; a P-Net-shaped probe with "
              "ReLU in place of PReLU also ran 1.49x slower in int8: int8_probe.md):", ""]
    lines += nets
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text)
    int8_folder.cleanup()


if __name__ == "__main__":
    main()
