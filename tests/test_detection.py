"""Face detection: edgefer's LiteRT MTCNN finds the same faces as the `mtcnn` package; Haar; cropping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefer.detect import Detection, crop_face, make_detector
from edgefer.detect.haar import HaarDetector
from edgefer.live import DEMO_IMAGE, box_iou
from edgefer.detect.mtcnn import MTCNNDetector, nms, normalise_bgr
from edgefer.detect.pyramid import AreaPyramid

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
    ours = MTCNNDetector(min_face_size=20).detect(np.ascontiguousarray(rgb[..., ::-1]))  # edgefer takes BGR
    assert len(ours) == len(reference) >= 1
    for box in reference:
        assert max(box_iou(box, d.box) for d in ours) >= 0.9, (box, [d.box for d in ours])


def test_haar_is_selectable_and_finds_the_face():
    bgr = np.ascontiguousarray(photos()["astronaut"][..., ::-1])
    detector = make_detector("haar")
    assert isinstance(detector, HaarDetector)
    faces = detector.detect(bgr)
    assert len(faces) == 1 and box_iou(faces[0].box, [182, 64, 83, 107]) > 0.5
    with pytest.raises(ValueError, match="--detector yolo: expected one of mtcnn, "):
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


@pytest.mark.parametrize("int32_pixels", [AreaPyramid.int32_pixels, 0])   # 0: the float64 path of big frames
@pytest.mark.parametrize("name", ["astronaut", "group"])
def test_area_pyramid_is_opencvs_area_resize_before_rounding(name, int32_pixels, monkeypatch):
    """Every level equals cv2.resize INTER_AREA of the frame to within OpenCV's rounding to uint8 (half a grey
    level), channels in RGB order, normalised as MTCNN expects; odd sizes and a 7x11 frame included."""
    monkeypatch.setattr(AreaPyramid, "int32_pixels", int32_pixels)
    bgr = np.ascontiguousarray(photos()[name][..., ::-1])
    frames = [bgr, bgr[3:-2, 5:], np.ascontiguousarray(bgr[:7, :11])]
    for frame in frames:
        height, width = frame.shape[:2]
        sizes = [(max(1, int(width * s)), max(1, int(height * s))) for s in (0.9, 0.6, 0.3, 0.1, 0.05)]
        sizes = [size for size in sizes if size[0] <= width and size[1] <= height]
        for (w, h), level in zip(sizes, AreaPyramid(height, width, sizes)(frame)):
            expected = normalise_bgr(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))
            assert level.shape == (h, w, 3) and level.dtype == np.float32
            # half a grey level of rounding, plus ~0.01 from OpenCV's float32 weights
            assert np.abs(level - expected).max() * 128 <= 0.52, (frame.shape, w, h)
    with pytest.raises(ValueError, match="frame of 11x7; this pyramid is for"):
        AreaPyramid(480, 640, [(192, 144)])(frames[2])


@pytest.mark.parametrize("variant", ["blazeface", "blazeface_full"])
def test_blazeface_agrees_with_mtcnn_on_the_real_photos(variant):
    """The two models frame faces differently (BlazeFace: square, brow to chin), so IoU >= 0.7. BlazeFace sees
    the whole frame letterboxed into 128 (192) pixels: the group photo's 50-px faces (8 % of the frame) are
    below the short-range model's reach, and the full-range model finds two of the four (a known limit)."""
    for name in ("astronaut", "rotated"):
        bgr = np.ascontiguousarray(photos()[name][..., ::-1])
        reference = MTCNNDetector(min_face_size=20).detect(bgr)
        found = make_detector(variant, min_face_size=20).detect(bgr)
        assert len(found) == len(reference) == 1, (name, [d.box for d in found], [d.box for d in reference])
        assert box_iou(found[0].box, reference[0].box) >= 0.7, (name, found[0].box, reference[0].box)
        assert 0.5 < found[0].score <= 1
    group = np.ascontiguousarray(photos()["group"][..., ::-1])
    reference = MTCNNDetector(min_face_size=20).detect(group)
    found = make_detector(variant, min_face_size=20).detect(group)
    assert len(found) == (0 if variant == "blazeface" else 2)
    for face in found:   # what it finds is a real face, framed like MTCNN's
        assert max(box_iou(face.box, r.box) for r in reference) >= 0.7


