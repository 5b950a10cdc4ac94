"""One decoding-step workload: model shape, sequence, batch, SparQ settings and dtypes, and the
ideal element counts of dense and SparQ attention that follow from the shape alone
(``ideal_attention_elements``; ``Workload.compression`` is their ratio). The traffic model
(``sparq_sim.traffic``) builds on this module, never the reverse."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sparq_sim import dtypes
from sparq_sim.errors import UserError
from sparq_sim.models import ModelConfig, get_preset, DEFAULT_MODEL

DEFAULT_COMPRESSION = 1 / 8


def settings_for_compression(head_dim: int, seq: int, compression: float) -> tuple[int, int]:
    """r = d_h*C and k = S*C/2 (rounded, at least 1): then S*r + 2*k*d_h = C * 2*S*d_h."""
    r = max(1, round(head_dim * compression))
    k = max(1, round(seq * compression / 2))
    return min(r, head_dim), min(k, seq)


@dataclass(frozen=True)
class Workload:
    """Everything one prediction depends on besides the device and implementation."""

    model: ModelConfig = field(default_factory=lambda: get_preset(DEFAULT_MODEL))
    seq: int = 4096
    batch: int = 1
    r: int = 16
    k: int = 256
    local_window: int = 0
    kv_dtype: str = "float16"
    weight_dtype: str = "float16"
    store_k: str = "twice"      # "twice": component-major copy of K serves step 1; "once": it does not
    reallocate: bool = True     # SparQ step 3 (mean-value reallocation)

    def __post_init__(self):
        object.__setattr__(self, "kv_dtype", dtypes.canonical(self.kv_dtype))
        object.__setattr__(self, "weight_dtype", dtypes.canonical(self.weight_dtype))
        d_h = self.model.head_dim
        for name in ("seq", "batch", "r", "k"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be an integer of at least 1, got {value!r}")
        if self.r > d_h:
            raise UserError(f"r = {self.r} exceeds the head dimension d_h = {d_h}")
        if self.k > self.seq:
            raise UserError(f"k = {self.k} exceeds the sequence length S = {self.seq}")
        if not isinstance(self.local_window, int) or self.local_window < 0:
            raise UserError(f"local window must be a non-negative integer, got {self.local_window!r}")
        if self.local_window > self.k:
            raise UserError(f"local window {self.local_window} exceeds k = {self.k}")
        if self.store_k not in ("once", "twice"):
            raise UserError(f"store-k must be 'once' or 'twice', got {self.store_k!r}")

    @classmethod
    def build(cls, model: ModelConfig, seq: int, *, batch: int = 1, r: int | None = None,
              k: int | None = None, compression: float | None = None, **rest) -> "Workload":
        """Fill r and k from the compression (default 1/8) where they are not given."""
        if r is None or k is None:
            c = DEFAULT_COMPRESSION if compression is None else compression
            r_c, k_c = settings_for_compression(model.head_dim, seq, c)
            r = r_c if r is None else r
            k = k_c if k is None else k
        return cls(model=model, seq=seq, batch=batch, r=r, k=k, **rest)

    @property
    def kv_bytes(self) -> int:
        return dtypes.nbytes(self.kv_dtype)

    @property
    def weight_bytes(self) -> int:
        return dtypes.nbytes(self.weight_dtype)

    @property
    def compression(self) -> float:
        """SparQ attention traffic over dense attention traffic, ideal count (docs/method.md)."""
        return ideal_attention_elements(self, "sparq") / ideal_attention_elements(self, "dense")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["model"] = self.model.to_dict()
        out["compression"] = self.compression
        return out


def ideal_attention_elements(w: Workload, method: str) -> int:
    """The element counts of docs/method.md for one decoding step of the whole batch over all layers.

    Per batch element and layer, with Hq query heads and Hkv KV heads (GQA: KV terms once per
    KV head, q and output once per query head, the value mean once per KV head):
      dense: Hkv*2*S*d_h + Hq*2*d_h
      sparq: Hkv*(S*r + 2*k*d_h) + Hq*2*d_h + Hkv*2*d_h
    Without GQA (Hq = Hkv) these are 2*S*d_h + 2*d_h and S*r + 2*k*d_h + 4*d_h per head.
    The last term is the value mean's read and write; without reallocation it is not needed.
    """
    m = w.model
    s, d_h = w.seq, m.head_dim
    if method == "dense":
        per = m.kv_heads * 2 * s * d_h + m.heads * 2 * d_h
    elif method == "sparq":
        per = m.kv_heads * (s * w.r + 2 * w.k * d_h) + m.heads * 2 * d_h
        if w.reallocate:
            per += m.kv_heads * 2 * d_h
    else:
        raise ValueError(f"unknown method {method!r}")
    return per * w.batch * m.layers
