"""The one schema of the data files: the writer's TOML reads back as written, fields are checked
against their ranges, unknown keys are named, and every data file goes through it."""

import math

import pytest

from sparq_sim import tomlfile
from sparq_sim.errors import UserError
from sparq_sim.schema import (Basis, Figure, FigureField, Flag, Number, Section, Strings, Table, Text, dumps,
                              read)


def test_writer_round_trips_figures_tables_and_awkward_strings():
    data = {"name": 'a "quoted" \\ name', "n": 3, "x": 0.1 + 0.2, "on": False, "tags": ["a", "b"],
            "memory": {"bandwidth_Bps": Figure(3.35e12, "datasheet", "line one\nline two"),
                       "deep": {"eff.stream": {"value": 1e-300, "basis": "fitted", "source": "tab\there"}}}}
    text = dumps(data, "a header\nof two lines")
    assert text.startswith("# a header\n# of two lines\n")
    back = tomlfile.parse(text, "test")
    assert back["name"] == data["name"] and back["n"] == 3 and back["on"] is False and back["tags"] == ["a", "b"]
    assert back["x"] == 0.1 + 0.2                                   # exact: repr, not rounded
    assert back["memory"]["bandwidth_Bps"] == {"value": 3.35e12, "basis": "datasheet", "source": "line one\nline two"}
    assert back["memory"]["deep"]["eff.stream"]["value"] == 1e-300
    assert "[memory.deep]" in text and '"eff.stream" = {' in text     # dotted keys are quoted
    with pytest.raises(ValueError, match="finite"):
        dumps({"x": math.inf})


SPEC = Section({
    "name": Text(),
    "kind": Text(choices=("gpu", "cpu")),
    "flag": Flag(required=False),
    "aliases": Strings(required=False),
    "rate": Number("B/s", 0),
    "sec": Section({
        "size": FigureField("bytes", 0, 4096, power_of_two=True),
        "count": FigureField("units", 0, 100, whole=True),
        "cost": FigureField("s", 0, 1, low_inclusive=True, required=False),
        "peaks": Table(FigureField("flop/s", 1), keys=("float32", "float16"), what="dtype", needs=("float32",)),
    }),
})


def _fig(v, basis="datasheet"):
    return {"value": v, "basis": basis, "source": "test"}


def _good():
    return {"name": "x", "kind": "gpu", "rate": 5.0,
            "sec": {"size": _fig(64), "count": _fig(8), "peaks": {"float32": _fig(10.0)}}}


def test_reader_types_the_result():
    out = read(SPEC, _good(), "test file t.toml")
    assert out["name"] == "x" and out["flag"] is None and out["rate"] == 5.0
    assert out["sec"]["size"] == Figure(64.0, Basis.DATASHEET, "test") and out["sec"]["cost"] is None
    assert out["sec"]["peaks"]["float32"].basis == "datasheet"


@pytest.mark.parametrize("edit,needle", [
    (lambda d: d.update(nmae="x"), "test file t.toml: unknown field 'nmae' in the top level"),
    (lambda d: d["sec"].update(sise=_fig(1)), "unknown field 'sise' in section [sec]"),
    (lambda d: d.pop("name"), "field name is missing"),
    (lambda d: d.update(kind="fpga"), "field kind must be one of gpu, cpu, got 'fpga'"),
    (lambda d: d.update(flag="yes"), "field flag must be true or false"),
    (lambda d: d.update(aliases=[1]), "field aliases must be a list of strings"),
    (lambda d: d.update(rate=0), "field rate: value must be above 0, got 0"),
    (lambda d: d["sec"].update(size=_fig(48)), "field sec.size: value must be a power of two, got 48"),
    (lambda d: d["sec"].update(size=_fig(8192)), "field sec.size: value must be above 0 and at most 4096"),
    (lambda d: d["sec"].update(count=_fig(2.5)), "field sec.count: value must be a whole number, got 2.5"),
    (lambda d: d["sec"].update(count=_fig(math.nan)), "field sec.count: value must be a finite number"),
    (lambda d: d["sec"].update(cost=_fig(-1e-9)), "field sec.cost: value must be at least 0 and at most 1"),
    (lambda d: d["sec"].update(count=_fig(8, "guess")), "field sec.count: basis must be one of datasheet"),
    (lambda d: d["sec"].update(count={"value": 8, "basis": "assumed", "source": " "}), "source is missing"),
    (lambda d: d["sec"].update(count={**_fig(8), "unit": "x"}), "field sec.count: unknown keys unit"),
    (lambda d: d["sec"].update(count=8), "field sec.count: expected a table"),
    (lambda d: d["sec"]["peaks"].update(fp4=_fig(10.0)), "field sec.peaks.fp4: unknown dtype (choose from"),
    (lambda d: d["sec"]["peaks"].pop("float32"), "field sec.peaks.float32 is missing"),
    (lambda d: d.update(sec=3), "field sec must be a table"),
])
def test_reader_names_the_bad_field(edit, needle):
    data = _good()
    edit(data)
    with pytest.raises(UserError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        read(SPEC, data, "test file t.toml")


def test_dram_standards_file_goes_through_the_schema():
    from sparq_sim.simulator.config import STANDARDS, STANDARDS_FILE
    data = tomlfile.read(STANDARDS_FILE, "DRAM standards file")
    assert read(STANDARDS, data, "x")["HBM3"]["tCL"].value == 15.0
    data["HBM3"]["tCL"]["value"] = -15.0
    with pytest.raises(UserError, match="field HBM3.tCL: value must be above 0"):
        read(STANDARDS, data, "x")
    data["HBM3"]["tCK"] = data["HBM3"].pop("tCL")
    with pytest.raises(UserError, match=r"unknown field 'tCK' in section \[HBM3\]"):
        read(STANDARDS, data, "x")


def test_calibration_file_with_an_unknown_key_names_it(tmp_path):
    from sparq_sim.calibration import store
    path = tmp_path / "bad.toml"
    path.write_text((store.HERE / "gpu.toml").read_text().replace("[meta]", "bandwith_Bps = 1.0\n\n[meta]", 1))
    with pytest.raises(UserError, match="unknown field 'bandwith_Bps' in the top level"):
        store.load(path)


def test_calibration_file_round_trips_through_the_writer(tmp_path):
    from sparq_sim.calibration import store
    cal = store.load(store.HERE / "gpu.toml")
    text = store.dumps(cal["device"], cal["family"], cal["kind"], {k: v["value"] for k, v in cal["params"].items()},
                       {k: (v["basis"], v["source"]) for k, v in cal["params"].items()}, cal["meta"],
                       cal["bandwidth_Bps"])
    path = tmp_path / "gpu.toml"
    path.write_text(text)
    again = store.load(path)
    assert {k: v for k, v in again.items() if k != "path"} == {k: v for k, v in cal.items() if k != "path"}


def test_device_exposes_every_section_typed():
    from sparq_sim.hardware import load_device
    h100 = load_device("h100")
    assert h100.memory.bandwidth_Bps is h100.bandwidth_Bps and h100.memory.technology == "HBM3"
    assert h100.compute.peak_flops["float32"].value == 67e12 and h100.cache.llc_bytes is h100.llc_bytes
    assert h100.overheads.graph_kernel_s is h100.graph_kernel_s and h100.host.op_dispatch_s is h100.host_op_s
    assert h100.dram.channels.value == 160 and h100.dram.standard == "HBM3" and h100.dram.banks is None
    assert h100.dram.idle_latency_s is h100.dram_latency_s
    assert h100.link.technology == "NVLink 4" and h100.calibration == {}
    assert not hasattr(h100, "raw")
