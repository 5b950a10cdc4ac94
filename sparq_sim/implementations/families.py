"""Kernel families: which fitted constants a kernel phase takes, and how its scattered loads bind.

A family is a way of building a kernel (eager PyTorch ops, torch.compile'd ops, a Triton kernel
with one program per (batch, head) row, an SDPA backend, this project's fused CPU kernels). Its
constants live in the calibration data; the structural facts below come from the code itself.
"""

from __future__ import annotations

from enum import Enum


class Family(str, Enum):
    EAGER = "eager"                          # one framework kernel per op, results written to memory
    EAGER_MATMUL = "eager-matmul"            # an eager matmul: a BLAS call (oneDNN/MKL on CPUs, cuBLAS
                                             # on GPUs), whose share of a CPU's bandwidth is not the
                                             # element-wise loops' (fitted on a Xeon guest: 1.0 against 0.36)
    COMPILED = "compiled"                    # torch.compile'd: small ops fused, matmuls to cuBLAS
    TRITON = "triton"                        # Triton, one program per (batch, head) row, gathers fused
    SDPA_FLASH = "sdpa-flash"                # scaled_dot_product_attention, flash backend
    SDPA_FLASH_COPY = "sdpa-flash-copy"      # the layout copy the flash backend makes at batch > 1
    SDPA_MEM_EFFICIENT = "sdpa-mem-efficient"
    SDPA_MATH = "sdpa-math"
    SDPA_NN = "sdpa-nn"                      # the default SDPA choice (CPU data)
    FUSED = "fused"                          # this project's fused CPU SparQ kernel
    FUSED_DENSE = "fused-dense"              # this project's fused CPU dense kernel

    def __str__(self) -> str:
        return self.value


class ScatterBound(str, Enum):
    """What limits a family's scattered element loads."""

    ISSUE = "issue"   # framework gathers compute an index per element: units x clock
    LANES = "lanes"   # one load instruction per element, little index arithmetic: the units' load/store lanes
    CACHE = "cache"   # fused loads, one sector each, served by the LLC: LLC bandwidth / sector


# Triton's step 1 with K stored once loads r components of every key row straight from the
# position-major cache (``tl.load`` of a [positions x r] pointer block): each element is its own
# sector request, reused through the L2. torch.compile's inductor generates Triton kernels too:
# its K-once gather ("lastdim": r elements of every row, each in a sector of its own) is the same
# kind of load. Its gathers of contiguous runs (r rows of K_t, k rows of K and V: each warp's
# element loads coalesce) are, per element, a load of its index, a few integer operations
# (negative indices wrapped, a bounds assert) and the indexed load: the SM's load/store lanes,
# which take a warp's addresses (16 per SM on GA10x, 32 on GA100: half a warp or a whole warp a
# cycle), bind them, not its integer units (64 per SM on both). The published rows agree: the
# same gathers run 1.9-2.0x faster on the A100 than on the A10G, whose units x clock are 1.11x
# apart and lanes x units x clock 2.2x. Eager torch.gather computes each element's offsets with
# its offset calculator (a divide and a modulo, by multiply and shift, per dimension): many
# integer instructions per load, instruction-bound (1.3-1.6x apart on the same two GPUs), as
# are the CPU loops.
def scatter_bound(family: str, kind: str = "") -> ScatterBound:
    """What limits the scattered loads of a phase of ``family`` whose gather is of ``kind``
    ("lastdim": elements of position-major rows, "rows": whole rows, "": runs of K_t)."""
    if family == Family.TRITON or (family == Family.COMPILED and kind == "lastdim"):
        return ScatterBound.CACHE
    if family == Family.COMPILED:
        return ScatterBound.LANES
    return ScatterBound.ISSUE


# The framework's own matrix products: eager matmuls and the CPU SDPA kernel's blocked GEMMs go
# to its math library (MKL or oneDNN on CPUs), whose rate on a core is the library's code path
# there, not the memory's (PyTorch's q @ K^T drew 0.20, 0.55 and 0.91 of three guests' stream
# rates): on CPUs they are a share of the framework's measured matmul read rate.
BLAS_FAMILIES = frozenset({Family.EAGER_MATMUL, Family.SDPA_NN})


def is_blas(family: str) -> bool:
    """Whether a phase of ``family`` runs in the framework's math library."""
    return str(family).split(".")[0] in BLAS_FAMILIES


# Programs of a row-parallel kernel one unit holds at once: past U programs, a unit runs several,
# each with its own loads in flight, so P programs keep min(P, U x resident) of them going.
# Triton launches 4 warps per program unless told otherwise (its default num_warps; the published
# kernels' launch settings are not public), so the device's resident warps per unit / 4 bound it
# (registers or shared memory may hold it lower; any value from 2 up gives the same predictions of
# the published rows, whose programs number 32 or at least 4 x the units). The memory-efficient
# SDPA kernel runs the programs its launch bounds ask for (below). Every other family is
# taken at one program per unit: FlashAttention-2 states 2 per SM for its sm86 tile, but the
# published flash rows past batch 1 are bound by the layout copy, so they cannot check it.
TRITON_WARPS_PER_PROGRAM = 4


# PyTorch's memory-efficient SDPA backend (aten/src/ATen/native/transformers/cuda/mem_eff_attention:
# kernel_forward.h, kernels/cutlassF.h): in half precision on compute capability 8.0 and up, at head
# dimension 128, the dispatcher takes the first kernel whose kMaxK covers it, the 64 x 128 tile:
# kNumWarpsPerBlock = 64 * 128 / (32 * 32) = 8, and __launch_bounds__ asks for kMinBlocksPerSm =
# getWarpsPerSmFw() / 8 = 16 / 8 = 2 blocks per SM, so registers are sized for two (its shared
# memory, about 50 kB by the structure of its SharedStorage, may hold an sm86 unit's 100 kB to one;
# the published A10G rows cannot tell, being memory-bound once the programs outnumber the units).
MEM_EFFICIENT_WARPS_PER_PROGRAM = 8
MEM_EFFICIENT_PROGRAMS_PER_UNIT = 2
# That tile is kQueriesPerBlock = 64 query rows by kKeysPerBlock = 128 keys: a decoding step's one
# query row per (batch, head) fills one of its 64 rows, and the two matrix products (q K^T and
# p V) run on all 64, on the unit's tensor cores, between the program's loads of K and V.
MEM_EFFICIENT_QUERY_ROWS = 64


def query_tile_rows(family: str) -> int:
    """Query rows a row-parallel kernel's tile computes for each (batch, head) row of a decoding
    step (0: its arithmetic is not modelled per program)."""
    return MEM_EFFICIENT_QUERY_ROWS if family == Family.SDPA_MEM_EFFICIENT else 0


def resident_programs(family: str, max_warps_per_unit: float | None) -> float:
    """Programs of ``family`` one GPU unit runs at once (1 where nothing says more)."""
    if family == Family.TRITON and max_warps_per_unit:
        return max(1.0, max_warps_per_unit // TRITON_WARPS_PER_PROGRAM)
    if family == Family.SDPA_MEM_EFFICIENT and max_warps_per_unit:
        return max(1.0, float(min(MEM_EFFICIENT_PROGRAMS_PER_UNIT, max_warps_per_unit // MEM_EFFICIENT_WARPS_PER_PROGRAM)))
    return 1.0
