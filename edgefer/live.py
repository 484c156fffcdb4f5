"""`edgefer run`: the on-device loop. Capture -> detect -> crop -> classify -> (smooth) -> draw -> write.

Sources: a camera index, a video file, a stream URL, an image or a folder of images (OpenCV).
Outputs: a window when OpenCV has a GUI and a display exists, an annotated video or images (--save),
JSON Lines per frame (--json, flushed every frame), and a summary with per-stage milliseconds.
Imports neither TensorFlow nor the `mtcnn` package.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgefer.data import IMAGE_SUFFIXES
from edgefer.detection import Detection, crop_face, make_detector, to_gray
from edgefer.inference import DEFAULT_MODEL, load_classifier

STAGES = ("capture", "detect", "classify", "draw")
DEMO_IMAGE = Path(__file__).resolve().parent / "assets" / "astronaut.jpg"


class SourceError(RuntimeError):
    """The source cannot be opened or read; one line."""


@dataclass
class RunConfig:
    source: str = "0"
    model: str = ""
    detector: str = "mtcnn"
    min_face_size: int = 40
    detect_every: int = 1          # run the detector every k frames; hold tracked boxes in between
    smoothing: float = 0.0         # EMA weight of the past for each tracked face's probabilities (0 = off)
    threads: int = 1
    margin: float = 0.0
    tta: bool = False              # average each face with its mirror image
    tta_shift: int = 0             # also with both moved this many pixels four ways (10 views; implies tta)
    max_frames: int | None = None
    save: str | None = None        # annotated video (.mp4/.avi) or a folder for images
    json_path: str | None = None
    show: bool = True
    resolution: tuple[int, int] | None = None  # camera capture size request
    providers: list[str] | None = None          # ONNX Runtime execution providers, in order of preference


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    stopped: str = "end of source"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def mean_ms(self) -> dict[str, float]:
        return {s: (t / self.frames if self.frames else 0.0) for s, t in self.stage_ms.items()}

    def as_dict(self) -> dict:
        return {"frames": self.frames, "faces": self.faces, "seconds": round(self.seconds, 3),
                "fps": round(self.fps, 2), "ms_per_frame": {k: round(v, 3) for k, v in self.mean_ms().items()},
                "stopped": self.stopped}


# --------------------------------------------------------------------------- sources


class FrameSource:
    """Iterates (index, timestamp seconds, BGR frame). Camera and stream failures end it with a reason."""

    def __init__(self, source: str, resolution=None):
        self.source, self.resolution = source, resolution
        self.kind, self.fps = self._kind(source), 30.0
        self.stopped = "end of source"

    @staticmethod
    def _kind(source: str) -> str:
        if source.isdigit():
            return "camera"
        if "://" in source:
            return "stream"
        path = Path(source)
        if path.is_dir():
            return "folder"
        if not path.exists():
            raise SourceError(f"{source}: no such file, folder, camera index or stream URL")
        return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"

    def frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        if self.kind in ("image", "folder"):
            yield from self._images()
        else:
            yield from self._video()

    def _images(self):
        path = Path(self.source)
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
        if not files:
            raise SourceError(f"{path}: no images in this folder")
        for index, file in enumerate(files):
            frame = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if frame is None:
                if self.kind == "image":
                    raise SourceError(f"{file}: unreadable image (expected a file OpenCV can decode)")
                continue  # a corrupt file in a folder is skipped, the rest still run
            yield index, float(index), frame

    def _video(self):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # one clear message is ours to give
        capture = cv2.VideoCapture(int(self.source) if self.kind == "camera" else self.source)
        try:
            if not capture.isOpened():
                what = {"camera": f"camera {self.source} could not be opened (is it connected and free?)",
                        "stream": f"{self.source}: stream could not be opened",
                        "video": f"{self.source}: not a video OpenCV can decode"}[self.kind]
                raise SourceError(what)
            if self.kind == "camera" and self.resolution:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.resolution[0])
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.resolution[1])
            self.fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
            expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            index, started = 0, time.perf_counter()
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    if self.kind == "video" and expected and index < expected - 1:
                        self.stopped = f"video ended early at frame {index} of {expected} (corrupt or truncated)"
                    elif self.kind in ("camera", "stream"):
                        self.stopped = f"{self.kind} stopped delivering frames after {index}"
                    if index == 0 and self.kind == "video":
                        raise SourceError(f"{self.source}: no decodable frame (not a video, or corrupt)")
                    return
                timestamp = index / self.fps if self.kind == "video" else time.perf_counter() - started
                yield index, timestamp, frame
                index += 1
        finally:
            capture.release()


# --------------------------------------------------------------------------- tracking and smoothing


def box_iou(a: list[int], b: list[int]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


class FaceTracks:
    """Gives each face a track id by IoU with the last frame's faces; smooths probabilities per track."""

    def __init__(self, smoothing: float, min_iou: float = 0.3, max_missed: int = 10):
        self.smoothing, self.min_iou, self.max_missed = smoothing, min_iou, max_missed
        self.tracks: dict[int, dict] = {}
        self.next_id = 0

    def update(self, detections: list[Detection], probabilities: np.ndarray) -> tuple[list[int], np.ndarray]:
        ids, smoothed = [], probabilities.copy()
        free = set(self.tracks)
        for k, detection in enumerate(detections):
            best = max(free, key=lambda t: box_iou(self.tracks[t]["box"], detection.box), default=None)
            if best is None or box_iou(self.tracks[best]["box"], detection.box) < self.min_iou:
                best, self.next_id = self.next_id, self.next_id + 1
                self.tracks[best] = {"box": detection.box, "p": probabilities[k], "missed": 0}
            else:
                free.discard(best)
                track = self.tracks[best]
                track["p"] = self.smoothing * track["p"] + (1 - self.smoothing) * probabilities[k]
                track["box"], track["missed"] = detection.box, 0
            smoothed[k] = self.tracks[best]["p"]
            ids.append(best)
        for lost in free:
            self.tracks[lost]["missed"] += 1
            if self.tracks[lost]["missed"] > self.max_missed:
                del self.tracks[lost]
        return ids, smoothed


