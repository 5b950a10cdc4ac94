"""Phase models of the published SparQ benchmark kernels (reference/README.md) and our replicas.

Every timed kernel label of the published A10G data (and of ``validate --local``) maps to one
builder here, which returns the phases of one call for the whole batch: each phase with its
launches (GPU kernels or CPU parallel regions issued by the host), the bytes it moves as
``Access`` patterns (including the gathered copies that eager versions write and read back, the
score tensors, the top-k and softmax passes), and a few extra counts the calibrated timer needs:

* ``family``: which fitted constants apply (``eager``, ``eager-matmul`` for an eager kernel's
  matmuls, ``compiled``, ``triton``, ``sdpa-flash``, ``sdpa-mem-efficient``, ``fused``: one
  program per (batch, head) row, ...);
* ``rows``: independent programs a fused kernel runs (one per (batch, head) row): with few rows a
  row-parallel kernel cannot draw the whole bandwidth;
* ``topk_elements`` and ``topk_rows``: elements a top-k pass ranks, and in how many rows (one
  program per row: few rows cannot use the whole device);
* ``scattered_loads``: element loads at unrelated addresses (the K-once step 1): their issue
  rate, not the sector traffic, limits them.

Builders are plain functions of the workload, so the same phases serve ``predict --impl
published-*`` on any device and the validation suite. Nothing here is device-specific: the
numbers that are (bandwidth efficiencies, launch costs, rates) live in the calibration data.

The module has no ``IMPLEMENTATION``: the registry skips it; ``published_torch``,
``published_compiled`` and ``published_triton`` expose the builders as implementations.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparq_sim.implementations import base
from sparq_sim.implementations.families import Family, query_tile_rows
from sparq_sim.traffic import GATHER, SPARSE_ROWS, STREAM, Access, Phase
from sparq_sim.workload import Workload

INDEX_BYTES = 8  # torch.topk returns int64 indices


@dataclass(frozen=True)
class KernelPhase(Phase):
    """A Phase with the counts the calibrated timer uses beyond bytes, flops and launches."""

    family: str = "eager"
    rows: int = 0               # parallel programs of a row-parallel fused kernel (0: not limited)
    topk_elements: int = 0      # elements ranked by a top-k pass
    topk_rows: int = 0          # rows that pass ranks, one program each
    extra_host_ops: int = 0     # host-dispatched ops beyond the kernel's usual ones (shape-dependent paths)
    scattered_loads: int = 0    # element loads at unrelated addresses
    scatter_kind: str = ""      # CPU rate of its own: "lastdim" (r elements of each K row), "rows" (whole rows)
    tile_flops: float = 0.0     # matrix arithmetic of a row-parallel kernel's tiles (query rows padded to
    tile_dtype: str = ""        # the tile's), in this dtype: each program's own work, serial with its loads


def _stream(count: int, size: int, what: str, write: bool = False) -> Access:
    return Access(STREAM, max(1, int(count)), max(1, int(size)), write=write, what=what)


def matmul_of(family: str) -> str:
    """The family of a matmul in a kernel of `family`: eager matmuls are BLAS calls of their own
    family, and so are torch.compile'd ones (inductor lowers aten.bmm to the extern ATen kernel,
    cuBLAS, unless max-autotune asks for Triton templates: tuned_bmm's choices); SDPA matmuls keep
    their kernel's."""
    return Family.EAGER_MATMUL.value if family in (Family.EAGER, Family.COMPILED) else family


def _ph(name, accesses, family, launches, **kw) -> KernelPhase:
    return KernelPhase(name, tuple(a for a in accesses if a is not None), launches=launches,
                       family=family, **kw)


# ----------------------------------------------------------------------------------------------
# Dense kernels
# ----------------------------------------------------------------------------------------------

