"""Triton kernel: SparQ step 2's selection, exact top-k, local window and alpha, in one program
per (batch, KV head).

Grid (B * Hkv,). It folds the per-block statistics of step 1 into each head's max M and
normaliser Z, then finds the exact (k - l)-th largest ranking value among positions
[0, S - l) by radix selection on order-preserving 32-bit keys (8 passes of 4-bit digits, each
a 16-bin count over the scores), and a last pass writes the chosen positions in ascending order
(ties by position), appends the local window, and sums each head's s_hat over the chosen
positions: alpha. Ranking value: the raw score when G = 1 (softmax is monotone), else the
group's summed s_hat = sum_g exp(x_g - M_g) / Z_g.

    TRITON_INTERPRET=1 python -m sparq_sim.kernels.triton_select   # check() on the CPU
    python -m sparq_sim.kernels.triton_select --bench              # check() and bench() on a GPU
"""

import triton
import triton.language as tl

from sparq_sim.kernels.triton_common import pow2

BLOCK = 256     # positions per chunk of every pass


@triton.jit
def fold_block_stats(m_ptr, z_ptr, row0, n_blocks, G: tl.constexpr, G_PAD: tl.constexpr, NB_PAD: tl.constexpr):
    """Each head's softmax max M and 1 / Z over all of step 1's blocks (padded heads: 0, 0)."""
    offs_g = tl.arange(0, G_PAD)
    g_ok = offs_g < G
    offs_nb = tl.arange(0, NB_PAD)
    st_ok = g_ok[:, None] & (offs_nb[None, :] < n_blocks)
    stat = (row0 + offs_g)[:, None] * n_blocks + offs_nb[None, :]
    mb = tl.load(m_ptr + stat, mask=st_ok, other=float("-inf"))
    zb = tl.load(z_ptr + stat, mask=st_ok, other=0.0)
    M = tl.where(g_ok, tl.max(mb, axis=1), 0.0)
    Z = tl.sum(tl.where(st_ok, zb * tl.exp(mb - M[:, None]), 0.0), axis=1)
    invZ = tl.where(g_ok, 1.0 / tl.where(g_ok, Z, 1.0), 0.0)
    return M, invZ


@triton.jit
def rank_keys(x_ptr, row0, offs_g, g_ok, M, invZ, offs, valid, S, G: tl.constexpr):
    """Order-preserving uint32 keys of the ranking values at positions offs (invalid -> 0)."""
    if G == 1:
        v = tl.load(x_ptr + row0 * S + offs, mask=valid, other=0.0)
    else:
        xt = tl.load(x_ptr + (row0 + offs_g)[:, None] * S + offs[None, :],
                     mask=g_ok[:, None] & valid[None, :], other=float("-inf"))
        v = tl.sum(tl.exp(xt - M[:, None]) * invZ[:, None], axis=0)
    bits = v.to(tl.uint32, bitcast=True)
    key = tl.where((bits >> 31) == 1, ~bits, bits | 0x80000000)
    return tl.where(valid, key, 0)


@triton.jit
def kth_largest_key(x_ptr, row0, M, invZ, n_pos, kk, S,
                    G: tl.constexpr, G_PAD: tl.constexpr, BLOCK: tl.constexpr):
    """The key of the kk-th largest ranking value of [0, n_pos), and how many keys equal to it
    are to be taken (radix selection, 4 bits a pass; kk = 0 gives all ones and 0)."""
    offs_g = tl.arange(0, G_PAD)
    g_ok = offs_g < G
    digits = tl.arange(0, 16)
    need = kk
    prefix = tl.full((), 0, tl.uint32)
    for p in tl.static_range(8):
        shift: tl.constexpr = 28 - 4 * p
        counts = tl.zeros((16,), tl.int32)
        for s0 in range(0, n_pos, BLOCK):
            offs = s0 + tl.arange(0, BLOCK)
            valid = offs < n_pos
            key = rank_keys(x_ptr, row0, offs_g, g_ok, M, invZ, offs, valid, S, G)
            if shift == 28:
                match = valid
            else:
                match = valid & ((key >> (shift + 4)) == (prefix >> (shift + 4)))
            dig = ((key >> shift) & 15).to(tl.int32)
            hit = (dig[:, None] == digits[None, :]) & match[:, None]
            counts += tl.sum(hit.to(tl.int32), axis=0)
        ge = tl.sum(tl.where(digits[None, :] >= digits[:, None], counts[None, :], 0), axis=1)  # (16,)
        best = tl.max(tl.where(ge >= need, digits, -1))
        best = tl.maximum(best, 0)
        ge_best = tl.sum(tl.where(digits == best, ge, 0))
        cnt_best = tl.sum(tl.where(digits == best, counts, 0))
        need = need - (ge_best - cnt_best)
        prefix = prefix | (best.to(tl.uint32) << shift)
    return prefix, need


