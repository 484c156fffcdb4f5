"""Every command under bad input: one `error:` line naming the file, row or option and what was expected,
a non-zero exit, no traceback, no run directory left behind and no existing file changed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.runtime import DEFAULT_KERAS_MODEL, DEFAULT_MODEL

runner = CliRunner()
ONNX = DEFAULT_MODEL.parent / "mini_xception_fer2013.onnx"


@pytest.fixture(scope="module")
def bad(tmp_path_factory, fer_csv):
    """A folder of bad inputs, and a precious folder (an earlier run's files) that must not change."""
    root = tmp_path_factory.mktemp("bad")
    rows = ["0," + " ".join(["1"] * 2304) + ",Training"] * 3
    (root / "bom.csv").write_text("\ufeffemotion,pixels,Usage\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (root / "badpixel.csv").write_text("emotion,pixels,Usage\n" + rows[0] + "\n0,1 2 x,Training\n")
    (root / "nocolumn.csv").write_text("label,pixels,Usage\n" + rows[0] + "\n")
    (root / "tiny.csv").write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n"
                                   + "\n".join(r.replace("Training", "PublicTest") for r in rows) + "\n")
    (root / "text.onnx").write_text("this is not a protobuf")
    (root / "truncated.onnx").write_bytes(ONNX.read_bytes()[:300])
    (root / "truncated.keras").write_bytes(DEFAULT_KERAS_MODEL.read_bytes()[:2000])
    (root / "model.pt").write_bytes(b"\x00")
    (root / "sidecar").mkdir()
    shutil.copy(DEFAULT_MODEL, root / "sidecar" / "m.tflite")
    (root / "sidecar" / "m.tflite.json").write_text("{bad json")
    (root / "a_file").write_text("not a folder")
    (root / "profile.json").write_text("{not json")
    (root / "toaster.json").write_text(json.dumps({"threads": 2, "toast": True}))
    (root / "four.json").write_text(json.dumps({"threads": "four"}))
    (root / "wide.json").write_text(json.dumps({"resolution": [640, "x"]}))
    (root / "zero.json").write_text(json.dumps({"detect_every": 0}))
    (root / "runs").mkdir()
    for name, state in (("broken_state", "{oops"), ("lost_last", json.dumps({"epoch": 4}))):
        run = root / "runs" / name
        (run / "weights").mkdir(parents=True)
        (run / "args.json").write_text(json.dumps({"data": str(fer_csv), "model": "mini_xception"}))
        (run / "state.json").write_text(state)
        (run / "history.csv").write_text("epoch,lr\n1,0.001\n")
        (run / "weights" / "best.keras").write_bytes(b"earlier best")
    (root / "runs" / "unfinished" / "weights").mkdir(parents=True)
    (root / "runs" / "unfinished" / "args.json").write_text(json.dumps({"data": str(fer_csv)}))
    (root / "notarun").mkdir()
    precious = root / "precious"
    precious.mkdir()
    (precious / "expressions.jsonl").write_text('{"frame": 0, "faces": []}\n')
    (precious / "clip.avi").write_bytes(b"RIFF an earlier recording")
    (root / "five_class.keras").write_bytes(_five_class_model(root))
    (root / "lambda.keras").write_bytes(_lambda_model(root))
    return root


def _five_class_model(root: Path) -> bytes:
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
    path = root / "_five.keras"
    model.save(path)
    return path.read_bytes()


def named_function(x):
    return x * 2


def _lambda_model(root: Path) -> bytes:
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(named_function)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x)))
    path = root / "_lambda.keras"
    model.save(path)
    return path.read_bytes()


