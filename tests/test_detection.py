"""Face detection: edgefer's LiteRT MTCNN finds the same faces as the `mtcnn` package; Haar; cropping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefer.detect import Detection, crop_face, make_detector
from edgefer.detect.haar import HaarDetector
from edgefer.live import DEMO_IMAGE, box_iou
from edgefer.detect.mtcnn import MTCNNDetector, nms

def photos() -> dict[str, np.ndarray]:
    """Real photos as RGB: NASA's astronaut portrait (shipped as edgefer's demo photo, from scikit-image),
    a 640x480 group of four mirrored copies, and a rotated, shrunk copy."""
    astronaut = np.ascontiguousarray(cv2.imread(str(DEMO_IMAGE))[..., ::-1])
    group = np.concatenate([np.concatenate([astronaut, astronaut[:, ::-1]], 1)] * 2, 0)
    group = cv2.resize(group, (640, 480), interpolation=cv2.INTER_AREA)
    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 256), 12, 0.8), (512, 512))
    return {"astronaut": astronaut, "group": np.ascontiguousarray(group), "rotated": rotated}


@pytest.mark.parametrize("name", ["astronaut", "group", "rotated"])
def test_mtcnn_lite_finds_the_same_faces_as_the_mtcnn_package(name):
    from mtcnn import MTCNN

    rgb = photos()[name]
    reference = [d["box"] for d in MTCNN().detect_faces(rgb)]
    ours = MTCNNDetector().detect(np.ascontiguousarray(rgb[..., ::-1]))  # edgefer takes BGR
    assert len(ours) == len(reference) >= 1
    for box in reference:
        assert max(box_iou(box, d.box) for d in ours) >= 0.9, (box, [d.box for d in ours])


def test_haar_is_selectable_and_finds_the_face():
    bgr = np.ascontiguousarray(photos()["astronaut"][..., ::-1])
    detector = make_detector("haar")
    assert isinstance(detector, HaarDetector)
    faces = detector.detect(bgr)
    assert len(faces) == 1 and box_iou(faces[0].box, [182, 64, 83, 107]) > 0.5
    with pytest.raises(ValueError, match="unknown detector 'yolo'"):
        make_detector("yolo")


def test_no_face_gives_no_detection():
    blank = np.full((480, 640, 3), 127, np.uint8)
    assert MTCNNDetector().detect(blank) == []


def test_crop_at_the_image_border_is_square_and_padded():
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    crop = crop_face(gray, Detection(-20, 70, 50, 50), 48)   # 20 px past the left and bottom edges
    padded = np.pad(gray, 20, mode="edge")                    # the edge rows/columns repeated outwards
    np.testing.assert_array_equal(crop, cv2.resize(padded[90:140, 0:50], (48, 48), interpolation=cv2.INTER_AREA))
    inside = crop_face(gray, Detection(10, 10, 40, 40), 48)
    np.testing.assert_array_equal(inside, cv2.resize(gray[10:50, 10:50], (48, 48), interpolation=cv2.INTER_LINEAR))


def test_nms_drops_boxes_overlapping_a_higher_score():
    boxes = np.array([[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.8], [50, 50, 60, 60, 0.7]], np.float32)
    kept = nms(boxes, 0.5)
    assert kept[:, 4].tolist() == pytest.approx([0.9, 0.7])