def dense_unfused(w: Workload, family: str, *, scale_pass: bool, copy_k: bool = False) -> list[Phase]:
    """Matmul, (scale), softmax, matmul: attn-torch, attn-compiled, attn-math.

    The S scores of every query head are written by the first matmul and read back by the
    softmax, which writes the probabilities the second matmul reads. ``copy_k``: the math
    backend of scaled_dot_product_attention (ATen's ``_scaled_dot_product_attention_math``)
    computes ``matmul(q * sqrt(scale), K^T * sqrt(scale))``, so the scaled K^T is a new tensor
    the matmul reads back (the measured attn-math kernel moves twice dense bytes, as this says).
    """
    s = base.Shape.of(w)
    e, S = s.elem, s.seq
    scores = s.q_instances * S * e
    phases = []
    if copy_k:
        phases.append(_ph("copy_K", [base.stream_all(s, "K"), _stream(s.kv_instances, S * s.row, "K copy", True)],
                          family, 2))    # q * sqrt(scale), K^T * sqrt(scale)
        k_read = _stream(s.kv_instances, S * s.row, "K copy")
    else:
        k_read = base.stream_all(s, "K")
    phases.append(_ph("scores", [base.read_q(s), k_read, _stream(1, scores, "scores", True)], matmul_of(family), 1,
                      flops=2.0 * s.head_dim * S * s.q_instances))
    if scale_pass:
        phases.append(_ph("scale", [_stream(1, scores, "scores"), _stream(1, scores, "scores", True)], family, 1))
    phases.append(_ph("softmax", [_stream(1, scores, "scores"), _stream(1, scores, "probs", True)], family, 1))
    phases.append(_ph("values", [_stream(1, scores, "probs"), base.stream_all(s, "V"), base.write_out(s)],
                      matmul_of(family), 1, flops=2.0 * s.head_dim * S * s.q_instances))
    return phases


def dense_fused(w: Workload, family: str, *, copy_kv: bool = False) -> list[Phase]:
    """One fused kernel, one program per (batch, head) row streaming K and V once. A kernel whose
    tiles hold more query rows than the one a decoding step has computes them all
    (``families.query_tile_rows``): that arithmetic is each program's own, between its loads.

    ``copy_kv``: K and V are first copied to the layout the kernel wants: PyTorch 2.1's flash
    path reshapes K and V, transposed to (B, S, H, D), to (B x S, H, D) for its varlen kernel,
    which copies them unless B = 1 (docs/validation.md).
    """
    s = base.Shape.of(w)
    phases = []
    if copy_kv:
        phases.append(_ph("layout_copy", [base.stream_all(s, "K"), base.stream_all(s, "V"),
                                          _stream(s.kv_instances, 2 * s.seq * s.row, "K,V copy", True)],
                          family + "-copy", 2))
    tile_rows = query_tile_rows(family)
    phases.append(_ph("attention", [base.read_q(s), base.stream_all(s, "K"), base.stream_all(s, "V"),
                                    base.write_out(s)], family, 1, rows=s.q_instances,
                      flops=4.0 * s.head_dim * s.seq * s.q_instances,
                      tile_flops=4.0 * s.head_dim * s.seq * s.q_instances * tile_rows,
                      tile_dtype=w.kv_dtype if tile_rows else ""))
    return phases


# ----------------------------------------------------------------------------------------------
# SparQ kernels
# ----------------------------------------------------------------------------------------------

def _step1_reads(s: base.Shape, store_k: str) -> tuple[Access, int]:
    """Reads of step 1 (r runs of K_t, or r scattered components of every K row) and scattered loads."""
    if store_k == "twice":
        return base.step1_keys(s, "twice"), 0
    return base.step1_keys(s, "once"), s.kv_instances * s.seq * s.r


# torch.topk on CUDA (aten/src/ATen/native/cuda/TensorTopK.cu, PyTorch 2.x with CUB scan-by-key):
# few long rows go to a multi-block radix select over the whole GPU, the rest run one block per row.
MULTIBLOCK_MIN_SIZE = ((20, 20000), (40, 10000), (80, 8000), (199, 5000), (799, 3000), (4000, 800))
MULTIBLOCK_RADIX_BITS = 8


def topk_is_multiblock(slices: int, size: int) -> bool:
    """TensorTopK.cu's should_use_multiblock(num_slices, slice_size)."""
    for most, min_size in MULTIBLOCK_MIN_SIZE:
        if slices <= most:
            return size >= min_size
    return size >= 400


