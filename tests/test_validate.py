"""sparq-sim validate: the CSV reader's errors, the error statistics, the JSON form."""

import json

import numpy as np
import pytest

from sparq_sim.errors import UserError
from sparq_sim.validation import stats
from sparq_sim.validation.measurements import COLUMNS, map_device, read_measurements

HEADER = ",".join(COLUMNS)
ROWS = [
    # device_name, device, dtype, n_head, head_dim, S, B, kernel, r, k, store_k_twice
    ("NVIDIA A10G", "cuda", "float16", 32, 128, 4096, 16, "attn-torch", "", "", "false"),
    ("NVIDIA A10G", "cuda", "float16", 32, 128, 4096, 16, "attn-mem-efficient", "", "", "false"),
    ("NVIDIA A10G", "cuda", "float16", 32, 128, 4096, 16, "sparq-attn-torch", 32, 128, "true"),
    ("NVIDIA A10G", "cuda", "float16", 32, 128, 4096, 16, "sparq-attn-triton", 32, 128, "true"),
    ("NVIDIA A10G", "cuda", "float16", 32, 128, 16384, 1, "sparq-attn-triton-oneK", 16, 512, "false"),
]
ERRORS = [+0.05, -0.10, +0.20, -0.02, 0.0]   # predicted = measured * (1 + e)


def _csv(tmp_path, rows, durations, name="m.csv", header=HEADER):
    lines = [header]
    for row, d in zip(rows, durations):
        lines.append(",".join(str(x) for x in row) + f",{float(d)!r},1e-7,200,10,2.1.2")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _predicted(tmp_path):
    """Model predictions of ROWS with the stored A10G calibration (durations do not matter)."""
    from sparq_sim.validation.core import validate
    rows = read_measurements(_csv(tmp_path, ROWS, [1e-3] * len(ROWS), "p.csv"))
    return validate(rows).predicted


# ---- reader errors: one line on stderr, exit 2 ------------------------------------------------

def test_missing_file(cli, tmp_path):
    code, out, err = cli("validate", "--measurements", tmp_path / "nope.csv")
    assert code == 2 and "not found" in err and err.count("\n") == 1 and out == ""


