"""Quiet TensorFlow and its converters before they are imported, so the terminal holds edgefer's own lines.

TensorFlow prints oneDNN, cudart, cuInit and absl start-up lines from C++ at import time; only the
environment read before the import silences them. `edgefer -v` (EDGEFER_VERBOSE=1) keeps them.
A leaf: imports nothing of edgefer and no TensorFlow.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import threading
import warnings


def verbose() -> bool:
    return os.environ.get("EDGEFER_VERBOSE", "") not in ("", "0")


def configure_tensorflow() -> None:
    """Call before the first `import tensorflow`/`keras` (harmless after)."""
    if verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")   # C++ INFO/WARNING/ERROR lines (cuInit 303, oneDNN)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "tf2onnx", "h5py", "jax._src.xla_bridge", "onnxruntime", "root", ""):
        logging.getLogger(name).setLevel(logging.ERROR)   # "" / root: onnxruntime.quantization warns there
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|tf2onnx|onnx)(\.|$)")


@contextlib.contextmanager
def native_stderr_quiet():
    """Hide what C++ libraries print straight to file descriptor 2 (LiteRT's "Created TensorFlow Lite
    XNNPACK delegate", converter internals) for the duration of the block, unless verbose."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):   # no real stderr (e.g. captured by a test runner)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


NATIVE_CHATTER = re.compile(
    r"^([IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"             # absl/TensorFlow C++ log lines
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|INFO: Created TensorFlow Lite"                                # LiteRT's delegate line
    r"|fully_quantize: \d+, inference_type:"                         # the TFLite converter's quantiser
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\]"    # older TensorFlow C++ format
    r"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [IWE] \d+ \d+\] \S+:\d+:)")   # Ray's C++ core worker


class StderrFilter:
    """For the console command only: route file descriptor 2 through a thread that drops the C++ start-up
    chatter of TensorFlow, LiteRT and absl (which no environment variable silences in TensorFlow 2.21)
    and passes every other line, edgefer's messages and real tracebacks included, to the terminal."""

    def __init__(self):
        self.thread = None

    def start(self) -> "StderrFilter":
        if verbose():
            return self
        try:
            sys.stderr.flush()
            self.original = os.dup(2)
            read, write = os.pipe()
        except (OSError, ValueError):
            return self
        os.dup2(write, 2)
        os.close(write)
        self.reader = os.fdopen(read, "rb", buffering=0)
        self.thread = threading.Thread(target=self._pump, name="edgefer-stderr", daemon=True)
        self.thread.start()
        atexit.register(self.stop)
        return self

    def _pump(self) -> None:
        with os.fdopen(os.dup(self.original), "wb", buffering=0) as out:
            pending = b""
            while True:
                chunk = self.reader.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not NATIVE_CHATTER.match(line.decode("utf-8", "replace")):
                        out.write(line + b"\n")
            if pending:
                out.write(pending)

    def stop(self) -> None:
        if self.thread is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.original, 2)   # closes the pipe's last write end: the pump reads EOF
        self.thread.join(timeout=5)
        os.close(self.original)
        self.thread = None
