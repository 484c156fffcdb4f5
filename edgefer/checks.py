"""`edgefer checks`: what this machine can run (as `yolo checks`): versions, the runtimes that load the
shipped models, OpenCV's GUI, cameras, CPU features. Imports no TensorFlow (it looks for it)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import time
from dataclasses import dataclass

PACKAGES = ("edgefer", "numpy", "opencv-python-headless", "opencv-python", "ai-edge-litert", "tflite-runtime",
            "onnxruntime", "tensorflow", "keras", "ray", "psutil", "typer")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "fma", "neon", "asimd", "asimddp", "sve", "sme")


@dataclass
class Check:
    what: str
    status: str      # ok, missing, no, or a version
    detail: str = ""


def versions() -> list[Check]:
    found = []
    for name in PACKAGES:
        try:
            found.append(Check(name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            if name in ("edgefer", "numpy", "psutil", "typer"):
                found.append(Check(name, "missing", "needed by every command"))
    return found


def runtimes() -> list[Check]:
    """Each shipped model loaded in its runtime, with one face's latency."""
    from edgefer.runtime import WEIGHTS, load_classifier, time_single_face

    checks = []
    for label, file in (("LiteRT int8 (the default model)", "mini_xception_fer2013_int8.tflite"),
                        ("ONNX Runtime float", "mini_xception_fer2013.onnx")):
        try:
            classifier = load_classifier(WEIGHTS / file, threads=1)
            checks.append(Check(label, "ok", f"{classifier.backend}, {time_single_face(classifier, 50):.2f} ms a face"))
        except ImportError as error:
            checks.append(Check(label, "missing", f"{error.name or error}: pip install onnxruntime"))
        except Exception as error:  # noqa: BLE001 - a check reports, it does not stop
            checks.append(Check(label, "failed", " ".join(str(error).split())[:160]))
    checks.append(Check("Keras models (.keras)", "ok" if importlib.util.find_spec("keras") else "missing",
                        "" if importlib.util.find_spec("keras") else "pip install 'edgefer[train]' to train and export"))
    return checks


def detectors() -> list[Check]:
    import numpy as np

    from edgefer.detect import make_detector
    from edgefer.detect.types import DETECTOR_NAMES

    frame = np.full((480, 640, 3), 127, np.uint8)
    checks = []
    for name in DETECTOR_NAMES:
        try:
            detector = make_detector(name, threads=1)
            started = time.perf_counter()
            detector.detect(frame)
            checks.append(Check(f"detector {name}", "ok", f"{(time.perf_counter() - started) * 1000:.1f} ms, 640x480"))
        except Exception as error:  # noqa: BLE001
            checks.append(Check(f"detector {name}", "failed", " ".join(str(error).split())[:160]))
    return checks


def opencv_gui() -> Check:
    from edgefer.live.outputs import gui_available

    if gui_available():
        return Check("OpenCV window (--show)", "ok")
    return Check("OpenCV window (--show)", "no", "headless OpenCV or no display: use --serve 8080 to watch")


def cameras(indices: int = 2) -> list[Check]:
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    found = []
    for index in range(indices):
        capture = cv2.VideoCapture(index)
        ok = capture.isOpened()
        detail = ""
        if ok:
            read, frame = capture.read()
            detail = f"{frame.shape[1]}x{frame.shape[0]}" if read and frame is not None else "opens, gives no frame"
        capture.release()
        found.append(Check(f"camera {index}", "ok" if ok else "no", detail))
    return found


def cpu() -> Check:
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith(("flags", "features")):
                    flags |= set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import psutil

    present = [f for f in CPU_FLAGS if f in flags]
    return Check("CPU", platform.machine(), f"{psutil.cpu_count()} cores; " + (", ".join(present) or "no flags read"))


def run_checks(cameras_to_probe: int = 2) -> list[Check]:
    return [Check("Python", platform.python_version(), platform.platform()), cpu(), *versions(), *runtimes(),
            *detectors(), opencv_gui(), *cameras(cameras_to_probe)]


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.what) for c in checks) + 2
    return "\n".join(f"{c.what:<{width}}{c.status:<12}{c.detail}".rstrip() for c in checks)
