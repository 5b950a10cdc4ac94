"""Published quality data: schema of every source file, a dense row for every cited (model, task),
retention = method / dense on the same row, and lookups that never cross models."""

import csv

import pytest

from sparq_sim import quality
from sparq_sim.methods import NAMES


def test_every_source_file_has_the_schema():
    files = quality.source_files()
    assert [f.name for f in files] == ["sparq-2312.04985v6.csv"]
    for f in files:
        with open(f, newline="") as fh:
            assert tuple(csv.DictReader(fh).fieldnames) == quality.COLUMNS
        assert quality.load_file(f)


def test_every_row_cites_paper_table_and_page_or_says_it_is_unverified():
    for row in quality.all_rows():
        assert row.paper and row.table and row.model and row.task and row.metric
        assert row.method in NAMES
        assert row.status in quality.STATUSES
        assert 0 < row.compression <= 1
        if row.status == "verified":
            assert row.page.isdigit(), row
        else:
            assert row.note, row          # an unverified figure says why
        if row.method == "dense":
            assert row.compression == 1


def test_every_cited_model_and_task_has_a_dense_row():
    rows = quality.all_rows()
    for row in rows:
        dense = quality.dense_row(rows, row)
        assert dense is not None, f"no dense row for {row.key}"


def test_retention_is_method_over_dense_on_the_same_row():
    found = quality.lookup("llama-2-13b", "sparq", 1 / 8)
    squad = [r for r in found if r["task"] == "squad"][0]
    assert squad["retention"] == pytest.approx(74.9 / 80.8)
    assert squad["dense_value"] == 80.8


def test_lower_is_better_metrics_invert():
    rows = [quality.QualityRow("p", "1", "1", "m", "wikitext", "bits per character", "dense", "", 1.0, 0.5, "verified", ""),
            quality.QualityRow("p", "1", "1", "m", "wikitext", "bits per character", "sparq", "", 0.125, 0.55, "verified", "")]
    assert quality.lookup("m", "sparq", 0.125, rows)[0]["retention"] == pytest.approx(0.5 / 0.55)


def test_lookup_never_crosses_models_or_compressions():
    assert quality.lookup("llama-2-7b", "sparq", 1 / 8) == []
    assert quality.lookup("llama-2-13b", "sparq", 1 / 4) == []
    assert quality.lookup("llama-2-13b", "quest", 1 / 8) == []


def test_malformed_file_names_file_and_line(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text(",".join(quality.COLUMNS) + "\np,1,1,m,t,acc,dense,,one,80,verified,\n")
    with pytest.raises(ValueError, match="x.csv line 2"):
        quality.load_file(bad)
    bad.write_text("paper,table\n")
    with pytest.raises(ValueError, match="columns must be"):
        quality.load_file(bad)


TABLE2_MODELS = ("llama-2-13b", "llama-3-8b", "mistral-7b", "gemma-7b", "pythia-6.9b")
TABLE2_TASKS = ("squad", "triviaqa", "cnn-dailymail", "wikitext", "repetition")


def test_the_main_results_table_is_complete():
    """Table 2: the largest model of five families x five tasks, dense plus SparQ, H2O and LM-Infinite
    at 1/2 and 1/8: 7 rows a (model, task), every one read from the table (status verified)."""
    rows = [r for r in quality.all_rows() if r.table == "2"]
    assert {r.model for r in rows} == set(TABLE2_MODELS)
    for model in TABLE2_MODELS:
        for task in TABLE2_TASKS:
            cell = [r for r in rows if r.model == model and r.task == task]
            assert sorted((r.method, r.compression) for r in cell) == sorted(
                [("dense", 1.0)] + [(m, c) for m in ("h2o", "sparq", "streamingllm") for c in (0.5, 0.125)])
            assert all(r.status == "verified" and r.page == "6" for r in cell)


def test_retention_spot_checks_against_the_paper():
    def one(model, method, compression, task):
        found = [q for q in quality.lookup(model, method, compression) if q["task"] == task]
        assert len(found) == 1
        return found[0]["retention"]
    assert one("llama-3-8b", "sparq", 1 / 8, "repetition") == pytest.approx(213 / 213)
    assert one("gemma-7b", "h2o", 1 / 8, "wikitext") == pytest.approx(0.59 / 0.62)     # BPC: lower is better
    assert one("llama-2-13b", "streamingllm", 1 / 8, "squad") == pytest.approx(30.1 / 80.8)
    # Table 3 (needle in a haystack, LLaMA-2-7B-32K): retention against the dense row of the same S range
    assert one("llama-2-7b-32k", "sparq", 1 / 8, "needle-24k-32k") == pytest.approx(87.5 / 90.4)
    assert one("llama-2-7b-32k", "h2o", 1 / 4, "needle-8k-16k") == pytest.approx(5.9 / 100)
