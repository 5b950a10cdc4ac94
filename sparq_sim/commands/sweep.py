"""`sparq-sim sweep`: every combination of devices, S, r, k (and batch, model) as a row, plus a heatmap."""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field

from sparq_sim import config_flags
from sparq_sim.commands import _args
from sparq_sim.config_flags import flag
from sparq_sim.errors import UserError
from sparq_sim.units import parse_positive_int

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
    config_flags.add_flags(parser, SweepGrid, ("devices", "seqs", "rs", "ks", "batches", "models"),
                           required=("devices", "seqs"))
    parser.add_argument("--out", required=True, metavar="FILE.csv|FILE.json", help="rows to write")
    parser.add_argument("--plot", metavar="FILE.png|FILE.svg",
                        help="heatmap file (default: next to --out, same name, .png)")
    parser.add_argument("--metric", choices=("step", "attention"), default="step",
                        help="speedup shown in the heatmap (default step)")
    add_parallel_arguments(parser)
    _args.add_storage_group(parser)
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


def _list_of(parse):
    """A flag parser of a comma-separated list whose items `parse(item, flag)` reads."""
    def parse_items(text, what):
        from sparq_sim.units import parse_list
        return tuple(parse_list(text, parse, what))
    return parse_items


def _parse_seqs(text, what):
    return tuple(parse_seqs(text))


def _parse_batch(text, what):
    from sparq_sim.units import parse_positive_int
    return parse_positive_int(text, what, _args.MAX_BATCH)


def _parse_models(text, what):
    from sparq_sim.models import get_preset
    return tuple(get_preset(m.strip()) for m in str(text).split(",") if m.strip())


def _parse_devices(text, what):
    from sparq_sim.hardware import load_device
    devices = tuple(load_device(h.strip()) for h in str(text).split(",") if h.strip())
    if not devices:
        raise UserError(f"bad {what} {text!r}: no device named")
    return devices


@dataclass(frozen=True)
class SweepGrid:
    """The combinations a sweep predicts: every device x model x S x batch x r x k."""

    seqs: tuple = field(metadata=flag(
        "--seq", _parse_seqs, help="sequence lengths: 4k..128k (powers of two) or a list"))
    rs: tuple = field(metadata=flag(
        "--r", _list_of(parse_positive_int), default="16", help="query components kept, comma-separated (default {default})"))
    ks: tuple = field(metadata=flag(   # (label, k as a function of S), as parse_k_spec gives them
        "--k", _list_of(parse_k_spec), default="S/16", help="positions kept, comma-separated; S/N allowed (default {default})"))
    batches: tuple = field(metadata=flag(
        "--batch", _list_of(_parse_batch), default="1", help="batch sizes, comma-separated (default {default})"))
    models: tuple = field(metadata=flag(
        parse=_parse_models, help="model presets, comma-separated (default: --model)"))
    devices: tuple = field(metadata=flag(
        "--hw", _parse_devices, metavar="NAME[,NAME...]", help="devices, comma-separated"))


@dataclass(frozen=True)
class SweepSettings:
    """What every point of a sweep shares: the implementation model, the timing and the storage
    (Workload's kv_dtype, weight_dtype, store_k and reallocate)."""

    implementation: object
    timing: str | None = None
    storage: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SweepRow:
    """One predicted point: dense against SparQ (a row of the CSV or JSON, in this order)."""

    hardware: str
    model: str
    implementation: str
    timing: str
    seq: int
    batch: int
    r: int
    k: int
    k_setting: str
    compression: float
    dense_attention_s: float
    sparq_attention_s: float
    attention_speedup: float
    dense_step_s: float
    sparq_step_s: float
    step_speedup: float
    dense_attention_bytes: float
    sparq_attention_bytes: float
    dense_tokens_per_s: float
    sparq_tokens_per_s: float
    dense_bound: str
    sparq_bound: str


