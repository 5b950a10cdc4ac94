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
