"""Time llama.cpp's SparQ op, and its selection alone, in C++ on this CPU (one thread).

    flock /tmp/sparq-bench.lock python -m sparq_sim.kernels.bench_llamacpp [--seqs 4k,16k,32k,64k,128k] [--json F]

The CPU implementation model (``sparq_sim.implementations.llama_cpp``) takes these figures of the
published fork's op from here, both properties of its code rather than of a device:

* the selection (S (score, index) pairs in fresh scratch, ``std::nth_element``), once per head on
  ``--heads`` different score vectors per S (``llamacpp_select.cpp --heads``): each call's time and
  comparison count give its cost at the CPU's nominal clock (the ``@ x GHz`` of its model name;
  on a virtual machine whose name gives none, the host TSC rate it is told) as
  cycles per position for the scratch plus cycles per comparison (a least-squares line over the
  calls), and the comparisons per position of the slowest of n heads (the expected maximum of n
  draws from the calls' distribution): the op's threads each take a head and wait for the slowest
  at its barrier, and how much std::nth_element's work varies from head to head is a property of
  the algorithm, not of the CPU;
* how many of the 2k rows it gathers one by one (K rows for the exact scores, V rows for the
  output) are in flight at once: DRAM latency (a pointer chase) x rows / gather time, from
  ``llamacpp_op.cpp``, which also times the whole op against its parts (step 1, selection,
  gathers) on cold data.

Both programs are compiled with the system C++ compiler (``$CXX`` or ``g++``) into the cache folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from sparq_sim.errors import OneLineParser, UserError
from sparq_sim.outputs import check_output_path, write_text_atomic
from sparq_sim.units import parse_list, parse_seq

HERE = Path(__file__).parent
PROGRAMS = ("llamacpp_select", "llamacpp_op")
FLAGS = ["-O3", "-march=native", "-std=c++17"]


def compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise UserError("no C++ compiler found: set CXX or install g++")
    return cxx


def build(out_dir: Path, program: str = "llamacpp_select") -> Path:
    """Compile one of the PROGRAMS into out_dir; returns the executable."""
    if program not in PROGRAMS:
        raise ValueError(f"unknown program {program!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / program
    source = HERE / f"{program}.cpp"
    done = subprocess.run([compiler(), *FLAGS, str(source), "-o", str(exe)], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"compiling {source.name} failed: {done.stderr.strip().splitlines()[-1]}")
    return exe


def run(exe: Path, seqs: list[int], *args: str) -> list[dict]:
    """One run of a program per S (each S in a process of its own, so that its allocator reaches
    the steady state of a long run at that S, as the fork's does: no scratch page faults left
    over from other sizes): one JSON object per S."""
    rows = []
    for s in seqs:
        done = subprocess.run([str(exe), *args, str(s)], capture_output=True, text=True, check=True)
        rows += [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return rows


def nominal_clock_hz(model: str) -> float | None:
    """The '@ 2.00GHz' of a CPU model name, in Hz (None when the name gives none)."""
    m = re.search(r"@\s*([0-9.]+)\s*GHz", model)
    return float(m.group(1)) * 1e9 if m else None


SLOWEST_OF = (1, 2, 4, 8, 16, 32, 64)   # heads per barrier the slowest-of table covers
POOLED_FROM_S = 16384                     # S from which the per-head figures are pooled (scratch outgrows L2)


def expected_max(values, n: int) -> float:
    """The expected largest of n independent draws from the empirical distribution of `values`."""
    xs = sorted(values)
    m = len(xs)
    return sum(x * ((i / m) ** n - ((i - 1) / m) ** n) for i, x in enumerate(xs, start=1))


def selection_costs(calls: list[dict], clock: float | None) -> dict:
    """Cost of one head's selection from per-head calls (``llamacpp_select --heads``, one object per
    S): time = fixed x S + per_comparison x comparisons (least squares over every call, in cycles at
    `clock` when known, else in seconds), and comparisons per position, mean and slowest of n."""
    import numpy as np
    per_position = np.concatenate([np.asarray(c["comparisons"], float) / c["S"] for c in calls])
    design = np.concatenate([np.column_stack([np.full(len(c["comparisons"]), c["S"], float),
                                              np.asarray(c["comparisons"], float)]) for c in calls])
    times = np.concatenate([np.asarray(c["times_s"], float) for c in calls])
    unit = clock if clock else 1.0
    (fixed, per_comparison), *_ = np.linalg.lstsq(design, times * unit, rcond=None)
    cycles = times * unit / design[:, 0]
    return {"unit": "cycles" if clock else "seconds",
            "fixed_per_position": float(fixed), "per_comparison": float(per_comparison),
            "mean_per_position": float(cycles.mean()), "p10_per_position": float(np.quantile(cycles, 0.1)),
            "p90_per_position": float(np.quantile(cycles, 0.9)),
            "comparisons_per_position": {"mean": float(per_position.mean()),
                                         "slowest_of": {str(n): expected_max(per_position, n) for n in SLOWEST_OF}}}


def measure_select(exe: Path, seqs, heads: int, warmup: int, k_divisor: int, clock) -> dict:
    calls = run(exe, seqs, "--heads", str(heads), "--warmup", str(warmup), "--k-divisor", str(k_divisor))
    per_seq = [{"S": c["S"], "k": c["k"], **selection_costs([c], clock)} for c in calls]
    pooled = [c for c in calls if c["S"] >= POOLED_FROM_S] or calls
    return {"heads_per_seq": heads, "per_seq": per_seq,
            "pooled": {"seqs": [c["S"] for c in pooled], "heads": [c["heads"] for c in pooled],
                       **selection_costs(pooled, clock)}}


def measure_op(exe: Path, seqs, rounds: int, r: int, k_divisor: int) -> list[dict]:
    per_round = [run(exe, seqs, "--r", str(r), "--k-divisor", str(k_divisor)) for _ in range(rounds)]
    rows = []
    for i, s in enumerate(seqs):
        got = [rd[i] for rd in per_round]

        def med(key):
            return statistics.median(g[key] for g in got)
        in_flight = [g["dram_latency_s"] * g["gathered_rows"] / g["gather_s"] for g in got]
        rows.append({"S": s, "r": r, "k": got[0]["k"], "op_s": med("op_s"), "step1_s": med("step1_s"),
                     "select_s": med("select_s"), "gather_s": med("gather_s"),
                     "parts_s": med("step1_s") + med("select_s") + med("gather_s"),
                     "dram_latency_s": med("dram_latency_s"), "gathered_rows": got[0]["gathered_rows"],
                     "rows_in_flight": statistics.median(in_flight), "rows_in_flight_min": min(in_flight),
                     "rows_in_flight_max": max(in_flight)})
    return rows


def measure(seqs: list[int], rounds: int, heads: int, warmup: int, k_divisor: int, r: int, build_dir: Path) -> dict:
    from sparq_sim.kernels.timing import environment
    from sparq_sim.machine import guest_tsc_hz
    env = environment()
    clock = nominal_clock_hz(env["cpu_model"])
    clock_basis = "the CPU model name's nominal clock"
    if clock is None:
        clock, clock_basis = guest_tsc_hz(), "a virtual machine's cpu MHz (the host's TSC rate, its nominal clock)"
    select = measure_select(build(build_dir, "llamacpp_select"), seqs, heads, warmup, k_divisor, clock)
    op = measure_op(build(build_dir, "llamacpp_op"), seqs, rounds, r, k_divisor)
    return {"what": "llama.cpp SparQ op (K stored twice, f16) and its selection, one thread, cold inputs",
            "compiler": [Path(compiler()).name, *FLAGS], "rounds": rounds, "warmup": warmup,
            "k": f"S/{k_divisor}", "r": r, "nominal_clock_hz": clock,
            "clock_basis": clock_basis if clock else "unknown: costs in seconds", "environment": env,
            "selection": select, "op": op}


def table(result: dict) -> str:
    env = result["environment"]
    clock = result["nominal_clock_hz"]
    sel = result["selection"]
    unit = sel["pooled"]["unit"]
    lines = [f"# {env['cpu_model']}, nominal clock {clock / 1e9:.2f} GHz; {env['date']}" if clock else
             f"# {env['cpu_model']} (no nominal clock in its name); {env['date']}",
             f"# selection: scratch pairs + std::nth_element, k = {result['k']}, once on each of "
             f"{sel['heads_per_seq']} heads' scores per S; {unit} per position = fixed + per comparison x "
             "comparisons per position",
             f"| S | k | {unit} per position, mean (p10-p90) | fixed | per comparison | comparisons per position, "
             "mean | slowest of 32 |", "|---|---|---|---|---|---|---|"]
    for r in [*sel["per_seq"], {"S": "pooled", "k": "", **sel["pooled"]}]:
        c = r["comparisons_per_position"]
        lines.append(f"| {r['S']} | {r['k']} | {r['mean_per_position']:.3g} ({r['p10_per_position']:.3g}-"
                     f"{r['p90_per_position']:.3g}) | {r['fixed_per_position']:.3g} | {r['per_comparison']:.3g} | "
                     f"{c['mean']:.3f} | {c['slowest_of']['32']:.3f} |")
    lines += ["", f"# whole op, r = {result['r']}, k = {result['k']}: medians over {result['rounds']} rounds; "
              "rows in flight = DRAM latency x gathered rows / gather time (min-max over rounds)",
              "| S | op ms | step 1 ms | selection ms | gathers ms | parts ms | latency ns | rows in flight |",
              "|---|---|---|---|---|---|---|---|"]
    for o in result["op"]:
        lines.append(f"| {o['S']} | {o['op_s'] * 1e3:.2f} | {o['step1_s'] * 1e3:.2f} | {o['select_s'] * 1e3:.2f} | "
                     f"{o['gather_s'] * 1e3:.2f} | {o['parts_s'] * 1e3:.2f} | {o['dram_latency_s'] * 1e9:.0f} | "
                     f"{o['rows_in_flight']:.2f} ({o['rows_in_flight_min']:.2f}-{o['rows_in_flight_max']:.2f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = OneLineParser(prog="bench_llamacpp", description=__doc__.split("\n")[0])
    p.add_argument("--seqs", default="4k,16k,32k,64k,128k")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--heads", type=int, default=600, help="heads' score vectors the selection is timed on, per S")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--k-divisor", type=int, default=12, help="k = S / this (the published CPU runs: 12)")
    p.add_argument("--r", type=int, default=11, help="components in step 1 (the published CPU runs: d_h / 12)")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    try:
        seqs = parse_list(a.seqs, parse_seq, "--seqs")
        if min(a.rounds, a.heads, a.k_divisor) < 1 or a.warmup < 0 or min(seqs) < a.k_divisor:
            raise UserError("need rounds, heads, k-divisor >= 1, warmup >= 0 and every S >= the k-divisor")
        if not 1 <= a.r <= 128:
            raise UserError(f"bad --r {a.r}: must be between 1 and d_h = 128")
        if a.json:
            check_output_path(a.json, (".json",), "--json")
        from sparq_sim.machine import cache_dir
        result = measure(seqs, a.rounds, a.heads, a.warmup, a.k_divisor, a.r, Path(cache_dir()) / "cpp")
    except UserError as exc:
        print(f"bench_llamacpp: error: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    if a.json:
        write_text_atomic(a.json, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
