"""The structural cost model: each device-derived term against hand-computed cases.

Every case isolates one term: host, synchronisation and launch costs are zero and the overlap
exponent is 1, so a call's time is the sum of its phases' device times.
"""

from dataclasses import replace

import pytest

from sparq_sim.calibration.constants import Constants
from sparq_sim.calibration.model import evaluate, features
from sparq_sim.errors import UserError
from sparq_sim.hardware import Figure, load_device
from sparq_sim.implementations.published_common import KernelPhase
from sparq_sim.traffic import STREAM, Access

QUIET = {"eff.stream": 1.0, "eff.gather": 1.0, "eff.sparse_rows": 1.0, "sync_s": 0.0, "overlap_p": 1.0,
         "launch_factor": 0.0, "host_ops_per_launch": 0.0, "topk_per_cycle": 1e6,
         "topk_programs_per_unit": 1.0}


def _time(phase, device, repeated=False, **constants):
    f = features([[phase]], device.granularity, None, None, repeated=[repeated])
    return float(evaluate(f, {**QUIET, **constants}, device)[0])


def _stream(nbytes):
    return (Access(STREAM, 1, int(nbytes), what="K"),)


A100 = load_device("a100-40gb")       # 108 SMs, 1.41 GHz, 400 ns, 1555 GB/s x 0.90, 40 MiB / 7.22 TB/s LLC


def test_dram_stream_at_sustained_bandwidth():
    t = _time(KernelPhase("read", _stream(1e9)), A100)
    assert t == pytest.approx(1e9 / (1555e9 * 0.90))


def test_few_programs_cap_bandwidth_by_littles_law():
    """P programs on U units draw min(P, U) x bytes_in_flight / latency: 32 programs of 4000 bytes
    in flight at 400 ns reach 32 x 10 GB/s = 320 GB/s, far below the DRAM's 1.4 TB/s."""
    phase = KernelPhase("attention", _stream(1e9), family="triton", rows=32)
    t = _time(phase, A100, **{"bytes_in_flight.triton": 4000.0})
    assert t == pytest.approx(1e9 / (32 * 4000 / 400e-9))
    # past U programs they run in waves of U x R, R the programs a unit holds: an SDPA flash
    # program per unit (1), so 1000 programs of 1 MB are ceil(1000 / 108) = 10 waves, each
    # program's 1 MB at 10 GB/s: 10 x 100 us
    flash = replace(phase, family="sdpa-flash", rows=1000)
    many = _time(flash, A100, **{"bytes_in_flight.sdpa-flash": 4000.0})
    assert many == pytest.approx(10 * 1e6 / (4000 / 400e-9))
    # 1080 programs fill 10 waves exactly: the same time for 8% more bytes (1e9 x 1.08)
    full = _time(replace(flash, accesses=_stream(1.08e9), rows=1080), A100, **{"bytes_in_flight.sdpa-flash": 4000.0})
    assert full == pytest.approx(many)
    # the memory-efficient kernel's launch bounds ask for 2 of its 8-warp programs per unit:
    # 1000 programs -> waves of 216, ceil(1000 / 216) = 5, at 2.5 GB/s each with 1000 bytes in flight
    mem_eff = replace(phase, family="sdpa-mem-efficient", rows=1000)
    assert _time(mem_eff, A100, **{"bytes_in_flight.sdpa-mem-efficient": 1000.0}) == \
        pytest.approx(5 * 1e6 / (1000 / 400e-9))
    assert _time(replace(mem_eff, rows=150), A100, **{"bytes_in_flight.sdpa-mem-efficient": 1000.0}) == \
        pytest.approx(1e9 / (150 * 1000 / 400e-9))
    # enough bytes in flight: the DRAM binds again
    wide = _time(mem_eff, A100, **{"bytes_in_flight.sdpa-mem-efficient": 1e6})
    assert wide == pytest.approx(1e9 / (1555e9 * 0.90))


