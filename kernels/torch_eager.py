"""Replicas of the published PyTorch benchmark kernels (reference/README.md), for timing here.

* ``dense_eager`` = attn-torch: matmul q.K^T, divide by sqrt(d_h), softmax, matmul with V.
* ``dense_sdpa`` = attn-nn: ``scaled_dot_product_attention`` with its default backend.
* ``sparq_eager`` = sparq-attn-torch (K stored twice: step 1 gathers r rows of the
  component-major copy) or sparq-attn-torch-oneK (``K_t=None``: step 1 gathers r columns of
  position-major K). Each gather writes a new tensor that the matmul then reads, as published.

They compute in the inputs' dtype, as the published kernels do. Beyond the published code
(which had one KV head per query head and no local window) they follow the GQA rules of docs/method.md
and local window, so they agree with the reference on every input.
"""

from __future__ import annotations

import math

import torch


def _grouped(q, K):
    B, Hq, d = q.shape
    Hkv = K.shape[1]
    return q.reshape(B, Hkv, Hq // Hkv, d)


def dense_eager(q, K, V):
    qg = _grouped(q, K)
    scores = (qg @ K.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return (torch.softmax(scores, dim=-1) @ V).reshape(q.shape)


def dense_sdpa(q, K, V):
    # The G query heads of a group act as G query rows against their KV head: no copy of K, V.
    return torch.nn.functional.scaled_dot_product_attention(_grouped(q, K), K, V).reshape(q.shape)


def sparq_eager(q, K, V, *, r, k, local_window=0, reallocate=True, v_mean=None, K_t=None):
    B, Hq, d = q.shape
    _, Hkv, S, _ = K.shape
    G = Hq // Hkv
    Q = _grouped(q, K)                                               # (B, Hkv, G, d)
    # 1. Approximate scores from the r largest components of |q| (summed over the group).
    absQ = torch.abs(Q)
    i1 = torch.topk(absQ.sum(dim=2, keepdim=True), r, dim=-1).indices  # (B, Hkv, 1, r)
    Q_hat = torch.gather(Q, -1, i1.expand(B, Hkv, G, r))
    absQ_hat = torch.gather(absQ, -1, i1.expand(B, Hkv, G, r))
    if K_t is not None:   # sparq-attn-torch: r contiguous rows of the component-major copy
        K_hat = torch.gather(K_t, -2, i1.transpose(-1, -2).expand(B, Hkv, r, S))   # (B, Hkv, r, S)
        QK_hat = Q_hat @ K_hat
    else:                 # sparq-attn-torch-oneK: r scattered columns of position-major K
        K_hat = torch.gather(K, -1, i1.expand(B, Hkv, S, r))                      # (B, Hkv, S, r)
        QK_hat = Q_hat @ K_hat.transpose(-1, -2)
    scale = torch.sqrt(d * absQ_hat.sum(dim=-1, keepdim=True) / absQ.sum(dim=-1, keepdim=True))
    s_hat = torch.softmax(QK_hat / scale, dim=-1)                   # (B, Hkv, G, S)
    # 2. Top k positions of the group's summed s_hat (the local window always kept), exact attention.
    rank = s_hat.sum(dim=2, keepdim=True)                           # (B, Hkv, 1, S)
    if local_window:
        rank = rank.clone()
        rank[..., S - local_window:] = math.inf
    i2 = torch.topk(rank, k, dim=-1).indices                        # (B, Hkv, 1, k)
    alpha = torch.gather(s_hat, -1, i2.expand(B, Hkv, G, k)).sum(-1, keepdim=True)
    iKV = i2[:, :, 0, :, None].expand(B, Hkv, k, d)
    QK = Q @ torch.gather(K, -2, iKV).transpose(-1, -2)
    s = torch.softmax(QK / math.sqrt(d), dim=-1)
    y_ = s @ torch.gather(V, -2, iKV)                               # (B, Hkv, G, d)
    # 3. Interpolate with the value mean by the estimated covered mass.
    if reallocate:
        v_bar = V.mean(dim=2) if v_mean is None else v_mean.to(V.dtype)
        y_ = torch.lerp(v_bar[:, :, None, :].expand_as(y_), y_, alpha.to(y_.dtype))
    return y_.reshape(B, Hq, d)
