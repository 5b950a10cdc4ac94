"""`sparq-sim roofline` and the plotting helpers: valid files, expected series, atomic writes."""

import json
import xml.etree.ElementTree as ET

import pytest

from sparq_sim.outputs import atomic_write, check_output_path


def test_roofline_png(cli, tmp_path):
    out = tmp_path / "r.png"
    code, stdout, err = cli("roofline", "--hw", "h100", "--seq", "4k,32k,128k", "--out", out)
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SparQ attn 128k" in stdout and "dense step 4k" in stdout


def test_roofline_svg_has_series(cli, tmp_path):
    out = tmp_path / "r.svg"
    code, stdout, err = cli("roofline", "--hw", "epyc-7763", "--impl", "llama.cpp", "--seq", "4k,32k",
                            "--batch", "1,4", "--format", "json", "--out", out)
    assert code == 0, err
    ET.parse(out)                               # well-formed SVG
    text = out.read_text()
    for label in ("sustained bandwidth", "datasheet peak", "float32 peak", "int8 peak",
                  "dense attn 4k B1", "SparQ step 32k B4"):
        assert label in text
    points = json.loads(stdout)["points"]
    assert len(points) == 2 * 2 * 2 * 2         # S x batch x method x part
    assert {(p["method"], p["part"]) for p in points} == {(m, q) for m in ("dense", "sparq")
                                                            for q in ("attention", "step")}


def test_roofline_series_and_measured_ceiling(tmp_path):
    from dataclasses import replace
    from sparq_sim.hardware import Figure, load_device
    from sparq_sim.plots import roofline_chart
    d = load_device("a10g")
    d = replace(d, achievable_fraction=Figure(0.8, "measured", "local profile"),
                calibration={"stream_bandwidth_Bps": Figure(5e11, "fitted", "test")})
    pts = [{"label": "dense attn 4k", "intensity": 1.0, "flops_per_s": 4e11, "method": "dense",
            "part": "attention", "case": "4k"}]
    series = roofline_chart(d, pts, tmp_path / "x.svg")
    labels = list(series)
    assert any(l.startswith("sustained bandwidth (measured)") for l in labels)
    assert any(l.startswith("stream_bandwidth_Bps (fitted)") for l in labels)
    assert series["dense attn 4k"]["kind"] == "point"
    assert {s["dtype"] for s in series.values() if s["kind"] == "compute"} == set(d.peak_flops)


@pytest.mark.parametrize("name", ["r.pdf", "r", "nodir/r.png"])
def test_bad_out_is_rejected_before_work(cli, tmp_path, name):
    code, _, err = cli("roofline", "--hw", "h100", "--out", tmp_path / name)
    assert code == 2 and "bad --out" in err
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    assert check_output_path(tmp_path / "a.SVG").suffix == ".SVG"


def test_label_spread_keeps_labels_apart_and_near_their_points():
    from sparq_sim.plots import _spread
    assert _spread([0.1, 0.5, 0.9], 0.05) == [0.1, 0.5, 0.9]             # far apart: unchanged
    out = _spread([0.50, 0.50, 0.51, 0.52], 0.05)
    assert out == pytest.approx([0.50, 0.55, 0.60, 0.65])
    out = _spread([0.96, 0.97, 0.98], 0.05)                                 # overflow: pushed down from the top
    assert out == pytest.approx([0.87, 0.92, 0.97])
    out = _spread([0.5] * 30, 0.05)                                         # more than fit: still ordered
    assert out == sorted(out) and out[-1] == pytest.approx(0.97)


def test_roofline_labels_every_point_by_name(cli, tmp_path):
    out = tmp_path / "r.svg"
    code, stdout, err = cli("roofline", "--hw", "h100", "--seq", "4k,32k,128k", "--impl", "ideal",
                            "--timing", "roofline", "--out", out)
    assert code == 0, err
    text = out.read_text()
    for method in ("dense", "SparQ"):
        for part in ("attn", "step"):
            for s in ("4k", "32k", "128k"):
                assert f"{method} {part} {s}" in text
    assert "the points, enlarged" in text and "attention layers" in text and "whole step" in text
