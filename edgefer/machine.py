"""A description of the host (processor, cores, memory, Python, platform, date) for every record. A leaf."""

from __future__ import annotations

import platform
import time

import psutil


def machine_description() -> dict:
    return {"processor": platform.processor() or platform.machine(), "cores": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}


def high_water_mark(pid: int) -> int:
    """The process's peak resident set size in bytes since exec (Linux VmHWM); 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
