"""`sparq-sim roofline`: a roofline chart of one device with dense and SparQ points per case."""

from __future__ import annotations

from sparq_sim.tables import render_table
from sparq_sim.commands import _args

NAME = "roofline"
HELP = "roofline chart of a device with dense and SparQ attention and whole-step points"
ORDER = 20


def add_arguments(parser) -> None:
    _args.add_hardware_argument(parser)
    parser.add_argument("--seq", default="4k,32k,128k", help="sequence lengths, comma-separated (default 4k,32k,128k)")
    parser.add_argument("--batch", default="1", help="batch sizes, comma-separated (default 1)")
    _args.add_compression_argument(parser)
    parser.add_argument("--out", required=True, metavar="FILE.png|FILE.svg", help="chart file to write")
    _args.add_storage_group(parser)
    _args.add_model_arguments(parser)
    _args.add_impl_arguments(parser)
    _args.add_format_argument(parser)
    from sparq_sim.commands import _methods
    _methods.add_method_argument(parser)


def method_roofline_points(device, workloads, name: str, settings_of) -> list[dict]:
    """As roofline_points, for dense and another method (ideal phases, roofline timing)."""
    from sparq_sim.implementations import get_implementation
    from sparq_sim.methods import get_method
    from sparq_sim.methods.evaluate import evaluate
    from sparq_sim.timing import get_timer

    timer = get_timer("roofline", device)
    points = []
    multi_batch = len({w.batch for w in workloads}) > 1
    for w in workloads:
        other_flops = sum(ph.flops for ph in get_implementation("ideal").other_phases(w, device))
        case = _seq_label(w.seq) + (f" B{w.batch}" if multi_batch else "")
        for method in ("dense", name):
            settings = settings_of(method, w)
            r = evaluate(method, settings, w, device, timer)
            att_flops = sum(ph.flops for ph in get_method(method).attention_phases(w, settings))
            for part, flops, totals in (("attention", att_flops, r.attention), ("step", att_flops + other_flops, r.step)):
                points.append({
                    "label": f"{method} {'attn' if part == 'attention' else 'step'} {case}",
                    "method": method, "part": part, "case": case, "seq": w.seq, "batch": w.batch,
                    "settings": settings, "flops": flops, "bytes": totals.bytes, "time_s": totals.time_s,
                    "intensity": flops / totals.bytes, "flops_per_s": flops / totals.time_s, "bound": totals.bound})
    return points


def roofline_points(device, workloads, impl, timer) -> list[dict]:
    """Intensity and attained flop/s of dense and SparQ attention and whole step, per workload."""
    from sparq_sim.predict import predict

    from sparq_sim.progress import progress

    points = []
    multi_batch = len({w.batch for w in workloads}) > 1
    for w in progress(workloads, desc="roofline", unit="case"):
        p = predict(w, device, impl, timer=timer)
        other_flops = sum(ph.flops for ph in impl.other_phases(w, device))
        case = _seq_label(w.seq) + (f" B{w.batch}" if multi_batch else "")
        for method in ("dense", "sparq"):
            att_flops = sum(ph.flops for ph in impl.attention_phases(w, method, device))
            mp = getattr(p, method)
            for part, flops, totals in (("attention", att_flops, mp.attention),
                                        ("step", att_flops + other_flops, mp.step)):
                points.append({
                    "label": f"{'SparQ' if method == 'sparq' else 'dense'} {'attn' if part == 'attention' else 'step'} {case}",
                    "method": method, "part": part, "case": case, "seq": w.seq, "batch": w.batch,
                    "flops": flops, "bytes": totals.bytes, "time_s": totals.time_s,
                    "intensity": flops / totals.bytes, "flops_per_s": flops / totals.time_s,
                    "bound": totals.bound})
    return points


def _seq_label(seq: int) -> str:
    return f"{seq // 1024}k" if seq % 1024 == 0 and seq >= 1024 else str(seq)


def run(args) -> int:
    from functools import partial

    from sparq_sim.hardware import load_device
    from sparq_sim.outputs import check_output_path
    from sparq_sim.timing import get_timer
    from sparq_sim.units import parse_fraction, parse_list, parse_positive_int, parse_seq
    from sparq_sim.workload import Workload

    out = check_output_path(args.out)
    seqs = parse_list(args.seq, parse_seq, "--seq")
    batches = parse_list(args.batch, partial(parse_positive_int, maximum=_args.MAX_BATCH), "--batch")
    compression = None if args.compression is None else parse_fraction(args.compression, "--compression")
    model = _args.model_from_args(args)
    impl = _args.implementation_from_args(args)
    device = load_device(args.hw)
    timer = get_timer(args.timing or "roofline", device)
    from sparq_sim.commands import _methods
    method_name = None
    if _methods.uses_method_path(args):
        from sparq_sim.methods import get_method, parse_set_options, resolve_settings
        method_name = get_method(args.method or "sparq").name
        overrides = parse_set_options(args.method_set)

        def settings_of(method, w):
            return resolve_settings(get_method(method), w.model, w.seq, compression, overrides.get(method), w.kv_bytes)
    workloads = [Workload.build(model, s, batch=b, compression=compression, kv_dtype=args.kv_dtype,
                                weight_dtype=args.weight_dtype, store_k=args.store_k,
                                reallocate=args.reallocate)
                 for b in batches for s in seqs]
    if method_name is not None:
        workloads = [Workload.build(model, s, batch=b, kv_dtype=args.kv_dtype, weight_dtype=args.weight_dtype)
                     for b in batches for s in seqs]
        points = method_roofline_points(device, workloads, method_name, settings_of)
    else:
        points = roofline_points(device, workloads, impl, timer)
    from sparq_sim.plots import roofline_chart
    roofline_chart(device, points, out, title=f"{device.description}: {model.name}, {impl.name} "
                                              f"implementation, {timer.name} timing")
    if args.format == "json":
        _args.print_json({"hardware": device.name, "out": str(out), "points": points})
        return 0
    from sparq_sim.units import format_seconds
    rows = [[p["label"], f"{p['intensity']:.3g}", f"{p['flops_per_s'] / 1e12:.3g}", format_seconds(p["time_s"]),
             p["bound"]] for p in points]
    print(render_table(rows, ["point", "flop/byte", "Tflop/s", "time", "bound"]))
    print(f"\nroofline written to {out}")
    return 0
