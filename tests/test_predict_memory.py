"""predict says whether the workload fits in device memory, by plan's rule."""

import json

ARGS = ("--impl", "ideal", "--timing", "roofline")


def test_70b_at_128k_batch_4_does_not_fit_an_h200(cli):
    code, out, err = cli("predict", "--hw", "h200", "--model", "llama-2-70b", "--seq", "128k", "--batch", "4",
                         *ARGS, "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    weights = 68.977e9 * 2                                   # params x fp16
    kv_token = 80 * 8 * 128 * 2                              # layers x KV heads x d_h x fp16, per tensor
    dense = weights + 4 * 131072 * kv_token * 2              # K and V
    sparq = weights + 4 * (131072 * kv_token * 3 + 80 * 8 * 128 * 4)   # K twice, V, fp32 running mean
    assert abs(d["dense"]["memory_bytes"] - dense) < 1
    assert abs(d["sparq"]["memory_bytes"] - sparq) < 1
    assert round(dense / 1e9) == 310
    assert d["dense"]["fits_in_memory"] is False and d["sparq"]["fits_in_memory"] is False
    assert d["hardware"]["capacity_bytes"] == 141e9
    assert abs(d["hardware"]["reserve_bytes"] - 14.1e9) < 1


def test_7b_at_4k_fits_an_h100(cli):
    code, out, err = cli("predict", "--hw", "h100", "--seq", "4k", *ARGS, "--format", "json")
    d = json.loads(out)
    assert d["dense"]["fits_in_memory"] is True and d["sparq"]["fits_in_memory"] is True


def test_fit_flag_agrees_with_plan_max_batch(cli):
    """The largest batch plan reports fits; one more does not."""
    code, out, err = cli("plan", "--hw", "h100", "--seq", "32k", *ARGS, "--format", "json")
    limit = json.loads(out)["dense"]["max_batch"]
    for batch, fits in ((limit, True), (limit + 1, False)):
        code, out, err = cli("predict", "--hw", "h100", "--seq", "32k", "--batch", batch, *ARGS, "--format", "json")
        assert json.loads(out)["dense"]["fits_in_memory"] is fits


def test_table_line(cli):
    code, out, err = cli("predict", "--hw", "h200", "--model", "llama-2-70b", "--seq", "128k", "--batch", "4", *ARGS)
    line = next(l for l in out.splitlines() if l.startswith("memory (weights + KV)"))
    assert "310 GB (does not fit)" in line and "of 127 GB usable" in line
