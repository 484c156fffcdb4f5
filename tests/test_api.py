"""The one-call Python API (`edgefer.Analyzer`): the README's snippet runs as written from any folder, a
face-less image gives an empty result, results plot, save and serialise, streams keep track ids."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgefer

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def analyzer():
    return edgefer.Analyzer()


def test_the_readme_snippet_runs_as_written_from_any_folder(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    snippet = next(block for block in blocks if "edgefer.Analyzer" in block)
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "happy" in done.stdout and (tmp_path / "annotated.jpg").is_file()


def test_a_photo_gives_typed_faces_and_a_faceless_image_an_empty_result(analyzer, tmp_path):
    result = analyzer.analyze(edgefer.DEMO_IMAGE)
    [face] = result.faces
    assert face.expression == "happy" and face.confidence > 0.9 and len(face.landmarks) == 5
    assert abs(float(face.probabilities.sum()) - 1) < 0.02 and result.path == str(edgefer.DEMO_IMAGE)
    record = json.loads(result.to_json())
    assert record["faces"][0]["emotion"] == "happy" and record["file"] == str(edgefer.DEMO_IMAGE)
    plotted = result.plot()
    assert plotted.shape == result.image.shape and not np.array_equal(plotted, result.image)
    saved = result.save(tmp_path / "out.png")
    assert cv2.imread(str(saved)).shape == result.image.shape
    with pytest.raises(ValueError, match="out.png: exists"):
        result.save(saved)                               # nothing written is overwritten silently
    empty = analyzer.analyze(np.full((240, 320, 3), 127, np.uint8))
    assert empty.faces == [] and len(empty) == 0 and json.loads(empty.to_json())["faces"] == []


@pytest.mark.parametrize("image, message", [
    ("missing.jpg", "missing.jpg: no such image file"),
    (np.zeros((10, 10, 3), np.float32), "expected a BGR, BGRA or grey uint8 image"),
])
def test_bad_api_input_says_what_was_expected(analyzer, image, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        analyzer.analyze(image)


def test_bad_api_options_name_the_option():
    with pytest.raises(ValueError, match="--margin 5: expected a value >= 0 and <= 2"):
        edgefer.Analyzer(margin=5)


def test_a_stream_keeps_track_ids(analyzer, tmp_path, fer_val):
    from edgefer.compose import compose_frames, write_video

    frames = compose_frames(fer_val.images, fer_val.labels, 1, 1, seed=3) * 6   # one still scene, six frames
    clip = write_video(frames, str(tmp_path / "still.avi"))
    results = list(analyzer.stream(clip, smoothing=0.5))
    assert len(results) == 6 and [r.frame for r in results] == list(range(6))
    ids = {face.track_id for r in results for face in r.faces}
    assert len(ids) == 1 and all(len(r) == 1 for r in results)