@triton.jit
def sparq_select_kernel(x_ptr, m_ptr, z_ptr, idx_ptr, alpha_ptr,
                        S, k, l, n_blocks,
                        G: tl.constexpr, G_PAD: tl.constexpr, NB_PAD: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    row0 = pid * G                                      # first query head of the group (pid = b * Hkv + h)
    offs_g = tl.arange(0, G_PAD)
    g_ok = offs_g < G
    M, invZ = fold_block_stats(m_ptr, z_ptr, row0, n_blocks, G, G_PAD, NB_PAD)
    n_pos = S - l
    kk = k - l
    prefix, need = kth_largest_key(x_ptr, row0, M, invZ, n_pos, kk, S, G, G_PAD, BLOCK)
    # take every key above prefix and the first `need` equal to it, then the window; sum s_hat there
    taken = 0
    ties = 0
    alpha_num = tl.zeros((G_PAD,), tl.float32)
    for s0 in range(0, S, BLOCK):
        offs = s0 + tl.arange(0, BLOCK)
        valid = offs < n_pos
        key = rank_keys(x_ptr, row0, offs_g, g_ok, M, invZ, offs, valid, S, G)
        eq = valid & (key == prefix)
        eq_rank = ties + tl.cumsum(eq.to(tl.int32), axis=0) - 1
        sel = valid & ((key > prefix) | (eq & (eq_rank < need)))
        ties += tl.sum(eq.to(tl.int32), axis=0)
        window = (offs >= n_pos) & (offs < S)
        slot = tl.where(window, kk + offs - n_pos, taken + tl.cumsum(sel.to(tl.int32), axis=0) - 1)
        chosen = sel | window
        taken += tl.sum(sel.to(tl.int32), axis=0)
        tl.store(idx_ptr + pid * k + slot, offs, mask=chosen)
        xt = tl.load(x_ptr + (row0 + offs_g)[:, None] * S + offs[None, :],
                     mask=g_ok[:, None] & chosen[None, :], other=float("-inf"))
        alpha_num += tl.sum(tl.where(chosen[None, :], tl.exp(xt - M[:, None]), 0.0), axis=1)
    tl.store(alpha_ptr + row0 + offs_g, tl.minimum(alpha_num * invZ, 1.0), mask=g_ok)


def launch(x, m, z, Hkv: int, k: int, local_window: int = 0):
    """(idx (B, Hkv, k) int32, ascending positions then the window; alpha (B, Hq) fp32) from step
    1's x (B, Hq, S) and block statistics m, z (B, Hq, n_blocks)."""
    import torch
    B, Hq, S = x.shape
    n_blocks = m.shape[-1]
    G = Hq // Hkv
    idx = torch.empty((B, Hkv, k), dtype=torch.int32, device=x.device)
    alpha = torch.empty((B, Hq), dtype=torch.float32, device=x.device)
    sparq_select_kernel[(B * Hkv,)](x, m, z, idx, alpha, S, k, local_window, n_blocks,
                                    G=G, G_PAD=pow2(G), NB_PAD=pow2(n_blocks), BLOCK=BLOCK)
    return idx, alpha


def check(B=1, Hq=4, Hkv=2, S=300, d=32, r=6, k=37, local_window=4) -> float:
    """The chosen positions equal the float64 reference's, and alpha's max abs error (raises above 2e-5)."""
    from sparq_sim.kernels import reference, triton_step1
    from sparq_sim.kernels.triton_common import example_inputs, f64, max_error
    q, K, V, Kt = example_inputs(B, Hq, Hkv, S, d, seed=4)
    idx, alpha = launch(*triton_step1.launch(q.float(), K, r, Kt), Hkv, k, local_window)
    _, _, _, i2, alpha_ref = reference.sparq_selection(*f64(q, K), r, k, local_window, *f64(Kt))
    want = reference.torch.cat([i2[..., :k - local_window].sort(dim=-1).values, i2[..., k - local_window:]], -1)
    if not reference.torch.equal(idx.cpu().long(), want):
        raise AssertionError("triton select: positions differ from the reference's")
    return max_error(alpha, alpha_ref.reshape(B, Hq), "triton select (alpha)")


def bench(B=16, H=32, S=32768, d=128, r=32, k=128, dtype="float16") -> dict:
    """Median time of one launch on the GPU, from step 1's outputs."""
    import torch

    from sparq_sim.kernels import triton_step1
    from sparq_sim.kernels.triton_common import example_inputs, time_gpu
    q, K, _, Kt = example_inputs(B, H, H, S, d, dtype=getattr(torch, dtype))
    x, m, z = triton_step1.launch(q.float(), K, r, Kt)
    t = time_gpu(launch, lambda: (x, m, z, H, k))
    return {"median_s": t.median_s}


if __name__ == "__main__":
    import sys
    print(f"check: max abs error {check():.2e}")
    if "--bench" in sys.argv[1:]:
        print(f"bench: {bench()}")
