"""Kernel families: which fitted constants a kernel phase takes, and how its scattered loads bind.

A family is a way of building a kernel (eager PyTorch ops, torch.compile'd ops, a Triton kernel
with one program per (batch, head) row, an SDPA backend, this project's fused CPU kernels). Its
constants live in the calibration data; the structural facts below come from the code itself.
"""

from __future__ import annotations

from enum import Enum


class Family(str, Enum):
    EAGER = "eager"                          # one framework kernel per op, results written to memory
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
    CACHE = "cache"   # fused loads, one sector each, served by the LLC: LLC bandwidth / sector


# Triton's step 1 with K stored once loads r components of every key row straight from the
# position-major cache (``tl.load`` of a [positions x r] pointer block): each element is its own
# sector request, reused through the L2. torch.compile's inductor generates Triton kernels too:
# its K-once gather ("lastdim": r elements of every row, each in a sector of its own) is the same
# kind of load, while its gathers of contiguous runs (r rows of K_t, k rows of K and V: each
# warp's element loads coalesce) are bound by the index arithmetic inductor emits per element,
# like eager torch.gather and the CPU loops: instruction-bound.
def scatter_bound(family: str, kind: str = "") -> ScatterBound:
    """What limits the scattered loads of a phase of ``family`` whose gather is of ``kind``
    ("lastdim": elements of position-major rows, "rows": whole rows, "": runs of K_t)."""
    if family == Family.TRITON or (family == Family.COMPILED and kind == "lastdim"):
        return ScatterBound.CACHE
    return ScatterBound.ISSUE