def test_units_hold_several_programs_past_u():
    """A unit holds R programs at once: Triton's 4-warp programs, 64 / 4 = 16 on an A100 (64
    resident warps per SM) and 48 / 4 = 12 on an A10G; other families one. 300 Triton programs
    of 1000 bytes in flight at 400 ns: all 300 run (<= 108 x 16), 300 x 2.5 GB/s = 750 GB/s; 3000
    programs: the DRAM's 1.4 TB/s binds, and with 200 bytes each the 1728 resident programs do,
    in ceil(3000 / 1728) = 2 waves of programs moving 1e9 / 3000 bytes each."""
    phase = KernelPhase("attention", _stream(1e9), family="triton", rows=300)
    c = {"bytes_in_flight.triton": 1000.0}
    assert _time(phase, A100, **c) == pytest.approx(1e9 / (300 * 1000 / 400e-9))
    assert _time(replace(phase, rows=3000), A100, **c) == pytest.approx(1e9 / (1555e9 * 0.90))
    assert _time(replace(phase, rows=3000), A100, **{"bytes_in_flight.triton": 200.0}) == \
        pytest.approx(2 * (1e9 / 3000) / (200 / 400e-9))
    a10g = load_device("a10g")                         # 80 SMs, 48 warps, 350 ns: 960 held, 4 waves
    assert _time(replace(phase, rows=3000), a10g, **{"bytes_in_flight.triton": 100.0}) == \
        pytest.approx(4 * (1e9 / 3000) / (100 / 350e-9))
    flash = replace(phase, family="sdpa-flash", rows=3000)          # one program per unit: 28 waves
    assert _time(flash, A100, **{"bytes_in_flight.sdpa-flash": 1000.0}) == \
        pytest.approx(28 * (1e9 / 3000) / (1000 / 400e-9))
    # the scattered loads of a row-parallel kernel are issued by the same programs, in the same
    # 2 waves of 1728: each program's 1e9 / 3000 loads at 0.5 a cycle
    loads = replace(phase, accesses=(), scattered_loads=10 ** 9, rows=3000)
    assert _time(loads, A100, **{"llc_eff.triton": 1e3, "row_issue_per_cycle.triton": 0.5}) == \
        pytest.approx(2 * (1e9 / 3000) / (1.41e9 * 0.5))


def test_a_programs_tile_arithmetic_adds_to_its_loads():
    """The memory-efficient kernel's 64-row tile computes 64 query rows for each decoding row: 32
    programs on 32 of the A100's 108 units, each at 312e12 / 108 flop/s x tile_eff 0.5, add
    flops / (32 x 1.444e12) to their Little's-law load time; 1000 programs leave ceil(1000 / 108) =
    10 on the busiest unit."""
    flops = 4.0 * 128 * 16384 * 32 * 64
    phase = KernelPhase("attention", _stream(1e9), family="sdpa-mem-efficient", rows=32,
                        tile_flops=flops, tile_dtype="float16")
    consts = {"bytes_in_flight.sdpa-mem-efficient": 4000.0, "tile_eff.sdpa-mem-efficient": 0.5}
    loads = 1e9 / (32 * 4000 / 400e-9)
    assert _time(phase, A100, **consts) == pytest.approx(loads + flops / (32 * 312e12 / 108 * 0.5))
    many = replace(phase, rows=1000, tile_flops=flops * 1000 / 32)
    # loads in ceil(1000 / 216) = 5 waves of two programs per unit, 1 MB each
    assert _time(many, A100, **consts) == \
        pytest.approx(5 * 1e6 / (4000 / 400e-9) + 10 * flops / 32 / (312e12 / 108 * 0.5))
    # without a tile efficiency the term is absent (every other family)
    assert _time(phase, A100, **{"bytes_in_flight.sdpa-mem-efficient": 4000.0}) == pytest.approx(loads)


