"""A decoding loop's SparQ state for one layer: K, its component-major copy K_t and the running
mean of V, kept up to date per appended token.

``sparq_attention(..., v_mean=None)`` recomputes the mean of V over every position (a full pass
over V, as much traffic as dense attention), and a K_t built per call is a full pass over K:
a decode loop must keep both as state, as the published gpt-fast code does. ``SparqDecoder``
does: buffers with room for ``capacity`` positions (doubled when full, so appending is O(1)
amortised), each token written into K, V and K_t and folded into the running mean (float32;
float64 for float64 caches), and
each step's attention called on views of the first n positions (no copy; the CPU kernels read
them in place).

    dec = SparqDecoder(batch=1, kv_heads=8, head_dim=128, r=16, k=256, capacity=4096)
    for token in ...:
        y = dec.step(q, key, value)     # append (key, value), then attend with q
"""

from __future__ import annotations

import torch

from sparq_sim.errors import UserError


class SparqDecoder:
    """One layer's KV cache for SparQ decoding, and the kernel called on it."""

    def __init__(self, batch: int, kv_heads: int, head_dim: int, *, r: int, k: int, local_window: int = 0,
                 reallocate: bool = True, capacity: int = 1024, dtype=torch.float32, impl: str = "cpu",
                 device="cpu"):
        if min(batch, kv_heads, head_dim, capacity) < 1 or not 1 <= r <= head_dim or k < 1 or local_window < 0:
            raise UserError("SparqDecoder needs positive batch, kv_heads, head_dim, capacity and k, "
                            f"1 <= r <= head_dim and local_window >= 0 (got r = {r}, k = {k}, "
                            f"local_window = {local_window})")
        if local_window > k:
            raise UserError(f"local window {local_window} exceeds k = {k}")
        self.r, self.k, self.local_window, self.reallocate, self.impl = r, k, local_window, reallocate, impl
        self.length = 0
        self._K = torch.zeros(batch, kv_heads, capacity, head_dim, dtype=dtype, device=device)
        self._V = torch.zeros_like(self._K)
        self._K_t = torch.zeros(batch, kv_heads, head_dim, capacity, dtype=dtype, device=device)
        # float32 as SparQ keeps it, float64 for float64 caches (the reference's exact arithmetic)
        self.v_mean = torch.zeros(batch, kv_heads, head_dim, dtype=torch.promote_types(dtype, torch.float32),
                                  device=device)

    @property
    def capacity(self) -> int:
        return self._K.shape[2]

    @property
    def K(self) -> torch.Tensor:
        return self._K[:, :, :self.length]

    @property
    def V(self) -> torch.Tensor:
        return self._V[:, :, :self.length]

    @property
    def K_t(self) -> torch.Tensor:
        return self._K_t[..., :self.length]

    def _grow(self) -> None:
        n, cap = self.length, 2 * self.capacity
        K = self._K.new_zeros(*self._K.shape[:2], cap, self._K.shape[3])
        V, K_t = torch.zeros_like(K), self._K_t.new_zeros(*self._K_t.shape[:3], cap)
        K[:, :, :n], V[:, :, :n], K_t[..., :n] = self.K, self.V, self.K_t
        self._K, self._V, self._K_t = K, V, K_t

    def append(self, key: torch.Tensor, value: torch.Tensor) -> None:
        """Add one position: key and value are (B, Hkv, d_h)."""
        if key.shape != self._K[:, :, 0].shape or value.shape != key.shape:
            raise UserError(f"append takes key and value of shape {tuple(self._K[:, :, 0].shape)}, got "
                            f"{tuple(key.shape)} and {tuple(value.shape)}")
        if self.length == self.capacity:
            self._grow()
        n = self.length
        self._K[:, :, n] = key
        self._V[:, :, n] = value
        self._K_t[:, :, :, n] = key
        self.v_mean += (value.to(self.v_mean.dtype) - self.v_mean) / (n + 1)   # running mean: O(d_h) a token
        self.length = n + 1

    def attend(self, q: torch.Tensor) -> torch.Tensor:
        """SparQ attention of q (B, Hq, d_h) over the positions so far; k and the local window are
        capped at their number (with fewer positions than k, every one is kept)."""
        from sparq_sim.kernels import sparq_attention
        if self.length == 0:
            raise UserError("attend needs at least one appended position")
        k = min(self.k, self.length)
        return sparq_attention(q, self.K, self.V, r=self.r, k=k, local_window=min(self.local_window, k),
                               reallocate=self.reallocate, v_mean=self.v_mean if self.reallocate else None,
                               K_t=self.K_t, impl=self.impl)

    def step(self, q: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """One decoding step: append this token's key and value, then attend with its query."""
        self.append(key, value)
        return self.attend(q)