# (command line with {csv} {bad} {int8} {keras} {onnx} placeholders, exit code, what the line must say)
CASES = [
    # train: ranges, names, paths, resume
    ("train --data {csv} --batch-size 0", 2, "--batch-size 0: expected at least 2 (TensorFlow 2.21 crashes"),
    ("train --data {csv} --epochs 0", 2, "'--epochs'"),
    ("train --data {csv} --batch-size 1 --limit 64", 2, "--batch-size 1: expected at least 2"),
    ("profile --data {csv} --batch-size 1 --out {bad}/profile", 2, "--batch-size 1: expected at least 2"),
    ("train --data {csv} --lr -1", 2, "--lr -1.0: expected a value > 0"),
    ("train --data {csv} --lr 0", 2, "--lr 0.0: expected a value > 0"),
    ("train --data {csv} --limit 0", 2, "'--limit'"),
    ("train --data {csv} --limit -5", 2, "'--limit'"),
    ("train --data {csv} --model vgg16", 2, "did you mean 'vgg'"),
    ("train --data {csv} --recipe fastest", 2, "--recipe 'fastest': unknown"),
    ("train --data {csv} --schedule weekly", 2, "--schedule weekly: expected one of plateau, cosine, cyclic, constant"),
    ("train --data {csv} --schedule cyclic", 2, "needs --cycle-epochs >= 1"),
    ("train --data {csv} --schedule cyclic --cycle-epochs 0", 2, "schedule 'cyclic' needs --cycle-epochs >= 1"),
    ("train --data {csv} --branches 2 --model vgg", 2, "--branches applies to mini_xception only"),
    ("train --data {csv} --shift 0.9", 2, "'--shift'"),
    ("train --data {csv} --label-smoothing 1.5", 2, "--label-smoothing 1.5: expected a value >= 0 and < 1"),
    ("train --data {csv} --dropout 1", 2, "--dropout 1.0: expected a value >= 0 and < 1"),
    ("train --data {csv} --input-size 8", 2, "'--input-size'"),
    ("train --data {csv} --val-fraction 1.5", 2, "'--val-fraction'"),
    ("train --data {bad}/nowhere.csv --project {bad}/runs", 2, "nowhere.csv: file not found"),
    ("train --project {bad}/runs", 2, "--data is required"),
    ("train --data {csv} --name ../../x --project {bad}/runs", 2, "--name '../../x': expected a plain folder name"),
    ("train --data {csv} --name /abs --project {bad}/runs", 2, "--name '/abs': expected a plain folder name"),
    ("train --data {csv} --name . --project {bad}/runs", 2, "--name '.': expected a plain folder name"),
    ("train --data {csv} --name ' ' --project {bad}/runs", 2, "expected a plain folder name"),
    ("train --data {csv} --project {bad}/a_file", 2, "is a file; expected a folder"),
    ("train --data {csv} --weights {bad}/w.keras --project {bad}/runs", 2, "--weights {bad}/w.keras: model file not found"),
    ("train --data {csv} --teacher {bad}/t.keras --project {bad}/runs", 2, "--teacher {bad}/t.keras: model file not found"),
    ("train --data {bad}/badpixel.csv --project {bad}/runs", 2, "line 3: pixel 'x' is not an integer"),
    ("train --data {bad}/nocolumn.csv --project {bad}/runs", 2, "missing column"),
    ("train --data {bad}/tiny.csv --batch-size 64 --project {bad}/runs", 2, "batch size 64 is larger than the 3"),
    ("train --resume {bad}/notarun", 2, "not a training run (no args.json)"),
    ("train --resume {bad}/notarun --coordinator 127.0.0.1:1 --num-processes 2 --process-id 1", 2,
     "on this host: every process of a multi-host run reads the run directory process 0 writes"),
    ("train --resume {bad}/runs/broken_state", 2, "state.json: not valid JSON"),
    ("train --resume {bad}/runs/lost_last", 2, "state.json says 4 epoch(s) are done but"),
    ("train --resume {bad}/runs/lost_last --lr 0.1", 2,
     "only --epochs, --clean-epochs and a multi-host job's --coordinator, --num-processes, --process-id may change, "
     "not --lr"),
    # evaluate
    ("evaluate {bad}/missing.tflite --data {csv}", 2, "missing.tflite: model file not found"),
    ("evaluate {bad}/model.pt --data {csv}", 2, "unknown model format '.pt'"),
    ("evaluate {bad}/text.onnx --data {csv}", 2, "text.onnx: cannot load as a onnx model"),
    ("evaluate {bad}/truncated.onnx --data {csv}", 2, "truncated.onnx: cannot load as a onnx model"),
    ("evaluate {bad}/truncated.keras --data {csv}", 2, "truncated.keras: not a .keras file (expected the zip archive"),
    ("run --model {bad}/sidecar/m.tflite --source demo --no-show", 2, "m.tflite.json: the model's sidecar is not valid JSON"),
    ("evaluate {bad}/lambda.keras --data {csv}", 2, "lambda.keras: cannot load as a keras model"),
    ("evaluate {bad}/five_class.keras --data {csv}", 2, "outputs shape (1, 5) but its labels name 7 classes"),
    ("evaluate {int8} --data {csv} --limit 0", 2, "'--limit'"),
    ("evaluate {int8} --data {csv} --tta-shift -1", 2, "'--tta-shift'"),
    ("evaluate {int8} --data {csv} --split Nope", 2, "unknown split 'Nope'"),
    ("evaluate {int8} --data {csv} --out {bad}/a_file --limit 10", 2, "is a file; expected a folder"),
    ("evaluate {int8}", 2, "--data is required"),
    ("evaluate {bad}/notarun", 2, "not a training run (no args.json)"),
    ("evaluate {bad}/runs/unfinished", 2, "model.keras: missing (the run has not finished"),
    ("evaluate {int8} --data {csv} --threads 0", 2, "'--threads'"),
    # export
    ("export {keras}", 2, "Missing option '--data'"),
    ("export {keras} --data {csv} --threshold -1", 2, "'--threshold'"),
    ("export {keras} --data {csv} --formats tflite_int4 --out {bad}/exports", 2, "unknown format 'tflite_int4'"),
    ("export {keras} --data {csv} --calibration 0", 2, "'--calibration'"),
    ("export {keras} --data {csv} --out {bad}/a_file", 2, "--out {bad}/a_file: {bad}/a_file is a file"),
    ("export {bad}/truncated.keras --data {csv} --out {bad}/exports", 2, "truncated.keras"),
    ("export {int8} --data {csv} --out {bad}/exports", 2, "expected a .keras"),
    # run
    ("run --source demo --min-face-size 0", 2, "'--min-face-size'"),
    ("run --source demo --min-face-size -5", 2, "'--min-face-size'"),
    ("run --source demo --smoothing 2", 2, "'--smoothing'"),
    ("run --source demo --margin -5", 2, "'--margin'"),
    ("run --source demo --max-frames -1", 2, "'--max-frames'"),
    ("run --source demo --threads 0", 2, "'--threads'"),
    ("run --source demo --detector yolo", 2, "--detector yolo: expected one of mtcnn, blazeface, blazeface_full, haar"),
    ("run --source demo --model {bad}/text.onnx", 2, "text.onnx: cannot load as a onnx model"),
    ("run --source demo --model {bad}/five_class.keras", 2, "outputs shape (1, 5) but its labels name 7"),
    ("run --camera 0 --source demo", 2, "give either --camera or --source"),
    ("run --source demo --save {bad}/a_file/x.mp4", 2, "a_file is a file; expected a folder"),
    ("run --source demo --save-crops {bad}/a_file", 2, "a_file: is a file; expected a folder for face crops"),
    ("run --source {bad}/precious/clip.avi --save {bad}/precious/clip.avi", 2, "is an input of --source"),
    ("run --source demo --json {bad}/precious", 2, "--json {bad}/precious: is a folder"),
    ("run --source demo --device {bad}/profile.json", 2, "profile.json: not valid JSON"),
    ("run --source demo --device {bad}/toaster.json", 2, "unknown setting(s) toast"),
    ("run --source demo --device {bad}/four.json", 2, "four.json: setting 'threads' is \"four\"; expected an integer"),
    ("run --source demo --device {bad}/wide.json", 2, "setting 'resolution' is [640, \"x\"]; expected [WIDTH, HEIGHT]"),
    ("run --source demo --device {bad}/zero.json", 2, "zero.json: setting 'detect_every' is 0; expected a value >= 1"),
    ("run --source demo --device toaster", 2, "--device 'toaster': unknown device profile"),
    ("run --source demo --resolution 0x0", 2, "expected positive WIDTHxHEIGHT"),
    ("run --source demo --rotate-mb -1", 2, "'--rotate-mb'"),
    ("run --source demo --detector yunet --score-threshold 1.5", 2, "--score-threshold 1.5: expected a value > 0 and < 1"),
    ("run --source demo --detector yunet --nms-threshold 0", 2, "--nms-threshold 0.0: expected a value > 0 and < 1"),
    ("run --source demo --detector mtcnn --score-threshold 0.5", 2, "--score-threshold 0.5: the mtcnn detector has none"),
    ("run --source demo --model {bad}/notarun", 2, "notarun: a folder without weights/model.keras"),
    # bulk (options are declared once with run's: the same ranges)
    ("bulk {bad}/nothing.avi --out {bad}/bulk", 2, "nothing.avi: no such file, folder, glob or list file"),
    ("bulk {csv} --out {bad}/bulk --margin 5", 2, "'--margin'"),
    ("bulk {csv} --out {bad}/bulk --workers 0", 2, "'--workers'"),
    # sweep, prune, profile
    ("sweep --data {csv} --trials 0", 2, "'--trials'"),
    ("sweep --data {csv} --space lr=bad --out {bad}/sweep", 2, "--space lr: unknown kind 'bad'"),
    ("sweep --data {csv} --space lr=log:1e-3:1e-2 --sampler foo --out {bad}/sweep", 2, "--sampler foo: expected one of grid, random, tpe"),
    ("sweep --data {csv} --space lr=log:1e-3:1e-2 --resume --out {bad}/nosweep", 2, "--resume: no study 'nosweep'"),
    ("prune {keras} --data {csv} --criterion foo --project {bad}/runs", 2, "--criterion: unknown foo"),
    ("prune {keras} --data {csv} --target-fraction 1.5", 2, "--target-fraction 1.5: expected a value > 0 and < 1"),
    ("prune {keras} --data {csv} --step 0", 2, "'--step'"),
    ("prune {bad}/missing.keras --data {csv} --project {bad}/runs", 2, "missing.keras"),
    ("profile --data {csv} --model foo --out {bad}/profile", 2, "foo"),
    ("profile --data {csv} --interval 0", 2, "'--interval'"),
    ("profile --data {csv} --device-epochs a,b --out {bad}/profile", 2, "expected comma-separated integers"),
    ("--bogus", 2, "No such option: --bogus"),
]


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