def test_only_the_memory_efficient_tile_pads_its_query_rows():
    from sparq_sim.implementations.published_common import kernel_phases
    from sparq_sim.models import get_preset
    from sparq_sim.workload import Workload
    w = Workload(model=get_preset("llama-2-7b"), seq=4096, batch=2, kv_dtype="float16")
    (mem_eff,) = kernel_phases("attn-mem-efficient", w)
    assert mem_eff.tile_flops == pytest.approx(64 * mem_eff.flops) and mem_eff.tile_dtype == "float16"
    assert all(p.tile_flops == 0 for p in kernel_phases("attn-flash", w))


def test_littles_law_latency_is_the_devices():
    """The same constants on a device with twice the DRAM latency take twice as long when row-limited."""
    slow = replace(A100, dram_latency_s=Figure(800e-9, "assumed", "test"))
    phase = KernelPhase("attention", _stream(1e9), family="sdpa-mem-efficient", rows=32)
    fast_t = _time(phase, A100, **{"bytes_in_flight.sdpa-mem-efficient": 4000.0})
    assert _time(phase, slow, **{"bytes_in_flight.sdpa-mem-efficient": 4000.0}) == pytest.approx(2 * fast_t)


def test_working_set_under_the_llc_runs_at_llc_rate_when_repeated():
    small = KernelPhase("read", _stream(30e6))          # 30 MB < 40 MiB
    big = KernelPhase("read", _stream(60e6))
    assert _time(small, A100, repeated=True) == pytest.approx(30e6 / 7.22e12)
    assert _time(small, A100, repeated=False) == pytest.approx(30e6 / (1555e9 * 0.90))
    assert _time(big, A100, repeated=True) == pytest.approx(60e6 / (1555e9 * 0.90))
    a10g = load_device("a10g")                          # 6 MiB: the same 30 MB come from DRAM
    assert _time(small, a10g, repeated=True) == pytest.approx(30e6 / (600e9 * 0.87))


def test_scattered_loads_issue_bound_or_one_llc_sector_each():
    loads = 10 ** 9
    eager = KernelPhase("gather", (), family="eager", scattered_loads=loads)
    t = _time(eager, A100, **{"issue_per_cycle.eager": 2.0})
    assert t == pytest.approx(loads / (108 * 1.41e9 * 2.0))
    triton = KernelPhase("step1", (), family="triton", scattered_loads=loads)
    t = _time(triton, A100, **{"llc_eff.triton": 0.5})
    assert t == pytest.approx(loads * 32 / (7.22e12 * 0.5))
    # a row-parallel kernel with few programs issues from few units
    few = replace(triton, rows=8)
    t = _time(few, A100, **{"llc_eff.triton": 0.5, "row_issue_per_cycle.triton": 1.0})
    assert t == pytest.approx(loads / (8 * 1.41e9 * 1.0))


def test_compiled_gathers_bind_by_what_they_load():
    """torch.compile's K-once gather (r elements of every position-major row) costs one LLC sector
    a load; its gathers of contiguous runs (K_t rows, K and V rows) coalesce, one indexed load per
    element, and the units' load/store lanes bind them: units x lanes x clock x issue_per_lane."""
    loads = 10 ** 9
    rates = {"llc_eff.compiled": 0.5, "issue_per_lane.compiled": 0.05, "issue_per_cycle.eager": 2.0}
    once = KernelPhase("gather_r", (), family="compiled", scattered_loads=loads, scatter_kind="lastdim")
    assert _time(once, A100, **rates) == pytest.approx(loads * 32 / (7.22e12 * 0.5))
    a10g = load_device("a10g")                          # 80 SMs of 16 lanes at 1.71 GHz
    for kind in ("", "rows"):
        runs = replace(once, scatter_kind=kind)
        assert _time(runs, A100, **rates) == pytest.approx(loads / (108 * 32 * 1.41e9 * 0.05))
        assert _time(runs, a10g, **rates) == pytest.approx(loads / (80 * 16 * 1.71e9 * 0.05))
    # eager torch.gather's offset arithmetic binds it: the lanes do not enter
    eager = replace(once, family="eager", scatter_kind="")
    assert _time(eager, a10g, **rates) == pytest.approx(loads / (80 * 1.71e9 * 2.0))
    # a GPU file without the lanes cannot price such a gather, and says which field it lacks;
    # a phase of the family that gathers nothing does not need them
    with pytest.raises(UserError, match="compute.load_store_units"):
        _time(runs, replace(A100, load_store_units=None), **rates)
    streaming = KernelPhase("scores", _stream(1e9), family="compiled")
    assert _time(streaming, replace(A100, load_store_units=None), **rates) == \
        pytest.approx(1e9 / (1555e9 * 0.90))


