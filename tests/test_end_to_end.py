"""validate --end-to-end: published whole-decoder speedups against the composed models and the
ideal bound, recorded for predict's error line."""

import json
import shutil

import pytest

from sparq_sim.calibration import accuracy
from sparq_sim.errors import UserError
from sparq_sim.hardware import load_device
from sparq_sim.predict import predict
from sparq_sim.validation import end_to_end

HEADER = ",".join(end_to_end.COLUMNS)


def test_shipped_setups_cite_the_paper_and_name_both_kinds():
    setups = end_to_end.read_setups()
    assert {load_device(s.hardware).kind for s in setups} == {"gpu", "cpu"}
    assert all("2312.04985" in s.source and s.published_speedup > 1 for s in setups)


def test_error_is_the_predicted_over_the_published_speedup(tmp_path):
    f = tmp_path / "e2e.csv"
    f.write_text(HEADER + "\nsmall,h100-pcie,gpt-fast,llama-2-7b,8192,1,bfloat16,bfloat16,,,,1.5,test\n")
    (s,) = end_to_end.read_setups(f)
    (r,) = end_to_end.check([s])
    composed = predict(s.workload(), load_device("h100-pcie"), "gpt-fast").speedup["step"]
    ideal = predict(s.workload(), load_device("h100-pcie"), "ideal", "roofline").speedup["step"]
    assert r["predicted_speedup"] == {"gpt-fast": composed, "ideal": ideal}
    assert r["error_pct"]["ideal"] == pytest.approx(100 * (ideal / 1.5 - 1))
    assert r["timing"] == {"gpt-fast": "calibrated", "ideal": "roofline"} and r["kind"] == "gpu"


def test_malformed_setups_name_file_and_line(tmp_path):
    f = tmp_path / "e2e.csv"
    f.write_text(HEADER + "\nx,h100,gpt-fast,llama-2-7b,many,1,float16,float16,,,,1.9,s\n")
    with pytest.raises(UserError, match="e2e.csv line 2"):
        end_to_end.read_setups(f)
    f.write_text("setup,hardware\n")
    with pytest.raises(UserError, match="columns must be"):
        end_to_end.read_setups(f)


def test_cli_table_json_and_bad_flags(cli, tmp_path):
    code, out, err = cli("validate", "--end-to-end", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["end_to_end"]
    assert {tuple(sorted(r["predicted_speedup"])) for r in rows} == {("gpt-fast", "ideal"), ("ideal", "llama.cpp")}
    code, _, err = cli("validate", "--end-to-end", "--plot", str(tmp_path / "x.png"))
    assert code == 2 and err.count("\n") == 1 and "--plot cannot go with --end-to-end" in err
    code, _, err = cli("validate", "--end-to-end", "--write-accuracy", str(tmp_path / "no" / "a.json"))
    assert code == 2 and err.count("\n") == 1


def test_write_accuracy_keeps_the_kernel_directions(cli, tmp_path):
    target = tmp_path / "accuracy.json"
    shutil.copy(accuracy.PATH, target)
    before = json.loads(target.read_text())["directions"]
    code, _, err = cli("validate", "--end-to-end", "--write-accuracy", str(target))
    assert code == 0, err
    data = json.loads(target.read_text())
    assert data["directions"] == before and len(data["end_to_end"]["setups"]) == len(end_to_end.read_setups())


def test_predict_reports_the_end_to_end_error_of_its_own_implementation_and_timing(tmp_path, monkeypatch):
    record = {"directions": {}, "end_to_end": {"command": "test", "setups": [
        {"setup": "s", "hardware": "h100-pcie", "kind": "gpu", "seq": 45000, "published_speedup": 2.0,
         "source": "src", "predicted_speedup": {"ideal": 2.2, "gpt-fast": 1.5},
         "timing": {"ideal": "roofline", "gpt-fast": "calibrated"}, "error_pct": {"ideal": 10.0, "gpt-fast": -25.0}}]}}
    path = tmp_path / "accuracy.json"
    path.write_text(json.dumps(record))
    monkeypatch.setattr(accuracy, "PATH", path)
    from sparq_sim.models import get_preset
    from sparq_sim.workload import Workload
    w = Workload.build(get_preset("llama-2-7b"), 4096)
    e = predict(w, load_device("h100"), "ideal", "roofline").error
    assert e["speedup_median_abs_pct"] == 10.0 and e["median_abs_pct"] is None
    assert [c["error_pct"] for c in e["end_to_end"]] == [10.0]
    assert predict(w, load_device("h100"), "ideal", "sim").error is None        # another timing: not checked
    assert predict(w, load_device("epyc-7763"), "ideal", "roofline").error is None   # no CPU setup recorded