def test_blazeface_anchors_and_weighted_nms():
    from edgefer.detect.blazeface import ssd_anchors, weighted_nms

    short = ssd_anchors(128, (8, 16, 16, 16), per_layer=2)
    assert short.shape == (896, 2)   # 16x16 cells x 2, then 8x8 cells x 6 (three layers share stride 16)
    np.testing.assert_allclose(short[:3], [[1 / 32, 1 / 32]] * 2 + [[3 / 32, 1 / 32]])
    np.testing.assert_allclose(short[512], [1 / 16, 1 / 16])
    assert ssd_anchors(192, (4,), per_layer=1).shape == (2304, 2)
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    kept, scores = weighted_nms(boxes, np.array([0.9, 0.6, 0.8], np.float32), threshold=0.3)
    np.testing.assert_allclose(kept[0], (boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5)   # merged, score-weighted
    np.testing.assert_allclose(kept[1], boxes[2])
    np.testing.assert_allclose(scores, [0.9, 0.8])


@pytest.mark.parametrize("detector", ["haar", "blazeface", "blazeface_full"])
def test_every_detector_runs_through_edgefer_run(detector, tmp_path):
    from typer.testing import CliRunner

    from edgefer.cli import app

    out = tmp_path / "faces.jsonl"
    result = CliRunner().invoke(app, ["run", "--source", "demo", "--detector", detector, "--json", str(out),
                                      "--no-show", "--min-face-size", "20"])
    assert result.exit_code == 0, result.output
    [face] = __import__("json").loads(out.read_text())["faces"]
    assert box_iou(face["box"], [181, 64, 85, 108]) > 0.5 and face["emotion"] == "happy"


def test_haar_honours_threads():
    """OpenCV's pool is process-wide: the detector sets it for its own call and puts it back."""
    before = cv2.getNumThreads()
    detector = HaarDetector(threads=1)
    seen = []
    original = detector._detect_multi_scale
    detector._detect_multi_scale = lambda gray: (seen.append(cv2.getNumThreads()), original(gray))[1]
    detector.detect(cv2.imread(str(DEMO_IMAGE)))
    assert seen == [1] and cv2.getNumThreads() == before


def test_yunet_agrees_with_mtcnn_on_real_photos_and_gives_landmarks():
    """YuNet (OpenCV's FaceDetectorYN, shipped ONNX) finds the faces MTCNN finds on the package's photos,
    each with five landmarks inside its box; a grey or BGRA frame works, and a blank one gives nothing."""
    for name in ("astronaut", "group"):
        bgr = np.ascontiguousarray(photos()[name][..., ::-1])
        mtcnn = MTCNNDetector(min_face_size=20).detect(bgr)
        yunet = make_detector("yunet", min_face_size=20).detect(bgr)
        assert len(yunet) == len(mtcnn) >= 1, (name, [d.box for d in yunet], [d.box for d in mtcnn])
        for face in mtcnn:
            assert max(box_iou(face.box, d.box) for d in yunet) >= 0.6
        for d in yunet:
            assert len(d.landmarks) == 5 and 0.6 <= d.score <= 1
            assert all(d.x <= x <= d.x + d.w and d.y <= y <= d.y + d.h for x, y in d.landmarks)
        gray = make_detector("yunet", min_face_size=20).detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        assert all(max(box_iou(face.box, d.box) for d in gray) >= 0.8 for face in yunet)
    assert make_detector("yunet").detect(np.full((480, 640, 3), 127, np.uint8)) == []


@pytest.mark.parametrize("options, message", [
    ({"score_threshold": 1.5}, "--score-threshold 1.5: expected a probability between 0 and 1"),
    ({"nms_threshold": 0}, "--nms-threshold 0: expected an IoU between 0 and 1"),
])
def test_yunet_refuses_bad_thresholds(options, message):
    with pytest.raises(ValueError, match=message):
        make_detector("yunet", **options)
    with pytest.raises(ValueError, match="--score-threshold 0.5: the mtcnn detector has none"):
        make_detector("mtcnn", score_threshold=0.5)
