"""The live loop on real FER faces composed into video frames, in a process without TensorFlow or mtcnn."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.compose import compose_frames, write_video
from edgefer.live import RunConfig, box_iou, run

BLOCKED_RUN = textwrap.dedent("""
    import sys
    for name in ("tensorflow", "keras", "mtcnn", "tf2onnx"):
        sys.modules[name] = None  # importing any of these now raises ImportError
    from edgefer.cli import app
    try:
        app(sys.argv[1:])
    except SystemExit as done:
        loaded = [m for m in ("tensorflow", "keras", "mtcnn") if sys.modules.get(m) is not None]
        assert not loaded, loaded
        raise
""")


@pytest.fixture(scope="module")
def clip(fer_val, tmp_path_factory):
    frames = compose_frames(fer_val.images, fer_val.labels, count=12, faces_per_frame=2, seed=3)
    frames[5].image[:] = 120  # a frame with no face
    frames[5].boxes, frames[5].labels = [], []
    path = tmp_path_factory.mktemp("clip") / "faces.avi"
    return write_video(frames, str(path)), frames


def test_run_on_a_clip_without_tensorflow(clip, int8_model, tmp_path):
    path, frames = clip
    out_json, out_video = tmp_path / "frames.jsonl", tmp_path / "annotated.mp4"
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, "run", "--source", path, "--model", int8_model,
         "--json", str(out_json), "--save", str(out_video), "--no-show"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped: end of source" in result.stdout
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert records[5]["faces"] == []
    found = sum(len(r["faces"]) for r in records)
    truth = sum(len(f.boxes) for f in frames)
    assert found >= 0.75 * truth  # MTCNN finds most pasted faces (recall is measured in benchmarks/)
    for record, frame in zip(records, frames):
        for face in record["faces"]:
            assert max(box_iou(face["box"], box) for box in frame.boxes) > 0.3  # no phantom faces
            assert set(face["probabilities"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
            assert abs(sum(face["probabilities"].values()) - 1) < 0.05
    video = cv2.VideoCapture(str(out_video))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    video.release()


def test_truncated_video_keeps_the_results_so_far(clip, int8_model, tmp_path):
    path, _ = clip
    broken = tmp_path / "broken.avi"
    data = Path(path).read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    out_json = tmp_path / "frames.jsonl"
    summary = run(RunConfig(source=str(broken), model=int8_model, json_path=str(out_json), show=False))
    lines = out_json.read_text().splitlines()
    assert 0 < summary.frames == len(lines) < 12
    assert "ended early" in summary.stopped or summary.stopped == "end of source"


def test_tracking_smooths_probabilities(clip, int8_model):
    path, _ = clip
    seen = {}
    run(RunConfig(source=path, model=int8_model, show=False, detect_every=3, smoothing=0.8, max_frames=5),
        on_frame=lambda index, faces: seen.setdefault(index, faces))
    assert len(seen) == 5
    ids = [[f["id"] for f in seen[i]] for i in range(3)]
    assert ids[0] == ids[1] == ids[2]  # boxes held between detections keep their track ids


def test_border_face_and_bad_sources(fer_val, int8_model, tmp_path):
    frame = compose_frames(fer_val.images, fer_val.labels, 1, faces_per_frame=2, border_face=True)[0]
    image = tmp_path / "border.png"
    cv2.imwrite(str(image), frame.image)
    summary = run(RunConfig(source=str(image), model=int8_model, show=False))
    assert summary.frames == 1

    runner = CliRunner()
    for args, message in [
        (["--camera", "7"], "camera 7 could not be opened"),
        (["--source", str(tmp_path / "missing.mp4")], "no such file, folder, camera index or stream URL"),
        (["--source", __file__], "not a video OpenCV can decode"),
        (["--source", str(image), "--device", "toaster"], "unknown device profile 'toaster'"),
        (["--source", str(image), "--resolution", "big"], "expected WIDTHxHEIGHT"),
    ]:
        result = runner.invoke(app, ["run", *args, "--model", int8_model, "--no-show"])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
