"""The live loop on real FER faces composed into video frames, in a process without TensorFlow or mtcnn;
the device service's guarantees: appended logs, finalised videos on SIGTERM, protected inputs, photos
with their names, every shipped device profile."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.compose import compose_frames, write_video
from edgefer.labels import CLASS_NAMES
from edgefer.live import RunConfig, box_iou, run
from edgefer.live.devices import apply_profile, available_profiles, load_profile

REPO = Path(__file__).resolve().parents[1]
BLOCKED_RUN = textwrap.dedent("""
    import sys
    for name in ("tensorflow", "keras", "mtcnn", "tf2onnx", "matplotlib"):
        sys.modules[name] = None  # importing any of these now raises ImportError
    from edgefer.cli import app
    try:
        app(sys.argv[1:])
    except SystemExit as done:
        loaded = [m for m in ("tensorflow", "keras", "mtcnn", "matplotlib") if sys.modules.get(m) is not None]
        assert not loaded, loaded
        raise
""")
runner = CliRunner()


def blocked(*args, timeout=300, cwd=None):
    """`edgefer ARGS` in a fresh process where TensorFlow, Keras, mtcnn and matplotlib cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def int8_model() -> str:
    """The shipped int8 file (made by edgefer's own export, its card beside it): the device loop needs a real
    model, not a fresh training; train -> export -> inference without TensorFlow is tests/test_export.py."""
    from edgefer.runtime import DEFAULT_MODEL

    return str(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def clip(fer_val, tmp_path_factory):
    frames = compose_frames(fer_val.images, fer_val.labels, count=12, faces_per_frame=2, seed=3)
    frames[5].image[:] = 120  # a frame with no face
    frames[5].boxes, frames[5].labels = [], []
    path = tmp_path_factory.mktemp("clip") / "faces.avi"
    return write_video(frames, str(path)), frames


@pytest.fixture(scope="module")
def long_clip(fer_val, tmp_path_factory):
    frames = compose_frames(fer_val.images, fer_val.labels, count=400, faces_per_frame=1, seed=4)
    return write_video(frames, str(tmp_path_factory.mktemp("long") / "long.avi"))


@pytest.fixture(scope="module")
def photos(fer_val, tmp_path_factory):
    """A folder of photos, one nested, plus an unreadable file and a text file that is not an image."""
    folder = tmp_path_factory.mktemp("photos")
    frames = compose_frames(fer_val.images, fer_val.labels, count=3, faces_per_frame=2, seed=8)
    cv2.imwrite(str(folder / "a.jpg"), frames[0].image)
    cv2.imwrite(str(folder / "b.png"), frames[1].image)
    (folder / "nested").mkdir()
    cv2.imwrite(str(folder / "nested" / "c.jpg"), frames[2].image)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder, frames


def test_run_on_a_clip_without_tensorflow(clip, int8_model, tmp_path):
    path, frames = clip
    out_json, out_video = tmp_path / "frames.jsonl", tmp_path / "annotated.mp4"
    result = blocked("run", "--source", path, "--model", int8_model, "--json", out_json, "--save", out_video,
                     "--no-show")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped: end of source" in result.stdout
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert [r["timestamp"] for r in records] == pytest.approx([i / 15.0 for i in range(12)], abs=1e-3)
    assert records[5]["faces"] == []
    found = sum(len(r["faces"]) for r in records)
    truth = sum(len(f.boxes) for f in frames)
    assert found >= 0.75 * truth  # the default detector finds most pasted faces (recall is measured in profiles/benchmarks/)
    for record, frame in zip(records, frames):
        assert "file" not in record   # a video has frames, not files
        for face in record["faces"]:
            assert max(box_iou(face["box"], box) for box in frame.boxes) > 0.3  # no phantom faces
            assert set(face) == {"id", "box", "score", "emotion", "probabilities", "landmarks"}   # YuNet's five
            assert len(face["landmarks"]) == 5
            assert list(face["probabilities"]) == list(CLASS_NAMES)
            assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
            assert abs(sum(face["probabilities"].values()) - 1) < 0.05
    video = cv2.VideoCapture(str(out_video))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    video.release()


def test_truncated_video_is_damaged_and_keeps_the_results_so_far(clip, int8_model, tmp_path):
    path, _ = clip
    broken = tmp_path / "broken.avi"
    data = Path(path).read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    out_json = tmp_path / "frames.jsonl"
    summary = run(RunConfig(source=str(broken), model=int8_model, json_path=str(out_json), show=False))
    lines = out_json.read_text().splitlines()
    assert 0 < summary.frames == len(lines) < 12
    assert "ended early" in summary.stopped and summary.exit_code == 3
    result = runner.invoke(app, ["run", "--source", str(broken), "--model", int8_model, "--no-show", "-q"])
    assert result.exit_code == 3 and "ended early" in result.output


def test_frames_ffmpeg_cannot_decode_are_skipped_and_named(h264_videos, tmp_path):
    """A video whose first keyframe is damaged: OpenCV returns all 30 frames, FFmpeg only logs (unattributed) on
    fd 2. `run` skips the frames FFmpeg reported, names them in its one stop line, exits 3, and no FFmpeg line
    reaches the terminal; the clean copy of the same video plays to the end with exit 0."""
    clean, damaged = h264_videos
    summary = run(RunConfig(source=str(clean), show=False, json_path=str(tmp_path / "clean.jsonl")))
    assert summary.exit_code == 0 and summary.frames == 30 and summary.stopped == "end of source"
    log = tmp_path / "damaged.jsonl"
    done = subprocess.run([sys.executable, "-m", "edgefer", "run", "--source", str(damaged), "--no-show",
                           "--json", str(log)], capture_output=True, text=True, timeout=120)
    assert "@ 0x" not in done.stderr and "error while decoding" not in done.stderr, done.stderr
    frames = [json.loads(line)["frame"] for line in log.read_text().splitlines()]
    stopped = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("stopped:")]
    assert done.returncode == 3 and len(stopped) == 1 and "FFmpeg could not decode" in stopped[0], done.stdout
    skipped = sorted(set(range(30)) - set(frames))
    assert 0 in skipped and len(skipped) < 10 and frames[-1] == 29   # the damage, then the rest of the video
    assert f"could not decode {len(skipped)} frame(s) ({', '.join(map(str, skipped[:5]))}" in stopped[0]


