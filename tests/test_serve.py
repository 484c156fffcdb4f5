"""`edgefer run --serve`: a real server process on a real video, real HTTP clients, a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.compose import compose_frames, write_video
from edgefer.labels import CLASS_NAMES
from edgefer.runtime import DEFAULT_MODEL

TOKEN = "s3cret-token"


def start(args: list[str], tmp_path: Path, name: str):
    """`edgefer run ARGS --serve 127.0.0.1:0` in a child process; returns (process, base URL)."""
    log = open(tmp_path / f"{name}.out", "w")
    child = subprocess.Popen([sys.executable, "-m", "edgefer", "run", *args, "--serve", "127.0.0.1:0", "--no-show"],
                             stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 120
    while time.time() < deadline:
        found = re.search(r"serving (http://\S+/)", (tmp_path / f"{name}.out").read_text())
        if found:
            return child, found.group(1)
        if child.poll() is not None:
            break
        time.sleep(0.1)
    child.kill()
    raise AssertionError((tmp_path / f"{name}.out").read_text())


def get(url: str, token: str | None = TOKEN, header: bool = True, timeout: float = 10):
    request = urllib.request.Request(url)
    if token and header:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def read_parts(url: str, count: int, timeout: float = 20) -> list[bytes]:
    """The first `count` JPEG parts of a multipart MJPEG stream, split at its boundaries."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    data = b""
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=frame")
        while data.count(b"--frame\r\n") <= count:
            data += response.read1(65536)
    parts = data.split(b"--frame\r\n")[1:count + 1]   # each: headers, a blank line, the JPEG, CRLF
    return [part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for part in parts]


def read_events(url: str, count: int, timeout: float = 20) -> list[tuple[str, dict]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    events, kind = [], "message"
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        while len(events) < count:
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                kind = "message"
    return events


@pytest.fixture(scope="module")
def clip(fer_val, tmp_path_factory):
    frames = compose_frames(fer_val.images, fer_val.labels, count=60, faces_per_frame=2, seed=6)
    return write_video(frames, str(tmp_path_factory.mktemp("serve") / "clip.avi"))


@pytest.fixture(scope="module")
def server(clip, tmp_path_factory):
    """A service-like loop: the clip as a stream that is reopened whenever it ends, so frames keep coming."""
    folder = tmp_path_factory.mktemp("server")
    child, url = start(["--source", f"file://{clip}", "--retry-seconds", "600", "--model", str(DEFAULT_MODEL),
                        "--serve-token", TOKEN, "--serve-max-viewers", "2", "--json", str(folder / "frames.jsonl")],
                       folder, "server")
    deadline = time.time() + 60
    while time.time() < deadline and get(url + "healthz")[0] != 200:   # frames are flowing
        time.sleep(0.2)
    yield url, folder
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 143, (folder / "server.out").read_text()


def test_the_token_is_required_on_every_endpoint(server):
    url, _ = server
    for path in ("", "stream.mjpg", "events", "metrics", "healthz"):
        assert get(url + path, token=None)[0] == 401, path
        assert get(url + path, token="wrong")[0] == 401, path
    assert get(url + "healthz")[0] == 200
    assert get(url + f"healthz?token={TOKEN}", header=False)[0] == 200   # the browser page's way
    assert get(url + "../../etc/passwd")[0] == 404 and get(url + "weights/model.keras")[0] == 404


def test_the_page_needs_nothing_from_the_internet(server):
    url, _ = server
    status, body = get(url)
    page = body.decode()
    assert status == 200 and "<img" in page and "EventSource" in page
    assert "://" not in page   # no CDN, no outside address: everything comes from edgefer


def test_the_stream_is_jpeg_frames_of_the_annotated_video(server):
    url, _ = server
    parts = read_parts(url + "stream.mjpg", 3)
    images = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in parts]
    assert all(image is not None and image.shape == (480, 640, 3) for image in images)
    assert any(not np.array_equal(images[0], image) for image in images[1:])   # it moves


