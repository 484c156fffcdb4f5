"""`edgefer run --serve [HOST:]PORT`: a browser view of a headless device, from the standard library.

Endpoints: `/` (the page: live stream, faces of the latest frame, expression shares over the last minute),
`/stream.mjpg` (multipart JPEG), `/events` (Server-Sent Events, one `--json` record per frame),
`/metrics` (Prometheus text), `/healthz` (200 while frames arrive, 503 once the source stalls).

Why `http.server.ThreadingHTTPServer`: it ships with Python (nothing to install on a Pi, no CDN, works
offline), one thread per viewer suits a handful of viewers, and every endpoint here is a few lines.

Cost to the loop: it hands over a reference to each frame and record under a lock; JPEG encoding happens in
the viewers' threads, only while a viewer is connected, and a slow viewer simply skips frames.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import hmac
import json
import os
import socket
import threading
import time
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import cv2
import numpy as np

from edgefer.errors import EdgeferError
from edgefer.live.config import STAGES

PAGE = Path(__file__).resolve().parent / "web" / "index.html"
TOKEN_ENV = "EDGEFER_SERVE_TOKEN"
COOKIE = "edgefer_token"   # what the page's stream and events authenticate with, once ?token= was exchanged
SOCKET_TIMEOUT = 10.0      # seconds a request may take to arrive, or a viewer to take a write, before it is dropped
EXTRA_CONNECTIONS = 16     # connections beyond the viewer slots (page, /metrics, /healthz, waiting requests)
PART_HEADERS = b"Content-Type: image/jpeg\r\n\r\n"   # of every /stream.mjpg part
STREAM_SEND_BUFFER = 64 * 1024   # bytes: about one 640x480 JPEG (the kernel doubles it)
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)   # seconds
WINDOW_SECONDS = 60.0


def parse_address(text: str) -> tuple[str, int]:
    """'8080' -> ('127.0.0.1', 8080): a LAN address must be given explicitly, e.g. '0.0.0.0:8080'."""
    host, _, port = str(text).rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise EdgeferError(f"--serve {text!r}: expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080") from None
    if not 0 <= number <= 65535:
        raise EdgeferError(f"--serve {text!r}: expected a port 0-65535")
    return (host.strip("[]") or "127.0.0.1"), number


class LiveState:
    """What the loop publishes and the viewers read: the latest frame and record, counters, histograms."""

    def __init__(self, model: str, detector: str, stall_seconds: float = 5.0):
        self.model, self.detector, self.stall_seconds = model, detector, stall_seconds
        self.changed = threading.Condition()
        self.sequence = 0
        self.frame: np.ndarray | None = None
        self.record: dict | None = None
        self.started = time.time()
        self.last_frame_at: float | None = None
        self.frames = 0
        self.faces = 0
        self.expressions: collections.Counter = collections.Counter()
        self.recent: collections.deque = collections.deque()        # (time, [emotions]) of the last minute
        self.frame_times: collections.deque = collections.deque(maxlen=120)
        self.latency = {stage: [0] * (len(LATENCY_BUCKETS) + 1) for stage in STAGES}
        self.latency_sum = {stage: 0.0 for stage in STAGES}
        self.table_sequence = 0   # the record the face table shows: that of the last frame a stream viewer got
        self.table_record: dict | None = None
        self.viewers = 0          # stream and event viewers (the --serve-max-viewers slots)
        self.frame_viewers = 0    # of them, those who receive frames (/stream.mjpg)

    def wants_frames(self) -> bool:
        """Only /stream.mjpg viewers need drawn frames; /events viewers get records."""
        return self.frame_viewers > 0

    def publish(self, record: dict, annotated: np.ndarray | None, stage_seconds: dict[str, float]) -> None:
        now = time.time()
        emotions = [face["emotion"] for face in record["faces"]]
        with self.changed:
            self.sequence += 1
            self.record, self.frame = record, annotated
            if not self.frame_viewers:   # nobody sees frames: the table follows every record
                self.table_sequence, self.table_record = self.table_sequence + 1, record
            self.last_frame_at = now
            self.frames += 1
            self.faces += len(emotions)
            self.expressions.update(emotions)
            self.recent.append((now, emotions))
            while self.recent and self.recent[0][0] < now - WINDOW_SECONDS:
                self.recent.popleft()
            self.frame_times.append(now)
            for stage, seconds in stage_seconds.items():
                bucket = next((k for k, edge in enumerate(LATENCY_BUCKETS) if seconds <= edge), len(LATENCY_BUCKETS))
                self.latency[stage][bucket] += 1
                self.latency_sum[stage] += seconds
            self.changed.notify_all()

    def latest(self) -> tuple[int, np.ndarray | None, dict | None]:
        """The newest frame with its own record (read together: a frame and the next frame's record differ)."""
        with self.changed:
            return self.sequence, self.frame, self.record

    def shown(self, record: dict) -> None:
        """A stream viewer was sent the frame of `record`: the face table shows that record, so the table and
        the picture agree (the JPEG stream lags the records: the README's screenshot once showed neutral 0.59
        on the picture and happy 0.77 in the table)."""
        with self.changed:
            if record is not self.table_record:
                self.table_sequence, self.table_record = self.table_sequence + 1, record
                self.changed.notify_all()

    def wait_table(self, after: int, timeout: float = 1.0) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.table_sequence != after, timeout=timeout)
            return self.table_sequence

    def healthy(self) -> bool:
        return self.last_frame_at is not None and time.time() - self.last_frame_at <= self.stall_seconds

    def fps(self) -> float:
        times = list(self.frame_times)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def wait(self, after: int, timeout: float = 1.0) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.sequence != after, timeout=timeout)
            return self.sequence

    def shares(self) -> dict:
        """Share of each expression among the faces of the last minute."""
        with self.changed:
            counts = collections.Counter(e for _, emotions in self.recent for e in emotions)
        total = sum(counts.values())
        return {name: round(count / total, 4) for name, count in counts.items()} if total else {}

    def metrics_text(self) -> str:
        def label(value: str) -> str:
            return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")

        with self.changed:
            lines = [
                "# HELP edgefer_info The model and detector this loop runs.", "# TYPE edgefer_info gauge",
                f'edgefer_info{{model="{label(self.model)}",detector="{label(self.detector)}"}} 1',
                "# HELP edgefer_frames_total Frames processed.", "# TYPE edgefer_frames_total counter",
                f"edgefer_frames_total {self.frames}",
                "# HELP edgefer_faces_total Faces classified.", "# TYPE edgefer_faces_total counter",
                f"edgefer_faces_total {self.faces}",
                "# HELP edgefer_expressions_total Faces by expression.", "# TYPE edgefer_expressions_total counter",
                *[f'edgefer_expressions_total{{emotion="{label(k)}"}} {v}' for k, v in sorted(self.expressions.items())],
                "# HELP edgefer_fps Frames per second over the last 120 frames.", "# TYPE edgefer_fps gauge",
                f"edgefer_fps {self.fps():.3f}",
                "# HELP edgefer_uptime_seconds Seconds since the loop started.", "# TYPE edgefer_uptime_seconds gauge",
                f"edgefer_uptime_seconds {time.time() - self.started:.3f}",
                "# HELP edgefer_viewers Connected stream and event viewers.", "# TYPE edgefer_viewers gauge",
                f"edgefer_viewers {self.viewers}",
                "# HELP edgefer_stage_seconds Time per frame in each stage of the loop.",
                "# TYPE edgefer_stage_seconds histogram",
            ]
            for stage in STAGES:
                running = 0
                for edge, count in zip((*LATENCY_BUCKETS, float("inf")), self.latency[stage]):
                    running += count
                    bound = "+Inf" if edge == float("inf") else repr(edge)
                    lines.append(f'edgefer_stage_seconds_bucket{{stage="{stage}",le="{bound}"}} {running}')
                lines.append(f'edgefer_stage_seconds_sum{{stage="{stage}"}} {self.latency_sum[stage]:.6f}')
                lines.append(f'edgefer_stage_seconds_count{{stage="{stage}"}} {running}')
        return "\n".join(lines) + "\n"


