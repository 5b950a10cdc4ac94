"""Pieces shared by the Triton attention kernels that walk rows of one (batch, KV head) group
(program pid = b * Hkv + h, its query heads pid * G .. pid * G + G - 1): loading the group's
query rows, the online-softmax state and one step of it over a block of K and V rows, loading
those rows, storing the group's output; and, for the kernels' own check() and bench(), their
example inputs, the float64 comparison and the timing on a GPU.

Block shapes: G_PAD and D_PAD are G and d_h rounded up to powers of two (tl.arange needs them);
the padded rows and columns are masked on every load and store.
"""

import triton
import triton.language as tl


@triton.jit
def load_group_queries(q_ptr, row0, scale,
                       G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr):
    """The G query rows from row `row0` (a group's first query head), times `scale`: (G_PAD, D_PAD) fp32."""
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    mask = (offs_g < G)[:, None] & (offs_d < D)[None, :]
    q = tl.load(q_ptr + (row0 + offs_g)[:, None] * D + offs_d[None, :], mask=mask, other=0.0)
    return q.to(tl.float32) * scale


@triton.jit
def empty_softmax_state(G_PAD: tl.constexpr, D_PAD: tl.constexpr):
    """Online-softmax state before any row: running max -inf, sum 0, unnormalised output 0."""
    m = tl.full((G_PAD,), float("-inf"), tl.float32)
    lsum = tl.zeros((G_PAD,), tl.float32)
    acc = tl.zeros((G_PAD, D_PAD), tl.float32)
    return m, lsum, acc


@triton.jit
def load_kv_rows(k_ptr, v_ptr, kv_base, pos, row_ok, D: tl.constexpr, D_PAD: tl.constexpr):
    """The whole K and V rows at positions `pos` of the (S, D) slab at `kv_base` (rows not `row_ok`
    read as 0): two (BLOCK, D_PAD) fp32 tiles."""
    offs_d = tl.arange(0, D_PAD)
    rows = kv_base + pos[:, None].to(tl.int64) * D + offs_d[None, :]
    mask = row_ok[:, None] & (offs_d < D)[None, :]
    k_rows = tl.load(k_ptr + rows, mask=mask, other=0.0).to(tl.float32)
    v_rows = tl.load(v_ptr + rows, mask=mask, other=0.0).to(tl.float32)
    return k_rows, v_rows


@triton.jit
def attend_block(qg, k_rows, v_rows, row_ok, m, lsum, acc):
    """Online softmax over one block: scores of the G queries against the block's K rows (rows not
    `row_ok` masked out), running max `m`, sum `lsum` and unnormalised output `acc` updated."""
    sc = tl.sum(qg[:, None, :] * k_rows[None, :, :], axis=2)                       # (G_PAD, BLOCK)
    sc = tl.where(row_ok[None, :], sc, float("-inf"))
    m_new = tl.maximum(m, tl.max(sc, axis=1))
    corr = tl.exp(m - m_new)
    p = tl.exp(sc - m_new[:, None])
    lsum = lsum * corr + tl.sum(p, axis=1)
    acc = acc * corr[:, None] + tl.sum(p[:, :, None] * v_rows[None, :, :], axis=1)
    return m_new, lsum, acc


@triton.jit
def attend_rows(qg, k_ptr, v_ptr, kv_base, pos, row_ok, m, lsum, acc, D: tl.constexpr, D_PAD: tl.constexpr):
    """One online-softmax step over the K and V rows at positions `pos` (load_kv_rows, attend_block)."""
    k_rows, v_rows = load_kv_rows(k_ptr, v_ptr, kv_base, pos, row_ok, D, D_PAD)
    return attend_block(qg, k_rows, v_rows, row_ok, m, lsum, acc)


@triton.jit
def store_group_rows(out_ptr, row0, y, G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr,
                     D_PAD: tl.constexpr):
    """Store the (G_PAD, D_PAD) tile `y` as the G output rows from row `row0` (padding masked)."""
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    mask = (offs_g < G)[:, None] & (offs_d < D)[None, :]
    tl.store(out_ptr + (row0 + offs_g)[:, None] * D + offs_d[None, :], y, mask=mask)


def pow2(n: int) -> int:
    """n rounded up to a power of two (a block dimension)."""
    return 1 << max(0, (int(n) - 1).bit_length())


# ---------------------------------------------------------------- for the kernels' check() and bench()
def device() -> str:
    """Where the checks run: the GPU, else the CPU (then TRITON_INTERPRET=1 must have been set
    before triton was imported)."""
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def example_inputs(B, Hq, Hkv, S, d, seed=0, dtype=None, on=None):
    """Random q (B, Hq, d), K, V (B, Hkv, S, d) and K_t (B, Hkv, d, S), on `on` (default device())."""
    import torch
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, d, generator=g)
    K = torch.randn(B, Hkv, S, d, generator=g)
    V = torch.randn(B, Hkv, S, d, generator=g)
    Kt = K.transpose(-1, -2).contiguous()
    return [t.to(on or device(), dtype or torch.float32) for t in (q, K, V, Kt)]


def f64(*tensors):
    """float64 CPU copies (None stays None), for the reference."""
    return [None if t is None else t.detach().double().cpu() for t in tensors]


def max_error(got, want, what: str, atol: float = 2e-5) -> float:
    """max |got - want| (want float64); AssertionError naming `what` when it exceeds atol."""
    err = float((got.detach().double().cpu() - want).abs().max()) if want.numel() else 0.0
    if not err <= atol:
        raise AssertionError(f"{what}: max abs error {err:.3g} > {atol:g}")
    return err


def time_gpu(fn, make_inputs, warmup: int = 10, repeats: int = 50):
    """Median and spread of fn(*make_inputs()) on the GPU (kernels.timing.time_call, CUDA-synchronised)."""
    import torch

    from sparq_sim.errors import UserError
    from sparq_sim.kernels import timing
    if not torch.cuda.is_available():
        raise UserError("bench() needs a CUDA GPU (the Triton interpreter checks correctness only)")
    return timing.time_call(fn, make_inputs, warmup, repeats, sync=torch.cuda.synchronize)