# --------------------------------------------------------------------------- outputs


def draw_faces(image: np.ndarray, faces: list[dict]) -> np.ndarray:
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face["box"]
        confidence = face["probabilities"][face["emotion"]]
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 255), thickness)
        label = f"{face['emotion']} {confidence:.2f}"
        scale = 0.45 * thickness
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(y - th - 6, 0)
        cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + 6), (0, 200, 255), -1)
        cv2.putText(canvas, label, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
    return canvas



def gui_available() -> bool:
    """OpenCV built with a GUI backend (the headless wheel has none) and a display to open."""
    info = cv2.getBuildInformation()
    gui_line = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "GUI: NONE")
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"
    return "NONE" not in gui_line and has_display


class Outputs:
    """Saved video/images and JSON Lines; closed properly whatever happens (use as a context manager)."""

    def __init__(self, config: RunConfig, source: FrameSource):
        self.config, self.source = config, source
        self.writer = None
        self.json = None
        if config.json_path:
            Path(config.json_path).parent.mkdir(parents=True, exist_ok=True)
            self.json = open(config.json_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        self.show = config.show and gui_available()
        self.save_dir = None
        if config.save and (source.kind in ("image", "folder") or not Path(config.save).suffix):
            self.save_dir = Path(config.save)
            self.save_dir.mkdir(parents=True, exist_ok=True)

    def write(self, index: int, timestamp: float, frame: np.ndarray, faces: list[dict], annotated) -> None:
        if self.json:
            self.json.write(json.dumps({"frame": index, "timestamp": round(timestamp, 4), "faces": faces}) + "\n")
            self.json.flush()
        if annotated is None:
            return
        if self.save_dir is not None:
            cv2.imwrite(str(self.save_dir / f"frame_{index:06d}.jpg"), annotated)
        elif self.config.save:
            if self.writer is None:
                Path(self.config.save).parent.mkdir(parents=True, exist_ok=True)
                fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.config.save.lower().endswith(".avi") else "mp4v"))
                height, width = annotated.shape[:2]
                self.writer = cv2.VideoWriter(self.config.save, fourcc, self.source.fps, (width, height))
                if not self.writer.isOpened():
                    raise SourceError(f"{self.config.save}: cannot write a video here (use .mp4 or .avi)")
            self.writer.write(annotated)
        if self.show:
            cv2.imshow("edgefer", annotated)
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                raise KeyboardInterrupt

    @property
    def needs_drawing(self) -> bool:
        return bool(self.config.save or self.show)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.writer is not None:
            self.writer.release()
        if self.json:
            self.json.close()
        if self.show:
            cv2.destroyAllWindows()
        return False


# --------------------------------------------------------------------------- the loop


def run(config: RunConfig, on_frame=None) -> RunSummary:
    """Run the loop until the source ends, --max-frames, Ctrl-C or a source failure; returns the summary."""
    classifier = load_classifier(config.model or DEFAULT_MODEL, threads=config.threads, providers=config.providers)
    detector = make_detector(config.detector, min_face_size=config.min_face_size, threads=config.threads)
    source = FrameSource(config.source, config.resolution)
    tracks = FaceTracks(config.smoothing)
    names = classifier.info.class_names
    summary = RunSummary()
    detections: list[Detection] = []
    clock = time.perf_counter
    started = clock()
    with Outputs(config, source) as outputs:
        frames = source.frames()
        try:
            while config.max_frames is None or summary.frames < config.max_frames:
                t0 = clock()
                item = next(frames, None)
                if item is None:
                    break
                index, timestamp, frame = item
                t1 = clock()
                if summary.frames % max(1, config.detect_every) == 0:
                    detections = detector.detect(frame)
                t2 = clock()
                faces = _classify(frame, detections, classifier, tracks, config, names)
                t3 = clock()
                annotated = draw_faces(frame, faces) if outputs.needs_drawing else None
                outputs.write(index, timestamp, frame, faces, annotated)
                t4 = clock()
                for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    summary.stage_ms[stage] += seconds * 1000
                summary.frames += 1
                summary.faces += len(faces)
                if on_frame:
                    on_frame(index, faces)
            reached = config.max_frames is not None and summary.frames >= config.max_frames
            summary.stopped = "max frames" if reached else source.stopped
        except KeyboardInterrupt:
            summary.stopped = "interrupted"
        finally:
            summary.seconds = clock() - started
    return summary


def _classify(frame, detections, classifier, tracks, config, names) -> list[dict]:
    if not detections:
        tracks.update([], np.zeros((0, len(names)), np.float32))
        return []
    gray = to_gray(frame)
    size = classifier.info.input_size
    crops = np.stack([crop_face(gray, d, size, config.margin) for d in detections])
    if config.tta or config.tta_shift:
        probabilities = classifier.predict_tta(crops, shift=config.tta_shift)
    else:
        probabilities = classifier.predict(crops)
    ids, probabilities = tracks.update(detections, probabilities)
    return [
        {"id": track, "box": d.box, "score": round(d.score, 4), "emotion": names[int(np.argmax(p))],
         "probabilities": {n: round(float(v), 4) for n, v in zip(names, p)}}
        for track, d, p in zip(ids, detections, probabilities)
    ]