def torch_topk(s: base.Shape, family: str, extra_launches: int = 0, kind: str = "gpu") -> KernelPhase:
    """torch.topk of the k largest approximate scores of each KV head's row of S.

    One block per row (sbtopk): its radix select walks the row in the block's own cache; the
    rows' programs bound it (topk_elements, topk_rows). Multi-block (mbtopk): the row is split
    over blocks across the GPU; per 8-bit digit a counting kernel reads the scores and a scan
    kernel updates the prefix, then a gather pass reads them once more: 16-bit scores take
    2 digit passes + 1 gather = 3 reads and about 10 kernels. On CPUs (``kind`` "cpu") torch.topk
    ranks each row in one thread: the single-block form.
    """
    scores = s.kv_instances * s.seq * s.elem
    indices = _stream(s.kv_instances, s.k * INDEX_BYTES, "i2", True)
    per_layer_rows = s.kv_instances // max(1, s.layers)
    if kind == "gpu" and topk_is_multiblock(per_layer_rows, s.seq):
        passes = -(-8 * s.elem // MULTIBLOCK_RADIX_BITS)
        launches = 2 * passes + 6
        # each of these kernels is dispatched by the host: the path costs host time the
        # single-block path does not
        return _ph("top_k", [_stream(passes + 1, scores, "s_hat (radix passes)"), indices], family,
                   launches + extra_launches, extra_host_ops=(launches - 1) * max(1, s.layers))
    return _ph("top_k", [_stream(1, scores, "s_hat"), indices], family, 1 + extra_launches,
               topk_elements=s.kv_instances * s.seq, topk_rows=s.kv_instances)


def _query_setup(s: base.Shape, family: str, launches: int) -> KernelPhase:
    """top-r of |q| (summed over a group), gathers of q's components, tau: small tensors, many ops."""
    return _ph("top_r", [base.read_q(s), _stream(s.q_instances, s.r * 4 * s.elem, "q_hat,|q| sums", True)],
               family, launches, topk_elements=s.q_instances * s.head_dim, topk_rows=s.q_instances)


def sparq_eager(w: Workload, family: str = "eager", *, fused_small: bool = False, kind: str = "gpu") -> list[Phase]:
    """sparq-attn-torch(-oneK), and under torch.compile (``fused_small``: fewer, fused small ops).

    Step 1 gathers r components of every key into a new tensor (K_t rows when K is stored twice,
    scattered elements of position-major K when once), the matmul reads it back and writes S
    scores per query head; a scaled softmax reads and writes them; top-k ranks them; k rows of K
    and of V are gathered into new tensors that the matmuls read back; then the lerp.
    """
    s = base.Shape.of(w)
    e, S, R = s.elem, s.seq, s.row
    copy1 = s.kv_instances * S * s.r * e
    scores = s.q_instances * S * e
    step1, _ = _step1_reads(s, w.store_k)
    few = fused_small
    phases = [
        _query_setup(s, family, 3 if few else 5),
        # torch.gather is element-wise (one int64 index per element): every gathered element is a load
        _ph("gather_r", [step1, _stream(1, copy1, "K_hat copy", True)], family, 1,
            scattered_loads=s.kv_instances * S * s.r, scatter_kind="lastdim" if w.store_k == "once" else ""),
        _ph("scores_r", [_stream(1, copy1, "K_hat copy"), _stream(1, scores, "scores", True)], matmul_of(family), 1,
            flops=2.0 * s.r * S * s.q_instances),
        _ph("softmax_r", [_stream(1, scores, "scores"), _stream(1, scores, "s_hat", True)], family,
            1 if few else 5),
        torch_topk(s, family, 0 if few else 1, kind),
        _ph("alpha", [_stream(s.q_instances, s.k * e, "s_hat[i2]")], family, 1 if few else 2),
        _ph("gather_K", [base.gather_rows(s, "K"), _stream(s.kv_instances, s.k * R, "K rows copy", True)],
            family, 1, scattered_loads=s.kv_instances * s.k * s.head_dim, scatter_kind="rows"),
        _ph("scores_k", [_stream(s.kv_instances, s.k * R, "K rows copy"),
                         _stream(s.q_instances, s.k * e, "scores", True)], matmul_of(family), 1,
            flops=2.0 * s.head_dim * s.k * s.q_instances),
        _ph("softmax_k", [_stream(s.q_instances, s.k * e, "scores"), _stream(s.q_instances, s.k * e, "s", True)],
            family, 1 if few else 2),
        _ph("gather_V", [base.gather_rows(s, "V"), _stream(s.kv_instances, s.k * R, "V rows copy", True)],
            family, 1, scattered_loads=s.kv_instances * s.k * s.head_dim, scatter_kind="rows"),
        _ph("values", [_stream(s.kv_instances, s.k * R, "V rows copy"), base.write_out(s)], matmul_of(family), 1,
            flops=2.0 * s.head_dim * s.k * s.q_instances),
    ]
    if w.reallocate:
        phases.append(_ph("lerp", [*base.value_mean(s)[:1], _stream(s.q_instances, R, "y"), base.write_out(s)],
                          family, 1 if few else 2))
    return phases


def sparq_triton(w: Workload, family: str = "triton", *, kind: str = "gpu") -> list[Phase]:
    """sparq-attn-triton(-oneK): the three gather-then-matmul steps are Triton kernels with the
    gather fused into the dot product (one program per (batch, head) row, no gathered copy);
    top-k, softmax and lerp stay PyTorch ops (family ``eager`` for their launches)."""
    s = base.Shape.of(w)
    e, S = s.elem, s.seq
    scores = s.q_instances * S * e
    step1, scattered = _step1_reads(s, w.store_k)
    phases = [
        _query_setup(s, "eager", 5),
        _ph("step1", [step1, _stream(1, scores, "scores", True)], family, 1, rows=s.kv_instances,
            scattered_loads=scattered, flops=2.0 * s.r * S * s.q_instances),
        _ph("softmax_r", [_stream(1, scores, "scores"), _stream(1, scores, "s_hat", True)], "eager", 2),
        torch_topk(s, "eager", 1, kind),
        _ph("alpha", [_stream(s.q_instances, s.k * e, "s_hat[i2]")], "eager", 2),
        _ph("step2_keys", [base.gather_rows(s, "K"), _stream(s.q_instances, s.k * e, "scores", True)], family, 1,
            rows=s.kv_instances, flops=2.0 * s.head_dim * s.k * s.q_instances),
        _ph("softmax_k", [_stream(s.q_instances, s.k * e, "scores"), _stream(s.q_instances, s.k * e, "s", True)],
            "eager", 2),
        _ph("step2_values", [base.gather_rows(s, "V"), base.write_out(s)], family, 1, rows=s.kv_instances,
            flops=2.0 * s.head_dim * s.k * s.q_instances),
    ]
    if w.reallocate:
        phases.append(_ph("lerp", [*base.value_mean(s)[:1], _stream(s.q_instances, s.row, "y"), base.write_out(s)],
                          "eager", 2))
    return phases


def _ascending_gather(s: base.Shape, what: str) -> tuple[Access, ...]:
    """k rows read in ascending position order: a row whose predecessor is also selected (a share
    (k - 1) / (S - 1) of them for a random selection) continues a stream the prefetcher follows;
    the rest are gathers. k = S is a plain stream."""
    adjacent = round(s.k * (s.k - 1) / max(1, s.seq - 1))
    out = [base.gather_rows(s, what, rows=s.k - adjacent)] if s.k > adjacent else []
    if adjacent:
        out.append(_stream(s.kv_instances, adjacent * s.row, f"{what} rows next to a selected row"))
    return tuple(out)


def sparq_fused(w: Workload, family: str = "fused") -> list[Phase]:
    """A fused SparQ kernel (our fast CPU kernel): step 1 with top-k in one pass over K_t
    (scores kept per row, not written to memory), step 2 gathers fused into the dot products."""
    s = base.Shape.of(w)
    step1, scattered = _step1_reads(s, w.store_k)
    values = [*_ascending_gather(s, "V"), base.write_out(s)]
    if w.reallocate:
        values.extend(base.value_mean(s))
    return [
        _ph("step1", [base.read_q(s), step1], family, 1, rows=s.kv_instances, scattered_loads=scattered,
            flops=2.0 * s.r * s.seq * s.q_instances),
        # the selection runs after the stream, in the same thread, on scores in its cache: its time
        # adds to the stream's (a phase of its own) rather than hiding under it
        _ph("select", [], family, 0, rows=s.kv_instances, topk_elements=s.kv_instances * s.seq,
            topk_rows=s.kv_instances),
        _ph("step2", [*_ascending_gather(s, "K"), *values], family, 1, rows=s.kv_instances,
            flops=4.0 * s.head_dim * s.k * s.q_instances),
    ]


# ----------------------------------------------------------------------------------------------
# Kernel labels (the ``kernel`` column of the measurement schema) -> (method, phase builder)
# ----------------------------------------------------------------------------------------------

def _onek(builder):
    """The K-once form of a SparQ builder (store_k forced to 'once')."""
    def build(w: Workload, kind: str = "gpu"):
        from dataclasses import replace
        return builder(replace(w, store_k="once"), kind)
    return build


def _twice(builder):
    def build(w: Workload, kind: str = "gpu"):
        from dataclasses import replace
        return builder(replace(w, store_k="twice"), kind)
    return build


KERNELS = {
    # label: (method, builder(w) -> phases)
    "attn-torch": ("dense", lambda w, kind="gpu": dense_unfused(w, "eager", scale_pass=True)),
    "attn-compiled": ("dense", lambda w, kind="gpu": dense_unfused(w, "compiled", scale_pass=False)),
    "attn-math": ("dense", lambda w, kind="gpu": dense_unfused(w, "sdpa-math", scale_pass=False, copy_k=True)),
    "attn-flash": ("dense", lambda w, kind="gpu": dense_fused(w, "sdpa-flash", copy_kv=w.batch > 1)),
    "attn-mem-efficient": ("dense", lambda w, kind="gpu": dense_fused(w, "sdpa-mem-efficient")),
    "attn-nn": ("dense", lambda w, kind="gpu": dense_fused(w, "sdpa-nn")),
    "sparq-attn-torch": ("sparq", _twice(lambda w, kind: sparq_eager(w, "eager", kind=kind))),
    "sparq-attn-torch-onek": ("sparq", _onek(lambda w, kind: sparq_eager(w, "eager", kind=kind))),
    "sparq-attn-compiled": ("sparq", _twice(lambda w, kind: sparq_eager(w, "compiled", fused_small=True, kind=kind))),
    "sparq-attn-compiled-onek": ("sparq", _onek(lambda w, kind: sparq_eager(w, "compiled", fused_small=True, kind=kind))),
    "sparq-attn-triton": ("sparq", _twice(lambda w, kind: sparq_triton(w, "triton", kind=kind))),
    "sparq-attn-triton-onek": ("sparq", _onek(lambda w, kind: sparq_triton(w, "triton", kind=kind))),
    # this project's own fused CPU kernels (sparq_sim.kernels impl="cpu"), for validate --local
    "attn-cpu": ("dense", lambda w, kind="gpu": dense_fused(w, "fused-dense")),
    "sparq-attn-cpu": ("sparq", _twice(lambda w, kind: sparq_fused(w, "fused"))),
    "sparq-attn-cpu-onek": ("sparq", _onek(lambda w, kind: sparq_fused(w, "fused"))),
}


def kernel_key(label: str) -> str:
    return str(label).strip().lower()


def kernel_phases(label: str, w: Workload, kind: str = "gpu") -> list[Phase]:
    """Phases of one call of the kernel called `label` (KeyError when unknown)."""
    return KERNELS[kernel_key(label)][1](w, kind)


def kernel_method(label: str) -> str:
    return KERNELS[kernel_key(label)][0]


class PublishedImplementation:
    """An implementation model built from a dense and a SparQ kernel label."""

    def __init__(self, name: str, description: str, dense: str, sparq: str, sparq_once: str,
                 device_kinds: tuple[str, ...] = ("gpu", "cpu")):
        self.name, self.description = name, description
        self.dense, self.sparq, self.sparq_once = dense, sparq, sparq_once
        self.device_kinds = device_kinds   # kinds of device the kernels run on

    def kernel_labels(self, w: Workload) -> tuple[str, str]:
        """The measured kernels this model's dense and SparQ attention are (the validation's labels)."""
        return self.dense, self.sparq if w.store_k == "twice" else self.sparq_once

    def attention_phases(self, w: Workload, method: str, device=None) -> list[Phase]:
        if device is not None and device.kind not in self.device_kinds:
            from sparq_sim.errors import UserError
            raise UserError(f"implementation {self.name} runs on a {' or '.join(self.device_kinds)}; "
                            f"{device.name} is a {device.kind}")
        layers = w.model.layers
        if method == "dense":
            label = self.dense
        elif method == "sparq":
            label = self.sparq if w.store_k == "twice" else self.sparq_once
        else:
            raise ValueError(f"unknown method {method!r}")
        # The kernels work on one layer's tensors; a step runs them once per layer.
        phases = kernel_phases(label, w, device.kind if device is not None else "gpu")
        if layers > 1:
            # Builders already count every layer's bytes (Shape covers all layers); launches are per layer.
            phases = [per_layer_launches(p, layers) for p in phases]
        return phases + [base.cache_append(base.Shape.of(w), w.store_k if method == "sparq" else "once")]

    def other_phases(self, w: Workload, device=None) -> list[Phase]:
        return [base.weights_phase(w)]


def per_layer_launches(p: Phase, layers: int) -> Phase:
    """A kernel built for all layers' bytes, launched once per layer (its programs are one layer's rows)."""
    from dataclasses import replace
    if isinstance(p, KernelPhase) and (p.rows or p.topk_rows):
        # a layer's kernel runs the programs of one layer's rows
        return replace(p, launches=p.launches * layers, rows=max(1, p.rows // layers) if p.rows else 0,
                       topk_rows=max(1, p.topk_rows // layers) if p.topk_rows else 0)
    return replace(p, launches=p.launches * layers)
