"""Readable PyTorch references of the sparse-attention methods beside SparQ, instrumented: every
read and write of cache data goes through a ``Reads`` counter, so a test can check that the
elements a kernel touches equal its method's traffic formula (sparq_sim.methods).

One decoding step, one layer. Shapes as kernels/reference.py: q (B, Hq, d_h); K, V (B, Hkv, S, d_h);
query heads g*G .. g*G + G - 1 share KV head g (G = Hq / Hkv). Under GQA every selection
(positions, pages, evictions) is shared by a KV head's group, chosen from the group's summed
scores, so the group reads the chosen rows once. Arithmetic is float64 when any input is float64,
float32 otherwise.

Counted: q read and output written (once per query head), and every element of K, V, K_t,
metadata, label cache, accumulators and projections that the kernel reads or writes. Not counted:
index tensors the kernel computes itself (top-k results), which live in registers or on-chip in a
fused kernel.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from sparq_sim.kernels.reference import compute_dtype


class Reads:
    """Elements read and written, per tensor name."""

    def __init__(self):
        self.read: Counter = Counter()
        self.written: Counter = Counter()

    def take(self, name: str, tensor):
        """Read `tensor` whole (a view or a gathered copy): count its elements."""
        self.read[name] += tensor.numel()
        return tensor

    def put(self, name: str, tensor):
        self.written[name] += tensor.numel()
        return tensor

    @property
    def total(self) -> int:
        return sum(self.read.values()) + sum(self.written.values())


def _ct(*tensors):
    return compute_dtype(*tensors)


def _group(q, Hkv, ct):
    B, Hq, d = q.shape
    return q.to(ct).reshape(B, Hkv, Hq // Hkv, d)


def _gather_rows(reads, name, X, idx, ct):
    """Rows idx (B, Hkv, n) of X (B, Hkv, S, d), read through the counter."""
    B, Hkv, n = idx.shape
    return reads.take(name, X.gather(2, idx[..., None].expand(B, Hkv, n, X.shape[-1]))).to(ct)


def _attend(qg, k_rows, v_rows, d):
    """Exact softmax attention of each query head over the given rows: (B, Hkv, G, d)."""
    s = torch.softmax(qg @ k_rows.transpose(-1, -2) / math.sqrt(d), dim=-1)
    return s @ v_rows


def _finish(reads, y, q):
    B, Hq, d = q.shape
    return reads.put("out", y.reshape(B, Hq, d)).to(q.dtype)


def dense_attention(q, K, V, reads=None):
    """Every key and value: 2*S*d_h per KV head."""
    reads = reads or Reads()
    ct = _ct(q, K, V)
    qg = _group(reads.take("q", q), K.shape[1], ct)
    y = _attend(qg, reads.take("K", K).to(ct), reads.take("V", V).to(ct), q.shape[-1])
    return _finish(reads, y, q)


def flexgen_attention(q, K, V, *, k, reads=None):
    """Exact scores over all of K; the k largest (group-summed) probabilities pick rows of V;
    the kept probabilities are renormalized."""
    reads = reads or Reads()
    ct = _ct(q, K, V)
    B, Hq, d = q.shape
    Hkv = K.shape[1]
    qg = _group(reads.take("q", q), Hkv, ct)
    p = torch.softmax(qg @ reads.take("K", K).to(ct).transpose(-1, -2) / math.sqrt(d), dim=-1)
    idx = torch.topk(p.sum(dim=2), k, dim=-1).indices                        # (B, Hkv, k)
    p_sel = p.gather(-1, idx[:, :, None, :].expand(B, Hkv, Hq // Hkv, k))
    y = (p_sel / p_sel.sum(-1, keepdim=True)) @ _gather_rows(reads, "V", V, idx, ct)
    return _finish(reads, y, q)


def h2o_attention(q, K_kept, V_kept, scores, reads=None):
    """One H2O step on the retained cache.

    K_kept, V_kept (B, Hkv, k, d): the retained rows, in position order. scores (B, Hkv, S): each
    position's accumulated attention (summed over the group's heads), -inf where evicted. The step
    reads the accumulators whole, adds this step's probabilities at the kept positions and writes
    them back whole (the next eviction is chosen from them). Returns (y, new scores).
    """
    reads = reads or Reads()
    ct = _ct(q, K_kept, V_kept)
    B, Hq, d = q.shape
    Hkv, k = K_kept.shape[1], K_kept.shape[2]
    qg = _group(reads.take("q", q), Hkv, ct)
    p = torch.softmax(qg @ reads.take("K", K_kept).to(ct).transpose(-1, -2) / math.sqrt(d), dim=-1)
    y = p @ reads.take("V", V_kept).to(ct)
    acc = reads.take("scores", scores).to(ct).clone()
    kept = torch.isfinite(acc)                                               # (B, Hkv, S), k per row
    positions = kept.nonzero(as_tuple=False)[:, 2].reshape(B, Hkv, k)
    acc.scatter_add_(-1, positions, p.sum(dim=2))
    return _finish(reads, y, q), reads.put("scores", acc)


def h2o_evict(scores, recent: int, heavy: int):
    """Positions kept after eviction: the `recent` last ones plus the `heavy` others with the largest
    accumulated scores. Returns a boolean mask (B, Hkv, S)."""
    S = scores.shape[-1]
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[..., S - recent:] = True
    older = scores[..., : S - recent].masked_fill(~torch.isfinite(scores[..., : S - recent]), -math.inf)
    top = torch.topk(older, heavy, dim=-1).indices
    mask.scatter_(-1, top, True)
    return mask


def streaming_attention(q, K, V, *, n_sink, window, reads=None):
    """Attention over the first n_sink and the last `window` positions only."""
    reads = reads or Reads()
    ct = _ct(q, K, V)
    S = K.shape[2]
    qg = _group(reads.take("q", q), K.shape[1], ct)
    keep = lambda X, name: torch.cat([reads.take(name, X[:, :, :n_sink]),             # noqa: E731
                                      reads.take(name, X[:, :, S - window:])], dim=2).to(ct)
    y = _attend(qg, keep(K, "K"), keep(V, "V"), q.shape[-1])
    return _finish(reads, y, q)


def quest_metadata(K, page: int):
    """Element-wise min and max of the keys of each page: (B, Hkv, ceil(S/P), d) each (built when
    positions are appended, not per step)."""
    B, Hkv, S, d = K.shape
    pages = math.ceil(S / page)
    padded = torch.nn.functional.pad(K, (0, 0, 0, pages * page - S), value=float("nan"))
    blocks = padded.reshape(B, Hkv, pages, page, d)
    return (torch.nan_to_num(blocks, nan=math.inf).amin(dim=3), torch.nan_to_num(blocks, nan=-math.inf).amax(dim=3))


def quest_attention(q, K, V, k_min, k_max, *, page, budget, reads=None):
    """Upper-bound each page's score from its min/max keys, read the budget/page best pages whole."""
    reads = reads or Reads()
    ct = _ct(q, K, V)
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    qg = _group(reads.take("q", q), Hkv, ct)
    lo, hi = reads.take("page_min", k_min).to(ct), reads.take("page_max", k_max).to(ct)   # (B, Hkv, P, d)
    q_ = qg[:, :, :, None, :]
    bound = torch.maximum(q_ * lo[:, :, None], q_ * hi[:, :, None]).sum(-1)              # (B, Hkv, G, pages)
    chosen = torch.topk(bound.sum(dim=2), budget // page, dim=-1).indices                 # (B, Hkv, n)
    rows = (chosen[..., None] * page + torch.arange(page)).reshape(B, Hkv, -1)
    rows = rows.clamp(max=S - 1)
    y = _attend(qg, _gather_rows(reads, "K", K, rows, ct), _gather_rows(reads, "V", V, rows, ct), d)
    return _finish(reads, y, q)


def double_sparsity_attention(q, K, V, labels, channels, *, k, reads=None):
    """Approximate scores from the label cache (B, Hkv, S, r): the keys' calibrated channels
    (Hkv, r), kept contiguous; the k best positions (group-summed) are read whole."""
    reads = reads or Reads()
    ct = _ct(q, K, V)
    B, Hq, d = q.shape
    Hkv, r = channels.shape
    qg = _group(reads.take("q", q), Hkv, ct)
    ch = reads.take("channels", channels)
    q_lab = qg.gather(-1, ch[None, :, None, :].expand(B, Hkv, Hq // Hkv, r))
    approx = torch.softmax(q_lab @ reads.take("labels", labels).to(ct).transpose(-1, -2) / math.sqrt(d), dim=-1)
    idx = torch.topk(approx.sum(dim=2), k, dim=-1).indices
    y = _attend(qg, _gather_rows(reads, "K", K, idx, ct), _gather_rows(reads, "V", V, idx, ct), d)
    return _finish(reads, y, q)


def double_sparsity_labels(K, channels):
    """The label cache: each key's calibrated channels, contiguous (built at append time)."""
    B, Hkv, S, d = K.shape
    return K.gather(-1, channels[None, :, None, :].expand(B, Hkv, S, channels.shape[1])).contiguous()


def loki_basis(K_calibration):
    """Per KV head, the PCA basis of calibration keys (Hkv, d, d), columns by decreasing variance."""
    X = K_calibration.to(torch.float64).flatten(0, 0)                       # (B, Hkv, S, d)
    X = X.transpose(0, 1).reshape(X.shape[1], -1, X.shape[-1])            # (Hkv, B*S, d)
    cov = X.transpose(-1, -2) @ X / X.shape[1]
    _, vecs = torch.linalg.eigh(cov)                                        # ascending eigenvalues
    return vecs.flip(-1).to(K_calibration.dtype)


def loki_attention(q, K_rot, V, basis, *, r, k, reads=None):
    """q projected into the basis (read once for the batch); approximate scores from the first r
    rotated dimensions of every key; the k best rows (group-summed) read whole. K_rot = K @ basis."""
    reads = reads or Reads()
    ct = _ct(q, K_rot, V)
    B, Hq, d = q.shape
    Hkv = K_rot.shape[1]
    qg = _group(reads.take("q", q), Hkv, ct)
    P = reads.take("projection", basis).to(ct)                             # (Hkv, d, d)
    q_rot = qg @ P[None]                                                   # (B, Hkv, G, d)
    prefix = reads.take("K", K_rot[..., :r]).to(ct)                        # (B, Hkv, S, r)
    approx = torch.softmax(q_rot[..., :r] @ prefix.transpose(-1, -2) / math.sqrt(d), dim=-1)
    idx = torch.topk(approx.sum(dim=2), k, dim=-1).indices
    y = _attend(q_rot, _gather_rows(reads, "K", K_rot, idx, ct), _gather_rows(reads, "V", V, idx, ct), d)
    return _finish(reads, y, q)


# --- SparQ, counted, with K_t in the KV dtype or quantized -------------------------------------

def quantize_kt(K_t, bits: int, block: int):
    """Symmetric per-block quantization of K_t (B, Hkv, d, S): one scale per `block` consecutive
    positions of a component. Returns (codes as int8 tensor, scales (B, Hkv, d, ceil(S/block)))."""
    B, Hkv, d, S = K_t.shape
    nb = math.ceil(S / block)
    x = torch.nn.functional.pad(K_t.to(torch.float32), (0, nb * block - S)).reshape(B, Hkv, d, nb, block)
    qmax = 2 ** (bits - 1) - 1
    scales = x.abs().amax(dim=-1).clamp(min=1e-12) / qmax
    codes = torch.clamp(torch.round(x / scales[..., None]), -qmax, qmax).to(torch.int8)
    return codes.reshape(B, Hkv, d, nb * block)[..., :S], scales.to(torch.float16)


def dequantize_kt(codes, scales, block: int):
    S = codes.shape[-1]
    per_pos = scales.to(torch.float32).repeat_interleave(block, dim=-1)[..., :S]
    return codes.to(torch.float32) * per_pos


def sparq_attention(q, K, V, K_t, v_mean, *, r, k, reads=None, kt_scales=None, kt_block=64):
    """SparQ (as kernels/reference.py, local window 0, with reallocation), counted. With
    `kt_scales` given, K_t holds int8 codes (of 8 or 4 bits) dequantized per block; step 1 then
    reads r*S codes and r*ceil(S/kt_block) scales per KV head. Returns (y, new v_mean)."""
    reads = reads or Reads()
    ct = _ct(q, K, V)
    B, Hq, d = q.shape
    _, Hkv, S, _ = K.shape
    G = Hq // Hkv
    qg = _group(reads.take("q", q), Hkv, ct)
    absq = qg.abs()
    i1 = torch.topk(absq.sum(dim=2), r, dim=-1).indices                                  # (B, Hkv, r)
    i1_g = i1[:, :, None, :].expand(B, Hkv, G, r)
    tau = torch.sqrt(d * absq.gather(-1, i1_g).sum(-1) / absq.sum(-1))
    rows = K_t.gather(2, i1[..., None].expand(B, Hkv, r, S))
    if kt_scales is None:
        k_rows = reads.take("K_t", rows).to(ct)
    else:
        sc = kt_scales.gather(2, i1[..., None].expand(B, Hkv, r, kt_scales.shape[-1]))
        k_rows = dequantize_kt(reads.take("K_t", rows), reads.take("K_t scales", sc), kt_block).to(ct)
    s_hat = torch.softmax((qg.gather(-1, i1_g) @ k_rows) / tau[..., None], dim=-1)        # (B, Hkv, G, S)
    i2 = torch.topk(s_hat.sum(dim=2), k, dim=-1).indices
    alpha = s_hat.gather(-1, i2[:, :, None, :].expand(B, Hkv, G, k)).sum(-1)[..., None]
    y = _attend(qg, _gather_rows(reads, "K", K, i2, ct), _gather_rows(reads, "V", V, i2, ct), d)
    v_bar = reads.take("v_mean", v_mean).to(ct)
    y = alpha * y + (1 - alpha) * v_bar[:, :, None, :]
    # The running mean after appending this step's value is the caller's (cache append) business;
    # the kernel writes the mean back once per KV head, as the formula counts.
    new_mean = reads.put("v_mean", v_bar.clone())
    return _finish(reads, y, q), new_mean


def sparq_selection_positions(q, K_t, r, k, kt_scales=None, kt_block=64):
    """Step 2's chosen positions (B, Hkv, k), sorted, from full-precision or quantized K_t."""
    ct = torch.float64
    B, Hq, d = q.shape
    Hkv, S = K_t.shape[1], K_t.shape[-1]
    G = Hq // Hkv
    qg = q.to(ct).reshape(B, Hkv, G, d)
    absq = qg.abs()
    i1 = torch.topk(absq.sum(dim=2), r, dim=-1).indices
    i1_g = i1[:, :, None, :].expand(B, Hkv, G, r)
    tau = torch.sqrt(d * absq.gather(-1, i1_g).sum(-1) / absq.sum(-1))
    kt = K_t.to(ct) if kt_scales is None else dequantize_kt(K_t, kt_scales, kt_block).to(ct)
    k_rows = kt.gather(2, i1[..., None].expand(B, Hkv, r, S))
    s_hat = torch.softmax((qg.gather(-1, i1_g) @ k_rows) / tau[..., None], dim=-1)
    return torch.sort(torch.topk(s_hat.sum(dim=2), k, dim=-1).indices, dim=-1).values
