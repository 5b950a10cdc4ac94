"""`sparq-sim sweep`: every combination of devices, S, r, k (and batch, model) as a row, plus a heatmap."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from sparq_sim.commands import _args
from sparq_sim.errors import UserError

NAME = "sweep"
HELP = "predict every combination of devices, S, r and k; write CSV or JSON rows and a speedup heatmap"
ORDER = 40

_RANGE = re.compile(r"^\s*([^.]+?)\s*\.\.\s*([^.]+?)\s*$")
_RATIO = re.compile(r"^\s*S\s*/\s*(\d+)\s*$", re.IGNORECASE)


def parse_seqs(text: str) -> list[int]:
    """'4k..128k' (powers of two from 4k to 128k) or a comma list such as '4k,32k,45000'."""
    from sparq_sim.units import parse_list, parse_seq
    match = _RANGE.match(str(text))
    if not match:
        return parse_list(text, parse_seq, "--seq")
    lo, hi = parse_seq(match.group(1), "--seq"), parse_seq(match.group(2), "--seq")
    if lo > hi:
        raise UserError(f"bad --seq {text!r}: the range must go from the smaller to the larger length")
    out, s = [], lo
    while s <= hi:
        out.append(s)
        s *= 2
    if out[-1] != hi:
        out.append(hi)
    return out


def parse_k_spec(text: str, what: str = "--k"):
    """A k entry: an integer, or S/N (the sequence length divided by N). Returns (label, fn(S))."""
    from sparq_sim.units import parse_positive_int
    match = _RATIO.match(text)
    if match:
        n = int(match.group(1))
        if n < 1:
            raise UserError(f"bad {what} {text!r}: S/N needs N of at least 1")
        return f"S/{n}", lambda s: max(1, s // n)
    value = parse_positive_int(text, what)
    return str(value), lambda s: value


def add_arguments(parser) -> None:
    from sparq_sim.commands.plan import add_dtype_arguments
    parser.add_argument("--hw", required=True, metavar="NAME[,NAME...]", help="devices, comma-separated")
    parser.add_argument("--seq", required=True, help="sequence lengths: 4k..128k (powers of two) or a list")
    parser.add_argument("--r", default="16", help="query components kept, comma-separated (default 16)")
    parser.add_argument("--k", default="S/16", help="positions kept, comma-separated; S/N allowed (default S/16)")
    parser.add_argument("--batch", default="1", help="batch sizes, comma-separated (default 1)")
    parser.add_argument("--models", help="model presets, comma-separated (default: --model)")
    parser.add_argument("--out", required=True, metavar="FILE.csv|FILE.json", help="rows to write")
    parser.add_argument("--plot", metavar="FILE.png|FILE.svg",
                        help="heatmap file (default: next to --out, same name, .png)")
    parser.add_argument("--metric", choices=("step", "attention"), default="step",
                        help="speedup shown in the heatmap (default step)")
    add_parallel_arguments(parser)
    add_dtype_arguments(parser)
    _args.add_model_arguments(parser)
    _args.add_impl_arguments(parser)
    from sparq_sim.commands import _methods
    _methods.add_method_argument(parser)
    parser.add_argument("--compression", metavar="C[,C...]",
                        help="with --method: compressions that set the method's knobs (default: its published default)")


def method_sweep_rows(devices, models, seqs, batches, name, compressions, overrides, storage) -> tuple[list[dict], list[str]]:
    """--method: one row per (device, model, S, batch, compression): dense against the method."""
    from sparq_sim.compare import format_settings
    from sparq_sim.errors import UserError as _UserError
    from sparq_sim.methods import get_method, resolve_settings
    from sparq_sim.methods.evaluate import evaluate, workload_for
    from sparq_sim.timing import get_timer

    rows, notes = [], []
    method = get_method(name)
    for device in devices:
        timer = get_timer("roofline", device)
        for model in models:
            for s in seqs:
                for b in batches:
                    w = workload_for(model, s, b, storage["kv_dtype"], storage["weight_dtype"])
                    dense = evaluate("dense", {}, w, device, timer)
                    for c in compressions:
                        label = "default" if c is None else f"{c:.4g}"
                        try:
                            settings = resolve_settings(method, model, s, c, overrides.get(name), w.kv_bytes)
                        except _UserError as exc:
                            notes.append(f"skipped {device.name} {model.name} S={s} C={label}: {exc}")
                            continue
                        r = evaluate(name, settings, w, device, timer)
                        rows.append({
                            "hardware": device.name, "model": model.name, "method": name,
                            "settings": format_settings(settings), "seq": s, "batch": b, "setting": label,
                            "compression": r.attention.ideal_bytes / dense.attention.ideal_bytes,
                            "dense_attention_s": dense.attention.time_s, "method_attention_s": r.attention.time_s,
                            "attention_speedup": dense.attention.time_s / r.attention.time_s,
                            "dense_step_s": dense.step.time_s, "method_step_s": r.step.time_s,
                            "step_speedup": dense.step.time_s / r.step.time_s,
                            "dense_attention_bytes": dense.attention.bytes, "method_attention_bytes": r.attention.bytes,
                            "dense_tokens_per_s": dense.tokens_per_s, "method_tokens_per_s": r.tokens_per_s,
                            "kv_bytes_per_sequence": r.kv_bytes_per_sequence, "max_batch": r.max_batch})
    return rows, notes


def method_heatmap_panels(rows: list[dict], metric: str) -> dict:
    """Per device (and model, batch): rows S, columns the method's compression setting."""
    return heatmap_panels(rows, metric, column=lambda g: f"{g['method']} C={g['setting']}")


