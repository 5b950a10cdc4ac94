"""`sparq-sim predict`: dense against SparQ decoding time, bytes and bounds on one device."""

from __future__ import annotations

from sparq_sim.tables import render_table
from sparq_sim.commands import _args

NAME = "predict"
HELP = "predict dense and SparQ decoding time per step on a device"
ORDER = 10


def add_arguments(parser) -> None:
    _args.add_hardware_argument(parser)
    _args.add_sparq_arguments(parser, seq_required=False)
    add_request_arguments(parser)
    add_batch_arguments(parser)
    _args.add_model_arguments(parser)
    _args.add_impl_arguments(parser, best_estimate=True)
    _args.add_format_argument(parser)
    from sparq_sim.commands import _methods
    _methods.add_method_argument(parser)


def run(args) -> int:
    from sparq_sim.capacity import memory_use
    from sparq_sim.hardware import load_device
    from sparq_sim.predict import predict
    from sparq_sim.request import format_request

    args.seq = args.seq if args.seq is not None else args.prompt
    from sparq_sim.commands import _methods
    if _methods.uses_method_path(args):
        return run_method(args)
    device = load_device(args.hw)
    if args.impl is None:
        from sparq_sim.implementations import best_estimate
        args.impl = best_estimate(device, args.timing)
    if args.seqs is not None:
        from sparq_sim import batch
        mixed = mixed_from_args(args, device, _args.implementation_from_args(args))
        if args.format == "json":
            _args.print_json({"hardware": device.name, "mixed_batch": mixed.to_dict()})
        else:
            print(batch.format_mixed(mixed, device, _args.model_from_args(args)))
        return 0
    request = request_from_args(args, device, _args.implementation_from_args(args))
    workload = _args.workload_from_args(args)
    result = predict(workload, device, implementation=_args.implementation_from_args(args), timing=args.timing)
    memory = memory_use(workload, device)
    if args.format == "json":
        out = result.to_dict()
        out["hardware"]["capacity_bytes"] = memory["capacity_bytes"]
        out["hardware"]["reserve_bytes"] = memory["reserve_bytes"]
        for method in ("dense", "sparq"):
            out[method].update(memory[method])
        if request:
            out["request"] = request.to_dict()
        _args.print_json(out)
    else:
        print(format_prediction(result, memory) + (f"\n\n{format_request(request)}" if request else ""))
    return 0


def add_request_arguments(parser) -> None:
    """--prompt and --generate (the whole-request mode)."""
    group = parser.add_argument_group("whole request (time to first token and per output token)")
    group.add_argument("--prompt", help="prompt length P, e.g. 32k: adds the request section (with --generate)")
    group.add_argument("--generate", help="tokens generated N, e.g. 1k")


def request_from_args(args, device, implementation):
    """The request prediction --prompt/--generate ask for, or None (then --seq is needed)."""
    from sparq_sim.errors import UserError
    from sparq_sim.request import predict_request
    from sparq_sim.units import parse_seq

    prompt, generate = getattr(args, "prompt", None), getattr(args, "generate", None)
    if prompt is None and generate is None:
        if args.seq is None:
            raise UserError("the following arguments are required: --seq (one decoding step), "
                            "or --prompt and --generate (a whole request)")
        return None
    if prompt is None or generate is None:
        raise UserError("--prompt and --generate go together: give both")
    p, n = parse_seq(prompt, "--prompt"), parse_seq(generate, "--generate")
    settings = _args.sparq_values(args, ("batch", "r", "k", "local_window", *_args.STORAGE))
    return predict_request(device, _args.model_from_args(args), p, n, **settings,
                           implementation=implementation, timing=args.timing)


def add_batch_arguments(parser) -> None:
    """--seqs and --seed (the mixed-batch mode)."""
    group = parser.add_argument_group("mixed batch (sequences of different lengths)")
    group.add_argument("--seqs", metavar="SPEC",
                       help="one decode batch of different lengths: a list (4k,32k,8k), a CSV of "
                            "request lengths (column seq, or prompt [+ generate]), or a distribution "
                            "(uniform:low=1k,high=32k,n=16; lognormal:median=8k,sigma=0.5,n=32; "
                            "exponential:mean=8k,n=32); replaces --seq and --batch")
    group.add_argument("--seed", default="0", help="seed of a --seqs distribution (default 0)")


def mixed_from_args(args, device, implementation):
    """The mixed batch --seqs describes, dense against SparQ."""
    from sparq_sim.batch import parse_lengths, predict_mixed
    from sparq_sim.units import parse_int

    seqs = parse_lengths(args.seqs, parse_int(args.seed, "--seed"))
    settings = _args.sparq_values(args, ("r", "k", *_args.STORAGE))
    return predict_mixed(device, _args.model_from_args(args), seqs, **settings,
                         implementation=implementation, timing=args.timing)


