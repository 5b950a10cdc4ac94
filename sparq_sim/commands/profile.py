"""`sparq-sim profile`: time dense and SparQ attention kernels on this machine.

The workload is given as for `predict` (one attention layer of it is timed: --layers and the
weight flags do not matter here). Warm-up, repeats, median and spread; inputs rotated between
copies whose total exceeds the last-level cache; bytes from the traffic model; achieved GB/s and
the fraction of the machine's measured streaming-read bandwidth (cached, see --refresh-stream).
"""

from __future__ import annotations

from sparq_sim.tables import render_table
from sparq_sim.commands import _args

NAME = "profile"
HELP = "time dense and SparQ attention kernels on this machine (needs torch and numba)"
ORDER = 40

IMPLS = ("cpu", "reference", "torch-eager", "torch-eager-onek", "triton")


def add_arguments(parser) -> None:
    _args.add_sparq_arguments(parser)
    _args.add_model_arguments(parser)
    parser.add_argument("--dtype", default=None,
                        help="dtype of q, K, V for the kernels: float32, float16 or bfloat16 (default: --kv-dtype)")
    parser.add_argument("--impl", default="cpu", metavar="NAME",
                        help=f"kernel implementation: {', '.join(IMPLS)} (default cpu; triton needs a GPU)")
    parser.add_argument("--warmup", default="3", help="untimed calls first (default 3)")
    parser.add_argument("--repeats", default="15", help="timed calls (default 15)")
    parser.add_argument("--copies", default=None,
                        help="input copies to rotate through (default: enough to exceed 4x the LLC)")
    parser.add_argument("--huge-pages", dest="huge_pages", action="store_true",
                        help="CPU: keep K, V and K_t in transparent huge pages (fewer TLB misses in the gathers)")
    parser.add_argument("--refresh-stream", dest="refresh_stream", action="store_true",
                        help="re-measure the streaming-read bandwidth instead of using the cached figure")
    _args.add_format_argument(parser)


def _case(args):
    from sparq_sim import dtypes
    from sparq_sim.errors import UserError
    from sparq_sim.units import parse_positive_int

    w = _args.workload_from_args(args)
    dtype = dtypes.canonical(args.dtype) if args.dtype else w.kv_dtype
    if dtype not in ("float32", "float16", "bfloat16"):
        raise UserError(f"profile runs kernels in float32, float16 or bfloat16, not {dtype}")
    if args.impl not in IMPLS:
        raise UserError(f"unknown --impl {args.impl!r}: choose from {', '.join(IMPLS)}")
    m = w.model
    from sparq_sim.kernels.profiling import Case  # light: imports no torch
    case = Case(batch=w.batch, heads=m.heads, kv_heads=m.kv_heads, seq=w.seq, head_dim=m.head_dim, r=w.r, k=w.k,
                local_window=w.local_window, dtype=dtype, impl=args.impl, store_k=w.store_k,
                reallocate=w.reallocate, huge_pages=args.huge_pages)
    warmup = int(args.warmup) if str(args.warmup).strip() == "0" else parse_positive_int(args.warmup, "--warmup")
    repeats = parse_positive_int(args.repeats, "--repeats")
    copies = None if args.copies is None else parse_positive_int(args.copies, "--copies")
    return case, warmup, repeats, copies


def run(args) -> int:
    case, warmup, repeats, copies = _case(args)
    try:
        import numba  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        from sparq_sim.errors import UserError
        raise UserError(f"profile needs the kernels extra (pip install 'sparq-sim[kernels]'): {exc}") from None
    from sparq_sim.kernels import timing
    from sparq_sim.kernels.profiling import profile_case

    if case.impl == "triton":
        stream_bps, stream_info = None, {"note": "GPU run: the CPU streaming figure does not apply"}
    else:
        stream_bps, stream_info = timing.measure_stream_bandwidth(refresh=args.refresh_stream)
    result = profile_case(case, warmup=warmup, repeats=repeats, copies=copies, stream_Bps=stream_bps)
    result["environment"] = timing.environment()
    result["stream"] = {"Bps": stream_bps, **stream_info}
    if args.format == "json":
        _args.print_json(result)
    else:
        print(format_profile(result))
    return 0


def format_profile(res) -> str:
    from sparq_sim.units import format_bytes, format_seconds

    c, env = res["case"], res["environment"]
    gqa = f" (GQA, {c['kv_heads']} KV heads)" if c["kv_heads"] != c["heads"] else ""
    lines = [
        f"{env['cpu_model']}, {env['threads']} threads, torch {env['torch_version']}, numba {env['numba_version']}, "
        f"{env['date']}",
        f"B = {c['batch']}, {c['heads']} heads{gqa}, d_h = {c['head_dim']}, S = {c['seq']}, r = {c['r']}, "
        f"k = {c['k']}, l = {c['local_window']}, {c['dtype']}, K stored {c['store_k']}, impl {c['impl']}",
        f"{res['copies']} input copies of {format_bytes(res['bytes_per_copy'])} rotated "
        f"(LLC {format_bytes(res['llc_bytes'])}); {res['methods']['dense']['timing']['n']} timed calls each",
    ]
    if "inputs_huge_page_bytes" in res:
        lines.append(f"KV in {'huge' if c.get('huge_pages') else 'base'} pages; "
                     f"{format_bytes(res['inputs_huge_page_bytes'])} of the inputs in transparent huge pages")
    if res["stream"].get("Bps"):
        s = res["stream"]
        lines.append(f"streaming read {format_bytes(s['Bps'])}/s (measured {s.get('date', '?')}"
                     f"{', cached' if s.get('cached') else ''})")
    lines.append("")
    rows = []
    for method, e in res["methods"].items():
        t = e["timing"]
        rows.append([f"{method} ({e['impl']})", format_seconds(t["median_s"]),
                     f"{format_seconds(t['p10_s'])}-{format_seconds(t['p90_s'])}",
                     f"{format_seconds(t['min_s'])}-{format_seconds(t['max_s'])}",
                     format_bytes(e["ideal_bytes"]),
                     format_bytes(e["moved_bytes"]) if e.get("moved_bytes") else "-",
                     f"{e['GBps_ideal']:.1f}",
                     f"{100 * e['fraction_of_stream']:.0f}%" if "fraction_of_stream" in e else "-"])
    lines.append(render_table(rows, ["", "median", "p10-p90", "min-max", "ideal bytes", "moved bytes",
                                           "GB/s", "of stream"]))
    if "speedup" in res:
        lines += ["", f"SparQ speedup {res['speedup']:.2f}x (ideal {res['ideal_speedup']:.2f}x by bytes)"]
    return "\n".join(lines)
