"""Argument checks shared by every implementation: shapes, SparQ settings, impl names.

Every public entry point calls :func:`check_dense` or :func:`check_sparq` first, so all impls
reject the same bad input with the same ValueError (``sparq_sim.errors.UserError``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sparq_sim.errors import UserError
from sparq_sim.kernels.registry import DENSE_IMPLS, DENSE_KERNELS, SPARQ_IMPLS, SPARQ_KERNELS  # noqa: F401


@dataclass(frozen=True)
class Dims:
    batch: int
    heads: int       # query heads Hq
    kv_heads: int    # KV heads Hkv
    seq: int         # S
    head_dim: int    # d_h

    @property
    def group(self) -> int:
        return self.heads // self.kv_heads


def _shape(t) -> tuple:
    shape = getattr(t, "shape", None)
    if shape is None:
        raise UserError(f"expected a tensor, got {type(t).__name__}")
    return tuple(shape)


def check_impl(impl, kernels) -> str:
    """`impl` if `kernels` (a kernel registry) has it, else UserError listing the names."""
    return kernels.key(impl)


def check_qkv(q, K, V) -> Dims:
    """q (B, Hq, d_h); K, V (B, Hkv, S, d_h); Hq a multiple of Hkv."""
    qs, ks, vs = _shape(q), _shape(K), _shape(V)
    if len(qs) != 3:
        raise UserError(f"q must have shape (B, Hq, d_h), got {qs}")
    if len(ks) != 4:
        raise UserError(f"K must have shape (B, Hkv, S, d_h), got {ks}")
    if ks != vs:
        raise UserError(f"K and V must have the same shape, got K {ks} and V {vs}")
    b, hq, d = qs
    bk, hkv, s, dk = ks
    if b != bk:
        raise UserError(f"batch of q ({b}) and K ({bk}) differ")
    if d != dk:
        raise UserError(f"head dimension of q ({d}) and K ({dk}) differ")
    if min(b, hq, hkv, s, d) < 1:
        raise UserError(f"empty dimension in q {qs} or K {ks}")
    if hq % hkv:
        raise UserError(f"query heads ({hq}) must be a multiple of KV heads ({hkv})")
    for name, t in (("q", q), ("K", K), ("V", V)):
        if not t.dtype.is_floating_point:
            raise UserError(f"{name} must be a floating-point tensor, got {t.dtype}")
    return Dims(b, hq, hkv, s, d)


def check_dense(q, K, V, impl) -> Dims:
    check_impl(impl, DENSE_KERNELS)
    return check_qkv(q, K, V)


def check_sparq(q, K, V, r, k, local_window, v_mean, K_t, impl) -> Dims:
    check_impl(impl, SPARQ_KERNELS)
    dims = check_qkv(q, K, V)
    for name, value in (("r", r), ("k", k), ("local_window", local_window)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{name} must be an integer, got {value!r}")
    if r < 1 or r > dims.head_dim:
        raise UserError(f"r = {r} must be in [1, d_h = {dims.head_dim}]")
    if k < 1 or k > dims.seq:
        raise UserError(f"k = {k} must be in [1, S = {dims.seq}]")
    if local_window < 0 or local_window > k:
        raise UserError(f"local_window = {local_window} must be in [0, k = {k}]")
    if v_mean is not None:
        want = (dims.batch, dims.kv_heads, dims.head_dim)
        if _shape(v_mean) != want:
            raise UserError(f"v_mean must have shape (B, Hkv, d_h) = {want}, got {_shape(v_mean)}")
    if K_t is not None:
        want = (dims.batch, dims.kv_heads, dims.head_dim, dims.seq)
        if _shape(K_t) != want:
            raise UserError(f"K_t must have shape (B, Hkv, d_h, S) = {want}, got {_shape(K_t)}")
    return dims
