"""This machine as a Device, for ``validate --local``.

Preference order: the simulator's measured local profile (``--hw local``) when the hardware
library has one, with its bandwidth replaced by the one a calibration was fitted with when that
is given (the constants are relative to it; this VM's bandwidth drifts between days); otherwise a
Device built here from a measured read bandwidth (the kernels'
``measure_stream_bandwidth`` when available, else a torch sum over a buffer far larger than the
LLC), labelled ``measured``; the rest of its figures are read from the OS or marked ``assumed``.
The measured bandwidth is stored with the local calibration, so predictions made with that
calibration reuse the bandwidth it was fitted with.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

from sparq_sim.errors import UserError
from sparq_sim.machine import cores, cpu_mhz_and_flags, cpu_model, llc_bytes


def measure_read_bandwidth(threads: int | None = None) -> tuple[float, str]:
    """Read bandwidth of this machine, bytes/s, and how it was measured."""
    try:
        from sparq_sim.kernels.timing import measure_stream_bandwidth  # the kernels' harness
        bw, info = measure_stream_bandwidth(refresh=True)   # this run's figure: the VM drifts
        return float(bw), (f"measured: sparq_sim.kernels.timing.measure_stream_bandwidth, {info.get('method', '')}, "
                           f"{info.get('statistic', '')}, {info.get('threads', '?')} threads, {info.get('date', '')}")
    except ImportError:
        pass
    import torch
    if threads:
        torch.set_num_threads(threads)
    n = max(64 * 1024 ** 2, 8 * llc_bytes()) // 4
    buf = torch.ones(n, dtype=torch.float32)
    buf.sum()
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        buf.sum()
        times.append(time.perf_counter() - t0)
    times.sort()
    bw = n * 4 / times[len(times) // 2]
    return bw, (f"measured: median of 7 torch.sum passes over {n * 4 / 1e6:.0f} MB (> 8x LLC) "
                f"with {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}")


@lru_cache(maxsize=None)
def local_device(bandwidth_Bps: float | None = None, source: str = ""):
    """The local CPU as a Device; `bandwidth_Bps` (from a calibration file) skips the measurement."""
    from dataclasses import replace

    from sparq_sim.hardware import Device, Figure, load_device
    try:
        profile = load_device("local")
    except UserError:
        profile = None
    if profile is not None:
        if bandwidth_Bps is None:
            return profile
        # a calibration's constants are relative to the bandwidth measured with it: use that figure
        return replace(profile, bandwidth_Bps=Figure(float(bandwidth_Bps), "measured", source or "measured"))
    if bandwidth_Bps is None:
        stored = _stored_bandwidth()
        if stored is not None:
            bandwidth_Bps, source = stored
        else:
            bandwidth_Bps, source = measure_read_bandwidth()
    n = cores()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = 16 * 1024 ** 3
    mhz, _ = cpu_mhz_and_flags()
    peak = n * 2.45e9 * 32
    return Device(
        name="local", description=f"this machine: {cpu_model()}, {n} cores", kind="cpu", aliases=(),
        technology="measured",
        bandwidth_Bps=Figure(float(bandwidth_Bps), "measured", source or "measured read bandwidth"),
        achievable_fraction=Figure(1.0, "derived", "bandwidth is already a measured sustained figure"),
        capacity_bytes=Figure(float(mem), "measured", "os.sysconf physical pages"),
        channels=Figure(1.0, "assumed", "unknown on a VM"),
        granularity_bytes=Figure(64.0, "datasheet", "64-byte cache lines (x86-64)"),
        llc_bytes=Figure(float(llc_bytes()), "measured", "/sys/devices/system/cpu/cpu0/cache"),
        compute_units=Figure(float(n), "measured", "os.sched_getaffinity"),
        launch_s=Figure(5e-6, "assumed", "assumed parallel-region start cost; the calibration fits its own"),
        clock_hz=Figure(mhz * 1e6, "measured", "cpu MHz of /proc/cpuinfo"),
        llc_bandwidth_Bps=Figure(n * 32 * mhz * 1e6, "assumed", "assumed: cores x 32 B/clk of L3 read per core"),
        dram_latency_s=Figure(120e-9, "assumed", "assumed: DDR4 idle latency of a server CPU; `sparq-sim measure` measures it"),
        host_op_s=Figure(10e-6, "assumed", "assumed: about 10 us per framework op, the shipped hardware files' figure"),
        peak_flops={"float32": Figure(peak, "assumed", "cores x 2.45 GHz x 32 fp32 flop/cycle (Zen 3 class)")},
        path="(built by sparq_sim.calibration.local)")


def _stored_bandwidth():
    from sparq_sim.calibration import store
    path = store.HERE / "local-cpu.toml"
    if not path.is_file():
        return None
    cal = store.load(path)
    if cal.get("meta", {}).get("cpu_model") != cpu_model():
        return None
    return float(cal["bandwidth_Bps"]), str(cal.get("meta", {}).get("bandwidth_source", "stored calibration"))
