"""Re-record every recorded validation result from its command, or check that they still reproduce.

The figures in the README, docs/validation.md and ``sparq_sim/calibration`` come from ``validate``
runs on recorded measurements. Fits are deterministic for one environment, but another numpy or
scipy build, or another CPU's BLAS kernels, can stop a least-squares fit elsewhere, so a recorded
number is only as good as the check that its command still gives it.
``python -m sparq_sim.validation.rerecord --check [--tolerance POINTS]`` runs every command whose
output is a recorded JSON and lists those whose headline figures moved (failing past the
tolerance); without ``--check`` it rewrites them all in dependency order (the shipped GPU
calibration before the results that use it). Measurement runs (``validate --local``) are not
re-run: they measure a machine, and their folders are data.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sparq_sim.calibration.fit import fit_environment
from sparq_sim.errors import OneLineParser
from sparq_sim.outputs import write_text_atomic

DATA = "validation/data"
RESULTS = "validation/results"
GPU_FILES = {"a10g": f"{DATA}/sparq-microbench-a10g.csv", "a100": f"{DATA}/sparq-microbench-a100-40gb.csv"}
ACCURACY = "sparq_sim/calibration/accuracy.json"

# CPU cross-machine checks: output name -> (target run folder, source run folder), under RESULTS
CPU_CROSS = {
    "epyc-to-xeon": ("local-full-xeon", "local-full"),
    "xeon-to-epyc": ("local-full", "local-full-xeon"),
    "same-xeon-earlier-to-later": ("local-full-xeon", "local-full-xeon-earlier"),
    "same-xeon-later-to-earlier": ("local-full-xeon-earlier", "local-full-xeon"),
    "epyc-to-zen4": ("local-full-zen4", "local-full"),
    "zen4-to-epyc": ("local-full", "local-full-zen4"),
    "xeon-to-zen4": ("local-full-zen4", "local-full-xeon"),
    "zen4-to-xeon": ("local-full-xeon", "local-full-zen4"),
    "same-zen4-earlier-to-later": ("local-full-zen4-second", "local-full-zen4"),
    "same-zen4-later-to-earlier": ("local-full-zen4", "local-full-zen4-second"),
    "epyc-to-zen4-third": ("local-full-zen4-third", "local-full"),
    "xeon-to-zen4-third": ("local-full-zen4-third", "local-full-xeon"),
    "same-zen3-earlier-to-later": ("local-full-zen3", "local-full"),
    "same-zen3-later-to-earlier": ("local-full", "local-full-zen3"),
    "zen4-third-to-zen3": ("local-full-zen3", "local-full-zen4-third"),
    "zen3-to-zen4-third": ("local-full-zen4-third", "local-full-zen3"),
    "xeon-to-zen3": ("local-full-zen3", "local-full-xeon"),
    "zen3-to-xeon": ("local-full-xeon", "local-full-zen3"),
    "xeon-to-xeon-second": ("local-full-xeon-second", "local-full-xeon"),
    "xeon-second-to-xeon": ("local-full-xeon", "local-full-xeon-second"),
    "zen3-to-xeon-second": ("local-full-xeon-second", "local-full-zen3"),
    "xeon-second-to-zen3": ("local-full-zen3", "local-full-xeon-second"),
    "epyc-to-zen5": ("local-full-zen5", "local-full"),
    "zen5-to-epyc": ("local-full", "local-full-zen5"),
    "zen4-to-zen5": ("local-full-zen5", "local-full-zen4"),
    "zen5-to-zen4": ("local-full-zen4", "local-full-zen5"),
    "xeon-to-zen5": ("local-full-zen5", "local-full-xeon"),
    "zen5-to-xeon": ("local-full-xeon", "local-full-zen5"),
}
# the CPU directions whose per-kernel errors predict's `error` draws on (accuracy.json)
CPU_ACCURACY = ("epyc-to-zen4", "epyc-to-xeon", "zen4-to-epyc", "zen4-to-xeon", "xeon-to-epyc", "xeon-to-zen4",
                "epyc-to-zen5", "zen5-to-epyc", "zen4-to-zen5", "zen5-to-zen4", "xeon-to-zen5", "zen5-to-xeon")


@dataclass(frozen=True)
class Record:
    """One recorded result: the ``sparq-sim`` arguments, and the file its stdout goes to (None: the
    command writes its own file, named in its arguments)."""

    args: str
    stdout: str | None = None

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.args)


def _cross(target: str, source: str) -> str:
    return f"validate --measurements {target} --fit-on {source}"


def records() -> list[Record]:
    """Every recorded result, in the order its inputs require."""
    a10g, a100 = GPU_FILES["a10g"], GPU_FILES["a100"]
    out = [Record(f"validate --measurements {a10g},{a100} --fit --write-calibration sparq_sim/calibration/gpu.toml "
                  "--format json", f"{RESULTS}/insample-both.json"),
           Record(f"{_cross(a100, a10g)} --format json", f"{RESULTS}/cross-a10g-to-a100.json"),
           Record(f"{_cross(a10g, a100)} --format json", f"{RESULTS}/cross-a100-to-a10g.json"),
           # across devices and across S at once: fit one GPU's S <= 4096, check the other's longer S
           Record(f"{_cross(a100, a10g)} --holdout seq --train-seq 2048,4096 --format json",
                  f"{RESULTS}/cross-holdout-long-a10g-to-a100.json"),
           Record(f"{_cross(a10g, a100)} --holdout seq --train-seq 2048,4096 --format json",
                  f"{RESULTS}/cross-holdout-long-a100-to-a10g.json")]
    for name, path in GPU_FILES.items():
        out += [Record(f"validate --measurements {path} --holdout seq --train-seq 2048,4096 --format json",
                       f"{RESULTS}/holdout-long-{name}.json"),
                Record(f"validate --measurements {path} --fit --format json", f"{RESULTS}/insample-{name}.json"),
                Record(f"validate --measurements {path} --format json", f"{RESULTS}/stored-{name}.json")]
    out.append(Record(f"validate --measurements {RESULTS}/local-full/calibration-runs.csv --fit "
                      "--write-calibration sparq_sim/calibration/local-cpu.toml"))
    for name, (target, source) in CPU_CROSS.items():
        out.append(Record(f"{_cross(f'{RESULTS}/{target}/results.csv', f'{RESULTS}/{source}/calibration-runs.csv')} "
                          "--format json", f"{RESULTS}/cross-cpu-{name}.json"))
    for name in CPU_ACCURACY:
        target, source = CPU_CROSS[name]
        out.append(Record(f"{_cross(f'{RESULTS}/{target}/results.csv', f'{RESULTS}/{source}/calibration-runs.csv')} "
                          f"--write-accuracy {ACCURACY}"))
    out += [Record(f"{_cross(a10g, a100)} --write-accuracy {ACCURACY}"),
            Record(f"{_cross(a100, a10g)} --write-accuracy {ACCURACY}"),
            Record(f"{_cross(a100, a10g)} --plot {RESULTS}/cross-a10g-to-a100.png"),
            Record("validate --end-to-end --format json", f"{RESULTS}/end-to-end.json"),
            Record(f"validate --end-to-end --write-accuracy {ACCURACY}")]
    return out


def headline(doc: dict) -> dict:
    """The figures the docs quote from one ``validate`` JSON: n, median and p90 of the time and
    speedup errors (end-to-end reports: each case's predicted speedup and times)."""
    if "overall" in doc:
        o, s = doc["overall"], doc.get("speedup", {}).get("overall", {})
        return {"n": o["n"], "median": round(o["median_abs_pct_error"], 2), "p90": round(o["p90_abs_pct_error"], 2),
                "speedup_median": round(s.get("median_abs_pct_error", float("nan")), 2),
                "speedup_p90": round(s.get("p90_abs_pct_error", float("nan")), 2)}
    return {"text": json.dumps(doc, sort_keys=True)}


def _run(record: Record, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "sparq_sim.cli", *record.argv], cwd=cwd, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"rerecord: `sparq-sim {record.args}` failed: "
                         f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}")
    return proc.stdout


