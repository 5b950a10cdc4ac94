"""Readable PyTorch reference of dense attention and SparQ Attention (the algorithm of docs/method.md).

Runs on any device. Arithmetic is float64 when any input is float64, float32 otherwise
(16-bit inputs are upcast, so softmaxes cannot overflow); the result has q's dtype.
This is the ground truth every other impl is tested against, so it favours clarity over speed.

Shapes: q (B, Hq, d_h); K, V (B, Hkv, S, d_h); K_t (B, Hkv, d_h, S); v_mean (B, Hkv, d_h).
Query heads h = g*G .. g*G + G - 1 share KV head g (G = Hq / Hkv).
"""

from __future__ import annotations

import math

import torch


def compute_dtype(*tensors) -> torch.dtype:
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def dense_attention(q, K, V):
    """softmax(q . K^T / sqrt(d_h)) . V, per query head, GQA by head groups."""
    ct = compute_dtype(q, K, V)
    B, Hq, d = q.shape
    Hkv = K.shape[1]
    qg = q.to(ct).reshape(B, Hkv, Hq // Hkv, d)                    # (B, Hkv, G, d)
    scores = qg @ K.to(ct).transpose(-1, -2) / math.sqrt(d)        # (B, Hkv, G, S)
    y = torch.softmax(scores, dim=-1) @ V.to(ct)                   # (B, Hkv, G, d)
    return y.reshape(B, Hq, d).to(q.dtype)


def sparq_selection(q, K, r, k, local_window=0, K_t=None):
    """Steps 1 and 2's selection. Returns (i1, tau, s_hat, i2, alpha) in the compute dtype.

    i1 (B, Hkv, r): components shared by each group (top r of sum over the group of |q|).
    tau (B, Hkv, G): per-head temperature sqrt(d_h * sum|q[i1]| / sum|q|).
    s_hat (B, Hkv, G, S): approximate softmax scores per query head.
    i2 (B, Hkv, k): positions shared by each group: the last `local_window` positions plus the
    k - local_window others with the largest sum over the group of s_hat.
    alpha (B, Hkv, G): per-head approximate mass sum(s_hat[i2]).
    """
    ct = compute_dtype(q, K, K_t)
    B, Hq, d = q.shape
    _, Hkv, S, _ = K.shape
    G = Hq // Hkv
    qg = q.to(ct).reshape(B, Hkv, G, d)
    absq = qg.abs()

    # Step 1: r largest components of |q| summed over the group.
    i1 = torch.topk(absq.sum(dim=2), r, dim=-1).indices                       # (B, Hkv, r)
    i1_g = i1[:, :, None, :].expand(B, Hkv, G, r)
    tau = torch.sqrt(d * absq.gather(-1, i1_g).sum(-1) / absq.sum(-1))        # (B, Hkv, G)
    k_cm = (K_t if K_t is not None else K.transpose(-1, -2)).to(ct)           # (B, Hkv, d, S)
    k_rows = k_cm.gather(2, i1[..., None].expand(B, Hkv, r, S))               # (B, Hkv, r, S)
    q_hat = qg.gather(-1, i1_g)                                               # (B, Hkv, G, r)
    s_hat = torch.softmax((q_hat @ k_rows) / tau[..., None], dim=-1)          # (B, Hkv, G, S)

    # Step 2: local window plus top (k - l) of the group's summed s_hat among the other positions.
    l = local_window
    rank = s_hat.sum(dim=2)                                                   # (B, Hkv, S)
    top = torch.topk(rank[..., : S - l], k - l, dim=-1).indices
    window = torch.arange(S - l, S, device=K.device).expand(B, Hkv, l)
    i2 = torch.cat([top, window], dim=-1)                                     # (B, Hkv, k)
    alpha = s_hat.gather(-1, i2[:, :, None, :].expand(B, Hkv, G, k)).sum(-1)  # (B, Hkv, G)
    return i1, tau, s_hat, i2, alpha


def sparq_attention(q, K, V, *, r, k, local_window=0, reallocate=True, v_mean=None, K_t=None):
    """SparQ Attention for one decoding step, exactly as docs/method.md's algorithm with GQA."""
    ct = compute_dtype(q, K, V, K_t, v_mean)
    B, Hq, d = q.shape
    _, Hkv, S, _ = K.shape
    G = Hq // Hkv
    _, _, _, i2, alpha = sparq_selection(q, K, r, k, local_window, K_t)
    qg = q.to(ct).reshape(B, Hkv, G, d)
    rows = i2[..., None].expand(B, Hkv, k, d)
    k_sel = K.to(ct).gather(2, rows)                                          # (B, Hkv, k, d)
    v_sel = V.to(ct).gather(2, rows)
    s = torch.softmax(qg @ k_sel.transpose(-1, -2) / math.sqrt(d), dim=-1)    # (B, Hkv, G, k)
    y = s @ v_sel                                                             # (B, Hkv, G, d)
    if reallocate:
        v_bar = (V.to(ct).mean(dim=2) if v_mean is None else v_mean.to(ct))   # (B, Hkv, d)
        a = alpha[..., None]
        y = a * y + (1 - a) * v_bar[:, :, None, :]
    return y.reshape(B, Hq, d).to(q.dtype)
