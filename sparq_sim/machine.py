"""This machine as the OS describes it: CPU model, last-level cache, cores, memory, the user
cache folder where measured figures are kept, and memory in transparent huge pages. Standard library
only (the prediction path imports it)."""

from __future__ import annotations

import mmap
import os
import platform
from pathlib import Path


def _cpuinfo(key: str) -> str | None:
    """The value of the first /proc/cpuinfo line for `key` (Linux), else None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform reports."""
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown CPU"


# (vendor, family) -> [(first model, last model, core)]: the x86 CPUID signatures of the cores
# hardware files may name (AMD's and Intel's published family/model numbers)
CORE_SIGNATURES = {
    ("AuthenticAMD", 25): [(0x00, 0x0F, "zen3"), (0x20, 0x2F, "zen3"), (0x40, 0x5F, "zen3"),
                           (0x10, 0x1F, "zen4"), (0x60, 0x7F, "zen4"), (0xA0, 0xAF, "zen4")],
    ("GenuineIntel", 6): [(0x8F, 0x8F, "sapphire-rapids")],
}


def cpu_signature(text: str | None = None) -> tuple[str, int, int] | None:
    """(vendor, family, model) of the first core in /proc/cpuinfo (or `text`), None if not given."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    fields: dict = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break          # the end of the first core's block
            continue
        fields.setdefault(key.strip(), value.strip())
    try:
        return fields["vendor_id"], int(fields["cpu family"]), int(fields["model"])
    except (KeyError, ValueError):
        return None


def cpu_core(text: str | None = None) -> str | None:
    """This machine's core microarchitecture (a name of hardware.CPU_CORES), None if not known."""
    sig = cpu_signature(text)
    if sig is None:
        return None
    vendor, family, model = sig
    return next((core for lo, hi, core in CORE_SIGNATURES.get((vendor, family), ()) if lo <= model <= hi), None)


def guest_tsc_hz() -> float | None:
    """On a virtual machine (the ``hypervisor`` CPU flag), the ``cpu MHz`` of /proc/cpuinfo: the
    host's constant TSC rate as the guest is told it, which is the host CPU's nominal clock. None
    on bare metal (there the figure is the current, boosting clock) or where it is not given."""
    flags = (_cpuinfo("flags") or "").split()
    if "hypervisor" not in flags or "constant_tsc" not in flags:
        return None
    try:
        return float(_cpuinfo("cpu MHz") or "") * 1e6
    except ValueError:
        return None


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


def huge_page_mapping(nbytes: int) -> mmap.mmap:
    """An anonymous private mapping of nbytes advised MADV_HUGEPAGE (transparent huge pages) where
    the platform has it: measurements of scattered reads then see DRAM, not TLB misses."""
    m = mmap.mmap(-1, max(1, nbytes), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            m.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return m


def _proc_kb_field(path: str, key: str) -> int | None:
    """The value of a "Key:  N kB" line of a /proc file, in bytes; None where unreadable."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def huge_page_bytes() -> int:
    """This process's anonymous memory in transparent huge pages (Linux); -1 where unknown."""
    value = _proc_kb_field("/proc/self/smaps_rollup", "AnonHugePages")
    return -1 if value is None else value


def memory_bytes(default: int = 16 << 30) -> int:
    """Physical memory (MemTotal, Linux); `default` where unknown."""
    return _proc_kb_field("/proc/meminfo", "MemTotal") or default


def cpu_mhz_and_flags(default_mhz: float = 2000.0) -> tuple[float, set]:
    """The first core's clock (MHz) and instruction-set flags, from /proc/cpuinfo."""
    mhz, flags = 0.0, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz") and not mhz:
                    mhz = float(line.split(":")[1])
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":")[1].split())
    except OSError:
        pass
    return mhz or default_mhz, flags
