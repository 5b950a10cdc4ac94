"""Time llama.cpp's SparQ top-k selection (scratch pairs + std::nth_element) in C++ on this CPU.

    flock /tmp/sparq-bench.lock python -m sparq_sim.kernels.bench_select_cpp [--seqs 4k,16k,32k,64k,128k] [--json F]

The CPU implementation model (``sparq_sim.implementations.llama_cpp``) charges this selection
per head call in cycles per position; this benchmark is where that figure comes from. It compiles
``llamacpp_select.cpp`` with the system C++ compiler (``$CXX`` or ``g++``), runs it ``--rounds``
times (each: warm-up, then ``--repeats`` timed calls per S on one thread) and reports the median
over rounds of each round's median, with the rounds' min-max, in ns and in cycles per position at
the CPU's nominal clock (the ``@ x GHz`` of its model name).
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

SOURCE = Path(__file__).with_name("llamacpp_select.cpp")
FLAGS = ["-O3", "-march=native", "-std=c++17"]


def compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise UserError("no C++ compiler found: set CXX or install g++")
    return cxx


def build(out_dir: Path) -> Path:
    """Compile the selection program into out_dir; returns the executable."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "llamacpp_select"
    cmd = [compiler(), *FLAGS, str(SOURCE), "-o", str(exe)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"compiling {SOURCE.name} failed: {done.stderr.strip().splitlines()[-1]}")
    return exe


def run(exe: Path, seqs: list[int], *args: str) -> list[dict]:
    """One run of the program: one JSON object per S."""
    done = subprocess.run([str(exe), *args, *map(str, seqs)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def nominal_clock_hz(model: str) -> float | None:
    """The '@ 2.00GHz' of a CPU model name, in Hz (None when the name gives none)."""
    m = re.search(r"@\s*([0-9.]+)\s*GHz", model)
    return float(m.group(1)) * 1e9 if m else None


def measure(seqs: list[int], rounds: int, repeats: int, warmup: int, k_divisor: int, build_dir: Path) -> dict:
    from sparq_sim.kernels.timing import environment
    exe = build(build_dir)
    env = environment()
    clock = nominal_clock_hz(env["cpu_model"])
    per_round = [run(exe, seqs, "--repeats", str(repeats), "--warmup", str(warmup), "--k-divisor", str(k_divisor))
                 for _ in range(rounds)]
    rows = []
    for i, s in enumerate(seqs):
        ns = [r[i]["ns_per_element"] for r in per_round]
        med = statistics.median(ns)
        rows.append({"S": s, "k": per_round[0][i]["k"], "ns_per_element": med, "ns_min": min(ns), "ns_max": max(ns),
                     "cycles_per_element": None if clock is None else med * clock / 1e9})
    return {"what": "llama.cpp SparQ selection: scratch (score, index) pairs allocated and filled, then "
                    "std::nth_element for the k largest; one thread",
            "compiler": [Path(compiler()).name, *FLAGS], "rounds": rounds, "repeats": repeats, "warmup": warmup,
            "k": f"S/{k_divisor}", "nominal_clock_hz": clock, "environment": env, "rows": rows}


def table(result: dict) -> str:
    env = result["environment"]
    clock = result["nominal_clock_hz"]
    lines = [f"# {env['cpu_model']}, nominal clock {clock / 1e9:.2f} GHz; {env['date']}" if clock else
             f"# {env['cpu_model']} (no nominal clock in its name); {env['date']}",
             f"# {result['what']}; k = {result['k']}; {result['rounds']} rounds of {result['repeats']} calls; "
             "median over rounds (min-max)",
             "| S | k | ns per position | cycles per position |", "|---|---|---|---|"]
    for r in result["rows"]:
        cyc = "-" if r["cycles_per_element"] is None else f"{r['cycles_per_element']:.1f}"
        lines.append(f"| {r['S']} | {r['k']} | {r['ns_per_element']:.2f} ({r['ns_min']:.2f}-{r['ns_max']:.2f}) | {cyc} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = OneLineParser(prog="bench_select_cpp", description=__doc__.split("\n")[0])
    p.add_argument("--seqs", default="4k,16k,32k,64k,128k")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=41)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--k-divisor", type=int, default=12, help="k = S / this (the published CPU runs: 12)")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    try:
        seqs = parse_list(a.seqs, parse_seq, "--seqs")
        if min(a.rounds, a.repeats, a.k_divisor) < 1 or a.warmup < 0 or min(seqs) < a.k_divisor:
            raise UserError("need rounds, repeats, k-divisor >= 1, warmup >= 0 and every S >= the k-divisor")
        if a.json:
            check_output_path(a.json, (".json",), "--json")
        from sparq_sim.machine import cache_dir
        result = measure(seqs, a.rounds, a.repeats, a.warmup, a.k_divisor, Path(cache_dir()) / "cpp")
    except UserError as exc:
        print(f"bench_select_cpp: error: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    if a.json:
        write_text_atomic(a.json, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
