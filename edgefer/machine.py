"""A description of the host (processor, cores, memory, Python, platform, date) for every record. A leaf."""

from __future__ import annotations

import platform
import time

import psutil


def machine_description() -> dict:
    return {"processor": platform.processor() or platform.machine(), "cores": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}