def test_empty_file(cli, tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    code, out, err = cli("validate", "--measurements", p)
    assert code == 2 and "is empty" in err and "Traceback" not in err


def test_header_only(cli, tmp_path):
    p = tmp_path / "h.csv"
    p.write_text(HEADER + "\n")
    code, _, err = cli("validate", "--measurements", p)
    assert code == 2 and "no rows" in err


def test_missing_columns(cli, tmp_path):
    header = HEADER.replace("duration_s,", "").replace("kernel,", "")
    p = tmp_path / "m.csv"
    p.write_text(header + "\nx\n")
    code, _, err = cli("validate", "--measurements", p)
    assert code == 2 and "missing column(s) kernel, duration_s" in err


def test_unknown_device(cli, tmp_path):
    rows = [("Graphcore IPU",) + ROWS[0][1:]]
    code, _, err = cli("validate", "--measurements", _csv(tmp_path, rows, [1e-3]))
    assert code == 2 and "unknown device 'Graphcore IPU'" in err


def test_unknown_kernel(cli, tmp_path):
    rows = [ROWS[0][:7] + ("attn-magic",) + ROWS[0][8:]]
    code, _, err = cli("validate", "--measurements", _csv(tmp_path, rows, [1e-3]))
    assert code == 2 and "unknown kernel 'attn-magic'" in err and "line 2" in err


def test_bad_number(cli, tmp_path):
    rows = [ROWS[0][:5] + ("lots",) + ROWS[0][6:]]
    code, _, err = cli("validate", "--measurements", _csv(tmp_path, rows, [1e-3]))
    assert code == 2 and "sequence_length" in err


def test_sparq_row_needs_r_and_k(cli, tmp_path):
    rows = [ROWS[2][:8] + ("", "") + ROWS[2][10:]]
    code, _, err = cli("validate", "--measurements", _csv(tmp_path, rows, [1e-3]))
    assert code == 2 and "needs r and k" in err


def test_device_mapping():
    assert map_device("NVIDIA A10G") == ("a10g", None)
    assert map_device("NVIDIA A100-SXM4-40GB") == ("a100-40gb", None)
    assert map_device("NVIDIA A100-SXM4-80GB") == ("a100-80gb", None)
    assert map_device("NVIDIA H100 80GB HBM3") == ("h100-sxm", None)
    assert map_device("NVIDIA H100 PCIe") == ("h100-pcie", None)
    assert map_device("AMD EPYC 7763 64-Core Processor (32 threads)") == ("epyc-7763", 32)
    assert map_device("Intel(R) Xeon(R) Platinum 8480+ (56 threads)") == ("xeon-8480", 56)
    with pytest.raises(UserError):
        map_device("Apple M2")


# ---- statistics --------------------------------------------------------------------------------

def test_summary_numbers():
    s = stats.summary([1, 2, 3, 4, 10])
    assert s["n"] == 5 and s["median_abs_pct_error"] == 3
    assert s["p90_abs_pct_error"] == pytest.approx(4 + 0.6 * 6)   # numpy linear interpolation
    assert stats.abs_pct_error(110, 100) == pytest.approx(10)
    assert stats.abs_pct_error(90, 100) == pytest.approx(10)
    g = stats.grouped(["a", "b", "a"], [1, 5, 3])
    assert g["a"]["median_abs_pct_error"] == 2 and g["b"]["n"] == 1


def test_hand_made_file_errors(cli, tmp_path):
    """Durations set so that prediction = measured * (1 + e): the errors are exactly |e|/(1+e)."""
    pred = _predicted(tmp_path)
    durations = [p / (1 + e) for p, e in zip(pred, ERRORS)]
    path = _csv(tmp_path, ROWS, durations)
    code, out, err = cli("validate", "--measurements", path, "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    expected = [abs(e) * 100 for e in ERRORS]   # |pred - m| / m = |e|
    assert d["overall"]["n"] == 5
    assert d["overall"]["median_abs_pct_error"] == pytest.approx(np.median(expected), abs=1e-6)
    assert d["overall"]["p90_abs_pct_error"] == pytest.approx(np.percentile(expected, 90), abs=1e-6)
    assert set(d["per_kernel"]) == {r[7] for r in ROWS}
    assert d["per_kernel"]["sparq-attn-torch"]["median_abs_pct_error"] == pytest.approx(20, abs=1e-6)
    assert d["per_device"]["NVIDIA A10G"]["n"] == 5
    for key in ("n", "median_abs_pct_error", "p90_abs_pct_error"):
        assert key in d["per_kernel"]["attn-torch"]
    # speedup against the best dense kernel of the same (device, B, S): two dense rows at B=16
    assert d["speedup"]["overall"]["n"] == 4
    assert d["worst"][0]["kernel"] == "sparq-attn-torch"


def test_table_and_plot(cli, tmp_path):
    pred = _predicted(tmp_path)
    path = _csv(tmp_path, ROWS, [p / (1 + e) for p, e in zip(pred, ERRORS)])
    plot = tmp_path / "v.png"
    code, out, err = cli("validate", "--measurements", path, "--plot", plot)
    assert code == 0, err
    assert "overall" in out and "worst" in out and plot.stat().st_size > 1000


def test_bad_plot_path_writes_nothing(cli, tmp_path):
    code, _, err = cli("validate", "--measurements", tmp_path / "x.csv", "--plot", tmp_path / "no" / "v.png")
    assert code == 2 and "--plot" in err


def test_flags_that_belong_to_local(cli, tmp_path):
    code, _, err = cli("validate", "--measurements", "x.csv", "--quick")
    assert code == 2 and "--local" in err


def test_holdout_fit_on_small_file(cli, tmp_path):
    """Fit-on-half runs end to end (fit on S = 4096 rows, validate on S = 16384)."""
    pred = _predicted(tmp_path)
    path = _csv(tmp_path, ROWS, pred)
    code, out, err = cli("validate", "--measurements", path, "--holdout", "seq", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["overall"]["n"] == 1 and "fits" in d


def test_local_calibration_cases_are_not_validation_cases():
    from sparq_sim.validation.local import calibration_cases, validation_cases
    for quick in (True, False):
        cal, val = calibration_cases(quick), validation_cases(quick)
        assert cal and val and not set(cal) & set(val)
        assert all(k is None or k <= S for _, S, _, k in cal)
        assert min(S for _, S, _, _ in cal) < min(S for _, S, _, _ in val)   # host-bound sizes calibrated