def sweep_rows(grid: SweepGrid, settings: SweepSettings, *, workers=None,
               cluster=None) -> tuple[list[SweepRow], list[str]]:
    """One row per valid combination; notes for those Workload refuses. The (device, model, S)
    chunks run in local processes (`workers`, default all cores) or on a Dask cluster (`cluster`)."""
    from sparq_sim.executors import map_points
    from sparq_sim.workload import Workload, WorkloadError

    chunks, notes = [], []
    for device in grid.devices:
        for model in grid.models:
            for s in grid.seqs:
                points = []
                for b in grid.batches:
                    for r in grid.rs:
                        for k_label, k_of in grid.ks:
                            try:
                                w = Workload(model=model, seq=s, batch=b, r=r, k=k_of(s), **settings.storage)
                            except WorkloadError as exc:
                                notes.append(f"skipped {device.name} {model.name} S={s} r={r} k={k_label}: "
                                             f"{exc.reason}")
                                continue
                            points.append((w, k_label))
                if points:
                    chunks.append(SweepChunk(device, tuple(points), settings.implementation, settings.timing))
    results = map_points(sweep_chunk, chunks, workers=workers, cluster=cluster, desc="sweep")
    return [row for rows in results for row in rows], notes


@dataclass(frozen=True)
class SweepChunk:
    """The sweep points of one device, model and S (picklable, for worker processes)."""

    device: object
    points: tuple          # (Workload, k label)
    impl: object
    timing: str | None


def sweep_chunk(chunk: SweepChunk) -> list[SweepRow]:
    from sparq_sim.predict import predict
    from sparq_sim.timing import timer_for

    timer = timer_for(chunk.impl, chunk.timing, chunk.device)
    rows = []
    for w, k_label in chunk.points:
        p = predict(w, chunk.device, chunk.impl, timer=timer)
        rows.append(SweepRow(
            hardware=chunk.device.name, model=w.model.name, implementation=p.implementation,
            timing=p.timing, seq=w.seq, batch=w.batch, r=w.r, k=w.k, k_setting=k_label,
            compression=w.compression,
            dense_attention_s=p.dense.attention.time_s, sparq_attention_s=p.sparq.attention.time_s,
            attention_speedup=p.speedup["attention"],
            dense_step_s=p.dense.step.time_s, sparq_step_s=p.sparq.step.time_s, step_speedup=p.speedup["step"],
            dense_attention_bytes=p.dense.attention.bytes, sparq_attention_bytes=p.sparq.attention.bytes,
            dense_tokens_per_s=w.batch * p.dense.tokens_per_s, sparq_tokens_per_s=w.batch * p.sparq.tokens_per_s,
            dense_bound=p.dense.step.bound, sparq_bound=p.sparq.step.bound))
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


def _models(args) -> tuple:
    """--models, else the model of --model and the shape flags."""
    return config_flags.parsed(SweepGrid, args, ("models",))["models"] if args.models \
        else (_args.model_from_args(args),)


def run(args) -> int:
    from pathlib import Path

    from sparq_sim.outputs import check_output_path

    out = check_output_path(args.out, (".csv", ".json"))
    plot = check_output_path(args.plot if args.plot else Path(out).with_suffix(".png"), flag="--plot")
    seqs = config_flags.parsed(SweepGrid, args, ("seqs",))["seqs"]
    from sparq_sim.commands import _methods
    if _methods.uses_method_path(args):
        return run_method(args, out, plot, seqs)
    if args.compression is not None:
        raise UserError("--compression applies with --method; for SparQ give --r and --k lists")
    points = config_flags.parsed(SweepGrid, args, ("rs", "ks", "batches"))
    models = _models(args)
    impl = _args.implementation_from_args(args)
    grid = SweepGrid(seqs=seqs, **points, models=models, **config_flags.parsed(SweepGrid, args, ("devices",)))
    settings = SweepSettings(impl, args.timing, _args.storage_values(args))
    from sparq_sim.executors import parse_workers
    found, notes = sweep_rows(grid, settings, workers=parse_workers(args.workers), cluster=args.cluster)
    rows = [asdict(row) for row in found]
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
    from sparq_sim.methods import get_method, parse_set_options
    from sparq_sim.units import parse_fraction, parse_list

    name = get_method(args.method or "sparq").name
    overrides = parse_set_options(args.method_set)
    compressions = [None] if args.compression is None else parse_list(args.compression, parse_fraction, "--compression")
    batches = parse_list(args.batch, parse_positive_int, "--batch")
    models = _models(args)
    devices = config_flags.parsed(SweepGrid, args, ("devices",))["devices"]
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
