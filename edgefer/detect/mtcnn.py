"""MTCNN face detection on LiteRT: P-Net, R-Net, O-Net as .tflite, everything else in numpy/OpenCV.

Follows the `mtcnn` package (1.0) step by step so that both find the same faces: RGB normalised as
(x - 127.5) / 128; an image pyramid from 12 / min_face_size down by 0.709; P-Net proposals per scale with
NMS; R-Net and O-Net on crop-and-resized patches (bilinear, zero outside the image); the package's NMS
variant (a box goes if any higher-scoring box overlaps it beyond the threshold).
No TensorFlow and no `mtcnn` import.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgefer.detect.pyramid import AreaPyramid
from edgefer.detect.types import MIN_FACE_SIZE, Detection
from edgefer.errors import EdgeferError
from edgefer.runtime.litert import allocate, litert_interpreter_class, make_interpreter

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


class _Net:
    """One LiteRT network, one interpreter per input shape (no re-allocation when shapes repeat, as they
    do frame after frame). Outputs are picked by their last dimension (TFLite reorders them)."""

    def __init__(self, path: Path, threads: int | None, max_shapes: int = 48):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: MTCNN network missing (run: python -m edgefer.convert.mtcnn_tflite)")
        self.interpreter_class, _ = litert_interpreter_class()
        self.path, self.threads, self.max_shapes = str(path), threads, max_shapes
        self.by_shape: dict[tuple, tuple] = {}

    def _interpreter_for(self, shape: tuple):
        entry = self.by_shape.pop(shape, None)
        if entry is None:
            interpreter = make_interpreter(self.path, self.threads, self.interpreter_class)
            input_index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(input_index, shape)
            allocate(interpreter)
            outputs = {int(d["shape"][-1]): d["index"] for d in interpreter.get_output_details()}
            entry = (interpreter, input_index, outputs)
            if len(self.by_shape) >= self.max_shapes:  # least recently used goes
                self.by_shape.pop(next(iter(self.by_shape)))
        self.by_shape[shape] = entry
        return entry

    def __call__(self, x: np.ndarray) -> dict[int, np.ndarray]:
        interpreter, input_index, outputs = self._interpreter_for(x.shape)
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        return {size: interpreter.get_tensor(index) for size, index in outputs.items()}

    def batched(self, x: np.ndarray, bucket_of=None) -> dict[int, np.ndarray]:
        """Run a batch padded to a bucket size (default: the next power of two), so a few interpreters serve
        every box count without running many empty patches (3 faces run 4 patches, not 16)."""
        count = len(x)
        bucket = (bucket_of or next_power_of_two)(count)
        if bucket != count:
            x = np.concatenate([x, np.zeros((bucket - count, *x.shape[1:]), x.dtype)])
        return {size: out[:count] for size, out in self(x).items()}


def next_power_of_two(count: int) -> int:
    return 1 << max(0, int(count) - 1).bit_length()


def multiple_of_16(count: int) -> int:
    """The bucket before 2026-12-01 (kept for the benchmark of the change)."""
    return -(-count // 16) * 16


def scale_pyramid(width: int, height: int, min_face_size: int, scale_factor: float, min_size: int = 12):
    count = round(-(np.log(min(width, height) / min_size) / np.log(scale_factor) + 1))
    return (min_size / min_face_size) * scale_factor ** np.arange(max(count, 0))


def iou_matrix(boxes: np.ndarray, method: str = "union") -> np.ndarray:
    """Pairwise overlap of x1, y1, x2, y2 boxes (no +1, as the package computes it)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    w = np.maximum(0, np.minimum(boxes[None, :, 2], boxes[:, None, 2]) - np.maximum(boxes[None, :, 0], boxes[:, None, 0]))
    h = np.maximum(0, np.minimum(boxes[None, :, 3], boxes[:, None, 3]) - np.maximum(boxes[None, :, 1], boxes[:, None, 1]))
    inter = w * h
    denominator = area[:, None] + area[None, :] - inter if method == "union" else np.minimum(area[:, None], area[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / denominator


def nms(boxes: np.ndarray, threshold: float, method: str = "union", sort: bool = True) -> np.ndarray:
    """rows: x1, y1, x2, y2, score, ...; keeps a box unless a higher-scoring one overlaps it > threshold."""
    if len(boxes) == 0:
        return boxes
    if sort:
        boxes = boxes[np.argsort(boxes[:, 4], kind="stable")[::-1]]
    overlap = iou_matrix(boxes[:, :4], method) > threshold
    suppressed = np.triu(overlap, k=1).any(axis=0)
    return boxes[~suppressed]


def square(boxes: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def refine(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] += offsets * np.stack([w, h, w, h], axis=1)
    return boxes


def normalise(rgb_u8: np.ndarray) -> np.ndarray:
    return (rgb_u8.astype(np.float32) - 127.5) * (1 / 128.0)


def normalise_bgr(bgr_u8: np.ndarray) -> np.ndarray:
    """normalise() of the RGB image, from BGR: the channel swap rides on the float conversion (exact)."""
    return normalise(bgr_u8[..., ::-1])


def crop_and_resize(rgb_u8: np.ndarray, boxes: np.ndarray, size: int, bgr: bool = False) -> np.ndarray:
    """tf.image.crop_and_resize semantics on the normalised image: box corners map to pixel centres,
    bilinear, 0 (mid-grey) outside the image. One cv2.remap over all boxes stacked vertically."""
    height, width = rgb_u8.shape[:2]
    steps = np.arange(size, dtype=np.float32) / (size - 1)
    x1, y1, x2, y2 = (boxes[:, i:i + 1].astype(np.float32) for i in range(4))
    # normalised as the package does (x / W, y / H), then mapped back by (W - 1), (H - 1)
    xs = (x1 / width + steps * (x2 - x1) / width) * (width - 1)      # (N, size)
    ys = (y1 / height + steps * (y2 - y1) / height) * (height - 1)   # (N, size)
    map_x = np.repeat(xs[:, None, :], size, axis=1).reshape(-1, size)
    map_y = np.repeat(ys[:, :, None], size, axis=2).reshape(-1, size)
    patches = np.empty((len(boxes) * size, size, 3), np.uint8)
    rows = 32000 // size * size  # cv2.remap maps are limited to SHRT_MAX rows
    for start in range(0, len(map_x), rows):
        patches[start:start + rows] = cv2.remap(
            rgb_u8, map_x[start:start + rows], map_y[start:start + rows], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    return (normalise_bgr(patches) if bgr else normalise(patches)).reshape(len(boxes), size, size, 3)


PYRAMIDS = ("area", "opencv_area", "halved", "linear")


class MTCNNDetector:
    """MTCNN on LiteRT. detect(BGR or gray uint8 image) -> detections, O-Net confidence as score."""

    name = "mtcnn"

    def __init__(self, min_face_size: int = MIN_FACE_SIZE, scale_factor: float = 0.709,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8), threads: int | None = 1,
                 weights: Path = WEIGHTS, bucket_of=next_power_of_two, pyramid: str = "area",
                 proposal_nms: float = 0.7):
        """`bucket_of`, `pyramid` and `proposal_nms` exist for profiles/benchmarks/detect_levers.py: R/O-Net
        batch padding (next power of two; multiple_of_16 was the old rule), the pyramid's resize (see
        `levels`) and the overlap above which P-Net's proposals across scales are merged (0.7 as the `mtcnn`
        package; lower feeds R-Net fewer boxes and loses faces)."""
        self.min_face_size, self.scale_factor, self.thresholds = min_face_size, scale_factor, thresholds
        if pyramid not in PYRAMIDS:
            raise EdgeferError(f"unknown pyramid {pyramid!r}; expected one of {', '.join(PYRAMIDS)}")
        self.bucket_of, self.pyramid, self.proposal_nms = bucket_of, pyramid, proposal_nms
        self.interpolation = cv2.INTER_LINEAR if pyramid == "linear" else cv2.INTER_AREA
        self._area_pyramid: AreaPyramid | None = None
        self.pnet, self.rnet, self.onet = (_Net(Path(weights) / f"mtcnn_{n}.tflite", threads)
                                           for n in ("pnet", "rnet", "onet"))

    def detect(self, image: np.ndarray) -> list[Detection]:
        boxes = self.detect_boxes(image)
        return [Detection(int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1)), float(s))
                for x1, y1, x2, y2, s in boxes[:, :5]]

    def detect_boxes(self, image: np.ndarray) -> np.ndarray:
        """Rows of x1, y1, x2, y2, score in image pixels, clipped to the image."""
        bgr = self._bgr(image)   # no full-frame colour conversion: small arrays swap channels when normalised
        height, width = bgr.shape[:2]
        boxes = self._propose(bgr)
        if len(boxes):
            boxes = self._stage(bgr, boxes, self.rnet, 24, self.thresholds[1], "union")
        if len(boxes):
            boxes = self._stage(bgr, boxes, self.onet, 48, self.thresholds[2], "min", final=True)
        if len(boxes) == 0:
            return np.empty((0, 5), np.float32)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width - 1)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height - 1)
        return boxes[:, :5]

    @staticmethod
    def _bgr(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.shape[2] == 4:
            return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        return image

    def levels(self, bgr: np.ndarray):
        """(scale, normalised RGB level) per pyramid level, every level an area average of the full frame as
        the `mtcnn` package computes it. `area`: from one integral image (detect/pyramid.py; the package's
        values before rounding to uint8); `opencv_area`: cv2.resize INTER_AREA per level (as the package;
        2.4x slower in profiles/benchmarks/detect_levers.md); `halved`: from the frame first halved (or quartered ...) by OpenCV's fast integer area
        path, then area-resized; `linear`: bilinear from the full frame (the last two cost recall)."""
        height, width = bgr.shape[:2]
        scales = [scale for scale in scale_pyramid(width, height, self.min_face_size, self.scale_factor)
                  if min(int(width * scale), int(height * scale)) >= 12]
        sizes = [(int(width * scale), int(height * scale)) for scale in scales]
        if self.pyramid == "area":
            pyramid = self._area_pyramid
            if pyramid is None or pyramid.shape != (height, width):
                pyramid = self._area_pyramid = AreaPyramid(height, width, sizes)
            yield from zip(scales, pyramid(bgr))
            return
        shrunk = {1: bgr}
        for scale, size in zip(scales, sizes):
            factor = 1
            if self.pyramid == "halved":
                while scale * factor * 2 <= 1.0 and factor < 16:
                    factor *= 2
                if factor not in shrunk:
                    shrunk[factor] = cv2.resize(bgr, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
            yield scale, normalise_bgr(cv2.resize(shrunk[factor], size, interpolation=self.interpolation))

    def _propose(self, bgr: np.ndarray) -> np.ndarray:
        found = []
        for scale, level in self.levels(bgr):
            out = self.pnet(level[None])
            boxes = self._pnet_boxes(out[4][0], out[2][0, :, :, 1], scale)
            found.append(nms(boxes, 0.5, "union", sort=False))
        boxes = np.concatenate(found) if found else np.empty((0, 5), np.float32)
        return square(nms(boxes, self.proposal_nms, "union")) if len(boxes) else boxes

    def _pnet_boxes(self, regression: np.ndarray, face: np.ndarray, scale: float) -> np.ndarray:
        rows, cols = np.nonzero(face > self.thresholds[0])
        if len(rows) == 0:
            return np.empty((0, 5), np.float32)
        reg = regression[rows, cols]
        x1, y1 = cols * 2 + 1, rows * 2 + 1
        x2, y2 = cols * 2 + 12, rows * 2 + 12
        span = 11  # (x2 - x1) of a 12-pixel cell, as the package computes it
        boxes = np.stack([x1 + reg[:, 0] * span, y1 + reg[:, 1] * span,
                          x2 + reg[:, 2] * span, y2 + reg[:, 3] * span, face[rows, cols]], axis=1)
        boxes[:, :4] /= scale
        return boxes[np.argsort(boxes[:, 4], kind="stable")[::-1]]

    def _stage(self, bgr, boxes, net, size, threshold, method, final=False):
        out = net.batched(crop_and_resize(bgr, boxes, size, bgr=True), self.bucket_of)
        boxes = refine(boxes, out[4])
        boxes[:, 4] = out[2][:, 1]
        boxes = boxes[boxes[:, 4] > threshold]
        boxes = nms(boxes, 0.7, method)
        return boxes if final else square(boxes)
