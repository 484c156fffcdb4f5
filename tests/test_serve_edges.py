"""The browser view's edges (issue 32, item 2), on the real server in-process: stalled viewers are dropped and
their slots freed, connections are capped before authentication, /events never sends `null`, only stream
viewers make the loop draw, the page carries a Content-Security-Policy matching its script, and empty
--serve / --serve-token values are refused."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from edgefer.errors import OptionError
from edgefer.live.config import RunConfig
from edgefer.live.serve import PAGE, LiveServer, LiveState, page_policy


def raw_get(port: int, path: str) -> socket.socket:
    """A client that sends a request and then never reads (a stalled viewer)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return client


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def publish_noise(state: LiveState, seconds: float, stop: threading.Event) -> None:
    """Large incompressible frames, so a viewer that does not read fills its socket buffers."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    deadline = time.time() + seconds
    while time.time() < deadline and not stop.is_set():
        state.publish({"frame": 0, "timestamp": 0.0, "faces": []}, frame, {})
        time.sleep(0.01)


def test_stalled_viewers_are_dropped_and_free_their_slots():
    state = LiveState("m", "d")
    with LiveServer("127.0.0.1:0", state, max_viewers=2, socket_timeout=1.0) as server:
        stop = threading.Event()
        feeder = threading.Thread(target=publish_noise, args=(state, 30, stop), daemon=True)
        feeder.start()
        stalled = [raw_get(server.port, "/stream.mjpg") for _ in range(2)]
        try:
            time.sleep(0.5)
            assert status_of(server.url + "stream.mjpg") == 503   # both slots held
            deadline, freed = time.time() + 20, False
            while time.time() < deadline and not freed:
                time.sleep(0.5)
                freed = state.viewers == 0
            assert freed, f"stalled viewers still hold {state.viewers} slot(s)"
            request = urllib.request.urlopen(server.url + "stream.mjpg", timeout=5)
            assert request.status == 200 and request.readline() == b"--frame\r\n"
            request.close()
        finally:
            stop.set()
            for client in stalled:
                client.close()


def test_connections_are_capped_before_authentication():
    state = LiveState("m", "d")
    with LiveServer("127.0.0.1:0", state, token="t", max_viewers=1, max_connections=3,
                    socket_timeout=5.0) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
        try:
            time.sleep(0.3)
            extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert extra.recv(100) == b""          # closed at once: no thread, no answer
            extra.close()
        finally:
            for client in idle:
                client.close()
        time.sleep(0.3)
        assert status_of(server.url + "healthz") == 401   # slots come back once the idle sockets go


def test_events_wait_for_the_first_frame_and_only_streams_want_drawing():
    state = LiveState("m", "d")
    with LiveServer("127.0.0.1:0", state, max_viewers=2) as server:
        response = urllib.request.urlopen(server.url + "events", timeout=5)
        time.sleep(1.5)   # a keep-alive comes before any frame, never `data: null`
        assert state.viewers == 1 and not state.wants_frames()
        state.publish({"frame": 7, "timestamp": None, "faces": []}, None, {})
        lines = []
        while not any(line.startswith(b"data: ") for line in lines):
            lines.append(response.readline())
        data = [line for line in lines if line.startswith(b"data: ")]
        assert json.loads(data[0][6:])["frame"] == 7 and b": keep-alive\n" in lines
        response.close()


def test_the_face_table_shows_the_record_of_the_frame_the_stream_sent():
    """With a stream viewer the loop publishes faster than JPEGs go out; /events then sends the record of the
    frame the stream last sent, not the newest, so the table and the picture agree."""
    state = LiveState("m", "d")
    frame = np.zeros((48, 64, 3), np.uint8)
    with LiveServer("127.0.0.1:0", state, max_viewers=3) as server:
        stream = urllib.request.urlopen(server.url + "stream.mjpg", timeout=5)
        events = urllib.request.urlopen(server.url + "events", timeout=5)
        deadline = time.time() + 5
        while not state.wants_frames() and time.time() < deadline:
            time.sleep(0.05)
        state.publish({"frame": 1, "timestamp": None, "faces": []}, frame, {})
        received = b""
        while b"\xff\xd9\r\n--frame\r\n" not in received:   # the stream sent frame 1, and closed it
            received += stream.read1(65536)
        sent = None
        while sent is None:
            line = events.readline()
            sent = json.loads(line[6:]) if line.startswith(b"data: ") else None
        assert sent["frame"] == 1
        stream.close()
        events.close()
    watched = LiveState("m", "d")
    watched.frame_viewers = 1
    first, second = {"frame": 1, "faces": []}, {"frame": 2, "faces": []}
    watched.publish(first, frame, {})
    assert watched.table_record is None        # not sent to the picture yet
    watched.shown(first)
    watched.publish(second, frame, {})
    assert watched.table_record is first       # frame 2's record waits for frame 2's JPEG
    quiet = LiveState("m", "d")   # no stream viewer: the table follows every record
    quiet.publish({"frame": 2, "timestamp": None, "faces": []}, None, {})
    assert quiet.table_record["frame"] == 2


def test_the_page_trades_the_token_in_its_address_for_a_cookie():
    """/?token=T answers 303 to / with an HttpOnly cookie (the token leaves the address bar and history); the
    cookie then opens the stream and events; a wrong cookie does not."""
    import http.client

    with LiveServer("127.0.0.1:0", LiveState("m", "d"), token="t0k&n") as server:
        port = int(server.url.rstrip("/").rsplit(":", 1)[1])

        def get(path, headers=None):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            response.read(0)
            result = response.status, dict(response.getheaders())
            connection.close()
            return result

        status, headers = get("/?token=t0k%26n")
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        jar = cookie.split(";")[0]
        assert get("/", {"Cookie": jar})[0] == 200
        assert get("/healthz", {"Cookie": jar})[0] in (200, 503)   # authorised (503: no frame yet)
        assert get("/healthz", {"Cookie": "edgefer_token=wrong"})[0] == 401
        assert get("/", {})[0] == 401


def test_the_page_has_a_policy_that_admits_only_its_script():
    page = PAGE.read_bytes()
    script = page.split(b"<script>", 1)[1].split(b"</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    with LiveServer("127.0.0.1:0", LiveState("m", "d")) as server:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            policy = response.headers["Content-Security-Policy"]
    assert policy == page_policy(page) and f"'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert b"innerHTML = rows" not in page and b"textContent" in page   # sidecar names are never parsed as HTML


@pytest.mark.parametrize("options, message", [
    ({"serve": ""}, "--serve '': expected [HOST:]PORT"),
    ({"serve": "8080", "serve_token": ""}, "--serve-token '': expected a non-empty token"),
])
def test_empty_serve_values_are_refused(options, message):
    with pytest.raises(OptionError, match=message.replace("[", r"\[")):
        RunConfig(**options).validate()


def test_each_stream_part_is_closed_at_once():
    """Chromium draws a multipart part when the next part's headers arrive: each JPEG is followed by the next
    boundary and headers straight away, not only when the next frame comes (the picture was a frame behind the
    face table: the README's screenshot showed #150 happy on the image and 151 neutral in the table)."""
    state = LiveState("m", "d")
    with LiveServer("127.0.0.1:0", state) as server:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        client.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while b"\r\n\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n" not in data:   # headers, first part's
                data += client.recv(65536)
            time.sleep(0.3)   # the viewer is counted: publish one frame, and then nothing more
            frame = np.zeros((48, 64, 3), np.uint8)
            state.publish({"frame": 41, "timestamp": 0.0, "faces": []}, frame, {})
            client.settimeout(2)   # no second frame comes: the next part's headers must come with the first
            while not data.endswith(b"\xff\xd9\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n"):
                data += client.recv(65536)
            jpeg = data.split(b"Content-Type: image/jpeg\r\n\r\n")[1].removesuffix(b"\r\n--frame\r\n")
            assert jpeg.startswith(b"\xff\xd8") and cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1).shape == (48, 64, 3)
        finally:
            client.close()
