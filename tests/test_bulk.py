"""`edgefer bulk` on Ray Data: the same faces as `edgefer run`, resumable without duplicates, corrupt files
recorded, and a job spread over a two-node cluster simulated on this machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.compose import compose_frames, write_video
from edgefer.live import DEMO_IMAGE
from conftest import write_h264

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")
runner = CliRunner()


@pytest.fixture(scope="module")
def archive(fer_val, tmp_path_factory):
    """A folder of photos (one nested), two MJPG videos, the first again as H.264, and a list file naming the
    second video."""
    root = tmp_path_factory.mktemp("archive")
    (root / "photos" / "nested").mkdir(parents=True)
    frames = compose_frames(fer_val.images, fer_val.labels, 50, 2, seed=12)
    cv2.imwrite(str(root / "photos" / "a.png"), frames[0].image)
    cv2.imwrite(str(root / "photos" / "nested" / "b.jpg"), frames[1].image)
    cv2.imwrite(str(root / "photos" / "demo.jpg"), cv2.imread(str(DEMO_IMAGE)))
    write_video(frames[2:26], str(root / "one.avi"))
    write_video(frames[26:50], str(root / "two.avi"))
    write_h264(frames[2:26], root / "one_h264.mp4")
    (root / "list.txt").write_text(f"# the second video\n{root / 'two.avi'}\n")
    return root


def faces_of(out: Path) -> list[tuple]:
    table = pq.read_table(out / "faces").to_pylist()
    return sorted((Path(r["file"]).name, r["frame"], r["x"], r["y"], r["w"], r["h"], r["emotion"]) for r in table)


def run_faces(source: Path, tmp_path: Path, *options: str) -> list[tuple]:
    """What `edgefer run` finds in the same file, as (file, frame, box, emotion) rows."""
    log = tmp_path / f"{source.name}.jsonl"
    result = runner.invoke(app, ["run", "--source", str(source), "--json", str(log), "--no-show", "-q", *options])
    assert result.exit_code == 0, result.output
    rows = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        name = Path(record["file"]).name if record.get("file") else source.name
        rows += [(name, 0 if record.get("file") else record["frame"], *face["box"], face["emotion"])
                 for face in record["faces"]]
    return sorted(rows)


def test_bulk_finds_what_run_finds(archive, tmp_path):
    """The same faces and expressions from both commands (one FacePipeline), with a non-default margin and TTA."""
    out = tmp_path / "out"
    same = ["--margin", "0.25", "--tta-shift", "1"]
    result = runner.invoke(app, ["bulk", str(archive / "photos"), str(archive / "one.avi"), str(archive / "list.txt"),
                                 str(archive / "one_h264.mp4"), "--out", str(out), "--workers", "2",
                                 "--chunk-frames", "10", *same])
    assert result.exit_code == 0, result.output
    h264 = run_faces(archive / "one_h264.mp4", tmp_path, *same)
    expected = sorted(run_faces(archive / "photos", tmp_path, *same) + run_faces(archive / "one.avi", tmp_path, *same)
                      + run_faces(archive / "two.avi", tmp_path, *same) + h264)
    assert faces_of(out) == expected and len(expected) > 80 and len(h264) > 20
    plain = sorted(run_faces(archive / "one.avi", tmp_path / "plain"))   # the options change some answers
    assert [r[-1] for r in plain] != [r[-1] for r in expected if r[0] == "one.avi"]
    table = pq.read_table(out / "faces").to_pylist()
    videos = [r for r in table if r["file"].endswith((".avi", ".mp4"))]
    assert all(r["timestamp_s"] == pytest.approx(r["frame"] / 15.0, abs=1e-3) for r in videos)
    assert all(r["timestamp_s"] is None for r in table if not r["file"].endswith((".avi", ".mp4")))
    for row in table:
        probabilities = {k[2:]: v for k, v in row.items() if k.startswith("p_")}
        assert row["emotion"] == max(probabilities, key=probabilities.get)
        assert row["model"].endswith(".tflite") and row["detector"] == "yunet"
    files = {Path(r["file"]).name: r for r in pq.read_table(out / "files.parquet").to_pylist()}
    assert set(files) == {"a.png", "b.jpg", "demo.jpg", "one.avi", "two.avi", "one_h264.mp4"}
    assert files["one.avi"]["frames"] == files["one_h264.mp4"]["frames"] == 24
    assert files["demo.jpg"]["dominant"] == "happy"
    assert all(f["status"] == "ok" for f in files.values())
    assert sum(f["faces"] for f in files.values()) == len(expected)
    assert (out / "summary.csv").read_text().splitlines()[0].startswith("file,frames,faces,seconds,share_angry")


def test_stride_and_max_fps_sample_frames(archive, tmp_path):
    from edgefer.bulk import BulkConfig, run_bulk

    report = run_bulk(BulkConfig([str(archive / "one.avi")], str(tmp_path / "s"), stride=3, chunk_frames=7,
                                 workers=1), log=lambda *_: None)
    assert report["files"][0]["frames"] == 8   # frames 0, 3, ..., 21 of 24, across chunks of 7
    frames = {r["frame"] for r in pq.read_table(tmp_path / "s" / "faces").to_pylist()}
    assert frames <= set(range(0, 24, 3))
    report = run_bulk(BulkConfig([str(archive / "one.avi")], str(tmp_path / "f"), max_fps=5, workers=1),
                      log=lambda *_: None)
    assert report["files"][0]["frames"] == 8   # 15 fps sampled at most 5 per second: every 3rd frame


def test_corrupt_files_are_recorded_not_fatal(archive, h264_videos, tmp_path):
    broken = tmp_path / "broken.avi"
    data = (archive / "one.avi").read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    bad_image = tmp_path / "bad.jpg"
    bad_image.write_bytes(b"\xff\xd8 broken")
    out = tmp_path / "out"
    damaged = h264_videos[1]   # its first keyframe scribbled over: FFmpeg conceals, OpenCV returns garbage
    result = runner.invoke(app, ["bulk", str(fake), str(bad_image), str(broken), str(archive / "photos" / "a.png"),
                                 str(damaged), "--out", str(out), "--workers", "1", "--chunk-frames", "10"])
    assert result.exit_code == 3, result.output   # some files failed: the job says so
    files = {Path(r["file"]).name: r["status"] for r in pq.read_table(out / "files.parquet").to_pylist()}
    assert files["a.png"] == "ok"
    assert files["fake.mp4"].startswith("error: not a video")
    assert files["bad.jpg"].startswith("error: truncated JPEG")   # named, not decoded half grey
    # a video that decodes part-way is damaged, as `edgefer run` says of the same file (exit 3)
    assert files["broken.avi"].startswith("error:"), files["broken.avi"]
    ran = runner.invoke(app, ["run", "--source", str(broken), "--no-show", "-q"])
    assert ran.exit_code == 3 and "ended early" in ran.output
    # frames FFmpeg could not decode: skipped and named, in the words and frames `edgefer run` uses
    assert files["damaged.mp4"].startswith("error: FFmpeg could not decode"), files["damaged.mp4"]
    ran = runner.invoke(app, ["run", "--source", str(damaged), "--no-show", "-q"])
    assert ran.exit_code == 3 and files["damaged.mp4"].removeprefix("error: ") in ran.output
    kept = {r["frame"] for r in pq.read_table(out / "faces").to_pylist() if r["file"].endswith("damaged.mp4")}
    assert 0 not in kept and 29 in kept


def test_the_same_file_named_twice_is_processed_once(archive, tmp_path, monkeypatch):
    monkeypatch.chdir(archive)
    out = tmp_path / "out"
    result = runner.invoke(app, ["bulk", "one.avi", str(archive / "one.avi"), "photos/../one.avi", "--out", str(out),
                                 "--workers", "1000"])
    assert result.exit_code == 0, result.output
    assert "1 file(s) in 1 task(s)" in result.output and "1 worker(s)" in result.output   # one actor per task at most
    files = pq.read_table(out / "files.parquet").to_pylist()
    assert [Path(f["file"]) for f in files] == [archive / "one.avi"]
    rows = pq.read_table(out / "faces").to_pylist()
    assert len(rows) == len({(r["frame"], r["x"], r["y"]) for r in rows})   # no duplicate rows

    # a second run into the same --out with another source: the reports keep the first run's file, as faces/ does
    result = runner.invoke(app, ["bulk", "photos/a.png", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "the reports also keep 1 file(s) of earlier runs" in result.output
    files = pq.read_table(out / "files.parquet").to_pylist()
    assert [Path(f["file"]).name for f in files] == ["one.avi", "a.png"]
    faces = pq.read_table(out / "faces").to_pylist()
    for row in files:   # every report row agrees with the face rows on disk
        assert row["faces"] == sum(Path(f["file"]).name == Path(row["file"]).name for f in faces), row
    assert (out / "summary.csv").read_text().count("\n") == 3


def wait_for_ray_to_go(timeout: float = 60) -> None:
    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        left = []
        for process in psutil.process_iter(["cmdline"]):
            command = process.info["cmdline"] or [""]
            if command[0].startswith("ray::") or any(n in " ".join(command) for n in ("/raylet", "gcs_server")):
                left.append(process)
        if not left:
            return
        time.sleep(0.5)


def test_a_killed_job_resumes_without_duplicates(archive, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "edgefer", "bulk", str(archive / "one.avi"), str(archive / "two.avi"),
               "--out", str(out), "--workers", "1", "--chunk-frames", "4"]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(out.glob("tasks/*/part-*.json"))) < 3:
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)   # the driver and its local Ray instance, mid-job
    job.wait(timeout=30)
    wait_for_ray_to_go()   # Ray's workers live in their own session: they may finish one more task
    done_before = {p: p.stat().st_mtime_ns for p in out.glob("tasks/*/part-*.json")}
    assert 3 <= len(done_before) < 12
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"{len(done_before)} done already" in finished.stdout
    for path, stamp in done_before.items():   # finished parts were kept, not redone
        assert path.stat().st_mtime_ns == stamp, path
    rows = faces_of(out)
    assert len(rows) == len(set(rows))
    assert rows == sorted(run_faces(archive / "one.avi", tmp_path) + run_faces(archive / "two.avi", tmp_path))


def test_a_driver_killed_while_ray_starts_leaves_no_process(archive):
    """kill -9 of the job's process alone, as Ray's agents start: without the reaper, `ray::DashboardAgent` and
    `ray::RuntimeEnvAgent` outlived it by 30-100 s (measured); now every process the job started ends."""
    psutil = pytest.importorskip("psutil")
    job = subprocess.Popen([sys.executable, "-m", "edgefer", "bulk", str(archive / "one.avi"), "--out",
                            str(archive.parent / f"killed-{os.getpid()}"), "--workers", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    started, deadline = [], time.time() + 120
    try:
        while time.time() < deadline and not any("Agent" in name for _, _, name in started):
            started = []
            for child in psutil.Process(job.pid).children(recursive=True):
                try:
                    started.append((child.pid, child.create_time(), " ".join(child.cmdline())))
                except psutil.Error:
                    continue
            time.sleep(0.1)
        assert any("Agent" in name for _, _, name in started), started
        os.kill(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
        deadline, alive = time.time() + 20, started
        while alive and time.time() < deadline:
            time.sleep(0.5)
            alive = [(pid, created, name) for pid, created, name in alive if _alive(psutil, pid, created)]
        assert not alive, [name[:60] for _, _, name in alive]
    finally:
        for pid, created, _ in started:   # leave nothing behind for the other tests, whatever happened
            if _alive(psutil, pid, created):
                psutil.Process(pid).kill()


def _alive(psutil, pid: int, created: float) -> bool:
    try:
        process = psutil.Process(pid)
        return process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_two_node_cluster_shares_the_work(archive, tmp_path):
    from ray.cluster_utils import Cluster

    from edgefer.bulk import BulkConfig, run_bulk

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address)
        report = run_bulk(BulkConfig([str(archive / "one.avi"), str(archive / "two.avi")], str(tmp_path / "c"),
                                     workers=2, chunk_frames=3, address=cluster.address), log=lambda *_: None)
        nodes = {json.loads(p.read_text())["node"] for p in (tmp_path / "c").glob("tasks/*/part-*.json")}
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert report["totals"]["ok"] == 2 and report["totals"]["frames"] == 48
    assert len(nodes) == 2, nodes   # both nodes ran tasks


def test_ctrl_c_names_the_command_that_resumes(archive, tmp_path):
    """Ctrl-C typed at a terminal mid-job (issue 34): SIGINT reaches the whole foreground group, Ray's processes
    too. Exit 130 with one line that keeps the finished tasks and names the resume, and none of Ray's coloured
    "(raylet) Task ... failed" lines (they printed before; -v shows them)."""
    import pty
    import select

    out = tmp_path / "out"
    command = [sys.executable, "-m", "edgefer", "bulk", str(archive / "one.avi"), "--out", str(out),
               "--workers", "1", "--chunk-frames", "2"]
    # the child must not inherit an ignored SIGINT (as pytest-xdist's workers may hand down)
    restore = (f"import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               f"os.execv({sys.executable!r}, {command!r})")
    pid, terminal = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", restore])
    screen, typed, deadline = b"", False, time.time() + 240
    while time.time() < deadline:
        if not typed and list(out.glob("tasks/*/part-*.json")):
            os.write(terminal, b"\x03")   # Ctrl-C
            typed = True
        if select.select([terminal], [], [], 0.2)[0]:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:   # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    wait_for_ray_to_go()
    text = screen.decode(errors="replace")
    assert typed and os.waitstatus_to_exitcode(status) == 130, text[-2000:]
    assert f"interrupted: finished tasks are kept in {out}; resume with: edgefer bulk" in text.replace("\r\n", "")
    assert "Traceback" not in text and "(raylet)" not in text, text[-2000:]


@pytest.mark.parametrize("verbose", [False, True])
def test_rays_raylet_lines_only_with_v(verbose, capsys):
    """The switch behind -v on the installed Ray: the driver's "(raylet) ..." error lines (published by the
    cluster, printed by Ray's listener thread whatever log_to_driver says) are dropped unless verbose."""
    from ray._private import worker

    from edgefer.bulk.engine import _raylet_lines

    with _raylet_lines(shown=verbose):
        # a message of its own per case: Ray drops a line it printed recently (its deduplicator)
        worker.print_to_stdstream({"lines": [f"Task MapWorker {verbose} failed: killed by ray.kill"], "pid": "raylet",
                                   "is_err": False}, ignore_prefix=False)
    printed = capsys.readouterr().out
    assert ("(raylet)" in printed and "killed by ray.kill" in printed) == verbose, printed
    assert worker._worker_logs_enabled   # restored
