"""This machine as the OS describes it: CPU model, last-level cache, cores, and the user cache
folder where measured figures are kept. Standard library only (the prediction path imports it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def llc_bytes(default: int = 32 * 1024 * 1024) -> int:
    """Size of the last-level cache (the largest data or unified cache of level 2 or more, from
    sysfs on Linux); `default` when unknown."""
    best = 0
    try:
        for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
            level = int((idx / "level").read_text())
            size = (idx / "size").read_text().strip()
            mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(size[-1:], 1)
            value = int(size.rstrip("KMG")) * mult
            if level >= 2 and value > best and (idx / "type").read_text().strip() != "Instruction":
                best = value
    except (OSError, ValueError):
        pass
    return best or default


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cache_dir() -> Path:
    """SPARQ_SIM_CACHE_DIR, else $XDG_CACHE_HOME/sparq-sim, else ~/.cache/sparq-sim."""
    explicit = os.environ.get("SPARQ_SIM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "sparq-sim"
