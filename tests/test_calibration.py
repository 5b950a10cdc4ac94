"""Calibration data, the constants a device takes, and the calibrated timer."""

from dataclasses import replace

import pytest

from sparq_sim.calibration import store
from sparq_sim.errors import UserError
from sparq_sim.calibration.timer import CalibratedTimer
from sparq_sim.hardware import load_device
from sparq_sim.implementations.published_common import KERNELS, kernel_phases
from sparq_sim.models import ModelConfig
from sparq_sim.workload import Workload


def _w(**kw):
    m = ModelConfig("t", layers=1, heads=32, kv_heads=32, head_dim=128, d_model=4096, params=1.0)
    base = dict(model=m, seq=4096, batch=16, r=32, k=128)
    base.update(kw)
    return Workload(**base)


def test_stored_gpu_file_has_sources_and_both_gpus():
    cal = store.load(store.HERE / "gpu.toml")
    assert cal["kind"] == "gpu" and cal["meta"]["rows"] == 1076 + 1232
    assert cal["meta"]["devices"] == "a100-40gb, a10g"
    for name, fig in cal["params"].items():
        assert fig["basis"] in ("fitted", "derived", "assumed") and fig["source"], name
    assert 0.3 < cal["params"]["eff.stream"]["value"] <= 1.5


def test_unmeasured_device_takes_its_kinds_constants_unchanged():
    """Constants describe implementations: an H100 gets the GPU constants as they are, and its
    own physics (hardware file) does the rest; the source line says so."""
    a10g, h100 = load_device("a10g"), load_device("h100-sxm")
    own, src_own = store.constants_for(a10g)
    fam, src_fam = store.constants_for(h100)
    assert own == fam
    assert "a100-40gb, a10g" in src_fam and "h100-sxm's own physics" in src_fam
    with pytest.raises(UserError, match="gpu constants"):
        store.constants_for(load_device("epyc-7763"), store.HERE / "gpu.toml")


def test_eager_sparq_moves_gathered_copies():
    """Eager SparQ writes and reads back the gathered K_t rows; Triton does not."""
    w = _w()
    g = 32
    eager = sum(p.moved_bytes(g) for p in kernel_phases("sparq-attn-torch", w))
    triton = sum(p.moved_bytes(g) for p in kernel_phases("sparq-attn-triton", w))
    step1 = 16 * 32 * 32 * 4096 * 2          # B * H * r * S * 2 bytes
    assert eager - triton > 1.9 * step1
    once = kernel_phases("sparq-attn-torch-oneK", w)
    assert any(getattr(p, "scattered_loads", 0) == 16 * 32 * 4096 * 32 for p in once)


def test_every_kernel_label_builds():
    for label in KERNELS:
        phases = kernel_phases(label, _w())
        assert phases and all(p.launches >= 0 for p in phases)


def test_calibrated_timer_predicts_and_orders(cli):
    dev = load_device("a10g")
    timer = CalibratedTimer(dev)
    w = _w(batch=64)
    dense = sum(t.time_s for t in timer.time_phases(kernel_phases("attn-torch", w)))
    triton = sum(t.time_s for t in timer.time_phases(kernel_phases("sparq-attn-triton", w)))
    # published: 128 us and 31 us per query at B = 64, S = 4096, r = 32, k = 128
    assert 100e-6 < dense / 64 < 160e-6
    assert 22e-6 < triton / 64 < 40e-6
    code, out, err = cli("predict", "--hw", "h100-sxm", "--seq", "32k", "--impl", "published-torch",
                         "--timing", "calibrated")
    assert code == 0, err and "calibrated" in out


def test_a10g_calibration_reproduces_file_quickly():
    """The stored constants predict the published file with a small median error (not a timing test)."""
    from sparq_sim.validation.core import validate
    from sparq_sim.validation.measurements import read_measurements
    from sparq_sim.validation import published
    rows = read_measurements(published("a10g"))
    report = validate(rows)
    assert report.to_dict()["overall"]["median_abs_pct_error"] < 6


def test_cpu_family_bandwidth_factor_and_fixed_per_thread_bw():
    """bw_factor.<family> scales a CPU family's bandwidth (and nothing on GPUs); the per-thread
    bandwidth of a local fit is the measured bandwidth over threads, not a fitted constant."""
    import numpy as np

    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration.local import local_device
    from sparq_sim.calibration.model import evaluate, features
    cpu = local_device(20e9, "test bandwidth")
    w = _w(seq=65536, batch=1)
    base = {"eff.stream": 1.0, "eff.gather": 1.0, "eff.sparse_rows": 1.0, "per_thread_bw": 10e9,
            "launch_factor": 0.0, "sync_s": 0.0, "overlap_p": 1.0, "topk_per_cycle": 1e6,
            "topk_programs_per_unit": 1.0, "host_ops_per_launch": 0.0}
    f = features([kernel_phases("attn-torch", w)], cpu.granularity, None, [2])
    t1 = evaluate(f, base, cpu)[0]
    t2 = evaluate(f, {**base, "bw_factor.eager": 0.5, "bw_factor.eager-matmul": 0.5}, cpu)[0]
    assert t2 == pytest.approx(2 * t1, rel=1e-9)
    # the two matmuls (BLAS calls: a family of their own) move K and V; the scale and softmax
    # passes over the scores move 2 x 4 x 2 bytes per position against the matmuls' 2 x 512
    matmuls = evaluate(f, {**base, "bw_factor.eager-matmul": 0.5}, cpu)[0]
    elementwise = evaluate(f, {**base, "bw_factor.eager": 0.5}, cpu)[0]
    assert matmuls == pytest.approx(2 * t1, rel=0.03) and elementwise == pytest.approx(t1, rel=0.03)
    assert matmuls + elementwise == pytest.approx(t1 + t2, rel=1e-9)
    a10g = load_device("a10g")
    g = features([kernel_phases("attn-torch", w)], a10g.granularity, None, None)
    gp = {**base, "overlap_p": 3.0}
    g1 = evaluate(g, gp, a10g)[0]
    # on a GPU too each family draws its own share (the eager element-wise kernels the reference):
    # cuBLAS's two matmuls move K and V, so halving their share about doubles the call
    assert evaluate(g, {**gp, "bw_factor.eager-matmul": 0.5}, a10g)[0] == pytest.approx(2 * g1, rel=0.03)
    assert evaluate(g, {**gp, "bw_factor.eager": 0.5}, a10g)[0] == pytest.approx(g1, rel=0.03)
    assert "bw_factor.eager" not in fitting.GPU_FITTED and "bw_factor.eager-matmul" in fitting.GPU_FITTED
    assert "per_thread_bw" not in fitting.CPU_FITTED and "bw_factor.eager" in fitting.CPU_FITTED
    assert "bw_factor.eager-matmul" in fitting.CPU_FITTED
    assert KERNELS["attn-cpu"][1](w)[-1].family == "fused-dense"
    assert np.isfinite(t1)