def add_parallel_arguments(parser) -> None:
    parser.add_argument("--workers", metavar="N",
                        help="local worker processes (default: all cores; 1 runs in this process)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run the points on a Dask distributed scheduler, e.g. tcp://127.0.0.1:8786 "
                             "(needs the distributed extra)")


def sweep_rows(devices, models, seqs, rs, ks, batches, impl, timing, storage, *, workers=None,
               cluster=None) -> tuple[list[dict], list[str]]:
    """One row per valid combination; notes for the skipped ones. The (device, model, S) chunks
    run in local processes (`workers`, default all cores) or on a Dask cluster (`cluster`)."""
    from sparq_sim.executors import map_points

    chunks, notes = [], []
    for device in devices:
        for model in models:
            for s in seqs:
                combos = []
                for b in batches:
                    for r in rs:
                        for k_label, k_of in ks:
                            k = k_of(s)
                            if k > s or r > model.head_dim:
                                notes.append(f"skipped {device.name} {model.name} S={s} r={r} k={k_label}: "
                                             + ("k exceeds S" if k > s else f"r exceeds d_h = {model.head_dim}"))
                                continue
                            combos.append((b, r, k, k_label))
                if combos:
                    chunks.append(SweepChunk(device, model, s, tuple(combos), impl, timing, tuple(storage.items())))
    results = map_points(sweep_chunk, chunks, workers=workers, cluster=cluster, desc="sweep")
    return [row for rows in results for row in rows], notes


@dataclass(frozen=True)
class SweepChunk:
    """The sweep points of one device, model and S (picklable, for worker processes)."""

    device: object
    model: object
    seq: int
    combos: tuple          # (batch, r, k, k label)
    impl: object
    timing: str
    storage: tuple


def sweep_chunk(chunk: SweepChunk) -> list[dict]:
    from sparq_sim.predict import predict
    from sparq_sim.timing import timer_for
    from sparq_sim.workload import Workload

    timer = timer_for(chunk.impl, chunk.timing, chunk.device)
    rows, s = [], chunk.seq
    for b, r, k, k_label in chunk.combos:
        w = Workload(model=chunk.model, seq=s, batch=b, r=r, k=k, **dict(chunk.storage))
        p = predict(w, chunk.device, chunk.impl, timer=timer)
        rows.append({
            "hardware": chunk.device.name, "model": chunk.model.name, "implementation": p.implementation,
            "timing": p.timing, "seq": s, "batch": b, "r": r, "k": k,
            "k_setting": k_label, "compression": w.compression,
            "dense_attention_s": p.dense.attention.time_s,
            "sparq_attention_s": p.sparq.attention.time_s,
            "attention_speedup": p.speedup["attention"],
            "dense_step_s": p.dense.step.time_s, "sparq_step_s": p.sparq.step.time_s,
            "step_speedup": p.speedup["step"],
            "dense_attention_bytes": p.dense.attention.bytes,
            "sparq_attention_bytes": p.sparq.attention.bytes,
            "dense_tokens_per_s": b * p.dense.tokens_per_s,
            "sparq_tokens_per_s": b * p.sparq.tokens_per_s,
            "dense_bound": p.dense.step.bound, "sparq_bound": p.sparq.step.bound})
    return rows


def heatmap_panels(rows: list[dict], metric: str, column=None) -> dict:
    """Per device (and model, batch): rows S, columns `column(row)` (default the (r, k) setting),
    value the speedup."""
    column = column or (lambda g: f"r={g['r']}, k={g['k_setting']}")
    panels: dict = {}
    for row in rows:
        panels.setdefault(f"{row['hardware']} {row['model']} B={row['batch']}", []).append(row)
    out = {}
    for name, group in panels.items():
        seqs = sorted({g["seq"] for g in group})
        cols = list(dict.fromkeys(column(g) for g in group))
        values = [[None] * len(cols) for _ in seqs]
        notes = [[""] * len(cols) for _ in seqs]
        for g in group:
            y, x = seqs.index(g["seq"]), cols.index(column(g))
            values[y][x] = g[f"{metric}_speedup"]
            notes[y][x] = f"C={g['compression']:.3f}"
        out[name] = {"rows": seqs, "cols": cols, "values": values, "notes": notes}
    return out


