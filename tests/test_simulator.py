"""The DRAM simulator: known answers, the K-stored-once effect, the timer and the CLI."""

import dataclasses
import json

import numpy as np
import pytest

from sparq_sim.errors import UserError
from sparq_sim.hardware import load_device, parse_device
from sparq_sim.implementations.ideal import IMPLEMENTATION as IDEAL
from sparq_sim.models import get_preset
from sparq_sim.simulator import engine
from sparq_sim import tomlfile
from sparq_sim.simulator.config import dram_config, load_standards
from sparq_sim.simulator.patterns import map_addresses
from sparq_sim.simulator.timer import SimulatedTimer, simulate_access
from sparq_sim.traffic import GATHER, SPARSE_ROWS, STREAM, Access
from sparq_sim.workload import Workload


@pytest.fixture(scope="module")
def h100():
    return dram_config(load_device("h100"))


@pytest.fixture(scope="module")
def epyc():
    return dram_config(load_device("epyc-7763"))


def test_every_device_has_a_valid_dram_section():
    from sparq_sim.hardware import list_devices
    standards = load_standards()
    for device in list_devices():
        cfg = dram_config(device)
        assert cfg.standard in standards
        assert cfg.fabric_latency > 0 and cfg.max_requests >= cfg.max_demand >= 1
        assert cfg.interleave_bytes % cfg.request_bytes == 0


@pytest.mark.parametrize("hw", ["h100", "epyc-7763", "a10g", "xeon-8480"])
def test_long_stream_reaches_sustainable_bandwidth(hw):
    device = load_device(hw)
    r = simulate_access(dram_config(device), Access(STREAM, 1, 1 << 30))
    assert r.moved_bytes == 1 << 30
    assert r.achieved_Bps == pytest.approx(device.sustained_bandwidth, rel=0.03)
    assert r.row_hit_rate > 0.9


def test_stream_on_one_channel_gets_one_channels_share(h100):
    # Engine level: a stream's requests that map to channel 0 only, all channels simulated.
    addr = np.arange(400_000, dtype=np.int64) * h100.request_bytes
    ch, bank, row = map_addresses(addr, h100)
    keep = ch == 0
    n = int(keep.sum())
    assert n > 2000
    res = engine.simulate(h100, ch[keep], bank[keep], row[keep], np.ones(n, bool), False,
                          h100.channels, h100.max_requests, h100.max_demand)
    steady = (0.8 * n - 0.2 * n) * h100.request_bytes / (res.completions[int(0.8 * n) - 1]
                                                        - res.completions[int(0.2 * n) - 1])
    assert steady == pytest.approx(h100.sustained_Bps / h100.channels, rel=0.03)
    # Whole pipeline: chunks at a stride of one interleave period land on one channel (no hashing).
    plain = dataclasses.replace(h100, channel_hash=False)
    period = plain.interleave_bytes * plain.channels
    r = simulate_access(plain, Access(GATHER, 200_000, plain.interleave_bytes, row_bytes=period))
    assert r.achieved_Bps == pytest.approx(plain.sustained_Bps / plain.channels, rel=0.05)
    full = simulate_access(plain, Access(STREAM, 1, 200_000 * plain.interleave_bytes))
    assert full.achieved_Bps > 0.9 * plain.channels * r.achieved_Bps


@pytest.mark.parametrize("hw,unit", [("h100", 32), ("epyc-7763", 64)])
def test_four_byte_strided_gathers_move_a_whole_sector_or_line(hw, unit):
    cfg = dram_config(load_device(hw))
    a = Access(GATHER, 100_000, 4, row_bytes=4096)
    r = simulate_access(cfg, a)
    assert r.requested_bytes == 400_000
    assert r.moved_bytes == pytest.approx(100_000 * unit)
    assert r.moved_bytes / r.requested_bytes == unit / 4


@pytest.mark.parametrize("hw", ["h100", "epyc-7763"])
def test_random_row_gathers_lose_bandwidth_as_rows_shrink(hw):
    device = load_device(hw)
    cfg = dram_config(device)
    g = cfg.request_bytes
    bw = {size: simulate_access(cfg, Access(GATHER, 1 << 20, size)).achieved_Bps
          for size in (g, 2 * g, 4 * g, 1024)}
    stream = simulate_access(cfg, Access(STREAM, 1, 1 << 30)).achieved_Bps
    assert bw[g] < bw[2 * g] < bw[4 * g] * 1.02
    assert bw[g] < 0.7 * stream
    assert bw[1024] > 0.85 * stream


def _step1_k(store_k):
    w = Workload(model=get_preset("llama-2-7b"), seq=16384, r=32, k=128, kv_dtype="float16", store_k=store_k)
    device = load_device("h100-sxm")
    timer = SimulatedTimer(device)
    step1 = next(p for p in IDEAL.attention_phases(w, "sparq", device) if p.name == "step1")
    k_access = next(a for a in step1.accesses if a.what in ("K", "K_t"))
    full_k = w.batch * w.model.kv_heads * w.model.layers * w.seq * w.model.head_dim * w.kv_bytes
    return timer.access_result(k_access), full_k