def test_smoothing_blends_each_track_with_its_past(fer_val, int8_model, tmp_path):
    """smoothing s: a track's probabilities are s * (its previous) + (1 - s) * (this frame's own)."""
    base = compose_frames(fer_val.images, fer_val.labels, 1, faces_per_frame=2, seed=11)[0]
    rng = np.random.default_rng(0)
    steady = [dataclasses.replace(base, image=np.clip(base.image.astype(int) + rng.integers(-40, 41, base.image.shape),
                                                       0, 255).astype(np.uint8)) for _ in range(5)]
    path = write_video(steady, str(tmp_path / "steady.avi"))   # the same faces, each frame noisy in its own way
    raw, smooth = [], []
    run(RunConfig(source=path, model=int8_model, show=False, max_frames=5), on_frame=raw.append)
    run(RunConfig(source=path, model=int8_model, show=False, max_frames=5, smoothing=0.8), on_frame=smooth.append)
    checked = 0
    for t in range(1, 5):
        for face in smooth[t]["faces"]:
            before = [f for f in smooth[t - 1]["faces"] if f["id"] == face["id"]]
            own = [f for f in raw[t]["faces"] if f["box"] == face["box"]]
            if not before or not own:
                continue
            for name in CLASS_NAMES:
                expected = 0.8 * before[0]["probabilities"][name] + 0.2 * own[0]["probabilities"][name]
                assert face["probabilities"][name] == pytest.approx(expected, abs=2e-3)
            differs = max(abs(face["probabilities"][n] - own[0]["probabilities"][n]) for n in CLASS_NAMES)
            checked += differs > 1e-3
    assert checked >= 3   # most tracks' probabilities really moved towards their past


