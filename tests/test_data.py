"""FER-2013 CSV and image-folder reading, including every bad-input case."""

from __future__ import annotations

import gzip
import json

import cv2
import numpy as np
import pytest
from conftest import fer_row

from edgefer.data import (
    DataError,
    DataSpec,
    load_split,
    read_fer_csv,
    read_image_folder,
    stratified_split,
)


def test_reads_real_fer_slice(fer_train, fer_val):
    assert fer_train.images.shape == (4000, 48, 48) and fer_train.images.dtype == np.uint8
    assert set(np.unique(fer_train.labels)) == set(range(7))
    assert len(fer_val) == 800
    # pixels really vary (not a constant decode) and match the CSV's first row
    assert fer_train.images.std() > 30


def test_first_row_decodes_exactly(fer_csv):
    with gzip.open(fer_csv, "rt") as handle:
        handle.readline()
        label, pixels, usage = handle.readline().strip().split(",")
    faces = read_fer_csv(fer_csv, usage, limit=1)
    assert faces.labels[0] == int(label)
    np.testing.assert_array_equal(faces.images[0].ravel(), np.array(pixels.split(), dtype=np.uint8))


def test_plain_and_gzip_and_three_splits(tmp_path, write_csv):
    rows = [fer_row(i % 7, usage=u, seed=i) for i, u in enumerate(["Training", "PublicTest", "PrivateTest"] * 3)]
    plain = write_csv(rows)
    packed = tmp_path / "fer.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        assert len(read_fer_csv(path, "PrivateTest")) == 3
        assert len(read_fer_csv(path, ("Training", "PublicTest"))) == 6


def test_quoted_fields_crlf_and_a_field_over_two_lines(tmp_path):
    """Quoted rows and CRLF endings read like plain ones; a quoted field that runs over two lines is one
    record, and the next bad row is named by its physical line."""
    pixels = [" ".join(map(str, np.random.default_rng(k).integers(0, 256, 2304))) for k in range(3)]
    text = ("emotion,pixels,Usage\r\n" f'2,"{pixels[0]}",Training\r\n' f"4,{pixels[1]},Training\r\n"
            f'5,"{pixels[2][:20]}\n{pixels[2][21:]}",PublicTest\r\n' "9,1 2,Training\r\n")
    path = tmp_path / "quoted.csv"
    path.write_bytes(text.encode())
    faces = read_fer_csv(path, "Training", limit=2)
    assert faces.labels.tolist() == [2, 4]
    np.testing.assert_array_equal(faces.images[1].ravel(), np.array(pixels[1].split(), dtype=np.uint8))
    with pytest.raises(DataError, match=r"line 6: label '9' is not an integer 0-6"):
        read_fer_csv(path, "Training")


@pytest.mark.parametrize(
    "row, message",
    [
        (fer_row(3, pixels=" ".join(["7"] * 2303)), "line 3: 2303 pixels, expected 2304"),
        (fer_row(3, pixels=" ".join(["7"] * 2303 + ["x"])), "line 3: pixel 'x' is not an integer"),
        (fer_row(3, pixels=" ".join(["7"] * 2303 + ["2.5"])), "line 3: pixel '2.5' is not an integer"),
        (fer_row(3, pixels=" ".join(["7"] * 2303 + ["300"])), "line 3: pixel value 300 is out of range 0-255"),
        (fer_row(3, pixels=" ".join(["7"] * 2303 + ["-1"])), "line 3: pixel value -1 is out of range 0-255"),
        (fer_row(7), "line 3: label '7' is not an integer 0-6"),
        (fer_row(-1), "line 3: label '-1' is not an integer 0-6"),
        ("3,1 2 3", "line 3: 2 fields, expected 3"),
    ],
    ids=["short", "word", "float", "over255", "negative", "label7", "label-1", "fields"],
)
def test_bad_rows_name_file_line_and_problem(write_csv, row, message):
    path = write_csv([fer_row(0), row, fer_row(1)])
    with pytest.raises(DataError) as error:
        read_fer_csv(path, "Training")
    text = str(error.value)
    assert str(path) in text and message in text and "\n" not in text
    faces = read_fer_csv(path, "Training", skip_bad=True)
    assert len(faces) == 2 and faces.skipped == 1 and "skipped 1 bad row" in faces.notes[0]


def test_missing_column_empty_split_unknown_split_missing_file(tmp_path, write_csv):
    with pytest.raises(DataError, match="missing column.*Usage"):
        read_fer_csv(write_csv(["0,1 2"], header="emotion,pixels"), "Training")
    with pytest.raises(DataError, match=r"split PrivateTest is empty \(splits present: Training\)"):
        read_fer_csv(write_csv([fer_row(0)]), "PrivateTest")
    with pytest.raises(DataError, match="unknown split 'Test'"):
        read_fer_csv(write_csv([fer_row(0)]), "Test")
    with pytest.raises(DataError, match="file not found"):
        read_fer_csv(tmp_path / "nope.csv", "Training")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_fer_csv(empty, "Training")


def _write_folder(root, counts, size=64):
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 256, (size, size + 10, 3), dtype=np.uint8)
            cv2.imwrite(str(root / name / f"{i}.{'png' if i % 2 else 'jpg'}"), image)


def test_image_folder_any_size_to_48_gray(tmp_path):
    _write_folder(tmp_path, {"happy": 6, "Sad": 4, "0": 5})
    faces = read_image_folder(tmp_path)
    assert faces.images.shape == (15, 48, 48) and faces.images.dtype == np.uint8
    assert faces.class_counts().tolist() == [5, 0, 0, 6, 4, 0, 0]


def test_image_folder_errors(tmp_path):
    _write_folder(tmp_path, {"happy": 2})
    (tmp_path / "happy" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: unreadable image"):
        read_image_folder(tmp_path)
    assert read_image_folder(tmp_path, skip_bad=True).skipped == 1
    (tmp_path / "smirk").mkdir()
    with pytest.raises(DataError, match="smirk: folder name is not a class"):
        read_image_folder(tmp_path, skip_bad=True)


def test_stratified_split_keeps_class_balance(tmp_path):
    _write_folder(tmp_path, {"happy": 40, "sad": 20}, size=48)
    parts = stratified_split(read_image_folder(tmp_path), (0.5, 0.25, 0.25), seed=1)
    assert [len(p) for p in parts] == [30, 15, 15]
    assert [p.class_counts()[3] for p in parts] == [20, 10, 10]
    spec = DataSpec(str(tmp_path), val_fraction=0.25, test_fraction=0.25, seed=1)
    assert len(load_split(spec, "val")) == 15


def test_evaluate_scores_a_whole_image_folder(tmp_path):
    """An image folder given to `evaluate` is scored whole (issue 34): split 'all', the default for folders."""
    from typer.testing import CliRunner

    from edgefer.cli import app
    from edgefer.runtime import DEFAULT_MODEL

    _write_folder(tmp_path / "faces", {"happy": 6, "sad": 5}, size=48)
    assert len(load_split(DataSpec(str(tmp_path / "faces")), "all")) == 11
    result = CliRunner().invoke(app, ["evaluate", str(DEFAULT_MODEL), "--data", str(tmp_path / "faces"),
                                      "--project", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(next((tmp_path / "ev").rglob("metrics.json")).read_text())
    assert metrics["samples"] == 11 and metrics["split"] == "all"
