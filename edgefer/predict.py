"""`edgefer predict`: find the faces in images, classify their expression, draw and report them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgefer.detection import crop_face, make_detector, to_gray
from edgefer.files import atomic_path, write_text
from edgefer.inference import load_classifier

PACKAGE = Path(__file__).resolve().parent
DEFAULT_MODEL = PACKAGE / "weights" / "mini_xception_fer2013.keras"
DEMO_IMAGE = PACKAGE / "assets" / "astronaut.jpg"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class FaceResult:
    box: list[int]
    score: float
    emotion: str
    probabilities: dict[str, float]


@dataclass
class ImageResult:
    source: str
    faces: list[FaceResult] = field(default_factory=list)
    annotated: str | None = None


def image_files(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{source}: no images in this folder")
        return files
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such image or folder")
    return [source]


def classify_faces(image: np.ndarray, detector, classifier, margin: float = 0.0, tta: bool = False):
    gray = to_gray(image)
    detections = detector.detect(image)
    size = classifier.info.input_size
    crops = np.stack([crop_face(gray, d, size, margin) for d in detections]) if detections else None
    if crops is None:
        return []
    probabilities = classifier.predict_tta(crops) if tta else classifier.predict(crops)
    names = classifier.info.class_names
    return [
        FaceResult(d.box, round(d.score, 4), names[int(np.argmax(p))],
                   {n: round(float(v), 4) for n, v in zip(names, p)})
        for d, p in zip(detections, probabilities)
    ]


def draw_faces(image: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face.box
        confidence = face.probabilities[face.emotion]
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 255), thickness)
        label = f"{face.emotion} {confidence:.2f}"
        scale = 0.45 * thickness
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(y - th - 6, 0)
        cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + 6), (0, 200, 255), -1)
        cv2.putText(canvas, label, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
    return canvas


def predict_images(source=DEMO_IMAGE, model=DEFAULT_MODEL, detector="haar", out_dir=Path("runs/predict"),
                   threads=None, margin=0.0, tta=False, save=True) -> list[ImageResult]:
    """Detect and classify every face of an image or a folder of images; write annotated copies and JSON."""
    classifier = load_classifier(model, threads=threads)
    face_detector = make_detector(detector)
    out_dir = Path(out_dir)
    results = []
    for path in image_files(Path(source)):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: unreadable image (expected a file OpenCV can decode)")
        result = ImageResult(str(path), classify_faces(image, face_detector, classifier, margin, tta))
        if save:
            target = out_dir / f"{path.stem}_annotated.jpg"
            with atomic_path(target) as temp:
                cv2.imwrite(str(temp), draw_faces(image, result.faces))
            result.annotated = str(target)
        results.append(result)
    if save:
        write_text(out_dir / "predictions.json",
                   json.dumps([r.__dict__ | {"faces": [f.__dict__ for f in r.faces]} for r in results], indent=2))
    return results
