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
