"""Which method, with which settings, on this device: the Pareto front of predicted tokens/s
against published quality retention and memory, with the reason each setting wins or loses.

Candidates: dense; every method at the compressions of ``GRID`` it can reach and at its
published default; SparQ also with K stored once and with K_t in int8 and int4. Each is timed
(sparq_sim.methods.evaluate: ideal phases, roofline timing) at the given batch, or at its own
largest batch that fits. Retention comes only from published rows (sparq_sim.quality) for the
same model (or the one named by ``quality_model``), method and nominal compression; dense's is 1
by definition. A setting with no published figure keeps retention None: it is listed as such and
can never satisfy a --min-retention. Unknown quality never dominates known quality.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparq_sim import capacity
from sparq_sim.compare import format_settings
from sparq_sim.dtypes import DEFAULT_DTYPE
from sparq_sim.errors import UserError
from sparq_sim.methods import NAMES, get_method, resolve_settings
from sparq_sim.methods.evaluate import evaluate, workload_for

GRID = (1 / 2, 1 / 4, 1 / 8, 1 / 16)
SPARQ_VARIANTS = ({"store_k": "twice", "kt_format": "kv"}, {"store_k": "once", "kt_format": "kv"},
                  {"store_k": "twice", "kt_format": "int8"}, {"store_k": "twice", "kt_format": "int4"})


@dataclass
class Candidate:
    method: str
    settings: dict
    compression: float | None         # nominal grid value, None for a published default
    ideal_fraction: float = 0.0       # ideal attention bytes / dense's
    batch: int = 0
    tokens_per_s: float = 0.0
    memory_bytes: float = 0.0
    retention: float | None = None
    quality_note: str = ""
    reason: str = ""

    def label(self) -> str:
        return f"{self.method} ({short_settings(self.method, self.settings)})" if self.settings else self.method

    def to_front(self) -> dict:
        return {"method": self.method, "settings": {**self.settings, "batch": self.batch},
                "tokens_per_s": self.tokens_per_s, "memory_bytes": self.memory_bytes,
                "retention": self.retention, "reason": self.reason}

    def to_excluded(self) -> dict:
        return {"method": self.method, "settings": {**self.settings, "batch": self.batch} if self.batch else
                dict(self.settings), "reason": self.reason}


@dataclass(frozen=True)
class Recommendation:
    device: object
    model: object
    seq: int
    task: str
    quality_model: str
    front: list
    excluded: list
    notes: tuple = ()

    def to_dict(self) -> dict:
        return {"hardware": self.device.name, "model": self.model.name, "seq": self.seq, "task": self.task,
                "quality_model": self.quality_model, "front": [c.to_front() for c in self.front],
                "excluded": [c.to_excluded() for c in self.excluded], "notes": list(self.notes)}


def candidates(model, seq: int, methods, kv_bytes: int) -> list[Candidate]:
    out, seen = [], set()

    def add(name, settings, c):
        key = (name, tuple(sorted(settings.items())))
        if key not in seen:
            seen.add(key)
            out.append(Candidate(name, settings, c))

    for name in methods:
        m = get_method(name)
        if name == "dense":
            add(name, {}, None)
            continue
        variants = SPARQ_VARIANTS if name == "sparq" else ({},)
        for c in GRID:
            for v in variants:
                try:
                    add(name, resolve_settings(m, model, seq, c, v or None, kv_bytes), c)
                except UserError:
                    pass
        add(name, resolve_settings(m, model, seq, None, None, kv_bytes), None)
    return out


def quality_of(cand: Candidate, model_name: str, task: str, rows) -> tuple[float | None, str]:
    from sparq_sim import quality
    if cand.method == "dense":
        return 1.0, "dense is the reference (retention 1 by definition)"
    if cand.method == "sparq" and cand.settings.get("kt_format") != "kv":
        return None, (f"K_t {cand.settings['kt_format']}: no published quality (step 1 only ranks; "
                      f"top-k agreement with full precision is measured in the tests, not a task score)")
    nominal = cand.compression if cand.compression is not None else cand.ideal_fraction
    found = [q for q in quality.lookup(model_name, cand.method, nominal, rows) if q["task"] == task]
    if not found or found[0]["retention"] is None:
        return None, f"no published {task} quality for {cand.method} at {nominal:.3g} on {model_name}"
    q = found[0]
    status = "" if q["status"] == "verified" else ", unverified figure"
    return q["retention"], (f"keeps {q['retention']:.2f} of {task} ({q['paper']} table {q['table']}"
                            f"{', page ' + q['page'] if q['page'] else ''}{status})")


def dominates(a: Candidate, b: Candidate) -> bool:
    """a is at least as fast, as small and as good as b, and better in one; known quality beats unknown."""
    if a.tokens_per_s < b.tokens_per_s or a.memory_bytes > b.memory_bytes:
        return False
    if a.retention is None and b.retention is not None:
        return False
    if a.retention is not None and b.retention is not None and a.retention < b.retention:
        return False
    better = (a.tokens_per_s > b.tokens_per_s or a.memory_bytes < b.memory_bytes
              or (a.retention is not None and (b.retention is None or a.retention > b.retention)))
    return better


def recommend(device, model, seq: int, *, batch: int | None = None, min_retention: tuple | None = None,
              max_memory: float | None = None, methods=None, task: str | None = None,
              kv_dtype: str = DEFAULT_DTYPE, weight_dtype: str = DEFAULT_DTYPE, quality_model: str | None = None,
              reserve_fraction: float = capacity.RESERVE_FRACTION) -> Recommendation:
    from sparq_sim import quality
    from sparq_sim.timing import get_timer

    methods = list(methods or NAMES)
    if "dense" not in methods:
        methods = ["dense"] + methods
    task = (min_retention[0] if min_retention else task) or "squad"
    qmodel = quality_model or model.name
    rows = quality.all_rows()
    notes = [quality.MATCHING_NOTE]
    if qmodel != model.name:
        notes.append(f"retention is {qmodel}'s published figure, borrowed for {model.name}")
    elif qmodel not in quality.models_with_rows(rows):
        notes.append(f"no published quality for {qmodel}: every sparse setting's retention is unknown "
                     f"(rows exist for {', '.join(quality.models_with_rows(rows))}; --quality-model borrows them)")
    timer = get_timer("roofline", device)
    cap = device.capacity_bytes.value
    kv_bytes = workload_for(model, seq, 1, kv_dtype, weight_dtype).kv_bytes
    dense_ideal = None
    front, excluded = [], []
    for cand in candidates(model, seq, methods, kv_bytes):
        probe = evaluate(cand.method, cand.settings, workload_for(model, seq, 1, kv_dtype, weight_dtype), device,
                         timer, reserve_fraction)
        if dense_ideal is None:
            dense_ideal = probe.attention.ideal_bytes
        cand.ideal_fraction = probe.attention.ideal_bytes / dense_ideal
        cand.retention, cand.quality_note = quality_of(cand, qmodel, task, rows)
        limit = probe.max_batch
        what = _what(cand)
        if limit < 1:
            cand.reason = f"{what}: not even one sequence of {seq} tokens fits in {cap / 1e9:.3g} GB"
            excluded.append(cand)
            continue
        if batch is not None and batch > limit:
            cand.batch = batch
            cand.reason = f"{what} does not fit at batch {batch} (largest batch {limit})"
            excluded.append(cand)
            continue
        cand.batch = batch or limit
        r = evaluate(cand.method, cand.settings, workload_for(model, seq, cand.batch, kv_dtype, weight_dtype),
                     device, timer, reserve_fraction)
        cand.tokens_per_s, cand.memory_bytes = r.tokens_per_s, r.memory_bytes
        if max_memory is not None and cand.memory_bytes > max_memory:
            cand.reason = (f"{what} needs {cand.memory_bytes / 1e9:.3g} GB at batch {cand.batch}, more than "
                           f"--max-memory {max_memory / 1e9:.3g} GB")
            excluded.append(cand)
            continue
        if min_retention is not None:
            if cand.retention is None:
                cand.reason = (f"{what}: {cand.quality_note}: cannot be checked against --min-retention "
                               f"{task}:{min_retention[1]:g}")
                excluded.append(cand)
                continue
            if cand.retention < min_retention[1]:
                cand.reason = f"{what} {cand.quality_note}, below --min-retention {min_retention[1]:g}"
                excluded.append(cand)
                continue
        front.append(cand)
    kept = []
    for cand in front:
        winner = next((o for o in front if o is not cand and dominates(o, cand)), None)
        if winner is not None:
            cand.reason = (f"{_what(cand)} is dominated by {winner.label()} at batch {winner.batch}: {winner.tokens_per_s:.1f} "
                           f"against {cand.tokens_per_s:.1f} tokens/s, {winner.memory_bytes / 1e9:.3g} against "
                           f"{cand.memory_bytes / 1e9:.3g} GB, retention "
                           f"{_ret(winner.retention)} against {_ret(cand.retention)}")
            excluded.append(cand)
        else:
            kept.append(cand)
    kept.sort(key=lambda c: -c.tokens_per_s)
    dense_rate = next((c.tokens_per_s for c in kept + excluded if c.method == "dense" and c.tokens_per_s), None)
    for i, cand in enumerate(kept):
        parts = [f"{cand.tokens_per_s:.1f} tokens/s at batch {cand.batch}"
                 + (f" ({cand.tokens_per_s / dense_rate:.2f}x dense)" if dense_rate else ""),
                 f"{cand.memory_bytes / 1e9:.3g} GB"]
        if i == 0:
            parts.insert(0, "fastest on the front")
        if cand.memory_bytes == min(c.memory_bytes for c in kept):
            parts.append("least memory on the front")
        parts.append(cand.quality_note if cand.retention is not None else cand.quality_note + ": listed, not scored")
        cand.reason = "; ".join(parts)
    return Recommendation(device, model, seq, task, qmodel, kept, excluded, tuple(notes))


def short_settings(method: str, s: dict) -> str:
    """SparQ's knobs as a reader says them (r, k, K once/twice, K_t format); others as key=value."""
    if method == "sparq":
        kt = "" if s["kt_format"] == "kv" else f", K_t {s['kt_format']}"
        extra = "" if s["reallocate"] else ", no reallocation"
        return f"r={s['r']}, k={s['k']}, K {s['store_k']}{kt}{extra}"
    return format_settings(s)


