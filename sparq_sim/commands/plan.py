"""`sparq-sim plan`: KV memory, the largest batch that fits, tokens/s, and the best batch and compression."""

from __future__ import annotations

from sparq_sim.tables import render_table
from sparq_sim.commands import _args
from sparq_sim.config_flags import Flag, add_flag
from sparq_sim.errors import UserError

NAME = "plan"
HELP = "capacity planning: KV memory, max batch and tokens/s for dense and SparQ, best batch and compression"
ORDER = 30


PLAN_FLAGS = (
    Flag("--compression", metavar="C[,C...]",
         help="SparQ compressions to report and to search for the best configuration, "
              "e.g. 1/8 or 1/4,1/8 (default: report 1/8, search 1/2,1/4,1/8,1/16)"),
    Flag("--reserve", metavar="FRACTION",
         help="fraction of device memory kept for activations, workspace and the framework (default 0.10)"),
    Flag("--tp", default="1", metavar="N|auto",
         help="tensor parallelism: split weights and KV heads over N devices joined by the hardware "
              "file's [link] (auto: the smallest N at which one sequence fits)"),
)
TARGET_FLAGS = (
    Flag("--tpot-slo", metavar="TIME",
         help="time-per-output-token target, e.g. 50ms: search batch, compression and tensor parallelism "
              "for the most tokens/s per GPU within it (--plot then draws tokens/s per GPU against "
              "tokens/s per user)"),
    Flag("--ttft-slo", metavar="TIME", help="time-to-first-token target, e.g. 2s (with --tpot-slo)"),
    Flag("--gpu-hour-cost", metavar="USD",
         help="price of one GPU-hour, e.g. 2.5: adds $ per million output tokens (with --tpot-slo)"),
)


def parse_compressions(text):
    from sparq_sim.units import parse_fraction, parse_list
    return None if text is None else parse_list(text, parse_fraction, "--compression")


def add_arguments(parser) -> None:
    _args.add_hardware_argument(parser)
    _args.add_seq_argument(parser)
    add_flag(parser, *PLAN_FLAGS)
    add_flag(parser.add_argument_group("latency targets and cost"), *TARGET_FLAGS)
    _args.add_storage_group(parser)
    _args.add_model_arguments(parser)
    _args.add_impl_arguments(parser)
    _args.add_format_argument(parser)
    parser.add_argument("--plot", metavar="FILE.png|FILE.svg", help="also plot tokens/s against batch")
    from sparq_sim.commands import _methods
    _methods.add_method_argument(parser)


def run(args) -> int:
    from sparq_sim import capacity, dtypes
    from sparq_sim.hardware import load_device
    from sparq_sim.units import parse_seq

    from sparq_sim.commands import _methods
    if _methods.uses_method_path(args):
        return run_method(args)
    if args.plot is not None:
        from sparq_sim.outputs import check_output_path
        check_output_path(args.plot, flag="--plot")
    targets = _target_args(args)
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
    from sparq_sim.parallel import parse_tp
    tp = parse_tp(args.tp)
    settings = capacity.PlanSettings(compressions=parse_compressions(args.compression), kv_dtype=kv_dtype,
                                     weight_dtype=weight_dtype, store_k=args.store_k, reallocate=args.reallocate,
                                     implementation=impl, timing=args.timing, reserve_fraction=reserve, tp=tp)
    result = capacity.plan(device, model, seq, settings)
    target = None
    if targets is not None:
        from sparq_sim.slo import plan_targets
        target = plan_targets(device, model, seq, targets["tpot"], ttft_slo_s=targets["ttft"],
                              gpu_hour_cost=targets["cost"], compressions=parse_compressions(args.compression),
                              kv_dtype=kv_dtype, weight_dtype=weight_dtype, store_k=args.store_k,
                              reallocate=args.reallocate, implementation=impl, timing=args.timing,
                              reserve_fraction=reserve)
    if target is not None and args.plot is not None:
        from sparq_sim.plots import latency_target_chart
        latency_target_chart(target, args.plot, f"{model.name} on {device.name}, S = {seq}: tokens/s per GPU "
                                                f"against per user ({result.implementation})")
    elif args.plot is not None and not any(batches for batches, _ in result.curves.values()):
        raise UserError(f"no plot written: nothing fits in memory ({'; '.join(result.notes)})")
    elif args.plot is not None:
        from sparq_sim.plots import tokens_vs_batch_chart
        tokens_vs_batch_chart(result.curves, {"dense": result.dense.max_batch, "SparQ": result.sparq.max_batch},
                              args.plot, f"{model.name} on {device.name}, S = {seq}: tokens/s against batch "
                                         f"({result.implementation})")
    if args.format == "json":
        out = result.to_dict()
        if args.plot is not None:
            out["plot"] = args.plot
        if target is not None:
            out["targets"] = target.to_dict()
        _args.print_json(out)
    else:
        print(format_plan(result))
        if target is not None:
            from sparq_sim.slo import format_targets
            print("\n" + format_targets(target))
        if args.plot is not None:
            print(f"\nplot written to {args.plot}")
    return 0


