"""--method NAME and --set on predict, plan, sweep and roofline: added beside the dense-vs-SparQ
path, numbers by hand, and bad input in one line."""

import csv
import json

import pytest

H100_FREE = 85_899_345_920 * 0.9 - 6.738e9 * 2


def test_predict_method_json_is_dense_against_that_method(cli):
    code, out, err = cli("predict", "--hw", "h100", "--seq", "32k", "--method", "quest", "--compression", "1/8",
                         "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert list(data["methods"]) == ["dense", "quest"]
    quest = data["methods"]["quest"]
    assert quest["settings"] == {"page": 16, "budget": 2048}
    # 32 layers x 32 KV heads x (2*128*2048 page bounds + 2*2048*128 K,V) + 32*32*2*128 q/out, x 2 bytes
    assert quest["attention"]["ideal_bytes"] == (1024 * (2 * 128 * 2048 + 2 * 2048 * 128) + 1024 * 256) * 2


def test_predict_without_method_is_unchanged(cli):
    code, out, err = cli("predict", "--hw", "h100", "--seq", "32k", "--format", "json", "--impl", "ideal",
                         "--timing", "roofline")
    assert code == 0 and set(json.loads(out)) >= {"dense", "sparq", "speedup"}
    code2, out2, _ = cli("predict", "--hw", "h100", "--seq", "32k", "--format", "json", "--impl", "ideal",
                         "--timing", "roofline", "--method", "sparq")
    assert out2 == out


def test_predict_set_sparq_int8(cli):
    code, out, err = cli("predict", "--hw", "h100", "--seq", "4k", "--set", "sparq.kt_format=int8", "--format", "json")
    assert code == 0, err
    s = json.loads(out)["methods"]["sparq"]
    assert s["settings"]["kt_format"] == "int8"
    # r = 16, k = 256 at 1/8; step 1: 16 * (4096 + 64*2) bytes per KV head instead of 16*4096*2
    per_layer = 32 * (16 * 4224 + 2 * 256 * 128 * 2 + 2 * 128 * 2) + 32 * 2 * 128 * 2
    assert s["attention"]["ideal_bytes"] == per_layer * 32


def test_plan_method_max_batch_by_hand(cli):
    code, out, err = cli("plan", "--hw", "h100", "--seq", "32k", "--method", "streamingllm", "--compression", "1/8",
                         "--format", "json")
    assert code == 0, err
    m = json.loads(out)["methods"]
    per_seq = 2 * 32 * 32 * 128 * 4096 * 2                     # 4 sinks + 4092 window = S/8 positions
    assert m["streamingllm"]["kv_bytes_per_sequence"] == per_seq
    assert m["streamingllm"]["max_batch"] == int(H100_FREE // per_seq) == 29
    assert m["dense"]["max_batch"] == 3
    assert m["streamingllm"]["tokens_per_s"] == pytest.approx(29 / m["streamingllm"]["step_time_s"])


def test_sweep_method_rows(cli, tmp_path):
    out = tmp_path / "s.csv"
    code, text, err = cli("sweep", "--hw", "h100", "--seq", "4k,8k", "--method", "loki", "--compression", "1/4,1/8",
                          "--out", out)
    assert code == 0, err
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 4 and {r["method"] for r in rows} == {"loki"}
    assert (tmp_path / "s.png").exists()
    code, _, err = cli("sweep", "--hw", "h100", "--seq", "4k", "--compression", "1/8", "--out", tmp_path / "t.csv")
    assert code == 2 and "--compression applies with --method" in err


def test_roofline_method_points(cli, tmp_path):
    out = tmp_path / "r.png"
    code, text, err = cli("roofline", "--hw", "a100-40gb", "--seq", "4k,32k", "--method", "h2o", "--out", out,
                          "--format", "json")
    assert code == 0, err
    points = json.loads(text)["points"]
    assert {p["method"] for p in points} == {"dense", "h2o"} and len(points) == 8 and out.exists()


@pytest.mark.parametrize("argv,message", [
    (["predict", "--hw", "h100", "--seq", "32k", "--method", "bigbird"], "unknown method"),
    (["predict", "--hw", "h100", "--seq", "32k", "--method", "quest", "--r", "8"], "SparQ flag"),
    (["predict", "--hw", "h100", "--seq", "32k", "--method", "flexgen", "--set", "flexgen.k=0"], "k = 0"),
    (["plan", "--hw", "h100", "--seq", "32k", "--method", "quest", "--compression", "1/4,1/8"], "one --compression"),
])
def test_bad_input_is_one_line(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
