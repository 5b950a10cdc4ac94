"""The case grids of ``validate --local``: which kernels, at which shapes, are timed here.

Validation grid: B = 1, 8 heads, d_h = 128, float32, S in {1k, 4k, 16k, 64k},
r in {8, 16, 32} x k in {64, 512, S/16} (``--quick``: (r, k) in {(8, 64), (16, S/16), (32, 512)}).
Calibration grid (``--calibrate``, or when no calibration of this CPU exists; the same with
``--quick``): S in {512, 2k, 8k, 32k}, r in {4, 24, 64}, k in {128, 1024} (k <= S): none of these
is a validation case; S = 512 is host-bound and pins the per-call host times.

A case is (kernel label, S, r, k), r and k None for dense kernels.
"""

from __future__ import annotations

HEADS, HEAD_DIM, BATCH, DTYPE = 8, 128, 1, "float32"
SEQS = (1024, 4096, 16384, 65536)
CAL_SEQS = (512, 2048, 8192, 32768)  # 512: host-bound, pins the per-call host times
DENSE = ("attn-torch", "attn-nn", "attn-cpu")
SPARQ = ("sparq-attn-torch", "sparq-attn-torch-oneK", "sparq-attn-cpu")
IMPL = {"attn-torch": "torch-eager", "attn-nn": "torch-sdpa", "attn-cpu": "cpu",
        "sparq-attn-torch": "torch-eager", "sparq-attn-torch-oneK": "torch-eager-onek", "sparq-attn-cpu": "cpu"}


def validation_cases(quick: bool) -> list[tuple]:
    cases = []
    for S in SEQS:
        rk = [(8, 64), (16, S // 16), (32, 512)] if quick else \
             [(r, k) for r in (8, 16, 32) for k in (64, 512, S // 16)]
        rk = sorted({(r, min(k, S)) for r, k in rk})
        cases += [(kern, S, None, None) for kern in DENSE]
        cases += [(kern, S, r, k) for r, k in rk for kern in SPARQ]
    return cases


def calibration_cases(quick: bool) -> list[tuple]:
    cases = []
    for S in CAL_SEQS:
        cases += [(kern, S, None, None) for kern in DENSE]
        # the whole (r, k) grid even with --quick: every later prediction rests on these constants
        rk = sorted({(r, min(k, S)) for r in (4, 24, 64) for k in (128, 1024)})
        cases += [(kern, S, r, k) for r, k in rk for kern in SPARQ]
    return cases


def case_of(row: dict) -> tuple:
    """The case a measurement row (as ``runs.measure`` writes it) was measured at."""
    return (row["kernel"], row["sequence_length"], row["r"] or None, row["k"] or None)
