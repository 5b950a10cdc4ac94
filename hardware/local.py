"""This machine as a hardware file: the one builder of the local CPU's Device.

The OS gives the cores, clock, instruction set, last-level cache and memory (sparq_sim.machine);
the caller gives what was measured: the stream read bandwidth, and, from ``sparq-sim measure``,
the idle latency and the DRAM simulator's fitted ``[dram]`` figures. Everything else is marked
``assumed``. ``sparq-sim measure`` writes the result as ``local.toml`` (``--hw local``);
``validate --local`` builds it in memory when no such profile exists.
"""

from __future__ import annotations

from sparq_sim.machine import cpu_core, cpu_mhz_and_flags, cpu_model, llc_bytes, memory_bytes
from sparq_sim.schema import Figure

from . import LOCAL_NAME, Device, parse_device

HOST_OP_SOURCE = ("assumed: about 10 us for a framework to dispatch one op on a current server core, the figure "
                  "of the shipped hardware files")
ASSUMED_LATENCY = Figure(120e-9, "assumed", "assumed: DDR4 idle latency of a server CPU; `sparq-sim measure` "
                                            "measures it")


def machine_data(*, cores: int, date: str, bandwidth: Figure, latency: Figure = ASSUMED_LATENCY,
                 dram: dict | None = None, peak: Figure | None = None, where: str = "",
                 description: str = "") -> dict:
    """The hardware-file dict of this machine (figures as Figure objects, ready for
    sparq_sim.schema.dumps or parse_device). `dram` adds the simulator's [dram] fields to the
    idle latency; `peak` replaces the fp32 rate derived from /proc/cpuinfo."""
    mhz, flags = cpu_mhz_and_flags()
    per_cycle = 32 if {"avx2", "fma"} <= flags else 16 if "avx" in flags else 8
    if peak is None:
        peak = Figure(cores * mhz * 1e6 * per_cycle, "derived",
                      f"derived: {cores} cores x {mhz:.0f} MHz (/proc/cpuinfo) x {per_cycle} fp32 flop/cycle "
                      f"({'AVX2 FMA' if per_cycle == 32 else 'SIMD'}); 16-bit formats are converted to fp32")
    where = where or f"{cpu_model()}, {cores} threads, {date}"
    return {
        "name": LOCAL_NAME,
        "description": description or f"this machine: {cpu_model()}, {cores} cores",
        "kind": "cpu",
        "aliases": [],
        "memory": {
            "technology": "DDR4-3200",
            "bandwidth_Bps": bandwidth,
            "achievable_fraction": Figure(1.0, "measured", "bandwidth_Bps is already the measured sustained stream rate"),
            "capacity_bytes": Figure(memory_bytes(), "measured", f"MemTotal of /proc/meminfo, {date}"),
            "channels": Figure(8, "assumed", "assumed: the host's DDR4 channel count is not visible in a VM"),
            "access_granularity_bytes": Figure(64, "datasheet", "64-byte cache lines (x86-64)"),
        },
        "cache": {"llc_bytes": Figure(llc_bytes(), "measured", f"/sys/devices/system/cpu/cpu0/cache (L3), {date}"),
                  "bandwidth_Bps": Figure(cores * 32 * mhz * 1e6, "assumed",
                                          f"assumed: {cores} cores x 32 B/clk of L3 read per core x {mhz:.0f} MHz")},
        "compute": {
            "units": Figure(cores, "measured", f"threads used by the benchmarks, {where}"),
            "clock_hz": Figure(mhz * 1e6, "measured", f"cpu MHz of /proc/cpuinfo, {date}"),
            **({"core": cpu_core()} if cpu_core() else {}),
            "peak_flops": {dt: peak for dt in ("float32", "float16", "bfloat16")},
        },
        "overheads": {"launch_s": Figure(5e-6, "assumed", "assumed: cost of starting and joining one parallel region")},
        "host": {"op_dispatch_s": Figure(10e-6, "assumed", HOST_OP_SOURCE)},
        "dram": {**(dram or {}), "idle_latency_s": latency},
    }


def to_file_data(data: dict) -> dict:
    """`data` with every Figure as its { value, basis, source } table (what a parsed file holds)."""
    if isinstance(data, Figure):
        return data.to_dict()
    if isinstance(data, dict):
        return {k: to_file_data(v) for k, v in data.items()}
    return data


def machine_device(data: dict, path: str = "<local profile>") -> Device:
    """The Device of `machine_data`'s dict, checked as any hardware file is."""
    return parse_device(to_file_data(data), path)