def test_held_boxes_keep_their_track_ids(clip, int8_model):
    path, _ = clip
    seen = []
    run(RunConfig(source=path, model=int8_model, show=False, detect_every=3, max_frames=3), on_frame=seen.append)
    boxes = [[f["box"] for f in r["faces"]] for r in seen]
    ids = [[f["id"] for f in r["faces"]] for r in seen]
    assert len(ids[0]) >= 1 and ids[0] == ids[1] == ids[2] and boxes[0] == boxes[1] == boxes[2]


def test_a_face_cut_by_the_border_is_found_and_classified(fer_val, int8_model, tmp_path):
    # seed 1: MTCNN finds the cut face (it misses a third-cut face in some other compositions)
    frame = compose_frames(fer_val.images, fer_val.labels, 1, faces_per_frame=2, border_face=True, seed=1)[0]
    image = tmp_path / "border.png"
    cv2.imwrite(str(image), frame.image)
    seen = []
    summary = run(RunConfig(source=str(image), model=int8_model, show=False), on_frame=seen.append)
    assert summary.frames == 1
    cut = frame.boxes[-1]
    found = [f for f in seen[0]["faces"] if box_iou(f["box"], [cut[0], cut[1], 640 - cut[0], cut[3]]) > 0.4]
    assert len(found) == 1 and found[0]["box"][0] + found[0]["box"][2] >= 630   # reaches the right edge


