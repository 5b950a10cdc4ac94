"""GPU benchmark (needs CUDA and Triton): Triton SparQ against torch scaled_dot_product_attention.

    python -m sparq_sim.kernels.bench_triton [--batches 1,16,64] [--seqs 4k,32k] [--r 32] [--k 128]
        [--heads 32] [--head-dim 128] [--dtype float16] [--repeats 50] [--json FILE]

For each (B, S): dense = torch's scaled_dot_product_attention (default backend, as the published
attn-nn), "triton-dense" = our one-launch dense kernel, "sparq-triton" = our three-launch SparQ
(K stored twice), and for reference "sparq-eager" = the published eager SparQ replica. Inputs
rotate between copies whose total exceeds the GPU's L2 (copies_for with a 128 MB cache),
CUDA-synchronised host timing per call as in the published benchmarks. Reports median and
p10-p90 per call and per query, ideal bytes / median in GB/s, and the speedup over SDPA.
Not run in the CPU-only session that wrote it: the numbers are for a later GPU session.
"""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    import torch

    from sparq_sim.kernels import bench_common, dense_attention, sparq_attention, timing
    from sparq_sim.kernels.profiling import Case, markdown_table, traffic
    from sparq_sim.units import parse_positive_int, parse_seq

    prog = "python -m sparq_sim.kernels.bench_triton"
    p = bench_common.parser(prog, __doc__, r=32, dtype="float16", warmup=10, repeats=50,
                            dtype_choices=("float16", "bfloat16", "float32"))
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--seqs", default="4k,32k")
    p.add_argument("--k", type=int, default=128)
    args = p.parse_args(argv)
    lists = bench_common.comma_lists(prog, {"batches": (args.batches, lambda b: parse_positive_int(b, "--batches")),
                                            "seqs": (args.seqs, parse_seq)})
    if lists is None:
        return 2
    batches, seqs = lists["batches"], lists["seqs"]
    if not torch.cuda.is_available():
        print("bench_triton needs a CUDA GPU (none found)", file=sys.stderr)
        return 2
    dt = getattr(torch, args.dtype)
    env = timing.environment()
    print(f"# {env.get('gpu')}; torch {env['torch_version']}, triton {env['triton_version']}; {env['date']}")
    print(f"# {args.heads} heads, d_h={args.head_dim}, {args.dtype}, r={args.r}, k={args.k}; "
          "times per call: median [p10-p90]; GB/s = ideal bytes / median")
    rows, results = [], []
    for B in batches:
        for S in seqs:
            case = Case(batch=B, heads=args.heads, kv_heads=args.heads, seq=S, head_dim=args.head_dim,
                        r=args.r, k=args.k, dtype=args.dtype, impl="triton")
            tr = traffic(case, 32)
            kv = B * args.heads * S * args.head_dim * torch.empty((), dtype=dt).element_size()
            copies = timing.copies_for(tr["sparq"]["ideal_bytes"], 3 * kv, llc=128 << 20, memory_budget=20e9)

            def make():
                q = torch.randn(B, args.heads, args.head_dim, device="cuda", dtype=dt)
                K = torch.randn(B, args.heads, S, args.head_dim, device="cuda", dtype=dt)
                V = torch.randn_like(K)
                return q, K, V, K.transpose(-1, -2).contiguous(), V.float().mean(2)

            fns = {
                "sdpa": lambda q, K, V, Kt, vm: dense_attention(q, K, V, impl="torch-sdpa"),
                "triton-dense": lambda q, K, V, Kt, vm: dense_attention(q, K, V, impl="triton"),
                "sparq-triton": lambda q, K, V, Kt, vm: sparq_attention(q, K, V, r=args.r, k=args.k, K_t=Kt,
                                                                        v_mean=vm, impl="triton"),
                "sparq-eager": lambda q, K, V, Kt, vm: sparq_attention(q, K, V, r=args.r, k=args.k, K_t=Kt,
                                                                       v_mean=vm, impl="torch-eager"),
            }
            inputs = [make() for _ in range(copies)]
            res = {}
            for name, fn in fns.items():
                it = iter(range(10 ** 9))
                t = timing.time_call(fn, lambda: inputs[next(it) % copies], args.warmup, args.repeats,
                                     copies=copies, sync=torch.cuda.synchronize)
                method = "dense" if name in ("sdpa", "triton-dense") else "sparq"
                res[name] = {"timing": t.to_dict(), "ideal_bytes": tr[method]["ideal_bytes"],
                             "GBps": tr[method]["ideal_bytes"] / t.median_s / 1e9}
            del inputs
            torch.cuda.empty_cache()
            base = res["sdpa"]["timing"]["median_s"]
            results.append({"batch": B, "seq": S, "copies": copies, "results": res})
            for name, e in res.items():
                t = e["timing"]
                rows.append([str(B), f"{S // 1024}k", name, f"{t['median_s'] * 1e6:.1f}",
                             f"[{t['p10_s'] * 1e6:.1f}-{t['p90_s'] * 1e6:.1f}]",
                             f"{t['median_s'] * 1e6 / B:.2f}", f"{e['GBps']:.0f}", f"{base / t['median_s']:.2f}x"])
    header = ["B", "S", "kernel", "median us", "p10-p90 us", "us/query", "GB/s", "vs sdpa"]
    print(markdown_table(rows, header))
    bench_common.write_json(args.json, {"environment": env, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
