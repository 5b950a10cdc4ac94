"""`sparq-sim compare`: sparse-attention methods side by side on one device."""

from __future__ import annotations

from sparq_sim.commands import _args, _methods

NAME = "compare"
HELP = ("methods side by side: time per step, attention bytes, KV memory, max batch, tokens/s and "
        "published quality")
ORDER = 25


def add_arguments(parser) -> None:
    _args.add_hardware_argument(parser)
    _args.add_seq_argument(parser, batch=True)
    parser.add_argument("--compression", metavar="C",
                        help="matched compression, e.g. 1/8: each method's knobs set to move C of dense "
                             "attention's ideal traffic where it can (default: each method's published default)")
    _methods.add_method_argument(parser, plural=True)
    _args.add_storage_group(parser, _args.DTYPES)
    _args.add_model_arguments(parser)
    _args.add_format_argument(parser)
    parser.add_argument("--plot", metavar="FILE.png|FILE.svg", help="also plot tokens/s against KV memory")


def run(args) -> int:
    from sparq_sim.compare import format_comparison
    from sparq_sim.methods import parse_method_list
    from sparq_sim.units import parse_positive_int

    if args.plot is not None:
        from sparq_sim.outputs import check_output_path
        check_output_path(args.plot, flag="--plot")
    names = parse_method_list(args.methods)
    result = _methods.comparison_from_args(args, names, parse_positive_int(args.batch, "--batch"))
    if args.plot is not None:
        from sparq_sim.plots import methods_chart
        points = []
        for name, e in result.entries.items():
            ret = [q["retention"] for q in e.quality if q.get("retention") is not None and name != "dense"]
            points.append({"label": name, "memory_gb": e.result.kv_memory_bytes / 1e9,
                           "tokens_per_s": e.result.tokens_per_s, "retention": min(ret) if ret else None})
        methods_chart(points, args.plot, f"{result.model.name} on {result.device.name}, S = {result.seq}, "
                                         f"batch {result.batch}: tokens/s against KV memory")
    if args.format == "json":
        out = result.to_dict()
        if args.plot is not None:
            out["plot"] = args.plot
        _args.print_json(out)
    else:
        print(format_comparison(result))
        if args.plot is not None:
            print(f"\nplot written to {args.plot}")
    return 0
