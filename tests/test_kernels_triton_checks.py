"""Each Triton kernel's own check() (in its file, beside the kernel) passes: every launch against
the float64 reference, one at a time; on a CPU-only machine under TRITON_INTERPRET=1."""

import importlib
import os

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")   # must precede the first import of triton
pytest.importorskip("triton")


@pytest.mark.parametrize("name", ["triton_dense", "triton_step1", "triton_select", "triton_step2"])
def test_kernel_check_passes(name):
    kernel = importlib.import_module(f"sparq_sim.kernels.{name}")
    assert kernel.check() <= 2e-5


def test_check_catches_a_wrong_result():
    from sparq_sim.kernels.triton_common import max_error
    want = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(AssertionError, match="wrong: max abs error 0.001"):
        max_error(torch.tensor([0.0, 1e-3, 0.0]), want, "wrong")