def check(root: Path, tolerance: float = 0.0) -> int:
    """Run the commands whose stdout is recorded and report the recorded JSONs whose figures moved;
    fails (1) when a figure moved by more than ``tolerance`` percentage points (0: any move), since
    another host's BLAS kernels may move a fit's stopping point by a fraction of a point."""
    moved, largest = 0, 0.0
    for record in records():
        if record.stdout is None or "--write-calibration" in record.args:
            continue
        fresh = headline(json.loads(_run(record, root)))
        stored = headline(json.loads((root / record.stdout).read_text()))
        if fresh != stored:
            moved += 1
            largest = max(largest, largest_move(stored, fresh))
            print(f"{record.stdout}: recorded {stored}, now {fresh}")
    print(f"{moved} recorded result(s) moved (largest figure move {largest:.2f} points, "
          f"tolerance {tolerance:g}); fitted with {fit_environment()}")
    return 1 if moved and largest > tolerance else 0


def largest_move(stored: dict, fresh: dict) -> float:
    """The largest change, in percentage points, of a headline figure both hold (inf when a figure
    is missing from one or the text of an end-to-end report differs)."""
    if stored.keys() != fresh.keys() or "text" in stored:
        return math.inf
    moves = [abs(fresh[k] - stored[k]) for k in stored if k != "n" and math.isfinite(stored[k])
             and math.isfinite(fresh[k])]
    return max(moves, default=0.0) if stored["n"] == fresh["n"] else math.inf


def rerecord(root: Path) -> None:
    """Rewrite every recorded result, each stdout through a file beside it (none is left half-written)."""
    for record in records():
        print(f"sparq-sim {record.args}" + (f" > {record.stdout}" if record.stdout else ""), flush=True)
        text = _run(record, root)
        if record.stdout:
            write_text_atomic(root / record.stdout, text)


def main(argv=None) -> int:
    parser = OneLineParser(prog="python -m sparq_sim.validation.rerecord", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the recorded results; write nothing")
    parser.add_argument("--tolerance", type=float, default=0.0, metavar="POINTS",
                        help="with --check: pass when no figure moved by more than this many percentage points "
                             "(default 0: any move fails)")
    args = parser.parse_args(argv)
    if args.tolerance < 0 or not math.isfinite(args.tolerance):
        parser.error(f"--tolerance must be a finite number of points >= 0, got {args.tolerance:g}")
    if args.tolerance and not args.check:
        parser.error("--tolerance needs --check")
    root = Path(__file__).resolve().parent.parent
    if args.check:
        return check(root, args.tolerance)
    rerecord(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
