"""`sparq-sim recommend`: the JSON shape, the Pareto property, reasons, constraints by hand, and
settings without published quality listed as such, never scored."""

import json

import pytest

from sparq_sim.recommend import Candidate, dominates

WEIGHTS = 6.738e9 * 2
SPARQ_TWICE_SEQ = 3 * 32 * 32 * 128 * 32768 * 2 + 32 * 32 * 128 * 4    # K, K_t, V + fp32 value mean


def run_json(cli, *argv):
    code, out, err = cli("recommend", "--hw", "h100", "--model", "llama-2-7b", "--seq", "32k", *argv,
                         "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_json_shape(cli):
    data = run_json(cli)
    assert data["front"] and data["excluded"]
    for e in data["front"]:
        assert set(e) == {"method", "settings", "tokens_per_s", "memory_bytes", "retention", "reason"}
    for e in data["excluded"]:
        assert set(e) == {"method", "settings", "reason"} and e["reason"]
    rates = [e["tokens_per_s"] for e in data["front"]]
    assert rates == sorted(rates, reverse=True)


def test_no_published_quality_is_listed_not_scored(cli):
    data = run_json(cli)
    for e in data["front"]:
        if e["method"] == "dense":
            assert e["retention"] == 1.0
        else:
            assert e["retention"] is None and "listed, not scored" in e["reason"]


def test_front_is_pareto_optimal(cli):
    data = run_json(cli, "--quality-model", "llama-2-13b")
    cands = [Candidate(e["method"], e["settings"], None, tokens_per_s=e["tokens_per_s"],
                       memory_bytes=e["memory_bytes"], retention=e["retention"]) for e in data["front"]]
    for a in cands:
        assert not any(dominates(b, a) for b in cands if b is not a)


def test_batch_that_does_not_fit_says_so(cli):
    data = run_json(cli, "--batch", "8", "--methods", "sparq")
    reasons = [e["reason"] for e in data["excluded"]]
    # K twice: (80 GiB * 0.9 - 13.476 GB) // 25.77 GB per sequence = 2
    assert "SparQ r=16, k=2048, K twice does not fit at batch 8 (largest batch 2)" in reasons


def test_min_retention_with_borrowed_quality(cli):
    data = run_json(cli, "--batch", "2", "--methods", "sparq,h2o,streamingllm", "--min-retention", "squad:0.9",
                    "--quality-model", "llama-2-13b")
    front = {(e["method"], e["settings"].get("r"), e["settings"].get("store_k")): e for e in data["front"]}
    twice = front[("sparq", 16, "twice")]
    assert twice["retention"] == pytest.approx(74.9 / 80.8)
    assert twice["memory_bytes"] == pytest.approx(WEIGHTS + 2 * SPARQ_TWICE_SEQ)
    assert "keeps 0.93 of squad" in twice["reason"] and "table 2, page 6" in twice["reason"]
    assert all(e["retention"] is not None and e["retention"] >= 0.9 for e in data["front"])
    assert any("h2o" in e["method"] and "below --min-retention 0.9" in e["reason"] for e in data["excluded"])
    assert any("K_t int8: no published quality" in e["reason"] for e in data["excluded"])
    assert any("borrowed" in n for n in data["notes"])


def test_max_memory_limits_the_front(cli):
    data = run_json(cli, "--max-memory", "40GB")
    assert all(e["memory_bytes"] <= 40e9 for e in data["front"])
    assert any("more than --max-memory 40 GB" in e["reason"] for e in data["excluded"])


def test_unknown_quality_never_dominates_known():
    known = Candidate("dense", {}, None, tokens_per_s=10, memory_bytes=10, retention=1.0)
    unknown = Candidate("h2o", {}, None, tokens_per_s=100, memory_bytes=1, retention=None)
    assert not dominates(unknown, known)
    assert not dominates(known, unknown)
    better = Candidate("h2o", {}, None, tokens_per_s=100, memory_bytes=1, retention=0.5)
    assert dominates(better, unknown) is True


@pytest.mark.parametrize("argv,message", [
    (["--min-retention", "squad"], "TASK:FRACTION"),
    (["--min-retention", "squad:x"], "not a number"),
    (["--max-memory", "80XB"], "--max-memory"),
    (["--methods", "sparq,bigbird"], "unknown method"),
    (["--batch", "0"], "--batch"),
    (["--task", "trivia", "--min-retention", "squad:0.9"], "different tasks"),
])
def test_bad_input_is_one_line(cli, argv, message):
    code, out, err = cli("recommend", "--hw", "h100", "--seq", "32k", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_table_output(cli):
    code, out, err = cli("recommend", "--hw", "a100-40gb", "--seq", "32k")
    assert code == 0 and "Pareto front" in out and "excluded:" in out
