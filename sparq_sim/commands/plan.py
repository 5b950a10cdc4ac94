"""`sparq-sim plan`: KV memory, the largest batch that fits, tokens/s, and the best batch and compression."""

from __future__ import annotations

from sparq_sim.commands import _args
from sparq_sim.errors import UserError

NAME = "plan"
HELP = "capacity planning: KV memory, max batch and tokens/s for dense and SparQ, best batch and compression"
ORDER = 30


def add_dtype_arguments(parser) -> None:
    _args.add_storage_arguments(parser.add_argument_group("storage"))


def parse_compressions(text):
    from sparq_sim.units import parse_fraction, parse_list
    return None if text is None else parse_list(text, parse_fraction, "--compression")


def add_arguments(parser) -> None:
    _args.add_hardware_argument(parser)
    parser.add_argument("--seq", required=True, help="sequence length S (e.g. 32k)")
    parser.add_argument("--compression", metavar="C[,C...]",
                        help="SparQ compressions to report and to search for the best configuration, "
                             "e.g. 1/8 or 1/4,1/8 (default: report 1/8, search 1/2,1/4,1/8,1/16)")
    parser.add_argument("--reserve", metavar="FRACTION",
                        help="fraction of device memory kept for activations, workspace and the "
                             "framework (default 0.10)")
    add_dtype_arguments(parser)
    _args.add_model_arguments(parser)
    _args.add_impl_arguments(parser)
    _args.add_format_argument(parser)
    parser.add_argument("--plot", metavar="FILE.png|FILE.svg", help="also plot tokens/s against batch")


def run(args) -> int:
    from sparq_sim import capacity, dtypes
    from sparq_sim.hardware import load_device
    from sparq_sim.units import parse_seq

    if args.plot is not None:
        from sparq_sim.plots import check_output_path
        check_output_path(args.plot, flag="--plot")
    reserve = capacity.RESERVE_FRACTION
    if args.reserve is not None:
        try:
            reserve = float(args.reserve)
        except ValueError:
            raise UserError(f"bad --reserve {args.reserve!r}: expected a fraction such as 0.1") from None
        if not 0 <= reserve < 1:
            raise UserError(f"bad --reserve {args.reserve!r}: must be at least 0 and below 1")
    model = _args.model_from_args(args)
    seq = parse_seq(args.seq, "--seq")
    kv_dtype, weight_dtype = dtypes.canonical(args.kv_dtype), dtypes.canonical(args.weight_dtype)
    impl = _args.implementation_from_args(args)
    device = load_device(args.hw)
    result = capacity.plan(device, model, seq, compressions=parse_compressions(args.compression),
                           kv_dtype=kv_dtype, weight_dtype=weight_dtype, store_k=args.store_k,
                           reallocate=args.reallocate, implementation=impl, timing=args.timing,
                           reserve_fraction=reserve)
    if args.plot is not None and not any(batches for batches, _ in result.curves.values()):
        raise UserError(f"no plot written: nothing fits in memory ({'; '.join(result.notes)})")
    if args.plot is not None:
        from sparq_sim.plots import tokens_vs_batch_chart
        tokens_vs_batch_chart(result.curves, {"dense": result.dense.max_batch, "SparQ": result.sparq.max_batch},
                              args.plot, f"{model.name} on {device.name}, S = {seq}: tokens/s against batch "
                                         f"({result.implementation})")
    if args.format == "json":
        out = result.to_dict()
        if args.plot is not None:
            out["plot"] = args.plot
        _args.print_json(out)
    else:
        print(format_plan(result))
        if args.plot is not None:
            print(f"\nplot written to {args.plot}")
    return 0


def format_plan(p) -> str:
    from sparq_sim.capacity import _fraction
    from sparq_sim.units import format_bytes, format_seconds

    d, m = p.device, p.model
    gqa = f", GQA {m.heads}/{m.kv_heads}" if m.kv_heads != m.heads else ""
    free = p.capacity_bytes - p.weights_bytes - p.reserve_bytes
    lines = [
        f"{m.name} ({m.layers} layers, {m.heads} heads{gqa}, d_h {m.head_dim}) on {d.name} "
        f"({d.description}), S = {p.seq}; implementation {p.implementation}, timing {p.timing}",
        f"capacity {format_bytes(p.capacity_bytes)}; weights {format_bytes(p.weights_bytes)}; "
        f"reserve {format_bytes(p.reserve_bytes)} ({p.reserve_fraction:.0%}); "
        f"left for KV caches {format_bytes(max(free, 0))}",
        "",
    ]
    cols = [p.dense] + list(p.sparq_variants)
    header = [""] + ["dense"] + [f"SparQ {_fraction(v.compression)} (r={v.r}, k={v.k})" if v.r
                                 else f"SparQ {_fraction(v.compression)}" for v in p.sparq_variants]
    rows = [
        ["KV bytes per token"] + [format_bytes(c.kv_bytes_per_token) for c in cols],
        ["KV cache per sequence"] + [format_bytes(c.kv_bytes_per_sequence) for c in cols],
        ["max batch"] + [str(c.max_batch) for c in cols],
        ["step time at max batch"] + [format_seconds(c.step_time_s) if c.step_time_s else "-" for c in cols],
        ["tokens/s at max batch"] + [f"{c.tokens_per_s:.1f}" for c in cols],
    ]
    lines.append(_args.render_table(rows, header))
    lines.append("")
    if p.best:
        b = p.best
        lines.append(f"best within memory: SparQ {_fraction(b['compression'])} (r={b['r']}, k={b['k']}) "
                     f"at batch {b['batch']}: {b['tokens_per_s']:.1f} tokens/s")
    if p.dense_best:
        lines.append(f"best dense: batch {p.dense_best['batch']}: {p.dense_best['tokens_per_s']:.1f} tokens/s")
    for note in p.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