def test_k_stored_once_moves_nearly_all_of_k_twice_only_r_over_dh():
    once, full_k = _step1_k("once")
    twice, _ = _step1_k("twice")
    assert once.requested_bytes == pytest.approx(full_k * 32 / 128)
    assert once.moved_bytes / full_k == pytest.approx(0.9927, abs=0.005)    # 1 - C(112,32)/C(128,32)
    assert twice.moved_bytes / full_k == pytest.approx(32 / 128, rel=0.01)
    # both are near-stream patterns, so time follows moved bytes
    assert once.time_s / twice.time_s == pytest.approx(once.moved_bytes / twice.moved_bytes, rel=0.05)


def test_deterministic_for_a_seed_and_cached(h100):
    a = Access(GATHER, 1 << 18, 256)
    simulate_access.cache_clear()
    r1 = simulate_access(h100, a, 0)
    r2 = simulate_access(h100, a, 0)
    assert r1 is r2
    simulate_access.cache_clear()
    assert simulate_access(h100, a, 0) == r1
    assert simulate_access(h100, a, 1) != r1


def test_sparse_rows_moved_bytes_match_the_analytic_count(h100):
    a = Access(SPARSE_ROWS, 200_000, 2, picks=8, row_bytes=256)
    r = simulate_access(h100, a)
    assert r.moved_bytes == pytest.approx(a.moved_bytes(32), rel=0.02)


def test_timer_phases_match_roofline_structure():
    from sparq_sim.predict import predict
    w = Workload(model=get_preset("llama-2-7b"), seq=32768)
    device = load_device("h100")
    sim = predict(w, device, timing="sim")
    roof = predict(w, device, timing="roofline")
    assert sim.timing == "sim"
    for method in ("dense", "sparq"):
        for ps, pr in zip(getattr(sim, method).attention.phases, getattr(roof, method).attention.phases):
            assert ps.name == pr.name
            assert ps.compute_s == pr.compute_s and ps.overhead_s == pr.overhead_s
            assert ps.requested_bytes == pr.requested_bytes
            if pr.moved_bytes > 1e8:   # big phases: simulated time within 10% of the roofline's
                assert ps.memory_s == pytest.approx(pr.memory_s, rel=0.1)


def test_missing_dram_section_is_a_user_error():
    device = load_device("h100")
    data = tomlfile.read(device.path, "hardware file")
    raw = {k: v for k, v in data.items() if k != "dram"}
    # the cost model needs the DRAM latency too: a file without [dram] fails when loaded
    with pytest.raises(UserError, match="field dram is missing"):
        parse_device(raw, "x.toml")
    # a [dram] section with only the latency loads, and the simulator names what it lacks
    raw["dram"] = {"idle_latency_s": data["dram"]["idle_latency_s"]}
    with pytest.raises(UserError, match=r"dram"):
        dram_config(parse_device(raw, "x.toml"))
    raw["dram"] = dict(data["dram"], standard="DDR9")
    with pytest.raises(UserError, match="DDR9"):
        dram_config(parse_device(raw, "x.toml"))
    raw["dram"] = dict(data["dram"], channels={"value": 8, "basis": "guess", "source": "x"})
    with pytest.raises(UserError, match="dram.channels"):
        dram_config(parse_device(raw, "x.toml"))


def test_predict_timing_sim_cli(cli):
    code, out, err = cli("predict", "--timing", "sim", "--hw", "h100", "--seq", "128k", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["timing"] == "sim"
    assert data["speedup"]["attention"] > 5


def test_simulate_cli_table_and_json(cli):
    code, out, err = cli("simulate", "--hw", "h100", "--seq", "16k", "--r", "32", "--k", "128",
                         "--store-k", "once", "--accesses")
    assert code == 0, err
    assert "row hits" in out and "channel use" in out and "sparse_rows" in out
    code, out, err = cli("simulate", "--hw", "epyc-7763", "--seq", "8k", "--method", "sparq", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    phases = {p["name"]: p for p in data["sparq"]}
    assert {"step1", "step2_keys", "step2_values"} <= set(phases)
    for p in data["sparq"]:
        assert 0 <= p["row_hit_rate"] <= 1 and p["moved_bytes"] >= p["requested_bytes"] * 0.99
    code, out, err = cli("simulate", "--hw", "h100", "--seq", "4k", "--slice-requests", "5")
    assert code == 2 and "slice-requests" in err


def test_sim_path_imports_neither_torch_nor_numba(fresh_cli):
    _, modules = fresh_cli(['predict', '--timing', 'sim', '--hw', 'h100', '--seq', '128k'])
    assert [m for m in ('torch', 'numba') if m in modules] == []
