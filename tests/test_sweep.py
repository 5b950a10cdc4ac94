"""`sparq-sim sweep`: ranges, S/N settings, skipped combinations, CSV/JSON rows, heatmap."""

import csv
import json

from sparq_sim.commands.sweep import parse_k_spec, parse_seqs


def test_parse_ranges():
    assert parse_seqs("4k..128k") == [4096, 8192, 16384, 32768, 65536, 131072]
    assert parse_seqs("4k,45000") == [4096, 45000]
    assert parse_seqs("1000..5000") == [1000, 2000, 4000, 5000]
    label, fn = parse_k_spec("S/16")
    assert label == "S/16" and fn(32768) == 2048
    assert parse_k_spec("128")[1](4096) == 128


def test_sweep_csv_and_heatmap(cli, tmp_path):
    out = tmp_path / "sweep.csv"
    code, stdout, err = cli("sweep", "--hw", "a100,h100", "--seq", "4k..128k", "--r", "8,16,32",
                            "--k", "64,128,S/16", "--out", out)
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * 6 * 3 * 3
    assert {r["hardware"] for r in rows} == {"a100-80gb", "h100-sxm"}
    assert all(float(r["step_speedup"]) > 0 for r in rows)
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_skips_invalid_with_a_note(cli, tmp_path):
    out = tmp_path / "s.json"
    code, stdout, err = cli("sweep", "--hw", "h100", "--seq", "64,4k", "--k", "128,S/8", "--out", out,
                            "--plot", tmp_path / "h.svg")
    assert code == 0, err
    assert "skipped" in err and "k exceeds S" in err
    rows = json.loads(out.read_text())
    assert len(rows) == 3 and all(r["k"] <= r["seq"] for r in rows)
    assert (tmp_path / "h.svg").exists()


def test_sweep_bad_input(cli, tmp_path):
    code, _, err = cli("sweep", "--hw", "h100", "--seq", "4k", "--out", tmp_path / "x.txt")
    assert code == 2 and "bad --out" in err
    code, _, err = cli("sweep", "--hw", "h100", "--seq", "64", "--k", "128", "--out", tmp_path / "x.csv")
    assert code == 2 and "no valid combination" in err
    assert not (tmp_path / "x.csv").exists()
    code, _, err = cli("sweep", "--hw", "h100", "--seq", "128k..4k", "--out", tmp_path / "x.csv")
    assert code == 2 and "range" in err
