"""CPU benchmark of the fast kernels: dense against SparQ at B=1, 32 heads, d_h=128, float32.

    flock /tmp/sparq-bench.lock python -m sparq_sim.kernels.bench_cpu [--seqs 4k,16k,32k,128k]
        [--impl cpu] [--r 16] [--k-ratio 16] [--repeats 15] [--dtype float32] [--cached-stream] [--json FILE]

k = S / k-ratio (16 gives k = 2048 at S = 32k: 1/8 of dense traffic with r = 16). Prints the
measured streaming-read bandwidth, then per S: medians with p10-p90 and min-max, GB/s (ideal
bytes / median), the streaming bandwidth measured right before and right after that row (this
VM's bandwidth drifts by tens of percent within minutes, so each row is compared with its own
bracketing measurement, their mean) and the dense kernel's fraction of it, and the SparQ speedup
against the ideal one. Targets (issue 3): dense >= 75% of stream; SparQ >= 4x dense at S = 32k.
"""

from __future__ import annotations

import argparse
import json
import sys


def fmt_ms(t: float) -> str:
    return f"{t * 1e3:.2f}"


def main(argv=None) -> int:
    from sparq_sim.units import parse_seq
    from sparq_sim.kernels import timing
    from sparq_sim.kernels.profiling import Case, profile_case

    p = argparse.ArgumentParser(prog="python -m sparq_sim.kernels.bench_cpu", description=__doc__.split("\n")[0])
    p.add_argument("--seqs", default="4k,16k,32k,128k")
    p.add_argument("--impl", default="cpu")
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--r", type=int, default=16)
    p.add_argument("--k-ratio", type=int, default=16)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--cached-stream", action="store_true",
                   help="use the cached streaming bandwidth instead of measuring it again now")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)

    bps, info = timing.measure_stream_bandwidth(refresh=not args.cached_stream)
    env = timing.environment()
    print(f"# {env['cpu_model']}, {env['threads']} threads, LLC {env['llc_bytes'] >> 20} MiB; "
          f"torch {env['torch_version']}, numba {env['numba_version']}; {env['date']}")
    print(f"# streaming read: {bps / 1e9:.1f} GB/s ({info['statistic']}; best {info.get('best_Bps', bps) / 1e9:.1f}, "
          f"p10-p90 {info.get('p10_Bps', bps) / 1e9:.1f}-{info.get('p90_Bps', bps) / 1e9:.1f} GB/s; {info['buffer_bytes'] >> 20} MiB, "
          f"measured {info['date']}{', cached' if info.get('cached') else ''})")
    print(f"# B=1, {args.heads} heads, d_h={args.head_dim}, {args.dtype}, impl {args.impl}, r={args.r}, "
          f"k=S/{args.k_ratio}; times in ms: median [p10-p90] (min-max); GB/s = ideal bytes / median")
    header = ["S", "copies", "stream GB/s", "dense ms", "dense spread", "dense GB/s", "% stream",
              "sparq ms", "sparq spread", "sparq GB/s", "speedup", "ideal"]
    rows, results = [], []
    for s in [parse_seq(x) for x in args.seqs.split(",")]:
        case = Case(batch=1, heads=args.heads, kv_heads=args.heads, seq=s, head_dim=args.head_dim, r=args.r,
                    k=s // args.k_ratio, dtype=args.dtype, impl=args.impl)
        before, _ = timing.measure_stream_bandwidth(refresh=True, repeats=7)
        res = profile_case(case, warmup=args.warmup, repeats=args.repeats, stream_Bps=bps)
        after, _ = timing.measure_stream_bandwidth(refresh=True, repeats=7)
        row_bps = (before + after) / 2
        d = res["methods"]["dense"]
        d["stream_Bps_beside"] = {"before": before, "after": after}
        d["fraction_of_stream"] = d["GBps_ideal"] * 1e9 / row_bps
        results.append(res)
        d, q = res["methods"]["dense"], res["methods"]["sparq"]
        dt, qt = d["timing"], q["timing"]
        rows.append([f"{s // 1024}k", str(res["copies"]), f"{row_bps / 1e9:.1f} ({before / 1e9:.0f}/{after / 1e9:.0f})",
                     fmt_ms(dt["median_s"]), f"[{fmt_ms(dt['p10_s'])}-{fmt_ms(dt['p90_s'])}] ({fmt_ms(dt['min_s'])}-{fmt_ms(dt['max_s'])})",
                     f"{d['GBps_ideal']:.1f}", f"{100 * d['fraction_of_stream']:.0f}%",
                     fmt_ms(qt["median_s"]), f"[{fmt_ms(qt['p10_s'])}-{fmt_ms(qt['p90_s'])}] ({fmt_ms(qt['min_s'])}-{fmt_ms(qt['max_s'])})",
                     f"{q['GBps_ideal']:.1f}", f"{res['speedup']:.2f}x", f"{res['ideal_speedup']:.2f}x"])
        print(f"# done S={s}", file=sys.stderr, flush=True)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"environment": env, "stream": {"Bps": bps, **info}, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
