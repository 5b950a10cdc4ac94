"""`sparq-sim predict` and `hw`: output shape, and one-line errors with exit code 2."""

import json

import pytest

from sparq_sim.hardware import HERE


def test_predict_json_has_the_promised_keys(cli):
    code, out, err = cli("predict", "--hw", "h100", "--seq", "32k", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert {"hardware", "workload", "dense", "sparq", "speedup"} <= set(data)
    for method in ("dense", "sparq"):
        for part in ("attention", "step"):
            assert {"bytes", "ideal_bytes", "time_s", "bound"} <= set(data[method][part])
    assert data["workload"]["seq"] == 32768
    assert data["workload"]["r"] == 16 and data["workload"]["k"] == 2048
    assert data["speedup"]["attention"] == pytest.approx(
        data["dense"]["attention"]["time_s"] / data["sparq"]["attention"]["time_s"])
    assert data["hardware"]["name"] == "h100-sxm"


@pytest.mark.parametrize("argv, impl, timing", [
    (("--hw", "h100"), "gpt-fast", "calibrated"),               # a GPU: the calibrated gpt-fast model
    (("--hw", "epyc-7763"), "llama.cpp", "roofline"),           # a CPU: llama.cpp at its own timing
    (("--hw", "h100", "--timing", "roofline"), "ideal", "roofline"),   # the bound, asked for
    (("--hw", "h100", "--timing", "sim"), "ideal", "sim"),
    (("--hw", "h100", "--impl", "ideal"), "ideal", "roofline"),
])
def test_predict_defaults_to_the_best_estimate_with_the_bound_beside_it(cli, argv, impl, timing):
    code, out, err = cli("predict", *argv, "--seq", "32k", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["implementation"], data["timing"]) == (impl, timing)
    if impl != "ideal":
        # the ideal roofline of the same workload, beside the estimate
        _, bound, _ = cli("predict", argv[0], argv[1], "--seq", "32k", "--impl", "ideal", "--format", "json")
        assert data["bound"]["speedup"] == pytest.approx(json.loads(bound)["speedup"])
        assert data["speedup"] != pytest.approx(data["bound"]["speedup"])


def test_predict_table_mentions_both_methods(cli):
    code, out, _ = cli("predict", "--hw", "epyc-7763", "--seq", "4096", "--model", "mistral-7b",
                       "--kv-dtype", "bf16", "--weight-dtype", "int8")
    assert code == 0
    assert "attention time" in out and "step time" in out and "GQA 32/8" in out


def test_predict_custom_shape_overrides_preset(cli):
    code, out, _ = cli("predict", "--hw", "h100", "--seq", "1k", "--layers", "2", "--heads", "4",
                       "--head-dim", "64", "--format", "json")
    assert code == 0
    model = json.loads(out)["workload"]["model"]
    assert (model["layers"], model["heads"], model["kv_heads"], model["head_dim"]) == (2, 4, 4, 64)


@pytest.mark.parametrize("argv,needle", [
    (["--hw", "nope", "--seq", "4k"], "unknown hardware 'nope'"),
    (["--hw", "h100", "--seq", "32q"], "bad --seq '32q'"),
    (["--hw", "h100", "--seq", "4k", "--r", "129"], "r = 129 exceeds the head dimension"),
    (["--hw", "h100", "--seq", "4k", "--r", "0"], "bad --r '0'"),
    (["--hw", "h100", "--seq", "4k", "--k", "0"], "bad --k '0'"),
    (["--hw", "h100", "--seq", "1k", "--k", "2000"], "k = 2000 exceeds the sequence length"),
    (["--hw", "h100", "--seq", "4k", "--kv-dtype", "fp4"], "unknown dtype 'fp4'"),
    (["--hw", "h100", "--seq", "4k", "--model", "gpt-5"], "unknown model preset 'gpt-5'"),
    (["--hw", "h100", "--seq", "4k", "--compression", "2"], "bad --compression '2'"),
    (["--hw", "h100", "--seq", "4k", "--local-window", "5000"], "local window 5000 exceeds k"),
    (["--hw", "h100", "--seq", "4k", "--heads", "30", "--kv-heads", "8"], "multiple of kv-heads"),
    (["--hw", "h100", "--seq", "4k", "--impl", "magic"], "unknown implementation 'magic'"),
    (["--hw", "h100", "--seq", "4k", "--timing", "guess"], "unknown timing 'guess'"),
    (["--hw", "h100"], "required: --seq"),
])
def test_bad_input_is_one_line_and_exit_2(cli, argv, needle):
    code, out, err = cli("predict", *argv)
    assert code == 2
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_malformed_hardware_file_is_one_line(cli, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text((HERE / "a10g.toml").read_text().replace("[memory]", "[memoir]"))
    code, out, err = cli("predict", "--hw", str(path), "--seq", "4k")
    assert code == 2 and out == ""
    assert "unknown field 'memoir'" in err and len(err.strip().splitlines()) == 1


def test_hw_list_and_show(cli):
    code, out, _ = cli("hw", "list")
    assert code == 0 and "h100-sxm" in out and "epyc-9654" in out
    code, out, _ = cli("hw", "show", "a100", "--format", "json")
    data = json.loads(out)
    assert data["name"] == "a100-80gb"
    assert data["bandwidth_Bps"]["basis"] == "datasheet" and data["bandwidth_Bps"]["source"]
    code, _, err = cli("hw", "show", "nope")
    assert code == 2 and "unknown hardware" in err


def test_prediction_path_never_imports_torch(fresh_cli):
    codes, modules = fresh_cli(['predict', '--hw', 'h100', '--seq', '32k', '--format', 'json'])
    bad = [m for m in ('torch', 'numba', 'triton', 'matplotlib') if m in modules]
    assert codes == [0] and not bad, bad
