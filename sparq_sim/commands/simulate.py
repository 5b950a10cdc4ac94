"""`sparq-sim simulate`: the DRAM simulator's view of each phase of dense and SparQ decoding.

Per phase: bytes requested by the algorithm against bytes the memory system moves, the
simulated memory time, achieved bandwidth, DRAM row-hit rate and channel utilisation (data
bus busy fraction over all channels), with ``--accesses`` per access pattern too.
"""

from __future__ import annotations

from sparq_sim.tables import render_table
from sparq_sim.commands import _args

NAME = "simulate"
HELP = "simulate the DRAM path phase by phase: bytes requested vs moved, bandwidth, row hits, channel use"
ORDER = 20
MAX_SEED = 2 ** 32 - 1      # numpy's seed range
MIN_SLICE = 100             # fewer requests never reach the steady state the scaling assumes
MAX_SLICE = 100_000         # cost is linear in it; more buys no accuracy the default lacks


def add_arguments(parser) -> None:
    _args.add_hardware_argument(parser)
    _args.add_sparq_arguments(parser)
    _args.add_model_arguments(parser)
    _args.add_impl_arguments(parser, timing=False)
    parser.add_argument("--method", choices=("dense", "sparq", "both"), default="both",
                        help="which method's phases to simulate (default both)")
    parser.add_argument("--seed", default="0", help="random seed of the simulated slices (default 0)")
    parser.add_argument("--slice-requests", dest="slice_requests", default="4000",
                        help="requests simulated per access pattern (default 4000)")
    parser.add_argument("--accesses", action="store_true", help="also list every access pattern of each phase")
    _args.add_format_argument(parser)


def run(args) -> int:
    from sparq_sim.errors import UserError
    from sparq_sim.hardware import load_device
    from sparq_sim.simulator.timer import SimulatedTimer
    from sparq_sim.units import parse_positive_int

    workload = _args.workload_from_args(args)
    device = load_device(args.hw)
    try:
        seed = int(str(args.seed).strip())
    except ValueError:
        raise UserError(f"bad --seed {args.seed!r}: expected an integer") from None
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"bad --seed {args.seed!r}: must be between 0 and {MAX_SEED}")
    slice_requests = parse_positive_int(args.slice_requests, "--slice-requests")
    if not MIN_SLICE <= slice_requests <= MAX_SLICE:
        raise UserError(f"bad --slice-requests {args.slice_requests!r}: use {MIN_SLICE} to {MAX_SLICE} (time and "
                        f"memory grow with it: the default 4000 takes about a second, {MAX_SLICE} several "
                        "seconds)")
    timer = SimulatedTimer(device, seed=seed, slice_requests=slice_requests)
    impl = _args.implementation_from_args(args)
    methods = ("dense", "sparq") if args.method == "both" else (args.method,)
    cfg = timer.config
    result = {
        "hardware": {"name": device.name, "technology": device.technology, "standard": cfg.standard,
                     "channels": cfg.channels, "channel_Bps": cfg.channel_Bps,
                     "sustained_bandwidth_Bps": device.sustained_bandwidth,
                     "request_bytes": cfg.request_bytes, "max_requests_in_flight": cfg.max_requests,
                     "max_demand_in_flight": cfg.max_demand},
        "workload": workload.to_dict(), "implementation": impl.name, "seed": seed,
        "slice_requests": slice_requests,
    }
    from sparq_sim.progress import progress
    work = [(m, impl.attention_phases(workload, m, device) + impl.other_phases(workload, device)) for m in methods]
    bar = progress(total=sum(len(phases) for _, phases in work), desc="simulate", unit="phase")
    for method, phases in work:
        out = []
        for phase in phases:
            bar.update(1)
            stats = timer.phase_stats(phase)
            pt = timer.time_phase(phase, stats)
            entry = stats.to_dict()
            entry.update({"part": phase.part, "time_s": pt.time_s, "compute_s": pt.compute_s,
                          "overhead_s": pt.overhead_s, "bound": pt.bound})
            out.append(entry)
        result[method] = out
    bar.close()
    if args.format == "json":
        _args.print_json(result)
    else:
        print(format_result(result, args.accesses))
    return 0


def format_result(result: dict, accesses: bool = False) -> str:
    from sparq_sim.units import format_bytes, format_seconds

    h, w = result["hardware"], result["workload"]
    lines = [f"{h['name']}: {h['standard']}, {h['channels']} channels x {format_bytes(h['channel_Bps'])}/s, "
             f"{h['request_bytes']}-byte requests, {h['max_requests_in_flight']} in flight "
             f"(demand {h['max_demand_in_flight']}); sustained {format_bytes(h['sustained_bandwidth_Bps'])}/s",
             f"{w['model']['name']}, S = {w['seq']}, batch {w['batch']}, r = {w['r']}, k = {w['k']}, "
             f"K stored {w['store_k']}; slices of {result['slice_requests']} requests, seed {result['seed']}"]
    for method in ("dense", "sparq"):
        if method not in result:
            continue
        rows = []
        for ph in result[method]:
            ratio = ph["moved_bytes"] / ph["requested_bytes"] if ph["requested_bytes"] else 0.0
            rows.append([ph["name"], format_bytes(ph["requested_bytes"]), format_bytes(ph["moved_bytes"]),
                         f"{ratio:.2f}", format_seconds(ph["memory_s"]), f"{format_bytes(ph['achieved_Bps'])}/s",
                         f"{100 * ph['row_hit_rate']:.0f}%", f"{100 * ph['channel_utilisation']:.0f}%", ph["bound"]])
            if accesses:
                for a in ph["accesses"]:
                    rows.append([f"  {a['what'] or a['pattern']} ({a['pattern']}{', write' if a['write'] else ''})",
                                 format_bytes(a["requested_bytes"]), format_bytes(a["moved_bytes"]),
                                 f"{a['moved_bytes'] / a['requested_bytes']:.2f}" if a["requested_bytes"] else "",
                                 format_seconds(a["time_s"]), f"{format_bytes(a['achieved_Bps'])}/s",
                                 f"{100 * a['row_hit_rate']:.0f}%", f"{100 * a['utilisation']:.0f}%", ""])
        lines += ["", f"{method} phases:",
                  render_table(rows, ["phase", "requested", "moved", "moved/req", "memory time",
                                            "achieved", "row hits", "channel use", "bound"])]
    return "\n".join(lines)