def test_topk_one_program_per_row():
    ranked = 64 * 4096
    phase = KernelPhase("top_k", (), family="eager", topk_elements=ranked, topk_rows=64)
    # 64 rows < 108 units x 1 program: 64 programs at 0.1 element per cycle
    t = _time(phase, A100, topk_per_cycle=0.1)
    assert t == pytest.approx(ranked / (64 * 1.41e9 * 0.1))
    # 2048 rows: capped at 108 x 2 programs
    wide = replace(phase, topk_elements=2048 * 4096, topk_rows=2048)
    t = _time(wide, A100, topk_per_cycle=0.1, topk_programs_per_unit=2.0)
    assert t == pytest.approx(2048 * 4096 / (216 * 1.41e9 * 0.1))


def test_host_time_is_ops_times_the_devices_dispatch_cost():
    a10g = load_device("a10g")
    twice = replace(a10g, host_op_s=Figure(20e-6, "assumed", "test"))
    phase = KernelPhase("op", (), launches=4)
    f = features([[phase]], 32, ["sparq-attn-torch"], None)
    c = {**QUIET, "host_ops.sparq-attn-torch": 50.0}
    assert evaluate(f, c, a10g)[0] == pytest.approx(50 * 10e-6)
    assert evaluate(f, c, twice)[0] == pytest.approx(50 * 20e-6)
    # a kernel without its own constant: launches x host_ops_per_launch
    g = features([[phase]], 32, ["attn-torch"], None)
    assert evaluate(g, {**c, "host_ops_per_launch": 3.0}, a10g)[0] == pytest.approx(4 * 3 * 10e-6)


def test_unknown_or_misspelt_constant_is_an_error():
    with pytest.raises(UserError, match="bytes_in_flite"):
        Constants({**QUIET, "bytes_in_flite.triton": 4000.0})
    with pytest.raises(UserError, match="finite"):
        Constants({**QUIET, "sync_s": float("inf")})
    with pytest.raises(UserError, match="no constant eff.stream"):
        Constants({}).value("eff.stream")
    # an absent per-family rate means unlimited, by the spec, not by a silent default
    assert Constants({}).value("bytes_in_flight", "triton") == float("inf")


