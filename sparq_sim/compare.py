"""Methods side by side on one device: time per step, attention bytes, KV memory, the largest batch
that fits, tokens/s, and the published quality where it exists.

Settings come from a matched compression (each method's knobs set to move that fraction of dense
attention's ideal traffic, where the method can reach it) or from each method's published default,
then any explicit overrides. Dense is the baseline of every speedup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sparq_sim import capacity
from sparq_sim.dtypes import DEFAULT_DTYPE
from sparq_sim.errors import UserError
from sparq_sim.methods import get_method, resolve_settings
from sparq_sim.methods.evaluate import MethodResult, evaluate, workload_for

FLEXGEN_FLOOR = 0.5   # FlexGen reads all of K: half of dense attention's traffic at least


@dataclass(frozen=True)
class Entry:
    result: MethodResult
    compression: float                 # ideal attention bytes / dense's
    quality: list = field(default_factory=list)

    def to_dict(self) -> dict:
        r = self.result
        return {"settings": r.settings,
                "attention": {"bytes": r.attention.bytes, "ideal_bytes": r.attention.ideal_bytes,
                              "time_s": r.attention.time_s},
                "step": {"bytes": r.step.bytes, "time_s": r.step.time_s},
                "kv_memory_bytes": r.kv_memory_bytes, "max_batch": r.max_batch,
                "tokens_per_s": r.tokens_per_s, "quality": self.quality}


@dataclass(frozen=True)
class Comparison:
    """Methods side by side on one device, model, S and batch: each one's Entry, and notes on what
    was assumed or left out."""

    device: object
    model: object
    seq: int
    batch: int
    compression: float | None
    quality_model: str
    entries: dict
    notes: tuple = ()
    kv_dtype: str = DEFAULT_DTYPE
    weight_dtype: str = DEFAULT_DTYPE
    reserve_fraction: float = capacity.RESERVE_FRACTION

    def speedup(self, name: str, part: str = "step") -> float:
        base = getattr(self.entries["dense"].result, part).time_s
        return base / getattr(self.entries[name].result, part).time_s

    def to_dict(self) -> dict:
        return {"hardware": self.device.name, "model": self.model.name, "seq": self.seq, "batch": self.batch,
                "compression": self.compression, "quality_model": self.quality_model,
                "methods": {n: e.to_dict() for n, e in self.entries.items()}, "notes": list(self.notes)}


def method_settings(name: str, model, seq: int, compression, overrides, kv_bytes: int, notes: list) -> dict | None:
    """Settings for one method, or None (with a note) where it cannot reach the compression."""
    method = get_method(name)
    try:
        return resolve_settings(method, model, seq, compression, overrides, kv_bytes)
    except UserError as exc:
        if compression is None or overrides:
            raise
        if name == "flexgen":
            notes.append(f"flexgen: {exc}; shown at its floor, 1/2")
            return resolve_settings(method, model, seq, FLEXGEN_FLOOR, overrides, kv_bytes)
        notes.append(f"{name}: {exc}; left out")
        return None


def compare(device, model, seq: int, methods, *, batch: int = 1, compression: float | None = None,
            overrides: dict | None = None, kv_dtype: str = DEFAULT_DTYPE, weight_dtype: str = DEFAULT_DTYPE,
            reserve_fraction: float = capacity.RESERVE_FRACTION, quality_model: str | None = None) -> Comparison:
    """Evaluate each named method (dense is always added first, as the baseline)."""
    from sparq_sim import quality
    from sparq_sim.timing import get_timer

    names = ["dense"] + [n for n in methods if n != "dense"]
    overrides = overrides or {}
    for n in overrides:
        if n not in names:
            raise UserError(f"--set names {n}, which is not among the methods compared ({', '.join(names)})")
    w = workload_for(model, seq, batch, kv_dtype, weight_dtype)
    timer = get_timer("roofline", device)
    qmodel = quality_model or model.name
    rows = quality.all_rows()
    notes: list = []
    if qmodel != model.name:
        notes.append(f"quality rows are those published for {qmodel}, shown for {model.name}: borrowed "
                     f"across models, not measured on it")
    elif qmodel not in quality.models_with_rows(rows):
        notes.append(f"no published quality rows for {qmodel} (rows exist for "
                     f"{', '.join(quality.models_with_rows(rows)) or 'no model'}); none is transferred "
                     f"unless --quality-model names one")
    entries: dict = {}
    dense_ideal = None
    for name in names:
        settings = method_settings(name, model, seq, compression, overrides.get(name), w.kv_bytes, notes)
        if settings is None:
            continue
        r = evaluate(name, settings, w, device, timer, reserve_fraction)
        if dense_ideal is None:
            dense_ideal = r.attention.ideal_bytes
        c = r.attention.ideal_bytes / dense_ideal
        q = quality.lookup(qmodel, name, 1.0 if name == "dense" else c, rows)
        entries[name] = Entry(r, c, q)
        if r.max_batch < batch:
            notes.append(f"{name}: batch {batch} does not fit (largest batch {r.max_batch}); its time and "
                         f"tokens/s are shown for reference only")
    if any(e.quality and any(q["status"] != "verified" for q in e.quality) for e in entries.values()):
        notes.append("quality figures marked unverified were quoted for the paper but not checked "
                     "against its table and page")
    if any(e.quality for n, e in entries.items() if n != "dense"):
        notes.append(quality.MATCHING_NOTE)
    return Comparison(device, model, seq, batch, compression, qmodel, entries, tuple(notes), kv_dtype, weight_dtype,
                      reserve_fraction)


def format_settings(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "-"


def format_quality(quality: list) -> str:
    parts = []
    for q in quality:
        mark = "" if q["status"] == "verified" else "*"
        ret = f" ({q['retention']:.2f})" if q.get("retention") is not None and q["method"] != "dense" else ""
        parts.append(f"{q['task']} {q['value']:g}{ret}{mark}")
    return "; ".join(parts) or "-"


def format_comparison(c: Comparison) -> str:
    from sparq_sim.tables import render_table
    from sparq_sim.units import format_bytes, format_seconds

    m, d = c.model, c.device
    gqa = f", GQA {m.heads}/{m.kv_heads}" if m.kv_heads != m.heads else ""
    how = f"matched compression {c.compression:.4g}" if c.compression is not None else "each method's published default"
    lines = [f"{m.name} ({m.layers} layers, {m.heads} heads{gqa}, d_h {m.head_dim}) on {d.name} ({d.description}), "
             f"S = {c.seq}, batch {c.batch}; {how}; ideal implementation, roofline timing", ""]
    rows = []
    for name, e in c.entries.items():
        r = e.result
        rows.append([name, format_seconds(r.step.time_s), f"{c.speedup(name):.2f}x",
                     format_seconds(r.attention.time_s), format_bytes(r.attention.bytes), f"{e.compression:.3f}",
                     format_bytes(r.kv_memory_bytes), str(r.max_batch), f"{r.tokens_per_s:.1f}",
                     format_quality(e.quality)])
    lines.append(render_table(rows, ["method", "step", "speedup", "attention", "attn bytes", "ideal/dense",
                                     "KV memory", "max batch", "tokens/s", "published quality"]))
    lines += ["", "settings:"]
    lines += [f"  {name}: {format_settings(e.result.settings)}" for name, e in c.entries.items()]
    lines += [f"note: {n}" for n in c.notes]
    if any(q["status"] != "verified" for e in c.entries.values() for q in e.quality):
        lines.append("* unverified figure")
    return "\n".join(lines)


def at_max_batch(c: Comparison) -> dict:
    """Each method re-evaluated at its own largest batch that fits (None where none fits)."""
    from sparq_sim.methods.evaluate import evaluate, workload_for
    from sparq_sim.timing import get_timer

    timer = get_timer("roofline", c.device)
    out = {}
    for name, e in c.entries.items():
        r = e.result
        if r.max_batch < 1:
            out[name] = None
            continue
        w = workload_for(c.model, c.seq, r.max_batch, c.kv_dtype, c.weight_dtype)
        out[name] = evaluate(name, r.settings, w, c.device, timer, c.reserve_fraction)
    return out