def _target_args(args) -> dict | None:
    """--tpot-slo, --ttft-slo and --gpu-hour-cost, checked; None without --tpot-slo."""
    from sparq_sim.units import parse_duration
    if args.tpot_slo is None:
        if args.ttft_slo is not None or args.gpu_hour_cost is not None:
            raise UserError("--ttft-slo and --gpu-hour-cost need --tpot-slo")
        return None
    cost = None
    if args.gpu_hour_cost is not None:
        try:
            cost = float(args.gpu_hour_cost)
        except ValueError:
            raise UserError(f"bad --gpu-hour-cost {args.gpu_hour_cost!r}: expected dollars such as 2.5") from None
        if not cost > 0:
            raise UserError(f"bad --gpu-hour-cost {args.gpu_hour_cost!r}: must be positive")
    return {"tpot": parse_duration(args.tpot_slo, "--tpot-slo"),
            "ttft": None if args.ttft_slo is None else parse_duration(args.ttft_slo, "--ttft-slo"),
            "cost": cost}


def run_method(args) -> int:
    """--method NAME: dense against that method at each one's largest batch that fits."""
    from sparq_sim.commands import _methods
    from sparq_sim.compare import at_max_batch, format_settings
    from sparq_sim.methods import get_method
    from sparq_sim.units import format_bytes, format_seconds

    if args.plot is not None:
        raise UserError("--plot is not available with --method")
    if args.reserve is not None:
        raise UserError("--reserve is not available with --method (the default 10% reserve applies)")
    if args.compression is not None and "," in args.compression:
        raise UserError("--method takes one --compression, e.g. 1/8")
    name = get_method(args.method or "sparq").name
    c = _methods.comparison_from_args(args, [name], 1)
    best = at_max_batch(c)
    out = {n: {"settings": e.result.settings, "kv_bytes_per_sequence": e.result.kv_bytes_per_sequence,
               "fixed_bytes": e.result.fixed_bytes, "max_batch": e.result.max_batch,
               "step_time_s": best[n].step.time_s if best[n] else None,
               "tokens_per_s": best[n].tokens_per_s if best[n] else 0.0} for n, e in c.entries.items()}
    if args.format == "json":
        _args.print_json({"hardware": c.device.name, "model": c.model.name, "seq": c.seq,
                          "compression": c.compression, "methods": out, "notes": list(c.notes)})
        return 0
    rows = [[n, format_bytes(o["kv_bytes_per_sequence"]), str(o["max_batch"]),
             format_seconds(o["step_time_s"]) if o["step_time_s"] else "-", f"{o['tokens_per_s']:.1f}"]
            for n, o in out.items()]
    print(f"{c.model.name} on {c.device.name}, S = {c.seq}; ideal implementation, roofline timing")
    print(render_table(rows, ["method", "KV cache per sequence", "max batch", "step at max batch",
                                    "tokens/s at max batch"]))
    for n, o in out.items():
        print(f"  {n}: {format_settings(o['settings'])}")
    for note in c.notes:
        print(f"note: {note}")
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
    if p.tp > 1:
        from sparq_sim.parallel import device_link
        link = device_link(d)
        lines[1:1] = [f"tensor parallel over {p.tp} devices ({link.technology}, "
                      f"{format_bytes(link.bandwidth_Bps.value)}/s per direction): memory figures are per "
                      f"device, tokens/s for the group ({p.tp} GPUs)"]
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
    lines.append(render_table(rows, header))
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
