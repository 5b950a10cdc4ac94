"""The local CPU profile: a hardware file of this machine from its memory microbenchmarks.

``build_profile(measurements)`` takes kernels/membench.py's measurements (idle latency by
pointer chase, stream read, random row gathers of 64 B .. 8 KiB), fits the simulator's
in-flight limits and writes a validated hardware TOML (``write_profile``) to the user cache,
where ``--hw local`` finds it.

Measured, not fitted: idle latency (pointer chase), sustained bandwidth (stream), core count,
LLC size, memory size. Fitted (basis "fitted", per core), each to one measurement:

* pieces_per_unit       rows in flight (the out-of-order window)   <- 64 B gathers
* outstanding_per_unit  lines in flight, prefetches included        <- the stream
* demand_per_unit, prefetch_after_lines (demand lines of a row before the L2 prefetcher
  covers the rest) and piece_line_cost (window share of each further line of a row), together                                        <- 512 B and 2 KiB gathers

The other row sizes (128, 256, 1024, 4096, 8192 B) are held out: their error is a prediction.
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

from sparq_sim import schema, tomlfile
from sparq_sim.errors import UserError
from sparq_sim.hardware import FRAMEWORK_MATMUL, local_profile_path, parse_device
from sparq_sim.hardware.local import machine_data, to_file_data
from sparq_sim.schema import Figure

FIT_SIZES = (64, 512, 2048)
PREFETCH_GRID = (1, 2, 4, 8, 12, 16, 24, 32)
COST_GRID = (0.0, 0.1, 0.2, 0.3, 0.5)


def base_profile(meas: dict, params: dict) -> dict:
    """The hardware-file dict of this machine for given simulator parameters (per core)."""
    cpu, date, cores = meas["cpu"], meas["date"], int(meas["threads"])
    where = f"{cpu}, {cores} threads, measured {date}"
    tool = "sparq-sim measure (kernels/membench.py)"
    fit = params.get("fit_note", "fitted by sparq-sim measure to this machine's gathers")
    dram = {
        "standard": "DDR4-3200",
        "channels": Figure(8, "assumed", "assumed: 8 DDR4-3200 channels of the host (EPYC); a 2-core guest is "
                           "limited by its in-flight misses long before the channels"),
        "channel_bandwidth_Bps": Figure(25.6e9 * 0.9, "assumed", "DDR4-3200 x 8 bytes, 90% after refresh and "
                                        "turnarounds (assumed)"),
        "interleave_bytes": Figure(256, "assumed", "assumed: channel interleave of 256 bytes"),
        "pieces_per_unit": Figure(params["pieces_per_unit"], "fitted",
                                  f"{fit}: rows in flight per core, fitted to the 64 B row gathers"),
        "outstanding_per_unit": Figure(params["outstanding_per_unit"], "fitted",
                                       f"{fit}: lines in flight per core with prefetches, fitted to the stream"),
        "demand_per_unit": Figure(params["demand_per_unit"], "fitted",
                                  f"{fit}: demand misses in flight per core, fitted to the 512 B and 2 KiB gathers"),
        "prefetch_after_lines": Figure(params["prefetch_after_lines"], "fitted",
                                       f"{fit}: demand lines per row before the prefetcher, fitted with demand_per_unit"),
        "piece_line_cost": Figure(params.get("piece_line_cost", 0.0), "fitted",
                                  f"{fit}: out-of-order window share of each further line of a row, fitted with "
                                  "demand_per_unit"),
    }
    bandwidth = Figure(meas["stream"]["median_Bps"], "measured",
                       f"{tool}: stream read of a {meas['buffer_bytes'] >> 20} MiB buffer, median of "
                       f"{meas['repeats']}; {where}")
    latency = Figure(meas["latency"]["median_s"], "measured",
                     f"{tool}: pointer chase over the buffer (huge pages), median of {meas['latency']['repeats']}; "
                     f"{where}")
    data = machine_data(cores=cores, date=date, bandwidth=bandwidth, latency=latency, dram=dram, where=where,
                        description=f"this machine: {cpu}, {cores} cores (profile measured {date})")
    if "framework_matmul" in meas:
        mm = meas["framework_matmul"]
        data["calibration"] = {FRAMEWORK_MATMUL: Figure(
            mm["median_Bps"], "measured", f"{tool}: {mm['what']} over the buffer, median of {mm['repeats']}; {where}")}
    return to_file_data(data)


def _device(data: dict):
    return parse_device(data, "<local profile>")


def _simulate_bw(cfg, size) -> float:
    from sparq_sim.simulator.timer import simulate_access
    from sparq_sim.traffic import GATHER, STREAM, Access
    access = Access(STREAM, 1, 1 << 30) if size == "stream" else Access(GATHER, 1 << 20, size)
    return simulate_access(cfg, access).achieved_Bps


def _bisect(make_cfg, size, target, lo, hi) -> int:
    """Smallest integer slot count whose simulated bandwidth reaches `target` (monotone)."""
    if _simulate_bw(make_cfg(hi), size) < target:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _simulate_bw(make_cfg(mid), size) >= target:
            hi = mid
        else:
            lo = mid
    # pick the closer of lo and hi
    blo, bhi = _simulate_bw(make_cfg(lo), size), _simulate_bw(make_cfg(hi), size)
    return lo if abs(blo - target) < abs(bhi - target) else hi


def fit(meas: dict) -> dict:
    """Fit the per-core in-flight limits to the measurements (see the module docstring)."""
    from sparq_sim.simulator.config import dram_config

    cores = int(meas["threads"])
    measured = {g["row_bytes"]: g["median_Bps"] for g in meas["gather"]}
    measured["stream"] = meas["stream"]["median_Bps"]
    big = 4096
    params = {"pieces_per_unit": big, "outstanding_per_unit": big, "demand_per_unit": big,
              "prefetch_after_lines": 1}
    base = dram_config(_device(base_profile(meas, params)))

    def with_(**totals):
        return lambda n: dataclasses.replace(base, **{k: (n if v is None else v) for k, v in totals.items()})

    # 1. rows in flight from 64 B gathers (one line per row: lines, demand and pieces coincide)
    pieces = _bisect(with_(max_pieces=None), 64, measured[64], 1, 8 * 64 * cores)
    # 2. lines in flight from the stream
    lines = _bisect(with_(max_pieces=pieces, max_requests=None, max_demand=None), "stream",
                    measured["stream"], 1, 512 * cores)
    # 3. demand misses and the prefetch point, from the other fit sizes
    best = None
    for cost in COST_GRID:
        for d in PREFETCH_GRID:
            mk = with_(max_pieces=pieces, max_requests=lines, prefetch_after=d, piece_line_cost=cost,
                       max_demand=None)
            # a 64 B row is one demand line: at least as many demand slots as rows keeps step 1's fit
            dem = _bisect(mk, FIT_SIZES[1], measured[FIT_SIZES[1]], pieces, max(pieces + 1, lines))
            cfg = mk(dem)
            err = max(abs(_simulate_bw(cfg, s) / measured[s] - 1) for s in FIT_SIZES + ("stream",))
            if best is None or err < best[0] - 1e-9:
                best = (err, d, dem, cost)
    _, d, dem, cost = best
    return {"pieces_per_unit": pieces / cores, "outstanding_per_unit": lines / cores,
            "demand_per_unit": dem / cores, "prefetch_after_lines": d, "piece_line_cost": cost}


def build_profile(meas: dict) -> dict:
    """Fit, then the profile: {'data': hardware dict, 'measurements': meas, 'comparison': rows}."""
    params = fit(meas)
    params["fit_note"] = f"fitted by sparq-sim measure on {meas['date']} ({meas['cpu']})"
    data = base_profile(meas, params)
    device = _device(data)
    from sparq_sim.simulator.config import dram_config
    cfg = dram_config(device)
    rows = []
    for size in ["stream"] + [g["row_bytes"] for g in meas["gather"]]:
        m = meas["stream"] if size == "stream" else next(g for g in meas["gather"] if g["row_bytes"] == size)
        sim = _simulate_bw(cfg, size)
        role = "fit" if size == "stream" or size in FIT_SIZES else "held out"
        rows.append({"size": size, "measured_Bps": m["median_Bps"], "min_Bps": m["min_Bps"], "max_Bps": m["max_Bps"],
                     "simulated_Bps": sim, "error": sim / m["median_Bps"] - 1, "role": role})
    return {"data": data, "measurements": meas, "comparison": rows}


def to_toml(data: dict) -> str:
    """Hardware-file TOML of the profile (sparq_sim.schema's writer)."""
    return schema.dumps(data, "Local hardware profile written by `sparq-sim measure`; --hw local reads it.\n")


def write_profile(profile: dict, out: str | None = None) -> Path:
    """Validate and write the profile (default: the user cache's local.toml)."""
    from sparq_sim.simulator.config import dram_config

    text = to_toml(profile["data"])
    dram_config(parse_device(tomlfile.parse(text, "local profile"), "<local profile>"))   # validates both parts
    path = Path(out).expanduser() if out else local_profile_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        from sparq_sim.outputs import write_text_atomic
        write_text_atomic(path, text)
    except OSError as exc:
        raise UserError(f"cannot write the local profile to {path}: {exc.strerror}") from None
    return path


def comparison_table(profile: dict) -> str:
    from sparq_sim.tables import render_table
    rows = []
    for r in profile["comparison"]:
        label = "stream" if r["size"] == "stream" else f"{r['size']} B rows"
        rows.append([label, f"{r['measured_Bps'] / 1e9:.2f}", f"{r['min_Bps'] / 1e9:.2f}..{r['max_Bps'] / 1e9:.2f}",
                     f"{r['simulated_Bps'] / 1e9:.2f}", f"{100 * r['error']:+.1f}%", r["role"]])
    return render_table(rows, ["pattern", "measured GB/s", "spread", "simulated GB/s", "error", "used for"])


def membench_markdown(profile: dict, command: str) -> str:
    meas, dram = profile["measurements"], profile["data"]["dram"]
    worst_held = max((abs(r["error"]) for r in profile["comparison"] if r["role"] == "held out"), default=0.0)
    worst = max(abs(r["error"]) for r in profile["comparison"])
    return f"""# Memory microbenchmark of this machine against the DRAM simulator

Command (run on {meas['date']}, {meas['cpu']}, {meas['threads']} threads, {platform.python_version()}):

    {command}

What it measures (kernels/membench.py, numba over all threads): a stream read of a
{meas['buffer_bytes'] >> 20} MiB buffer (huge pages: {meas['huge_pages_kB'] >> 10} MiB took effect; LLC is
{profile['data']['cache']['llc_bytes']['value'] / 2**20:.0f} MiB), random row gathers of 64 B to 8 KiB at
row-aligned positions of the same buffer, and the idle latency by pointer chase
({meas['latency']['median_s'] * 1e9:.1f} ns). Every pattern is measured once per round over
{meas['repeats']} rounds; the median is shown with the spread (min..max over rounds).

The simulated column is the DRAM simulator (sparq_sim/simulator) run on the local profile that the
same command writes (`--hw local`). Measured directly: idle latency, stream bandwidth. Fitted
(basis "fitted" in the profile), per core: rows in flight {dram['pieces_per_unit']['value']:.2f}
(to 64 B rows), lines in flight {dram['outstanding_per_unit']['value']:.2f} (to the stream), demand
misses in flight {dram['demand_per_unit']['value']:.2f}, prefetch after
{dram['prefetch_after_lines']['value']} lines and window cost {dram['piece_line_cost']['value']} per further line
(together, to 512 B and 2 KiB rows). The other sizes are held out.

{comparison_table(profile)}

Largest error: {100 * worst:.1f}% over all rows, {100 * worst_held:.1f}% over the held-out rows.
This machine is a shared 2-core VM: bandwidth drifts by tens of percent between runs (other
load on the host), so the fit and the comparison always come from the same run.
"""