def expand(text: str, **values) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def split_args(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


@pytest.mark.parametrize("line, code, message", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_gets_one_clear_line(line, code, message, bad, fer_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # any default runs/ folder lands here, and must stay empty
    values = dict(csv=fer_csv, bad=bad, int8=DEFAULT_MODEL, keras=DEFAULT_KERAS_MODEL, onnx=ONNX)
    before = tree_digest(bad)
    package = tree_digest(DEFAULT_MODEL.parent)
    result = runner.invoke(app, split_args(expand(line, **values)))
    output = result.output.strip()
    lines = output.splitlines()
    assert result.exit_code == code, output[-2000:]
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [x for x in lines if x.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], output[-2000:]
    assert expand(message, **values) in errors[0], errors[0]
    assert tree_digest(bad) == before, "an existing file changed, or a folder was created, under bad input"
    assert tree_digest(DEFAULT_MODEL.parent) == package
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.*")), "a run left files"


def test_the_table_covers_every_command():
    commands = {line.split()[0] for line, _, _ in CASES}
    assert {"train", "evaluate", "export", "run", "sweep", "prune", "profile"} <= commands and len(CASES) >= 60


def test_a_bom_csv_and_image_folder_surprises_are_read_and_reported(bad, tmp_path):
    from edgefer.data import load_split, DataSpec, read_fer_csv, read_image_folder

    assert len(read_fer_csv(bad / "bom.csv", "Training")) == 3   # a spreadsheet's byte-order mark is no column
    folder = tmp_path / "faces"
    (folder / "happy" / "more").mkdir(parents=True)
    face = np.full((48, 48), 100, np.uint8)
    import cv2

    cv2.imwrite(str(folder / "happy" / "a.png"), face)
    cv2.imwrite(str(folder / "happy" / "more" / "b.png"), face)
    (folder / "happy" / "c.gif").write_bytes(b"GIF89a")
    faces = read_image_folder(folder)
    assert len(faces) == 2   # the nested image counts for its class
    assert any("ignored 1 file(s) that are not images edgefer reads (1 .gif" in n for n in faces.notes)
    assert load_split(DataSpec(str(bad / "bom.csv")), "Training").labels.tolist() == [0, 0, 0]


def test_readonly_project_is_named(fer_csv, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write to a read-only folder; the file case above covers the same check")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = runner.invoke(app, ["train", "--data", str(fer_csv), "--project", str(locked / "runs")])
        assert result.exit_code == 2 and "is not writable" in result.output
    finally:
        locked.chmod(0o700)
        shutil.rmtree(locked)


@pytest.mark.parametrize("error, line", [
    (PermissionError("--out /x: /x is not writable; expected a folder you can write to"),
     "error: --out /x: /x is not writable; expected a folder you can write to"),
    (PermissionError(13, "Permission denied", "/x/f.json"),
     "error: /x/f.json: permission denied (expected a file or folder you can write to)"),
])
def test_permission_errors_keep_the_option_and_path(error, line, capsys):
    """Issue 32, item 9: the message edgefer's own check wrote (option and folder) is what the user reads."""
    import typer

    from edgefer.cli import one_line_errors

    with pytest.raises(typer.Exit):
        with one_line_errors():
            raise error
    assert capsys.readouterr().err.strip() == line