def test_photo_folders_keep_file_names_and_count_unreadable_files(photos, int8_model, tmp_path):
    folder, frames = photos
    out_json, saved = tmp_path / "faces.jsonl", tmp_path / "annotated"
    result = runner.invoke(app, ["run", "--source", str(folder), "--model", int8_model, "--no-show",
                                 "--json", str(out_json), "--save", str(saved)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert [r["file"] for r in records] == ["a.jpg", "b.png", "nested/c.jpg"]
    assert all(r["timestamp"] is None for r in records)
    for record in records:   # unrelated photos: track ids start again in every photo
        assert sorted(f["id"] for f in record["faces"]) == list(range(len(record["faces"])))
        assert record["faces"], record
    assert sorted(str(p.relative_to(saved)) for p in saved.rglob("*.jpg")) == ["a.jpg", "b.jpg", "nested/c.jpg"]
    assert "a.jpg: face 0" in result.output and "nested/c.jpg: face" in result.output   # photos print faces
    assert "unreadable: 1 file(s): broken.jpg" in result.output


def test_restarts_append_to_the_log_and_a_failed_start_leaves_it_alone(clip, int8_model, tmp_path):
    path, _ = clip
    log = tmp_path / "expressions.jsonl"
    for _ in range(2):
        result = runner.invoke(app, ["run", "--source", path, "--model", int8_model, "--json", str(log),
                                     "--no-show", "-q", "--max-frames", "3"])
        assert result.exit_code == 0, result.output
    lines = log.read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0, 1, 2, 0, 1, 2]
    before = log.read_bytes()
    not_a_video = tmp_path / "notavideo.mp4"
    not_a_video.write_text("plain text")
    result = runner.invoke(app, ["run", "--source", str(not_a_video), "--model", int8_model, "--json", str(log),
                                 "--no-show"])
    assert result.exit_code == 2 and "not a video OpenCV can decode" in result.output
    assert log.read_bytes() == before


def test_the_log_rotates_by_size(clip, int8_model, tmp_path):
    path, _ = clip
    log = tmp_path / "expressions.jsonl"
    run(RunConfig(source=path, model=int8_model, json_path=str(log), rotate_mb=0.002, show=False))
    rotated = [log.with_name(f"expressions.jsonl.{k}") for k in range(5, 0, -1)]
    kept = [p for p in rotated if p.exists()]
    assert len(kept) >= 2 and all(p.stat().st_size >= 2000 for p in kept)   # each rotated past 2 kB
    frames = [json.loads(line)["frame"] for p in [*kept, log] if p.exists() for line in p.read_text().splitlines()]
    assert frames == list(range(frames[0], 12))   # oldest first, nothing lost or repeated in what is kept


def test_the_log_keeps_five_rotated_files_at_most(clip, int8_model, tmp_path):
    """A long run (the clip looped to 60 frames, ~12 rotations of 2 kB): exactly five rotated files are kept,
    and the oldest records are the ones dropped."""
    path, _ = clip
    log = tmp_path / "expressions.jsonl"
    summary = run(RunConfig(source=path, model=int8_model, json_path=str(log), rotate_mb=0.002, show=False,
                            loop=True, max_frames=60))
    assert summary.frames == 60
    assert [log.with_name(f"expressions.jsonl.{k}").exists() for k in range(1, 7)] == [True] * 5 + [False]
    kept = [log.with_name(f"expressions.jsonl.{k}") for k in range(5, 0, -1)] + [log]
    records = [json.loads(line) for p in kept for line in p.read_text().splitlines()]
    assert 5 <= len(records) < 60   # the first rotations' records are gone
    frames = [r["frame"] for r in records]   # the loop goes on counting frames
    assert frames == list(range(frames[0], 60)) and frames[0] > 0   # oldest first, no gap, the first ones dropped


def test_outputs_never_overwrite_inputs_or_recordings(clip, int8_model, tmp_path):
    path, _ = clip
    original = Path(path).read_bytes()
    recording = tmp_path / "old.mp4"
    recording.write_bytes(b"an earlier recording")
    for option, target, message in [("--save", path, "is an input of --source"),
                                    ("--json", path, "is an input of --source")]:
        result = runner.invoke(app, ["run", "--source", path, "--model", int8_model, "--no-show", option, target])
        assert result.exit_code == 2 and message in result.output, (option, result.output)
    # a taken recording name gets a number, as saved photos do: one rule, nothing written over
    result = runner.invoke(app, ["run", "--source", path, "--model", int8_model, "--no-show", "--save", str(recording)])
    assert result.exit_code == 0 and f"saved: {tmp_path / 'old_2.mp4'}" in result.output, result.output
    assert cv2.VideoCapture(str(tmp_path / "old_2.mp4")).read()[0]
    assert Path(path).read_bytes() == original and recording.read_bytes() == b"an earlier recording"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_finalises_the_video_like_ctrl_c(long_clip, int8_model, tmp_path, stop):
    """Ctrl-C (exit 130), `systemctl stop` (143) and a closed terminal (129) finalise the outputs alike."""
    out_json, out_video = tmp_path / "frames.jsonl", tmp_path / "annotated.mp4"
    command = [sys.executable, "-m", "edgefer", "run", "--source", long_clip, "--model", int8_model,
               "--json", str(out_json), "--save", str(out_video), "--no-show", "-q"]
    # a terminal's Ctrl-C: the child must not inherit an ignored SIGINT (as a background job of a script does)
    restore = f"import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv({sys.executable!r}, {command!r})"
    child = subprocess.Popen([sys.executable, "-c", restore], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not out_json.exists() or len(out_json.read_text().splitlines()) < 10):
        time.sleep(0.2)
    child.send_signal(stop)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 128 + stop, stderr[-2000:]
    assert f"interrupted ({signal.Signals(stop).name})" in stdout and "Traceback" not in stderr
    lines = len(out_json.read_text().splitlines())
    video = cv2.VideoCapture(str(out_video))
    assert video.isOpened(), "the mp4 was not finalised"
    counted = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    decoded = 0
    while video.read()[0]:
        decoded += 1
    video.release()
    assert 10 <= lines < 400 and counted == decoded == lines


def test_a_lost_stream_is_reopened(clip, int8_model):
    """A stream that stops is reopened with backoff (a loose camera cable); the replayed file stands in."""
    path, _ = clip
    summary = run(RunConfig(source=f"file://{path}", model=int8_model, show=False, retry_seconds=1.0,
                            max_frames=20))
    assert summary.frames == 20 and summary.reconnects >= 1 and summary.exit_code == 0
    gone = run(RunConfig(source=f"file://{path}", model=int8_model, show=False))
    assert gone.frames == 12 and "stream stopped delivering frames" in gone.stopped and gone.exit_code == 3


@pytest.mark.parametrize("profile", sorted(available_profiles()))
def test_every_device_profile_runs_the_demo(profile, tmp_path):
    result = runner.invoke(app, ["run", "--source", "demo", "--device", profile, "--no-show",
                                 "--json", str(tmp_path / "f.jsonl")])
    assert result.exit_code == 0, result.output
    faces = json.loads((tmp_path / "f.jsonl").read_text())["faces"]
    assert len(faces) == 1 and faces[0]["emotion"] == "happy"


def test_a_profile_merges_with_explicit_options():
    profile = load_profile("rpi4")
    merged = apply_profile(RunConfig(min_face_size=80, threads=2), profile, explicit={"min_face_size"})
    assert merged.min_face_size == 80 and merged.threads == profile["threads"] == 4
    assert merged.detect_every == profile["detect_every"] and merged.resolution == (640, 480)
    assert Path(merged.model).is_file()
    with pytest.raises(ValueError, match="unknown device profile"):
        load_profile("toaster")


def test_profiles_work_from_a_normal_install(tmp_path):
    """A non-editable install (as devices/install.sh makes): the profiles and models ship in the package."""
    source, target = tmp_path / "src", tmp_path / "site"   # built from a copy: nothing is written into the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "runs", "build", "*.egg-info", "__pycache__",
                                                                 "profiles", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(target))
    for profile in sorted(available_profiles()):
        done = subprocess.run([sys.executable, "-m", "edgefer", "run", "--source", "demo", "--device", profile,
                               "--no-show"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "astronaut.jpg: face 0" in done.stdout and " happy " in done.stdout
        assert str(target) in subprocess.run(
            [sys.executable, "-c", "import edgefer; print(edgefer.__file__)"], capture_output=True, text=True,
            env=env, cwd=tmp_path).stdout


def test_the_lite_install_says_which_extra_a_command_needs(fer_csv, int8_model, tmp_path):
    trained = blocked("train", "--data", fer_csv, cwd=tmp_path)
    assert trained.returncode == 2 and "Traceback" not in trained.stderr
    assert trained.stderr.strip().splitlines() == [
        "error: edgefer train needs the train extra (missing: keras, tensorflow): pip install 'edgefer[train]'"]
    evaluated = blocked("evaluate", int8_model, "--data", fer_csv, "--limit", "200", "--project", tmp_path / "ev",
                        cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "no confusion.png: matplotlib is not installed" in evaluated.stdout
    assert json.loads(next((tmp_path / "ev").rglob("metrics.json")).read_text())["samples"] == 200
    keras_model = blocked("run", "--source", "demo", "--model", REPO / "edgefer/weights/mini_xception_fer2013.keras",
                          cwd=tmp_path)
    assert keras_model.returncode == 2 and "needs the train extra" in keras_model.stderr


def test_bad_run_sources(int8_model, tmp_path):
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 90, np.uint8))
    for args, message in [
        (["--source", str(tmp_path / "missing.mp4")], "no such file, folder, camera index or stream URL"),
        (["--source", __file__], "not a video OpenCV can decode"),
        (["--source", str(image), "--device", "toaster"], "unknown device profile"),
        (["--source", str(image), "--resolution", "big"], "expected WIDTHxHEIGHT"),
    ]:
        result = runner.invoke(app, ["run", *args, "--model", int8_model, "--no-show"])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_missing_camera_says_each_retry_then_exits_3(int8_model):
    """The device service's first minutes (issue 32, item 0): no camera is a source error with exit 3, each
    retry is one line, and no traceback (the opener's cleanup used to fail on the released capture)."""
    result = runner.invoke(app, ["run", "--camera", "7", "--model", int8_model, "--no-show"])
    assert result.exit_code == 3 and "--camera 7: could not be opened" in result.output, result.output
    result = runner.invoke(app, ["run", "--camera", "7", "--model", int8_model, "--no-show", "--retry-seconds", "1.5"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    assert [line.split(";")[1].strip() for line in lines[:2]] == ["retry 1 in 1 s (0.5 s of --retry-seconds left after it)",
                                                                   "retry 2 in 0.5 s (0 s of --retry-seconds left after it)"]
    assert lines[-1] == "error: --camera 7: could not be opened after retrying for 1.5 s (is it connected and free?)"


def test_a_torn_json_lines_file_is_repaired_before_appending(int8_model, tmp_path):
    """After a power cut mid-line (issue 32, item 4): the partial line moves to <file>.torn and the appended
    records start on their own line, so every line of the file parses."""
    log = tmp_path / "faces.jsonl"
    log.write_text('{"frame": 0, "faces": []}\n{"frame": 1, "fa')
    result = runner.invoke(app, ["run", "--source", "demo", "--model", int8_model, "--no-show", "--json", str(log)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 0] and records[1]["faces"][0]["emotion"] == "happy"
    assert (tmp_path / "faces.jsonl.torn").read_text() == '{"frame": 1, "fa\n'


def test_json_dash_writes_records_to_standard_output(int8_model):
    done = subprocess.run([sys.executable, "-m", "edgefer", "run", "--source", "demo", "--model", int8_model,
                           "--no-show", "--json", "-"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()                      # only the record: edgefer's lines go to stderr
    assert json.loads(line)["faces"][0]["emotion"] == "happy" and "stopped: end of source" in done.stderr
    assert not Path("-").exists()


def test_show_without_a_gui_says_why(int8_model):
    result = runner.invoke(app, ["run", "--source", "demo", "--model", int8_model, "--show"])
    assert result.exit_code == 0 and "no window: this OpenCV has no GUI" in result.output


def test_checks_reports_what_this_machine_runs_without_tensorflow():
    script = ("import sys\nfor n in ('tensorflow', 'keras', 'mtcnn'):\n    sys.modules[n] = None\n"
              "sys.argv = ['edgefer', 'checks', '--cameras', '1']\nfrom edgefer.cli import console\nconsole()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line[:33].strip(): line[33:].split() for line in done.stdout.splitlines()}
    assert rows["LiteRT int8 (the default model)"][0] == "ok" and rows["detector yunet"][0] == "ok"
    assert rows["Keras models (.keras)"][0] == "missing" and rows["camera 0"][0] in ("ok", "no")
    assert rows["OpenCV window (--show)"][0] in ("ok", "no") and "Traceback" not in done.stderr


def test_loop_and_realtime_replay_a_file_at_its_own_pace(clip, int8_model):
    """A file behind --serve as a demo (issue 34, item 4): --loop starts again at the end with frame numbers
    that keep counting; --realtime plays at the video's 15 FPS instead of as fast as the loop can."""
    path, _ = clip
    records = []
    summary = run(RunConfig(source=path, model=int8_model, show=False, loop=True, max_frames=30),
                  on_frame=records.append)
    assert summary.frames == 30 and summary.stopped == "max frames" and summary.exit_code == 0
    assert [r["frame"] for r in records] == list(range(30))
    boxes = [[(f["box"], f["emotion"]) for f in records[k]["faces"]] for k in (0, 12)]
    assert boxes[0] == boxes[1]   # the same frame a lap later (new track ids: the faces jumped back)
    paced = run(RunConfig(source=path, model=int8_model, show=False, realtime=True))
    assert paced.frames == 12 and 0.7 <= paced.seconds and paced.fps <= 17   # 12 frames at 15 FPS: 0.73 s


def test_a_matroska_recording_survives_a_power_cut(long_clip, int8_model, tmp_path):
    """kill -9 mid-recording (issue 32, item 4): the .mkv still plays, up to about where it was cut."""
    out_json, out_video = tmp_path / "frames.jsonl", tmp_path / "annotated.mkv"
    child = subprocess.Popen([sys.executable, "-m", "edgefer", "run", "--source", long_clip, "--model", int8_model,
                              "--json", str(out_json), "--save", str(out_video), "--no-show", "-q"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out_json.exists() or len(out_json.read_text().splitlines()) < 40):
        time.sleep(0.2)
    child.kill()
    child.wait(timeout=60)
    lines = len(out_json.read_text().splitlines())
    video = cv2.VideoCapture(str(out_video))
    decoded = 0
    while video.read()[0]:
        decoded += 1
    video.release()
    assert lines >= 40 and 10 <= decoded <= lines, (decoded, lines)


def test_a_truncated_jpeg_is_named_not_used_half_grey(int8_model, tmp_path):
    """A JPEG cut to a third (issue 32, item 5) decodes half grey with a libjpeg warning naming no file:
    edgefer names it and counts it unreadable (a folder goes on; a lone photo is bad input)."""
    from edgefer.data import DataError, read_face_image
    from edgefer.media import DEMO_IMAGE

    data = DEMO_IMAGE.read_bytes()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "good.jpg").write_bytes(data)
    (tmp_path / "photos" / "cut.jpg").write_bytes(data[: len(data) // 3])
    result = runner.invoke(app, ["run", "--source", str(tmp_path / "photos"), "--model", int8_model, "--no-show"])
    assert result.exit_code == 0 and "unreadable: 1 file(s): cut.jpg" in result.output, result.output
    assert "good.jpg: face 0" in result.output
    lone = runner.invoke(app, ["run", "--source", str(tmp_path / "photos" / "cut.jpg"), "--model", int8_model,
                               "--no-show"])
    assert lone.exit_code == 2 and "cut.jpg: unreadable image (a truncated JPEG" in lone.output
    with pytest.raises(DataError, match="cut.jpg: truncated JPEG"):
        read_face_image(tmp_path / "photos" / "cut.jpg")


def test_save_crops_writes_each_face_once_and_never_over(clip, int8_model, tmp_path):
    path, _ = clip
    crops, log = tmp_path / "crops", tmp_path / "faces.jsonl"
    args = ["run", "--source", path, "--model", int8_model, "--no-show", "-q", "--margin", "0.2",
            "--save-crops", str(crops), "--json", str(log)]
    assert runner.invoke(app, args).exit_code == 0
    faces = [(r["frame"], f) for line in log.read_text().splitlines() for r in [json.loads(line)] for f in r["faces"]]
    written = sorted(crops.glob("*.jpg"))
    assert len(written) == len(faces) > 10
    frame, face = faces[0]
    crop = cv2.imread(str(crops / f"frame_{frame:06d}_face{face['id']}.jpg"))
    side = round(max(face["box"][2:]) * 1.2)
    assert crop.ndim == 3 and max(crop.shape[:2]) <= side and max(crop.shape[:2]) >= min(face["box"][2:])
    assert runner.invoke(app, args).exit_code == 0
    assert len(list(crops.glob("*.jpg"))) == 2 * len(written)   # a second run adds _2 files, replaces none