def test_events_carry_the_json_lines_records(server):
    url, folder = server
    events = read_events(url + "events", 6)
    records = [data for kind, data in events if kind == "message"]
    shares = [data for kind, data in events if kind == "shares"]
    assert len(records) >= 2 and shares
    for record in records:
        assert set(record) == {"frame", "timestamp", "faces"}
        for face in record["faces"]:
            assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
    assert all(set(s) <= set(CLASS_NAMES) and abs(sum(s.values()) - 1) < 0.01 for s in shares if s)
    time.sleep(0.5)
    written = [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]
    assert any(line == records[0] for line in written)   # the same record the --json file holds


def test_metrics_parse_as_prometheus_text(server):
    from prometheus_client.parser import text_string_to_metric_families

    url, _ = server
    status, body = get(url + "metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert status == 200
    frames = families["edgefer_frames"].samples[0].value
    assert frames > 0 and families["edgefer_faces"].samples[0].value > 0
    assert {s.labels["emotion"] for s in families["edgefer_expressions"].samples} <= set(CLASS_NAMES)
    info = families["edgefer_info"].samples[0].labels
    assert info["detector"] == "yunet" and info["model"].endswith(".tflite")
    assert families["edgefer_fps"].samples[0].value > 0 and families["edgefer_uptime_seconds"].samples[0].value > 0
    buckets = [s for s in families["edgefer_stage_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["stage"] == "detect"]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value >= frames - 1
    assert all(a.value <= b.value for a, b in zip(buckets, buckets[1:]))   # cumulative


def test_viewers_are_capped(server):
    url, _ = server
    request = urllib.request.Request(url + "stream.mjpg", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=20), urllib.request.urlopen(request, timeout=20):
        time.sleep(0.3)
        assert get(url + "stream.mjpg")[0] == 503   # --serve-max-viewers 2


def test_healthz_turns_503_when_the_source_stalls(clip, tmp_path):
    moving = tmp_path / "camera.avi"
    shutil.copy(clip, moving)
    child, url = start(["--source", f"file://{moving}", "--retry-seconds", "120", "--model", str(DEFAULT_MODEL),
                        "--serve-stall-seconds", "1"], tmp_path, "stall")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and get(url + "healthz", token=None)[0] != 200:
            time.sleep(0.2)
        assert get(url + "healthz", token=None)[0] == 200
        moving.unlink()   # the "camera" is unplugged: the stream ends and cannot be reopened
        deadline = time.time() + 60
        while time.time() < deadline and get(url + "healthz", token=None)[0] == 200:
            time.sleep(0.2)
        status, body = get(url + "healthz", token=None)
        assert status == 503 and json.loads(body)["status"] == "stalled"
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)


def chromium() -> str | None:
    return next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


def test_the_page_in_a_real_browser(server, tmp_path):
    """Headless Chromium (Debian's) driven by Playwright: the stream moves, the table names an expression."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install playwright and Debian's chromium (see .ci/run)")
        pytest.skip("playwright or chromium not installed")
    url, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(f"{url}?token={TOKEN}")
            assert TOKEN not in page.url   # traded for a cookie: not left in the address bar or history
            page.wait_for_function("document.getElementById('stream').naturalWidth > 0", timeout=30000)
            first = page.locator("#stream").screenshot()
            page.wait_for_timeout(1500)
            second = page.locator("#stream").screenshot()
            assert first != second, "the stream image did not change"
            # read in one step: the table is replaced with every frame (one without faces says "no face")
            names = page.wait_for_function("() => { const cells = [...document.querySelectorAll('td.emotion')];"
                                           " return cells.length ? cells.map((c) => c.textContent) : null; }",
                                           timeout=30000).json_value()
            assert names and all(n in CLASS_NAMES for n in names)
            page.wait_for_timeout(2500)   # a few seconds of the rolling chart
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            if os.environ.get("EDGEFER_SCREENSHOT"):
                shutil.copy(shot, os.environ["EDGEFER_SCREENSHOT"])   # the README's picture, on request
        finally:
            browser.close()
