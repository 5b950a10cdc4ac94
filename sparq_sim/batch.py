"""Mixed decode batches: sequences of different lengths decoded in one step.

A batch is a list of sequence lengths: given as a list (``4k,32k,8k``), read from a CSV of
request lengths, or drawn from a named distribution with a seed. For SparQ each sequence has its
own k = S * C / 2 (``settings_for_compression``, as ``Workload.build`` does); r depends on d_h only.

Step time: the sequences of one length form a uniform group, whose attention phases the
implementation model and timer price as usual; a phase of the mixed batch costs the sum of its
groups' costs without their launches, plus the launches once (one ragged kernel per phase, as
paged-attention kernels run). The rest of the step (weights) is priced once for the whole batch.
With a single length this is exactly ``predict``'s step.

Memory: each sequence's KV cache counted at its own length (K twice for SparQ with K stored
twice) plus SparQ's per-sequence running value mean.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sparq_sim.capacity import kv_bytes_per_token, sequence_bytes, state_bytes_per_sequence
from sparq_sim.errors import UserError
from sparq_sim.models import ModelConfig
from sparq_sim.workload import DEFAULT_COMPRESSION, Workload, settings_for_compression

METHODS = ("dense", "sparq")
DISTRIBUTIONS = {
    # name: (parameters, required ones)
    "uniform": ("low", "high", "n"),
    "lognormal": ("median", "sigma", "n"),
    "exponential": ("mean", "n"),
}
_DIST = re.compile(r"^\s*([a-z]+)\s*:(.*)$", re.IGNORECASE)


# ---------------------------------------------------------------- lengths: list, CSV, distribution

def draw_lengths(name: str, params: dict, seed: int = 0) -> list[int]:
    """n lengths from a named distribution (numpy's default generator with `seed`), at least 1 each.

    uniform: integers in [low, high]; lognormal: median x exp(sigma x N(0, 1)); exponential: mean.
    """
    import numpy as np
    key = name.lower()
    if key not in DISTRIBUTIONS:
        raise UserError(f"unknown length distribution {name!r}: choose from {', '.join(DISTRIBUTIONS)}")
    missing = [p for p in DISTRIBUTIONS[key] if p not in params]
    extra = set(params) - set(DISTRIBUTIONS[key])
    if missing or extra:
        raise UserError(f"length distribution {key} takes {', '.join(DISTRIBUTIONS[key])}"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(sorted(extra))}" if extra else ""))
    n = int(params["n"])
    if n < 1 or n != params["n"]:
        raise UserError(f"length distribution {key}: n must be a positive integer, got {params['n']!r}")
    rng = np.random.default_rng(seed)
    if key == "uniform":
        low, high = int(params["low"]), int(params["high"])
        if not 1 <= low <= high:
            raise UserError(f"length distribution uniform: needs 1 <= low <= high, got {low}, {high}")
        values = rng.integers(low, high + 1, size=n)
    elif key == "lognormal":
        if params["median"] <= 0 or params["sigma"] < 0:
            raise UserError("length distribution lognormal: needs median > 0 and sigma >= 0")
        values = np.rint(params["median"] * np.exp(params["sigma"] * rng.standard_normal(n)))
    else:
        if params["mean"] <= 0:
            raise UserError("length distribution exponential: needs mean > 0")
        values = np.rint(rng.exponential(params["mean"], size=n))
    return [max(1, int(v)) for v in values]


def _number(text: str, what: str) -> float:
    from sparq_sim.units import parse_seq
    t = text.strip()
    try:
        return float(parse_seq(t, what)) if re.fullmatch(r"\d+\s*[kKmM]", t) else float(t)
    except ValueError:
        raise UserError(f"bad {what} {text!r}: expected a number such as 8k or 0.5") from None


def read_lengths_csv(path, column: str | None = None) -> list[int]:
    """Sequence lengths from a CSV: the column `column`, else `seq`, else `prompt` (plus `generate`
    when present: the length a request reaches), or a header-less single column."""
    from sparq_sim.units import parse_seq
    p = Path(path)
    if not p.is_file():
        raise UserError(f"lengths file {path} does not exist")
    rows = [r for r in csv.reader(p.read_text().splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"lengths file {path} is empty")
    header = [c.strip().lower() for c in rows[0]]
    if all(re.fullmatch(r"\d+\s*[kKmM]?", c) for c in header) and len(header) == 1:
        return [parse_seq(r[0], f"length in {path}") for r in rows]
    names = [column] if column else ["seq", "prompt"]
    col = next((header.index(n) for n in names if n in header), None)
    if col is None:
        raise UserError(f"lengths file {path}: no column {' or '.join(names)} (columns: {', '.join(header)})")
    gen = header.index("generate") if (header[col] == "prompt" and "generate" in header) else None
    out = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            value = parse_seq(row[col], f"length on line {n} of {path}")
            out.append(value + (parse_seq(row[gen], f"generate on line {n} of {path}") if gen is not None else 0))
        except IndexError:
            raise UserError(f"lengths file {path}: line {n} has too few columns") from None
    if not out:
        raise UserError(f"lengths file {path} has a header but no lengths")
    return out


def parse_lengths(spec: str, seed: int = 0) -> list[int]:
    """A list ('4k,32k,8k'), a CSV file ('lengths.csv') or a distribution
    ('lognormal:median=8k,sigma=0.5,n=32'; 'uniform:low=1k,high=32k,n=16')."""
    from sparq_sim.units import parse_list, parse_seq
    text = str(spec).strip()
    if text.lower().endswith(".csv"):
        return read_lengths_csv(text)
    match = _DIST.match(text)
    if match:
        params = {}
        for item in match.group(2).split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise UserError(f"bad --seqs {spec!r}: distribution parameters are key=value, got {item.strip()!r}")
            key, value = item.split("=", 1)
            params[key.strip().lower()] = _number(value, f"--seqs parameter {key.strip()}")
        return draw_lengths(match.group(1), params, seed)
    return parse_list(text, parse_seq, "--seqs")


# ---------------------------------------------------------------- memory and per-sequence settings

@dataclass(frozen=True)
class SequenceSettings:
    seq: int
    r: int
    k: int
    kv_bytes_dense: int
    kv_bytes_sparq: int


def sequence_settings(model: ModelConfig, seqs, *, compression: float | None = None, r: int | None = None,
                      k: int | None = None, kv_dtype: str = "float16", store_k: str = "twice",
                      reallocate: bool = True) -> list[SequenceSettings]:
    """Per sequence: r, its own k (S*C/2 unless k is given, capped at S) and its KV bytes."""
    c = DEFAULT_COMPRESSION if compression is None else compression
    out = []
    for s in seqs:
        r_c, k_c = settings_for_compression(model.head_dim, s, c)
        out.append(SequenceSettings(
            s, r_c if r is None else r, k_c if k is None else min(k, s),
            kv_bytes_per_token(model, kv_dtype, "dense") * s,
            sequence_bytes(model, s, "sparq", kv_dtype, store_k, reallocate)))
    return out


def kv_bytes(model: ModelConfig, seqs, method: str, *, kv_dtype: str = "float16", store_k: str = "twice",
             reallocate: bool = True) -> int:
    """KV-cache bytes of the whole batch, each sequence at its own length."""
    total = sum(seqs)
    return (kv_bytes_per_token(model, kv_dtype, method, store_k) * total
            + state_bytes_per_sequence(model, method, reallocate) * len(seqs))


# ---------------------------------------------------------------- step time

@dataclass(frozen=True)
class StepTime:
    """One decoding step of a mixed batch on one device (plus its share of tensor parallelism)."""

    attention_s: float
    other_s: float
    communication_s: float = 0.0
    phases: dict = field(default_factory=dict)     # attention phase name -> seconds

    @property
    def time_s(self) -> float:
        return self.attention_s + self.other_s + self.communication_s

    def to_dict(self) -> dict:
        return {"time_s": self.time_s, "attention_s": self.attention_s, "other_s": self.other_s,
                "communication_s": self.communication_s, "phases": dict(self.phases)}


def mixed_step(device, model: ModelConfig, seqs, method: str, *, compression: float | None = None,
               r: int | None = None, k: int | None = None, kv_dtype: str = "float16",
               weight_dtype: str = "float16", store_k: str = "twice", reallocate: bool = True,
               implementation="ideal", timer=None, timing: str | None = None, tp: int = 1) -> StepTime:
    """Step time of the batch `seqs` (one length per sequence) for `method` on `device`; with
    `tp` > 1 on one of tp devices holding its share of the model, plus the step's all-reduces."""
    from sparq_sim.implementations import resolve
    from sparq_sim.parallel import communication_time, shard_model
    from sparq_sim.timing import timer_for

    seqs = [int(s) for s in seqs]
    if not seqs or min(seqs) < 1:
        raise UserError("a decode batch needs at least one sequence, each of at least 1 token")
    impl = resolve(implementation)
    timer = timer or timer_for(impl, timing, device)
    storage = dict(kv_dtype=kv_dtype, weight_dtype=weight_dtype, store_k=store_k, reallocate=reallocate)
    full, model = model, shard_model(model, tp)
    comm = communication_time(device, full, tp, len(seqs))
    busy: dict = {}
    launches: dict = {}
    for s, count in sorted(Counter(seqs).items()):
        w = Workload.build(model, s, batch=count, r=r, k=None if k is None else min(k, s),
                           compression=compression, **storage)
        for ph in timer.time_phases(impl.attention_phases(w, method, device)):
            busy[ph.name] = busy.get(ph.name, 0.0) + ph.time_s - ph.overhead_s
            launches[ph.name] = max(launches.get(ph.name, 0.0), ph.overhead_s)
    phases = {name: busy[name] + launches[name] for name in busy}
    whole = Workload.build(model, max(seqs), batch=len(seqs), r=r, k=None if k is None else min(k, max(seqs)),
                           compression=compression, **storage)
    other = sum(ph.time_s for ph in timer.time_phases(impl.other_phases(whole, device)))
    return StepTime(sum(phases.values()), other, comm, phases)


# ---------------------------------------------------------------- report

@dataclass(frozen=True)
class MixedBatch:
    seqs: tuple[int, ...]
    settings: tuple[SequenceSettings, ...]
    kv_bytes: dict            # method -> bytes of the whole batch
    steps: dict               # method -> StepTime

    @property
    def speedup(self) -> float:
        return self.steps["dense"].time_s / self.steps["sparq"].time_s

    def tokens_per_s(self, method: str) -> float:
        return len(self.seqs) / self.steps[method].time_s

    def to_dict(self) -> dict:
        return {"seqs": list(self.seqs), "batch": len(self.seqs), "total_tokens": sum(self.seqs),
                "sequences": [s.__dict__ for s in self.settings],
                **{m: {"kv_bytes": self.kv_bytes[m], "step": self.steps[m].to_dict(),
                       "tokens_per_s": self.tokens_per_s(m)} for m in METHODS},
                "speedup_step": self.speedup}


def predict_mixed(device, model: ModelConfig, seqs, *, compression=None, r=None, k=None,
                  kv_dtype="float16", weight_dtype="float16", store_k="twice", reallocate=True,
                  implementation="ideal", timing="roofline") -> MixedBatch:
    """Memory and step time of a mixed batch, dense against SparQ."""
    common = dict(kv_dtype=kv_dtype, store_k=store_k, reallocate=reallocate)
    settings = sequence_settings(model, seqs, compression=compression, r=r, k=k, **common)
    mem = {m: kv_bytes(model, seqs, m, **common) for m in METHODS}
    steps = {m: mixed_step(device, model, seqs, m, compression=compression, r=r, k=k, weight_dtype=weight_dtype,
                           implementation=implementation, timing=timing, **common) for m in METHODS}
    return MixedBatch(tuple(seqs), tuple(settings), mem, steps)


def format_mixed(b: MixedBatch, device, model) -> str:
    from sparq_sim.tables import render_table
    from sparq_sim.units import format_bytes, format_seconds
    lines = [f"{model.name} on {device.name}: mixed batch of {len(b.seqs)} sequences, "
             f"{sum(b.seqs)} tokens in all (shortest {min(b.seqs)}, longest {max(b.seqs)})", ""]
    shown = b.settings if len(b.settings) <= 16 else b.settings[:8] + b.settings[-8:]
    rows = [[str(s.seq), str(s.r), str(s.k), format_bytes(s.kv_bytes_dense), format_bytes(s.kv_bytes_sparq)]
            for s in shown]
    lines.append(render_table(rows, ["S", "r", "k", "KV dense", "KV sparq"]))
    if len(b.settings) > 16:
        lines.append(f"({len(b.settings) - 16} sequences not shown)")
    d, s = b.steps["dense"], b.steps["sparq"]
    lines += ["", render_table([
        ["KV cache (whole batch)", format_bytes(b.kv_bytes["dense"]), format_bytes(b.kv_bytes["sparq"]), ""],
        ["attention time", format_seconds(d.attention_s), format_seconds(s.attention_s),
         f"{d.attention_s / s.attention_s:.2f}x"],
        ["step time", format_seconds(d.time_s), format_seconds(s.time_s), f"{b.speedup:.2f}x"],
        ["tokens/s (whole batch)", f"{b.tokens_per_s('dense'):.1f}", f"{b.tokens_per_s('sparq'):.1f}",
         f"{b.speedup:.2f}x"]], ["", "dense", "sparq", "dense/sparq"])]
    return "\n".join(lines)
