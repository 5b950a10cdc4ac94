"""`sparq-sim compare`: the JSON shape, numbers against hand-computed values, dense as the
baseline, FlexGen's floor, and bad input in one line."""

import json

import pytest

from sparq_sim.compare import compare
from sparq_sim.hardware import load_device
from sparq_sim.models import get_preset
from sparq_sim.predict import predict
from sparq_sim.workload import Workload

H100_FREE = 85_899_345_920 * 0.9 - 6.738e9 * 2       # capacity - 10% reserve - fp16 weights


def run_json(cli, *argv):
    code, out, err = cli("compare", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_json_shape_is_the_documented_one(cli):
    data = run_json(cli, "--methods", "dense,sparq,quest,h2o", "--hw", "h100", "--model", "llama-2-7b",
                    "--seq", "32k", "--compression", "1/8")
    assert list(data["methods"]) == ["dense", "sparq", "quest", "h2o"]
    for entry in data["methods"].values():
        assert set(entry) == {"settings", "attention", "step", "kv_memory_bytes", "max_batch", "tokens_per_s",
                              "quality"}
        assert set(entry["attention"]) == {"bytes", "ideal_bytes", "time_s"}
        assert set(entry["step"]) == {"bytes", "time_s"}
        assert entry["tokens_per_s"] == pytest.approx(1 / entry["step"]["time_s"])


def test_numbers_by_hand_llama2_h100(cli):
    data = run_json(cli, "--methods", "sparq,h2o", "--hw", "h100", "--seq", "32k", "--compression", "1/8")["methods"]
    # dense: 32 layers x 32 heads x (2*32768*128 + 2*128) elements x 2 bytes
    assert data["dense"]["attention"]["ideal_bytes"] == 32 * 32 * (2 * 32768 * 128 + 2 * 128) * 2
    assert data["dense"]["kv_memory_bytes"] == 2 * 32 * 32 * 128 * 32768 * 2
    assert data["dense"]["max_batch"] == int(H100_FREE // (2 * 32 * 32 * 128 * 32768 * 2)) == 3
    # SparQ, K twice: 3/2 of dense plus the fp32 value mean, 32*32*128*4 bytes
    sparq_seq = 3 * 32 * 32 * 128 * 32768 * 2 + 32 * 32 * 128 * 4
    assert data["sparq"]["kv_memory_bytes"] == sparq_seq and data["sparq"]["max_batch"] == 2
    # H2O at 1/8: k = 32768 * (1/8 - 1/128) = 3840 kept; cache 32*32*(2*3840*128 + 32768)*2 bytes
    assert data["h2o"]["settings"] == {"heavy": 1920, "recent": 1920}
    assert data["h2o"]["kv_memory_bytes"] == 32 * 32 * (2 * 3840 * 128 + 32768) * 2
    assert data["h2o"]["max_batch"] == int(H100_FREE // data["h2o"]["kv_memory_bytes"]) == 30


def test_dense_and_sparq_agree_with_predict():
    d, m = load_device("h100"), get_preset("llama-3-8b")
    c = compare(d, m, 32768, ["sparq"], batch=4, compression=1 / 8)
    p = predict(Workload.build(m, 32768, batch=4, compression=1 / 8), d, "ideal", "roofline")
    assert c.entries["dense"].result.step.time_s == p.dense.step.time_s
    assert c.entries["sparq"].result.step.time_s == p.sparq.step.time_s
    assert c.speedup("sparq") == pytest.approx(p.speedup["step"])


def test_flexgen_is_shown_at_its_floor_with_a_note(cli):
    data = run_json(cli, "--methods", "flexgen", "--hw", "h100", "--seq", "4k", "--compression", "1/8")
    assert data["methods"]["flexgen"]["settings"] == {"k": 1}
    assert any("flexgen" in n and "1/2" in n for n in data["notes"])


def test_quality_appears_only_for_its_model_unless_borrowed(cli):
    own = run_json(cli, "--methods", "sparq", "--hw", "h100", "--seq", "32k", "--compression", "1/8",
                   "--model", "llama-2-13b")
    squad = [q for q in own["methods"]["sparq"]["quality"] if q["task"] == "squad"][0]
    assert squad["retention"] == pytest.approx(74.9 / 80.8) and squad["status"] == "verified" and squad["page"] == "6"
    other = run_json(cli, "--methods", "sparq", "--hw", "h100", "--seq", "32k", "--compression", "1/8")
    assert other["methods"]["sparq"]["quality"] == []
    borrowed = run_json(cli, "--methods", "sparq", "--hw", "h100", "--seq", "32k", "--compression", "1/8",
                        "--quality-model", "llama-2-13b")
    assert borrowed["methods"]["sparq"]["quality"] and any("borrowed" in n for n in borrowed["notes"])


def test_table_and_plot(cli, tmp_path):
    plot = tmp_path / "c.png"
    code, out, err = cli("compare", "--methods", "sparq,streamingllm", "--hw", "a100-40gb", "--seq", "32k",
                         "--plot", plot)
    assert code == 0, err
    assert "streamingllm" in out and "max batch" in out and plot.stat().st_size > 0


@pytest.mark.parametrize("argv,message", [
    (["--methods", "dense,bigbird"], "unknown method"),
    (["--methods", "sparq", "--set", "quest.page=32"], "not among the methods"),
    (["--methods", "quest", "--set", "quest.page=x"], "page must be an integer"),
    (["--methods", "sparq", "--plot", "out.txt"], "--plot"),
    (["--methods", "sparq", "--r", "8"], "unrecognized arguments"),
])
def test_bad_input_is_one_line(cli, argv, message, tmp_path):
    code, out, err = cli("compare", "--hw", "h100", "--seq", "32k", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_compare_and_recommend_never_import_torch(fresh_cli):
    codes, modules = fresh_cli(['compare', '--hw', 'h100', '--seq', '32k', '--format', 'json'],
                               ['recommend', '--hw', 'h100', '--seq', '32k', '--format', 'json'])
    bad = [m for m in ('torch', 'numba', 'triton', 'matplotlib') if m in modules]
    assert codes == [0, 0] and not bad, bad


def test_a_batch_that_does_not_fit_is_said(cli):
    # A100 40 GB: 0.9 * 42.95 GB - 13.48 GB = 25.2 GB free; SparQ with K twice needs 25.8 GB per sequence
    data = run_json(cli, "--methods", "sparq", "--hw", "a100-40gb", "--seq", "32k", "--compression", "1/8")
    assert data["methods"]["sparq"]["max_batch"] == 0
    assert any("sparq: batch 1 does not fit (largest batch 0)" in n for n in data["notes"])
    int8 = run_json(cli, "--methods", "sparq", "--hw", "a100-40gb", "--seq", "32k", "--compression", "1/8",
                    "--set", "sparq.kt_format=int8")
    assert int8["methods"]["sparq"]["max_batch"] == 1