def test_fused_cpu_kernel_streams_adjacent_selected_rows():
    """Our CPU kernel reads the k selected rows in ascending order: a share (k-1)/(S-1) of them
    follow a selected row and stream; k = S is all stream; the selection is a phase of its own."""
    from sparq_sim.traffic import GATHER, STREAM
    w = _w(seq=4096, batch=1, k=256)
    phases = kernel_phases("sparq-attn-cpu", w)
    assert [p.name for p in phases] == ["step1", "select", "step2"]
    assert phases[1].topk_elements == 32 * 4096 and not phases[0].topk_elements
    step2 = phases[2].accesses
    adjacent = round(256 * 255 / 4095)                        # 16 rows per head
    gathered = [a for a in step2 if a.pattern == GATHER]
    streamed = [a for a in step2 if a.pattern == STREAM and "next to a selected row" in a.what]
    assert [a.count for a in gathered] == [32 * (256 - adjacent)] * 2          # K and V
    assert [a.count * a.size for a in streamed] == [32 * adjacent * 128 * 2] * 2
    everything = kernel_phases("sparq-attn-cpu", _w(seq=512, batch=1, k=512))[2].accesses
    assert not [a for a in everything if a.pattern == GATHER]


def test_cpu_features_charge_whole_rows_for_sparse_row_reads():
    """On CPUs the stream prefetcher fetches whole rows of a position-ordered sparse-row walk."""
    from sparq_sim.calibration.model import PATTERN_INDEX, features
    from sparq_sim.traffic import SPARSE_ROWS
    w = _w(seq=1024, batch=1, r=8)
    phases = kernel_phases("sparq-attn-cpu-onek", w)
    rows = [a for p in phases for a in p.accesses if a.pattern == SPARSE_ROWS]
    assert len(rows) == 1
    gpu = features([phases], 64, None, None)
    cpu = features([phases], 64, None, [2], whole_sparse_rows=True)
    i = PATTERN_INDEX[SPARSE_ROWS]
    assert cpu.bytes[:, i].sum() == 32 * 1024 * 256           # every 256-byte fp16 row, whole
    assert gpu.bytes[:, i].sum() == pytest.approx(rows[0].moved_bytes(64))
    assert gpu.bytes[:, i].sum() < cpu.bytes[:, i].sum()


def test_constants_scale_the_devices_sustained_bandwidth():
    """Efficiencies apply to the device's sustained bandwidth (datasheet x achievable fraction) on
    CPUs and GPUs alike: halving the achievable fraction doubles a streaming call's time."""
    from sparq_sim.calibration.model import evaluate, features
    from sparq_sim.hardware import Figure
    params = {"eff.stream": 1.0, "eff.gather": 1.0, "eff.sparse_rows": 1.0, "launch_factor": 0.0, "sync_s": 0.0,
              "overlap_p": 1.0, "topk_per_cycle": 1e9, "topk_programs_per_unit": 1.0, "per_thread_bw": 1e12,
              "host_ops_per_launch": 0.0}
    w = _w(seq=65536, batch=1)
    for name in ("epyc-7763", "a10g"):
        dev = load_device(name)
        half = replace(dev, achievable_fraction=Figure(dev.achievable_fraction.value / 2, "assumed", "test"))
        f = features([kernel_phases("attn-cpu", w)], dev.granularity, None, [64] if dev.kind == "cpu" else None)
        t, t_half = evaluate(f, params, dev)[0], evaluate(f, params, half)[0]
        assert t_half == pytest.approx(2 * t, rel=0.01)


def test_local_device_takes_the_calibration_bandwidth(tmp_path, monkeypatch):
    """A calibration's constants are relative to the bandwidth measured with it: the local device
    built for them carries that figure, even where a hardware profile `local` exists."""
    from sparq_sim.calibration.local import local_device
    local_device.cache_clear()
    dev = local_device(12.5e9, "measured in a test")
    assert dev.bandwidth_Bps.value == 12.5e9 and dev.bandwidth_Bps.basis == "measured"
    local_device.cache_clear()