class LiveServer:
    """The HTTP server in a daemon thread; `state` is what the loop publishes into."""

    def __init__(self, address: str, state: LiveState, token: str | None = None, max_viewers: int = 4,
                 socket_timeout: float = SOCKET_TIMEOUT, max_connections: int | None = None):
        self.host, self.port = parse_address(address)
        self.state, self.token, self.max_viewers = state, token or os.environ.get(TOKEN_ENV) or None, max_viewers
        self.viewer_slots = threading.BoundedSemaphore(max_viewers)
        # every connection, before authentication: idle or hostile sockets cannot pin unbounded threads
        self.connection_slots = threading.BoundedSemaphore(max_connections or max_viewers + EXTRA_CONNECTIONS)
        handler = type("Handler", (_Handler,), {"server_state": self, "timeout": socket_timeout})
        try:
            self.httpd = _CappedServer((self.host, self.port), handler, self.connection_slots)
        except OSError as error:
            raise OSError(error.errno, f"--serve {address}: cannot listen ({error.strerror})") from None
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="edgefer-serve", daemon=True)
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        with self.state.changed:
            self.state.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        return False


class _CappedServer(ThreadingHTTPServer):
    """A thread per connection up to a cap; a connection over the cap is closed at once."""

    def __init__(self, address, handler, slots: threading.BoundedSemaphore):
        self.slots = slots
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def page_policy(page: bytes) -> str:
    """The page's Content-Security-Policy: its one inline script by hash, everything else from itself."""
    script = page.split(b"<script>", 1)[1].split(b"</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    return (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src 'self'; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class _Handler(BaseHTTPRequestHandler):
    server_state: LiveServer
    protocol_version = "HTTP/1.1"
    ROUTES = {"/": "page", "/stream.mjpg": "stream", "/events": "events", "/metrics": "metrics", "/healthz": "health"}

    def log_message(self, *args):   # no access log in the terminal
        pass

    def do_GET(self):  # noqa: N802 - the standard library's name
        url = urlsplit(self.path)
        route = self.ROUTES.get(url.path)
        if route is None:
            return self._send(404, "text/plain", b"not found\n")
        query_token = parse_qs(url.query).get("token", [None])[0]
        if not self._authorised(query_token):
            return self._send(401, "text/plain", b"unauthorised: send Authorization: Bearer TOKEN or ?token=TOKEN\n",
                              {"WWW-Authenticate": 'Bearer realm="edgefer"'})
        if route == "page" and query_token is not None:
            # the token leaves the address bar (and the browser's history) for a cookie only this server reads,
            # which the page's stream and events then send
            return self._send(303, "text/plain", b"see /\n", {
                "Location": "/", "Set-Cookie": f"{COOKIE}={quote(query_token)}; HttpOnly; SameSite=Strict; Path=/"})
        getattr(self, f"_{route}")()

    def _authorised(self, query_token: str | None) -> bool:
        expected = self.server_state.token
        if not expected:
            return True
        header = self.headers.get("Authorization", "")
        cookies = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(self.headers.get("Cookie", ""))
        cookie = unquote(cookies[COOKIE].value) if COOKIE in cookies else None
        given = header[7:] if header.startswith("Bearer ") else (query_token or cookie)
        return given is not None and hmac.compare_digest(given.encode(), expected.encode())

    def _send(self, code: int, kind: str, body: bytes, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _page(self):
        page = PAGE.read_bytes()
        self._send(200, "text/html; charset=utf-8", page,
                   {"Content-Security-Policy": page_policy(page), "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer"})

    def _metrics(self):
        self._send(200, "text/plain; version=0.0.4; charset=utf-8", self.server_state.state.metrics_text().encode())

    def _health(self):
        state = self.server_state.state
        if state.healthy():
            self._send(200, "application/json", json.dumps({"status": "ok", "frames": state.frames}).encode())
        else:
            age = None if state.last_frame_at is None else round(time.time() - state.last_frame_at, 1)
            self._send(503, "application/json", json.dumps({"status": "stalled", "seconds_since_frame": age}).encode())

    def _viewer(self, boundary_kind: str, body, frames: bool = False):
        """Hold one of the viewer slots while streaming; 503 when all are taken. A viewer that stops reading
        is dropped after the socket timeout (its write times out), which frees the slot."""
        server = self.server_state
        if not server.viewer_slots.acquire(blocking=False):
            return self._send(503, "text/plain", f"at most {server.max_viewers} viewers\n".encode())
        state = server.state
        with state.changed:
            state.viewers += 1
            state.frame_viewers += int(frames)
        try:
            self.send_response(200)
            self.send_header("Content-Type", boundary_kind)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            body(state, server.stopping)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass   # the viewer went away
        finally:
            with state.changed:
                state.viewers -= 1
                state.frame_viewers -= int(frames)
            server.viewer_slots.release()
            self.close_connection = True

    def _stream(self):
        def body(state: LiveState, stopping: threading.Event):
            # a small send buffer: a frame is written once the one before has drained, so the viewer sees the
            # newest frame rather than a queue of old ones, and "sent" (the face table's frame) is "received"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)
            self.wfile.write(b"--frame\r\n" + PART_HEADERS)
            self.wfile.flush()
            seen = -1
            while not stopping.is_set():
                state.wait(seen)
                seen, frame, record = state.latest()
                if frame is None:
                    continue
                ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
                if not ok:
                    continue
                # each JPEG is followed at once by the next part's boundary and headers: Chromium draws a part
                # when the next part's headers arrive, so a part announced only with the next frame is shown a
                # frame late (the picture was a frame behind the face table). Parts end at the boundary, not a
                # Content-Length (the next frame's length is not known yet), as MJPEG readers expect.
                self.wfile.write(jpeg.tobytes() + b"\r\n--frame\r\n" + PART_HEADERS)
                self.wfile.flush()
                state.shown(record)

        self._viewer("multipart/x-mixed-replace; boundary=frame", body, frames=True)

    def _events(self):
        def body(state: LiveState, stopping: threading.Event):
            seen = -1
            while not stopping.is_set():
                now = state.wait_table(seen)
                record = state.table_record
                if now == seen or record is None:   # nothing new (or nothing yet): keep the line open
                    seen = now
                    self.wfile.write(b": keep-alive\n\n")
                else:   # the shown frame's record exactly as a --json line, then the minute's shares as an event
                    seen = now
                    self.wfile.write(b"data: " + json.dumps(record).encode() + b"\n\n"
                                     + b"event: shares\ndata: " + json.dumps(state.shares()).encode() + b"\n\n")
                self.wfile.flush()

        self._viewer("text/event-stream", body)
