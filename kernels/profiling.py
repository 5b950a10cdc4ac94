"""Measure dense and SparQ kernels on the local device for one workload shape.

Used by ``sparq-sim profile`` and ``python -m sparq_sim.kernels.bench_cpu``. Inputs are rotated
between enough copies that the calls read DRAM, not the last-level cache (timing.copies_for);
each copy has its own q. Bytes come from the project's traffic model (sparq_sim.traffic: ideal
element counts of docs/method.md; "moved" bytes of the ideal implementation model rounded to the
device's access granularity), so achieved GB/s and the fraction of the measured streaming
bandwidth are comparable with the predictions.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sparq_sim.errors import UserError
from sparq_sim.kernels import timing
from sparq_sim.machine import huge_page_bytes, huge_page_mapping

TORCH_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Case:
    batch: int
    heads: int
    kv_heads: int
    seq: int
    head_dim: int
    r: int
    k: int
    local_window: int = 0
    dtype: str = "float32"
    impl: str = "cpu"
    store_k: str = "twice"
    reallocate: bool = True
    huge_pages: bool = False   # CPU: K, V and K_t in memory advised for transparent huge pages


def workload_for(case: Case):
    """The Workload of one attention layer of this shape (for the traffic model)."""
    from sparq_sim.models import custom_model, get_preset
    from sparq_sim.workload import Workload
    model = custom_model(get_preset("llama-2-7b"), layers=1, heads=case.heads, kv_heads=case.kv_heads,
                         head_dim=case.head_dim)
    return Workload(model=model, seq=case.seq, batch=case.batch, r=case.r, k=case.k,
                    local_window=case.local_window, kv_dtype=case.dtype, store_k=case.store_k,
                    reallocate=case.reallocate)


def traffic(case: Case, granularity: int) -> dict:
    """Ideal bytes (docs/method.md) and bytes moved at the access granularity, per method."""
    from sparq_sim.traffic import ideal_attention_bytes
    w = workload_for(case)
    out = {}
    for method in ("dense", "sparq"):
        entry = {"ideal_bytes": float(ideal_attention_bytes(w, method))}
        try:
            from sparq_sim.implementations import get_implementation
            phases = get_implementation("ideal").attention_phases(w, method)
            entry["moved_bytes"] = float(sum(ph.moved_bytes(granularity) for ph in phases))
        except Exception:  # noqa: BLE001 - the model is optional here; ideal bytes still stand
            entry["moved_bytes"] = None
        out[method] = entry
    return out


def huge_page_empty(shape, dtype):
    """An uninitialised CPU tensor in anonymous memory advised for transparent huge pages.

    Why offer it: SparQ's step 2 gathers rows scattered over the whole cache, and with 4 KiB pages
    nearly every row misses the TLB (a two-level walk in a VM). On this project's machine two A/Bs
    at S = 32k gave SparQ 12% and 3% faster, dense 6% and 0.5%: inside its drift, so it is an
    option, not the default (kernels/BENCHMARKS.md).
    """
    import math

    import torch
    count = math.prod(shape)
    buf = huge_page_mapping(count * torch.empty((), dtype=dtype).element_size())
    return torch.frombuffer(buf, dtype=dtype, count=count).view(shape)


def make_inputs(case: Case, device: str, seed: int):
    """Fresh random (q, K, V, K_t or None, v_mean) of the case's shape, dtype and K storage
    (K, V and K_t in huge pages when the case asks for them on the CPU)."""
    import torch
    dt = getattr(torch, case.dtype)
    g = torch.Generator(device="cpu").manual_seed(seed)
    shape = (case.batch, case.kv_heads, case.seq, case.head_dim)
    huge = case.huge_pages and device == "cpu"

    def kv(values):
        if not huge:
            return values.to(device, dt).contiguous()
        out = huge_page_empty(tuple(values.shape), dt)
        out.copy_(values)
        return out
    q = torch.randn(case.batch, case.heads, case.head_dim, generator=g).to(device, dt)
    K = kv(torch.randn(shape, generator=g))
    V = kv(torch.randn(shape, generator=g))
    K_t = kv(K.transpose(-1, -2)) if case.store_k == "twice" else None
    v_mean = V.float().mean(dim=2)
    return q, K, V, K_t, v_mean


def profile_case(case: Case, warmup: int = 3, repeats: int = 15, copies: int | None = None,
                 stream_Bps: float | None = None, methods=("dense", "sparq"), rounds: int = 1,
                 stream_now=None) -> dict:
    """Time the methods for `case`; returns a JSON-ready dict (seconds, bytes, GB/s, fractions).

    ``rounds`` > 1 times the methods one after the other in each round, on the same inputs, and
    reports per method the median of the round medians and the speedup as the median of the
    per-round ratios, so that a drift of the machine between rounds cancels in the ratio.
    ``stream_now()`` (bytes/s), when given, is measured before and after each round and each
    round's fraction of streaming bandwidth is taken against their mean.
    """
    import torch
    from sparq_sim.kernels import dense_attention, sparq_attention
    from sparq_sim.kernels._checks import DENSE_IMPLS, SPARQ_IMPLS

    if rounds < 1:
        raise UserError(f"rounds must be at least 1, got {rounds}")
    if case.dtype not in TORCH_DTYPES:
        raise UserError(f"profile runs kernels in {', '.join(TORCH_DTYPES)}, not {case.dtype}")
    device = "cuda" if case.impl == "triton" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("impl 'triton' needs a CUDA GPU for timing (none found)")
    sync = torch.cuda.synchronize if device == "cuda" else None
    if device == "cpu":
        timing.steady_allocator()
    gran = 32 if device == "cuda" else 64
    tr = traffic(case, gran)
    elem = torch.empty((), dtype=getattr(torch, case.dtype)).element_size()
    kv = case.batch * case.kv_heads * case.seq * case.head_dim * elem
    per_copy = kv * (3 if case.store_k == "twice" else 2)
    touched = min(tr["sparq"]["ideal_bytes"], tr["dense"]["ideal_bytes"]) if "sparq" in methods else tr["dense"]["ideal_bytes"]
    if device == "cpu":
        llc = timing.llc_bytes()
    else:
        llc = 128 << 20   # GPU L2s are at most ~100 MB today
    n_copies = copies or timing.copies_for(touched, per_copy, llc)
    seeds = iter(range(1000))

    def make():
        return make_inputs(case, device, next(seeds))

    result = {"case": case.__dict__.copy(), "device": device, "copies": n_copies,
              "bytes_per_copy": per_copy, "llc_bytes": llc, "granularity_bytes": gran, "methods": {}}
    calls = {}
    if "dense" in methods:
        dense_impl = case.impl if case.impl in DENSE_IMPLS else "torch-eager"
        calls["dense"] = (dense_impl, lambda q, K, V, K_t, vm: dense_attention(q, K, V, impl=dense_impl))
    if "sparq" in methods:
        calls["sparq"] = (case.impl, lambda q, K, V, K_t, vm: sparq_attention(
            q, K, V, r=case.r, k=case.k, local_window=case.local_window, reallocate=case.reallocate,
            v_mean=vm, K_t=K_t, impl=case.impl))
    huge_before = huge_page_bytes() if device == "cpu" else 0
    from sparq_sim.progress import progress
    bar = progress(total=n_copies + rounds * len(calls), desc="profile", unit="step")
    inputs = []   # shared by both methods
    for _ in range(n_copies):
        inputs.append(make())
        bar.update(1)
    if device == "cpu":   # the inputs' memory in huge pages: shows whether --huge-pages took effect
        result["inputs_huge_page_bytes"] = max(0, huge_page_bytes() - huge_before)
    per_round = []
    for _ in range(rounds):
        before = stream_now() if stream_now else None
        timed = {}
        for method, (impl, fn) in calls.items():
            it = iter(range(10 ** 9))
            timed[method] = timing.time_call(fn, lambda: inputs[next(it) % n_copies], warmup, repeats,
                                             copies=n_copies, sync=sync)
            bar.update(1)
        after = stream_now() if stream_now else None
        per_round.append((timed, None if before is None else (before + after) / 2))
    bar.close()
    for method, (impl, _) in calls.items():
        medians = [t[method].median_s for t, _ in per_round]
        res = per_round[0][0][method] if rounds == 1 else timing.summarize(medians, n_copies)
        entry = {"impl": impl, "timing": res.to_dict(), **tr[method]}
        if rounds > 1:
            entry["rounds"] = [t[method].to_dict() for t, _ in per_round]
        entry["GBps_ideal"] = tr[method]["ideal_bytes"] / res.median_s / 1e9
        if tr[method]["moved_bytes"]:
            entry["GBps_moved"] = tr[method]["moved_bytes"] / res.median_s / 1e9
        if stream_now:
            fractions = [tr[method]["ideal_bytes"] / t[method].median_s / bw for t, bw in per_round]
            entry["stream_Bps_per_round"] = [bw for _, bw in per_round]
            entry["fraction_of_stream_per_round"] = fractions
            entry["fraction_of_stream"] = statistics.median(fractions)
        elif stream_Bps:
            entry["fraction_of_stream"] = tr[method]["ideal_bytes"] / res.median_s / stream_Bps
        result["methods"][method] = entry
    if "dense" in calls and "sparq" in calls:
        d, s = result["methods"]["dense"], result["methods"]["sparq"]
        ratios = [t["dense"].median_s / t["sparq"].median_s for t, _ in per_round]
        result["speedup"] = statistics.median(ratios)
        if rounds > 1:
            result["speedup_per_round"] = ratios
        result["ideal_speedup"] = d["ideal_bytes"] / s["ideal_bytes"]
    del inputs
    return result


def markdown_table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table with padded columns, as the benchmark scripts print it."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)
