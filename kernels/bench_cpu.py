"""CPU benchmark of the fast kernels: dense against SparQ at B=1, 32 heads, d_h=128, float32.

    flock /tmp/sparq-bench.lock python -m sparq_sim.kernels.bench_cpu [--seqs 4k,16k,32k,128k]
        [--impl cpu] [--r 16] [--k-ratio 16] [--rounds 5] [--repeats 9] [--dtype float32]
        [--pages base|huge] [--json FILE]

k = S / k-ratio (16 gives k = 2048 at S = 32k: 1/8 of dense traffic with r = 16). Per S, ``rounds``
rounds each time dense then SparQ (``repeats`` calls each, after warm-up) on the same inputs, with
the streaming-read bandwidth measured right before and after the round: this VM's bandwidth drifts
by tens of percent within minutes, so every ratio is taken within a round and the medians over
rounds are printed (with their min-max): ms, GB/s (ideal bytes / median), the dense kernel's
fraction of the streaming bandwidth, and the SparQ speedup against the ideal one. Targets: dense >= 75% of stream; SparQ >= 4x dense at S = 32k.
"""

from __future__ import annotations

import statistics
import sys


def fmt_ms(t: float) -> str:
    return f"{t * 1e3:.2f}"


def spread(values, fmt) -> str:
    """(min-max) of the per-round values, each formatted by `fmt`."""
    return f"({fmt(min(values))}-{fmt(max(values))})"


def main(argv=None) -> int:
    from sparq_sim.kernels import bench_common, timing
    from sparq_sim.kernels.profiling import Case, markdown_table, profile_case
    from sparq_sim.units import parse_seq

    prog = "python -m sparq_sim.kernels.bench_cpu"
    p = bench_common.parser(prog, __doc__, r=16, dtype="float32", warmup=3, repeats=9,
                            repeats_help="timed calls per method and round")
    p.add_argument("--seqs", default="4k,16k,32k,128k")
    p.add_argument("--impl", default="cpu")
    p.add_argument("--k-ratio", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pages", choices=("base", "huge"), default="base",
                   help="K, V and K_t in base pages (default: plain allocations) or in transparent huge pages")
    args = p.parse_args(argv)
    for name, least in (("rounds", 1), ("repeats", 1), ("warmup", 0)):
        if getattr(args, name) < least:
            print(f"{prog}: error: bad --{name} {getattr(args, name)}: must be at least {least}", file=sys.stderr)
            return 2
    lists = bench_common.comma_lists(prog, {"seqs": (args.seqs, parse_seq)})
    if lists is None:
        return 2
    seqs = lists["seqs"]

    bps, info = timing.measure_stream_bandwidth(refresh=True)
    env = timing.environment()
    print(f"# {env['cpu_model']}, {env['threads']} threads, LLC {env['llc_bytes'] >> 20} MiB; "
          f"torch {env['torch_version']}, numba {env['numba_version']}; {env['date']}")
    print(f"# streaming read: {bps / 1e9:.1f} GB/s ({info['statistic']}; best {info.get('best_Bps', bps) / 1e9:.1f}, "
          f"p10-p90 {info.get('p10_Bps', bps) / 1e9:.1f}-{info.get('p90_Bps', bps) / 1e9:.1f} GB/s; {info['buffer_bytes'] >> 20} MiB, "
          f"measured {info['date']}{', cached' if info.get('cached') else ''})")
    print(f"# B=1, {args.heads} heads, d_h={args.head_dim}, {args.dtype}, impl {args.impl}, r={args.r}, "
          f"k=S/{args.k_ratio}; KV in {args.pages} pages; {args.rounds} rounds of {args.repeats} calls per method; "
          f"medians over rounds (min-max over rounds); GB/s = ideal bytes / median; THP = the inputs' memory in "
          f"transparent huge pages")
    header = ["S", "copies", "THP GiB", "stream GB/s", "dense ms", "dense GB/s", "% stream",
              "sparq ms", "sparq GB/s", "speedup", "ideal"]
    rows, results = [], []
    for s in seqs:
        case = Case(batch=1, heads=args.heads, kv_heads=args.heads, seq=s, head_dim=args.head_dim, r=args.r,
                    k=s // args.k_ratio, dtype=args.dtype, impl=args.impl, huge_pages=args.pages == "huge")
        streams = []

        def stream_now():
            streams.append(timing.measure_stream_bandwidth(refresh=True, repeats=5)[0])
            return streams[-1]
        res = profile_case(case, warmup=args.warmup, repeats=args.repeats, rounds=args.rounds,
                           stream_now=stream_now)
        results.append(res)
        d, q = res["methods"]["dense"], res["methods"]["sparq"]
        dense_r = [r["median_s"] for r in d["rounds"]] if "rounds" in d else [d["timing"]["median_s"]]
        sparq_r = [r["median_s"] for r in q["rounds"]] if "rounds" in q else [q["timing"]["median_s"]]
        ratios = res.get("speedup_per_round", [res["speedup"]])
        rows.append([f"{s // 1024}k", str(res["copies"]), f"{res.get('inputs_huge_page_bytes', 0) / 2 ** 30:.1f}",
                     f"{statistics.median(streams) / 1e9:.1f} {spread(streams, lambda x: f'{x / 1e9:.0f}')}",
                     f"{fmt_ms(d['timing']['median_s'])} {spread(dense_r, fmt_ms)}", f"{d['GBps_ideal']:.1f}",
                     f"{100 * d['fraction_of_stream']:.0f}% {spread(d['fraction_of_stream_per_round'], lambda x: f'{100 * x:.0f}')}",
                     f"{fmt_ms(q['timing']['median_s'])} {spread(sparq_r, fmt_ms)}", f"{q['GBps_ideal']:.1f}",
                     f"{res['speedup']:.2f}x {spread(ratios, lambda x: f'{x:.2f}')}", f"{res['ideal_speedup']:.2f}x"])
        print(f"# done S={s}", file=sys.stderr, flush=True)
    print(markdown_table(rows, header))
    bench_common.write_json(args.json, {"environment": env, "stream": {"Bps": bps, **info}, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