def test_calibration_file_with_misspelt_constant_names_it(tmp_path):
    from sparq_sim.calibration import store
    text = (store.HERE / "gpu.toml").read_text().replace('"eff.stream"', '"eff.straem"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match="eff.straem"):
        store.load(path)


@pytest.mark.parametrize("field,needle", [("clock_hz", "compute.clock_hz"), ("op_dispatch_s", "host.op_dispatch_s"),
                                          ("graph_kernel_s", "overheads.graph_kernel_s"),
                                          ("max_warps_per_unit", "compute.max_warps_per_unit"),
                                          ("load_store_units", "compute.load_store_units")])
def test_hardware_file_missing_a_physics_figure_names_it(tmp_path, field, needle):
    from sparq_sim.hardware import HERE, load_file
    lines = [line for line in (HERE / "a10g.toml").read_text().splitlines() if not line.startswith(f"{field} =")]
    path = tmp_path / "a10g-missing.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=f"field {needle} is missing"):
        load_file(path)


def test_fit_on_another_kind_of_device_is_one_line_and_exit_2(cli, tmp_path):
    from sparq_sim.validation import published
    cpu = tmp_path / "epyc.csv"
    header = published("a10g").read_text().splitlines()[0]
    cpu.write_text(header + "\nAMD EPYC 7763 (64 threads),cpu,float32,32,128,4096,1,attn-torch,,,false,"
                   "0.001,1e-6,10,2,2.1.2\n")
    code, out, err = cli("validate", "--measurements", str(published("a10g")), "--fit-on", str(cpu))
    assert code == 2 and "different device kinds" in err and err.count("\n") == 1 and "Traceback" not in err


def test_cross_device_fit_predicts_with_the_targets_physics(tmp_path):
    """--fit-on fits once on the source rows; each target row is predicted with its own device's
    figures (the constants are unchanged, only the physics differs)."""
    import numpy as np

    from sparq_sim.calibration import fit as fitting
    from sparq_sim.validation import published
    from sparq_sim.validation.core import device_for, validate
    from sparq_sim.validation.measurements import read_measurements
    a10g = [m for m in read_measurements(published("a10g")) if m.kernel in ("attn-torch", "attn-compiled")]
    a100 = [m for m in read_measurements(published("a100-40gb")) if m.kernel in ("attn-torch", "attn-compiled")]
    report = validate(a100, fit_on=a10g)
    constants, _ = fitting.fit(a10g, device_for("a10g"))
    expected = fitting.predict_times(a100, device_for("a100-40gb"), constants)
    assert np.allclose(report.predicted, expected)
    assert "predicted with a100-40gb's own physics" in report.sources["a100-40gb"]


def test_fit_reports_constants_the_rows_do_not_pin():
    """A term that binds on no row leaves its constant free over a range: the fit finds, from where
    the optimiser stopped, the lowest and highest values that fit as well (b: from 2, where the
    second residual starts to grow, up to its bound 5; c: bound to bound) and reports the lowest, or
    None when that is the bound; a pinned constant is not listed."""
    import numpy as np
    from sparq_sim.calibration.fit import _flat_range, _unpinned_report

    def residuals(x):
        return np.array([x[0] - 1.0, max(0.0, 2.0 - x[1]), 0.0 * x[2]])

    x = np.array([1.0, 3.0, 0.5])
    jac = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    lo, hi = np.full(3, -5.0), np.full(3, 5.0)
    flat = _flat_range(residuals, x, residuals(x), jac, lo, hi, ["a", "b", "c"])
    assert set(flat) == {"b", "c"} and flat["c"] == (-5.0, 5.0)
    assert flat["b"][0] == pytest.approx(2.0, abs=1e-3) and flat["b"][1] == 5.0
    assert _unpinned_report(flat, lo, ["a", "b", "c"]) == {"b": pytest.approx(np.exp(2.0), rel=1e-3), "c": None}


def test_unpinned_constants_take_their_prior_within_the_range_that_fits():
    """Where the optimiser stopped in a flat range is chance: each unpinned constant moves to its
    prior (log 1.0 = 0) when that lies in the range (b), to the range's nearer end when the prior
    lies outside it (c: above it from 0.5; d: a cost flat up to -0.5); pinned ones stay."""
    import numpy as np
    from sparq_sim.calibration.fit import _unpinned_at_prior

    x = np.array([0.3, 2.0, 4.0, -1.0])
    ranges = {"b": (-1.0, 5.0), "c": (0.5, 5.0), "d": (-5.0, -0.5)}
    moved = _unpinned_at_prior(x, np.zeros(4), ranges, ["a", "b", "c", "d"])
    assert moved == pytest.approx([0.3, 0.0, 0.5, -0.5])
    assert x[1] == 2.0                                          # the optimiser's point is left as it was


def test_fit_is_independent_of_where_the_optimiser_stops_in_a_flat_range():
    """The A10G rows leave issue_per_lane.compiled free above a value and llc_eff.compiled free
    everywhere: each takes its prior (the spec's initial value) or the lowest value that fits,
    never the optimiser's stopping point."""
    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration.constants import spec_of
    from sparq_sim.validation import published
    from sparq_sim.validation.core import device_for
    from sparq_sim.validation.measurements import read_measurements
    rows = [m for m in read_measurements(published("a10g")) if m.kernel == "sparq-attn-compiled" and m.batch == 16]
    constants, report = fitting.fit(rows, device_for("a10g"))
    for name, lowest in report["unpinned"].items():
        prior = spec_of(name)[1].initial
        expected = prior if lowest is None else max(prior, lowest)
        assert constants[name] == pytest.approx(expected, rel=1e-9), name
    assert report["unpinned"]["issue_per_lane.compiled"] is not None   # the case exercises both branches
    assert report["unpinned"]["llc_eff.compiled"] is None
    assert set(report["libraries"]) == {"python", "numpy", "scipy", "cpu", "core"}


EPYC = load_device("epyc-7763")     # 64 cores, 204.8 GB/s x 0.78 sustained


def _cpu_time(phase, device, threads, **constants):
    f = features([[phase]], device.granularity, None, [threads])
    base = {**QUIET, "per_thread_bw": 20e9}
    return float(evaluate(f, {**base, **constants}, device)[0])


def test_cpu_blas_families_take_a_share_of_the_frameworks_matmul_rate():
    """On a CPU the framework's matrix products run at its math library's rate, measured on the
    machine (calibration.framework_matmul_Bps, timed with all its threads): 1 GB at 0.5 x 40 GB/s
    with every core, at half of that with half the cores; other families keep the stream share."""
    measured = replace(EPYC, calibration={"framework_matmul_Bps": Figure(40e9, "measured", "test")})
    blas = KernelPhase("scores", _stream(1e9), family="eager-matmul")
    c = {"bw_factor.eager-matmul": 0.5, "bw_factor.eager": 0.8}
    assert _cpu_time(blas, measured, 64, **c) == pytest.approx(1e9 / (40e9 * 0.5))
    assert _cpu_time(blas, measured, 32, **c) == pytest.approx(1e9 / (20e9 * 0.5))
    sdpa = replace(blas, family="sdpa-nn")
    assert _cpu_time(sdpa, measured, 64, **{"bw_factor.sdpa-nn": 0.25}) == pytest.approx(1e9 / (40e9 * 0.25))
    loop = replace(blas, family="eager")
    assert _cpu_time(loop, measured, 64, **c) == pytest.approx(1e9 / (204.8e9 * 0.78 * 0.8))


def test_cpu_without_a_measured_matmul_rate_takes_the_fitted_machines_share():
    """A datasheet CPU: its bandwidth for the call's threads (sustained, or threads x per-thread
    bandwidth below saturation) times the fitted machines' matmul-to-stream ratio; without that
    ratio the BLAS families keep their stream share."""
    blas = KernelPhase("scores", _stream(1e9), family="eager-matmul")
    c = {"bw_factor.eager-matmul": 0.5, "framework_matmul_share": 0.4}
    assert _cpu_time(blas, EPYC, 64, **c) == pytest.approx(1e9 / (204.8e9 * 0.78 * 0.4 * 0.5))
    assert _cpu_time(blas, EPYC, 4, **c) == pytest.approx(1e9 / (4 * 20e9 * 0.4 * 0.5))
    assert _cpu_time(blas, EPYC, 64, **{"bw_factor.eager-matmul": 0.5}) == \
        pytest.approx(1e9 / (204.8e9 * 0.78 * 0.5))


def test_cross_device_spread_of_unpinned_constants():
    """For a constant the source leaves free above a value, the target's errors are those of
    predictions with it at that value and at its upper bound; rows whose kernels lack its term
    (dense attn-torch has no scattered loads) never move."""
    import numpy as np

    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration.constants import spec_of
    from sparq_sim.validation import published
    from sparq_sim.validation.core import device_for, unpinned_spread
    from sparq_sim.validation.measurements import read_measurements
    kernels = ("attn-torch", "sparq-attn-torch")
    a10g = [m for m in read_measurements(published("a10g")) if m.kernel in kernels]
    a100 = [m for m in read_measurements(published("a100-40gb")) if m.kernel in kernels and m.batch == 16]
    device = device_for("a100-40gb")
    constants, _ = fitting.fit(a10g, device_for("a10g"))
    predicted = fitting.predict_times(a100, device, constants)
    measured = np.array([m.duration_s for m in a100])
    by_hw = {"a100-40gb": list(range(len(a100)))}
    high = spec_of("issue_per_cycle.eager")[1].high
    spread = unpinned_spread(a100, by_hw, {"a100-40gb": device}, constants,
                             {"issue_per_cycle.eager": (0.5, high), "bytes_in_flight.absent-family": (1.0, 2.0)},
                             predicted)
    assert set(spread) == {"issue_per_cycle.eager"}     # a constant the predictions do not use: nothing to spread
    s = spread["issue_per_cycle.eager"]
    for end, value in (("at_lowest", 0.5), ("at_highest", high)):
        times = fitting.predict_times(a100, device, {**constants, "issue_per_cycle.eager": value})
        assert s[end]["median_abs_pct_error"] == pytest.approx(np.median(np.abs(times / measured - 1)) * 100)
    slow = fitting.predict_times(a100, device, {**constants, "issue_per_cycle.eager": 0.5})
    dense = np.array([m.kernel == "attn-torch" for m in a100])
    assert np.allclose(slow[dense], predicted[dense])            # dense rows have no scattered loads
    assert 0 < s["rows_moved"] <= int((~dense).sum())


def _subset_csv(tmp_path, device: str, kernels=("attn-torch", "attn-compiled")):
    from sparq_sim.validation import published
    lines = published(device).read_text().splitlines()
    kernel_col = lines[0].split(",").index("kernel")
    path = tmp_path / f"{device}-subset.csv"
    path.write_text("\n".join([lines[0]] + [l for l in lines[1:] if l.split(",")[kernel_col] in kernels]) + "\n")
    return path


def test_fit_on_with_holdout_fits_short_source_rows_and_checks_long_target_rows(cli, tmp_path):
    """--fit-on with --holdout seq: the constants come from the source's rows of the training
    lengths only, and only the target's rows of the other lengths are validated."""
    import json

    from sparq_sim.validation.measurements import read_measurements
    a10g, a100 = _subset_csv(tmp_path, "a10g"), _subset_csv(tmp_path, "a100-40gb")
    code, out, err = cli("validate", "--measurements", str(a100), "--fit-on", str(a10g), "--holdout", "seq",
                         "--train-seq", "2048,4096", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    long_rows = [m for m in read_measurements(a100) if m.seq not in (2048, 4096)]
    assert report["overall"]["n"] == len(long_rows) > 0
    assert report["fitted_on"].endswith("(S in 2048, 4096)")
    assert report["fits"]["fitted_on"]["rows"] == len([m for m in read_measurements(a10g) if m.seq in (2048, 4096)])


@pytest.mark.parametrize("extra,needle", [(("--write-accuracy", "acc.json"), "drop --holdout"),
                                          (("--train-seq", "99999"), "no rows of S in [99999]")])
def test_fit_on_with_holdout_bad_combinations_are_one_line_and_exit_2(cli, tmp_path, extra, needle):
    a10g, a100 = _subset_csv(tmp_path, "a10g"), _subset_csv(tmp_path, "a100-40gb")
    code, out, err = cli("validate", "--measurements", str(a100), "--fit-on", str(a10g), "--holdout", "seq", *extra)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "acc.json").exists()
