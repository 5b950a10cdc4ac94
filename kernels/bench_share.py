"""Round by round on this machine: the stream rate, the idle DRAM latency and the numba dense
kernel's read rate (attn-cpu), timed back to back.

    flock /tmp/sparq-bench.lock python -m sparq_sim.kernels.bench_share [--rounds 8] [--seq 64k]

Why: the CPU cost model draws the numba kernels' bandwidth as a share of the measured stream
rate. Whether that share, or Little's law over the idle latency, is what carries from one
machine to another is a question of which of the three moves with the kernel; this prints them
side by side, with each rate's bytes in flight per thread (rate x latency / threads).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

LATENCY_BUFFER = 1 << 28      # the pointer chase's own buffer: it overwrites what it walks


def rounds(n_rounds: int, seq: int, stream_bytes: int, log=print) -> list[dict]:
    import torch

    from sparq_sim.kernels import cpu_api, membench
    from sparq_sim.kernels.timing import time_call

    heads, d = membench.FRAMEWORK_HEADS, membench.FRAMEWORK_D
    a, _keep = membench.alloc_buffer(stream_bytes)
    a[:] = 1.0
    chase, _keep_chase = membench.alloc_buffer(LATENCY_BUFFER)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, heads, d, generator=gen)
    K = torch.randn(1, heads, seq, d, generator=gen)
    V = torch.randn(1, heads, seq, d, generator=gen)
    kv_bytes = 2 * K.numel() * K.element_size()
    threads = cpu_api.threads()
    out = []
    for i in range(n_rounds):
        stream = membench.measure_stream(a, repeats=5)["median_Bps"]
        latency = membench.measure_latency(chase, steps=300_000, repeats=3)["median_s"]
        attn = kv_bytes / time_call(cpu_api.dense_attention, lambda: (q, K, V), warmup=1, repeats=5).median_s
        row = {"round": i, "stream_Bps": stream, "latency_s": latency, "attn_cpu_Bps": attn,
               "share": attn / stream, "stream_in_flight_B": stream * latency / threads,
               "attn_in_flight_B": attn * latency / threads}
        log(f"round {i}: stream {stream / 1e9:5.1f} GB/s, idle latency {latency * 1e9:4.0f} ns, "
            f"attn-cpu {attn / 1e9:5.1f} GB/s ({row['share']:.2f} of the stream); bytes in flight per thread: "
            f"stream {row['stream_in_flight_B']:.0f}, attn-cpu {row['attn_in_flight_B']:.0f}")
        out.append(row)
    return out


def summary(rows: list[dict]) -> str:
    """Median and range of each column over the rounds."""
    def span(key, scale, unit):
        v = np.array([r[key] for r in rows]) * scale
        return f"{key}: median {np.median(v):.2f}{unit} ({v.min():.2f}-{v.max():.2f})"
    return "; ".join([span("stream_Bps", 1e-9, " GB/s"), span("latency_s", 1e9, " ns"),
                      span("attn_cpu_Bps", 1e-9, " GB/s"), span("share", 1.0, "")])


def main(argv=None) -> int:
    from sparq_sim.errors import OneLineParser, UserError
    from sparq_sim.units import parse_seq

    prog = "python -m sparq_sim.kernels.bench_share"
    parser = OneLineParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seq", default="64k", help="sequence length of the attn-cpu call")
    parser.add_argument("--stream-mib", type=int, default=1024, help="the stream buffer (MiB)")
    args = parser.parse_args(argv)
    for name, least in (("rounds", 1), ("stream_mib", 64)):
        if getattr(args, name) < least:
            print(f"{prog}: error: bad --{name.replace('_', '-')} {getattr(args, name)}: must be at least {least}",
                  file=sys.stderr)
            return 2
    try:
        seq = parse_seq(args.seq)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(summary(rounds(args.rounds, seq, args.stream_mib << 20)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
