"""Which crop margin gives the classifier its best accuracy, per detector: PublicTest faces pasted into
640x480 frames (ground truth known), each detector's boxes found once, then classified with every margin.

The pasted face *is* a FER-2013 crop, so the box that reproduces it (margin where the detector's box grows
to the dataset's framing) wins. Real photographs carry no expression labels, so they cannot score this.

    python profiles/benchmarks/crop_margin.py --data ../shared/data/fer2013_train_publictest.csv.gz --record profiles/benchmarks/crop_margin.md
"""

from __future__ import annotations

import argparse

from edgefer import records
from edgefer.compose import compose_frames
from edgefer.data import read_fer_csv
from edgefer.detect import make_detector
from edgefer.live import box_iou
from edgefer.pipeline import FacePipeline
from edgefer.runtime import DEFAULT_MODEL, load_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--margins", default="-0.1,0,0.1,0.2,0.3,0.4")
    parser.add_argument("--detectors", default="mtcnn,yunet")
    parser.add_argument("--record", default=None)
    args = parser.parse_args()

    faces = read_fer_csv(args.data, "PublicTest")
    frames = compose_frames(faces.images, faces.labels, args.frames, 2, seed=7)
    classifier = load_classifier(args.model, threads=1)
    margins = [float(m) for m in args.margins.split(",")]
    rows = []
    for name in args.detectors.split(","):
        detector = make_detector(name, min_face_size=40, threads=1)
        found = []   # (frame, detection, label) of every pasted face found at IoU >= 0.4
        for frame in frames:
            detections = detector.detect(frame.image)
            for box, label in zip(frame.boxes, frame.labels):
                scored = [(box_iou(box, d.box), d) for d in detections]
                iou, match = max(scored, key=lambda x: x[0], default=(0.0, None))
                if iou >= 0.4:
                    found.append((frame, match, int(label)))
        accuracy = []
        for margin in margins:
            pipeline = FacePipeline(detector, classifier, margin=margin, track=False)
            correct = sum(pipeline.classify(frame.image, [d])[0].expression == pipeline.class_names[label]
                          for frame, d, label in found)
            accuracy.append(round(correct / max(len(found), 1), 3))
        best = margins[max(range(len(margins)), key=accuracy.__getitem__)]
        rows.append([name, len(found), *accuracy, best])
        print(rows[-1], flush=True)
    text = (records.header("Crop margin per detector: accuracy on the pasted PublicTest faces each detector found") +
            f"\n{args.frames} frames of 640x480, 2 faces each (110-170 px), min face 40, model {args.model}\n\n" +
            records.table(["detector", "faces found", *[f"margin {m:g}" for m in margins], "best margin"], rows))
    print(text)
    if args.record:
        records.write(args.record, text)


if __name__ == "__main__":
    main()