def run_method(args) -> int:
    """--method NAME: dense against that method, as `compare` shows them."""
    from sparq_sim.commands import _methods
    from sparq_sim.compare import format_comparison
    from sparq_sim.methods import get_method
    from sparq_sim.units import parse_positive_int

    name = get_method(args.method or "sparq").name
    result = _methods.comparison_from_args(args, [name], parse_positive_int(args.batch, "--batch"))
    if args.format == "json":
        _args.print_json(result.to_dict())
    else:
        print(format_comparison(result))
    return 0


def format_prediction(p, memory: dict | None = None) -> str:
    """The readable table: summary rows, then the phases of each method."""
    from sparq_sim.units import format_bytes, format_seconds

    w, d = p.workload, p.device
    m = w.model
    gqa = f", GQA {m.heads}/{m.kv_heads}" if m.kv_heads != m.heads else ""
    lines = [
        f"{d.name}: {d.description}; {d.technology} {format_bytes(d.bandwidth_Bps.value)}/s peak, "
        f"{format_bytes(d.sustained_bandwidth)}/s sustained; {d.granularity}-byte access granularity",
        f"{m.name} ({m.layers} layers, {m.heads} heads{gqa}, d_h {m.head_dim}), S = {w.seq}, batch {w.batch}, "
        f"r = {w.r}, k = {w.k}, l = {w.local_window}; KV {w.kv_dtype}, weights {w.weight_dtype}, "
        f"K stored {w.store_k}; ideal attention traffic {w.compression:.3f} of dense",
        f"implementation {p.implementation}, timing {p.timing}",
        "",
    ]
    rows = []
    for part in ("attention", "step"):
        dense, sparq = getattr(p.dense, part), getattr(p.sparq, part)
        rows += [
            [f"{part} time", format_seconds(dense.time_s), format_seconds(sparq.time_s),
             f"{p.speedup[part]:.2f}x"],
            [f"{part} bytes moved", format_bytes(dense.bytes), format_bytes(sparq.bytes),
             f"{dense.bytes / sparq.bytes:.2f}x"],
            [f"{part} bytes (ideal)", format_bytes(dense.ideal_bytes), format_bytes(sparq.ideal_bytes),
             f"{dense.ideal_bytes / sparq.ideal_bytes:.2f}x"],
            [f"{part} bound", dense.bound, sparq.bound, ""],
        ]
    rows.append(["tokens/s (whole batch)", f"{w.batch * p.dense.tokens_per_s:.1f}",
                 f"{w.batch * p.sparq.tokens_per_s:.1f}", f"{p.speedup['step']:.2f}x"])
    if memory is not None:
        usable = memory["capacity_bytes"] - memory["reserve_bytes"]
        rows.append(["memory (weights + KV)"] + [
            format_bytes(memory[m]["memory_bytes"]) + ("" if memory[m]["fits_in_memory"] else " (does not fit)")
            for m in ("dense", "sparq")] + [f"of {format_bytes(usable)} usable"])
    lines.append(render_table(rows, ["", "dense", "sparq", "dense/sparq"]))
    lines += ["", *accuracy_lines(p)]
    for method in ("dense", "sparq"):
        lines += ["", f"{method} phases:"]
        phase_rows = [[ph.name, format_bytes(ph.requested_bytes), format_bytes(ph.moved_bytes),
                       format_seconds(ph.time_s), ph.bound]
                      for ph in getattr(p, method).attention.phases]
        lines.append(render_table(phase_rows, ["phase", "requested", "moved", "time", "bound"]))
    return "\n".join(lines)


def accuracy_lines(p) -> list[str]:
    """The ideal bound beside the estimate, and the estimate's validated error (or that it has none)."""
    from sparq_sim.calibration import accuracy
    from sparq_sim.units import format_seconds
    d = p.to_dict()
    b, e = d["bound"], d["error"]
    lines = [f"ideal bound (fused kernels moving the formula's bytes, roofline): step {format_seconds(b['dense']['step']['time_s'])}"
             f" dense, {format_seconds(b['sparq']['step']['time_s'])} SparQ, attention {b['speedup']['attention']:.2f}x, "
             f"step {b['speedup']['step']:.2f}x"]
    if e.get("median_abs_pct") is None:
        lines.append(f"error of this estimate: {e['source']}")
    else:
        lines.append(f"error of this estimate (measured on a {p.device.kind.upper()} it was not fitted on): time per call median "
                     f"{e['median_abs_pct']:.1f}%, p90 {e['p90_abs_pct']:.1f}%; speedup median "
                     f"{e['speedup_median_abs_pct']:.1f}%, p90 {e['speedup_p90_abs_pct']:.1f}%")
        lines += [f"end to end, {accuracy.describe(c)}" for c in e.get("end_to_end", [])]
        if p.device.kind == "gpu" and p.device.name not in ("a10g", "a100-40gb"):
            lines.append(f"{p.device.name} has no measurements: it takes the GPU constants fitted on the A10G and "
                         "A100-40GB with its own hardware figures")
    return lines
