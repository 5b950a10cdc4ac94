"""`sparq-sim serve-sim`: a serving simulation (arrivals, continuous batching, KV admission),
dense against SparQ: TTFT and TPOT percentiles, throughput, goodput, Little's-law figures."""

from __future__ import annotations

from sparq_sim.tables import render_table
from sparq_sim import config_flags
from sparq_sim.commands import _args
from sparq_sim.errors import UserError

NAME = "serve-sim"
HELP = "simulate serving: Poisson or replayed arrivals, continuous batching limited by KV memory, dense vs SparQ"
ORDER = 35

ROWS = (("ttft_p50_s", "TTFT p50", "s"), ("ttft_p99_s", "TTFT p99", "s"), ("tpot_p50_s", "TPOT p50", "s"),
        ("tpot_p99_s", "TPOT p99", "s"), ("mean_latency_s", "mean latency", "s"),
        ("throughput_tokens_per_s", "throughput (tokens/s)", "f"),
        ("goodput_requests_per_s", "goodput (requests/s)", "f"), ("arrival_rate_per_s", "arrivals/s", "f"),
        ("mean_in_system", "mean requests in system", "f"), ("mean_batch", "mean decode batch", "f"),
        ("max_batch_by_memory", "max batch by KV memory", "i"), ("completed", "completed", "i"),
        ("incomplete", "unfinished", "i"), ("max_queue", "longest queue", "i"))


def add_arguments(parser) -> None:
    from sparq_sim.serve_sim import ServeConfig
    _args.add_hardware_argument(parser)
    parser.add_argument("--rate", help="arrival rate in requests/s (Poisson); a list (1,2,4) runs one "
                                       "simulation per rate, in parallel (--workers, --cluster)")
    config_flags.add_flags(parser, ServeConfig, ("prompt", "generate", "lengths_file", "duration_s", "seed", "tp"))
    _args.add_compression_argument(parser)
    config_flags.add_flags(parser, ServeConfig, ("max_batch", "ttft_slo_s", "tpot_slo_s"))
    parser.add_argument("--out", metavar="FILE.csv|FILE.json", help="also write one row per rate and method")
    from sparq_sim.commands.sweep import add_parallel_arguments
    add_parallel_arguments(parser)
    _args.add_storage_group(parser)
    _args.add_model_arguments(parser)
    _args.add_impl_arguments(parser)
    _args.add_format_argument(parser)


def config_from_args(args):
    """A checked ServeConfig and the rate, before any simulation."""
    from sparq_sim.serve_sim import ServeConfig
    own = config_flags.parsed(ServeConfig, args)
    if args.lengths is None and (args.prompt is None or args.generate is None):
        raise UserError("give --prompt and --generate, or --lengths FILE.csv")
    _args.implementation_from_args(args)     # checks --impl
    config = ServeConfig(hw=args.hw, model=_args.model_from_args(args), **own,
                         compression=_args.COMPRESSION_FLAG.value(args.compression),
                         **_args.storage_values(args), implementation=args.impl, timing=args.timing)
    return config, parse_rates(args.rate, args.lengths)


def parse_rates(text, lengths) -> list:
    """--rate R or R1,R2,...; None when a replayed file gives the arrivals."""
    if text is None:
        return [None]
    out = []
    for item in str(text).split(","):
        try:
            value = float(item)
        except ValueError:
            raise UserError(f"bad --rate {text!r}: expected requests per second such as 2 or 0.5") from None
        if not value > 0:
            raise UserError(f"bad --rate {text!r}: must be positive")
        out.append(value)
    return out


def run(args) -> int:
    from sparq_sim.executors import map_points, parse_workers
    from sparq_sim.hardware import load_device
    from sparq_sim.serve_sim import serve_point, serve_sim

    out = None
    if args.out is not None:
        from sparq_sim.outputs import check_output_path
        out = check_output_path(args.out, (".csv", ".json"))
    config, rates = config_from_args(args)
    workers = parse_workers(args.workers)
    load_device(config.hw)
    if len(rates) == 1 and not args.cluster:
        results = [{"rate_per_s": rates[0], **serve_sim(config, rates[0], progress=True)}]
    else:
        results = map_points(serve_point, [(config, r) for r in rates], workers=workers, cluster=args.cluster,
                             desc="serve-sim rates")
    if out is not None:
        from sparq_sim.commands.sweep import write_rows
        write_rows(out, result_rows(results))
    if args.format == "json":
        _args.print_json({k: v for k, v in results[0].items() if k != "rate_per_s"} if len(results) == 1
                         else results)
    elif len(results) == 1:
        print(format_result(config, rates[0], results[0]))
    else:
        print(format_grid(config, results))
    if out is not None and args.format != "json":
        print(f"\n{2 * len(results)} rows written to {out}")
    return 0


def result_rows(results) -> list[dict]:
    """One flat row per rate and method."""
    rows = []
    for r in results:
        for method in ("dense", "sparq"):
            m = r[method]
            row = {"rate_per_s": r["rate_per_s"], "method": method}
            row.update({k: ("" if v is None else v) for k, v in m.items() if not isinstance(v, dict)})
            row.update({f"queue_at_{k}": v for k, v in m["queue_at"].items()})
            rows.append(row)
    return rows


def format_grid(config, results) -> str:
    from sparq_sim.units import format_seconds
    rows = []
    for r in results:
        for method in ("dense", "sparq"):
            m = r[method]
            rows.append([f"{r['rate_per_s']:g}", method, format_seconds(m["ttft_p99_s"]) if m["ttft_p99_s"] else "-",
                         format_seconds(m["tpot_p99_s"]) if m["tpot_p99_s"] else "-",
                         f"{m['throughput_tokens_per_s']:.1f}", f"{m['goodput_requests_per_s']:.2f}",
                         f"{m['mean_in_system']:.1f}", str(m["queue_at"]["1"])])
    return (f"{config.model.name} on {config.hw}: {config.duration_s:g} simulated s per rate, seed {config.seed}\n\n"
            + render_table(rows, ["rate/s", "method", "TTFT p99", "TPOT p99", "tokens/s", "goodput/s",
                                        "in system", "queue at end"]))


def format_result(config, rate, result) -> str:
    from sparq_sim.units import format_seconds
    arrivals = (f"Poisson {rate:g} requests/s" if rate else f"replay of {config.lengths_file}")
    lengths = (f"prompt {config.prompt}, generate {config.generate}" if config.prompt and not config.lengths_file
               else f"lengths from {config.lengths_file}")
    lines = [f"{config.model.name} on {config.hw}" + (f" x {config.tp} (tensor parallel)" if config.tp > 1 else "")
             + f": {arrivals}, {lengths}, {config.duration_s:g} simulated s, seed {config.seed}; "
               f"implementation {config.implementation}, timing {config.timing}; goodput targets TTFT <= "
               f"{format_seconds(config.ttft_slo_s)}, TPOT <= {format_seconds(config.tpot_slo_s)}", ""]
    rows = []
    for key, label, kind in ROWS:
        cells = []
        for method in ("dense", "sparq"):
            v = result[method][key]
            cells.append("-" if v is None else format_seconds(v) if kind == "s" else
                         f"{v:.0f}" if kind == "i" else f"{v:.2f}")
        rows.append([label] + cells)
    lines.append(render_table(rows, ["", "dense", "sparq"]))
    return "\n".join(lines)