def _what(c: Candidate) -> str:
    if c.method == "sparq":
        return f"SparQ {short_settings('sparq', c.settings)}"
    return c.label()


def _ret(r) -> str:
    return "unknown" if r is None else f"{r:.2f}"


def format_recommendation(rec: Recommendation, show_excluded: int = 12) -> str:
    from sparq_sim.tables import render_table
    m, d = rec.model, rec.device
    lines = [f"{m.name} on {d.name} ({d.description}), S = {rec.seq}; retention on {rec.task} "
             f"({rec.quality_model}); ideal implementation, roofline timing", "", "Pareto front (best first):"]
    rows = [[str(i + 1), c.method, short_settings(c.method, c.settings), str(c.batch), f"{c.tokens_per_s:.1f}",
             f"{c.memory_bytes / 1e9:.3g} GB", _ret(c.retention)] for i, c in enumerate(rec.front)]
    lines.append(render_table(rows, ["#", "method", "settings", "batch", "tokens/s", "memory", "retention"]))
    lines.append("")
    lines += [f"{i + 1}. {c.method}: {c.reason}" for i, c in enumerate(rec.front)]
    lines += ["", f"excluded: {len(rec.excluded)} settings" + (f" (first {show_excluded}; --format json lists all)"
                                                             if len(rec.excluded) > show_excluded else "")]
    if not rec.front:
        lines.insert(4, "(no setting meets every constraint; the exclusions below say why)")
    lines += [f"- {c.reason}" for c in rec.excluded[:show_excluded]]
    lines += [f"note: {n}" for n in rec.notes]
    return "\n".join(lines)