def run(args) -> int:
    from functools import partial
    from pathlib import Path

    from sparq_sim.hardware import load_device
    from sparq_sim.models import get_preset
    from sparq_sim.outputs import check_output_path
    from sparq_sim.units import parse_list, parse_positive_int

    out = check_output_path(args.out, (".csv", ".json"))
    plot = check_output_path(args.plot if args.plot else Path(out).with_suffix(".png"), flag="--plot")
    seqs = parse_seqs(args.seq)
    from sparq_sim.commands import _methods
    if _methods.uses_method_path(args):
        return run_method(args, out, plot, seqs)
    if args.compression is not None:
        raise UserError("--compression applies with --method; for SparQ give --r and --k lists")
    rs = parse_list(args.r, parse_positive_int, "--r")
    ks = parse_list(args.k, parse_k_spec, "--k")
    batches = parse_list(args.batch, partial(parse_positive_int, maximum=_args.MAX_BATCH), "--batch")
    if args.models:
        models = [get_preset(m.strip()) for m in args.models.split(",") if m.strip()]
    else:
        models = [_args.model_from_args(args)]
    impl = _args.implementation_from_args(args)
    devices = [load_device(h.strip()) for h in str(args.hw).split(",") if h.strip()]
    if not devices:
        raise UserError(f"bad --hw {args.hw!r}: no device named")
    storage = dict(kv_dtype=args.kv_dtype, weight_dtype=args.weight_dtype, store_k=args.store_k,
                   reallocate=args.reallocate)
    from sparq_sim.executors import parse_workers
    rows, notes = sweep_rows(devices, models, seqs, rs, ks, batches, impl, args.timing, storage,
                             workers=parse_workers(args.workers), cluster=args.cluster)
    return _write_results(rows, notes, out, plot, heatmap_panels(rows, args.metric) if rows else {},
                          f"SparQ {args.metric} speedup over dense ({impl.name} implementation, "
                          f"{args.timing or 'its default'} timing)")


def _write_results(rows, notes, out, plot, panels, title) -> int:
    """The notes on stderr, then the rows and the heatmap, both or neither."""
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not rows:
        raise UserError("no valid combination to predict (every one was skipped)")
    from sparq_sim.outputs import OutputSet
    from sparq_sim.plots import speedup_heatmap
    with OutputSet() as outputs:
        write_rows(outputs.staged(out), rows)
        speedup_heatmap(panels, outputs.staged(plot), title)
    print(f"{len(rows)} predictions written to {out}; heatmap written to {plot}"
          + (f"; {len(notes)} combinations skipped" if notes else ""))
    return 0


def run_method(args, out, plot, seqs) -> int:
    """--method NAME: dense against that method over devices, models, S, batch and compressions."""
    from sparq_sim.hardware import load_device
    from sparq_sim.methods import get_method, parse_set_options
    from sparq_sim.models import get_preset
    from sparq_sim.units import parse_fraction, parse_list, parse_positive_int

    name = get_method(args.method or "sparq").name
    overrides = parse_set_options(args.method_set)
    compressions = [None] if args.compression is None else parse_list(args.compression, parse_fraction, "--compression")
    batches = parse_list(args.batch, parse_positive_int, "--batch")
    models = ([get_preset(m.strip()) for m in args.models.split(",") if m.strip()] if args.models
              else [_args.model_from_args(args)])
    devices = [load_device(h.strip()) for h in str(args.hw).split(",") if h.strip()]
    if not devices:
        raise UserError(f"bad --hw {args.hw!r}: no device named")
    storage = dict(kv_dtype=args.kv_dtype, weight_dtype=args.weight_dtype)
    rows, notes = method_sweep_rows(devices, models, seqs, batches, name, compressions, overrides, storage)
    return _write_results(rows, notes, out, plot, method_heatmap_panels(rows, args.metric) if rows else {},
                          f"{name} {args.metric} speedup over dense (ideal implementation, roofline timing)")


def write_rows(path, rows: list[dict]) -> None:
    import csv
    import io
    import json

    from sparq_sim.outputs import write_text_atomic

    if str(path).lower().endswith(".json"):
        write_text_atomic(path, json.dumps(rows, indent=1) + "\n")
        return
    buffer = io.StringIO()
    fields = list(rows[0])
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())
