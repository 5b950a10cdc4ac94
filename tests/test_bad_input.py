"""Bad input of every kind is one line on stderr and exit code 2, never a traceback or a silly
answer: overflowing and non-finite numbers, out-of-range flags, absurd hardware files, malformed
measurement rows, an unwritable standard output."""

import subprocess
import sys
from pathlib import Path

import pytest

from sparq_sim.hardware import HERE as HW
from sparq_sim.validation import published

A10G = published("a10g")


def one_line_error(result, needle):
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    return err


@pytest.mark.parametrize("argv,needle", [
    (("predict", "--hw", "h100", "--seq", "32k", "--compression", "1e309"), "--compression"),
    (("plan", "--hw", "h100", "--seq", "32k", "--compression", "1e309"), "--compression"),
    (("simulate", "--hw", "h100", "--seq", "4k", "--compression", "1e309"), "--compression"),
    (("predict", "--hw", "h100", "--seq", "32k", "--params", "nan"), "--params"),
    (("predict", "--hw", "h100", "--seq", "32k", "--params", "inf"), "--params"),
    (("predict", "--hw", "h100", "--seq", "32k", "--params", "1e309"), "--params"),
    (("predict", "--hw", "h100", "--seq", "32k", "--params", "-5"), "--params"),
    (("simulate", "--hw", "h100", "--seq", "4k", "--seed", "-1"), "--seed"),
    (("simulate", "--hw", "h100", "--seq", "4k", "--seed", str(2 ** 32)), "--seed"),
    (("simulate", "--hw", "h100", "--seq", "99999999999999999999"), "--seq"),
    (("predict", "--hw", "h100", "--seq", "99999999999999999999"), "--seq"),
    (("predict", "--hw", "h100", "--seq", "99999999999999999999", "--timing", "sim"), "--seq"),
    (("predict", "--hw", "h100", "--seq", "2048m"), "at most 1024m"),
    (("predict", "--hw", "h100", "--seq", "4k", "--batch", "99999999999"), "--batch"),
    (("predict", "--hw", "h100", "--seq", "4k", "--layers", "99999999999"), "--layers"),
    (("predict", "--hw", "h100", "--seq", "4k", "--impl", "llama.cpp", "--threads", "1e9"), "--threads"),
    (("simulate", "--hw", "h100", "--seq", "4k", "--slice-requests", "99999999999"), "--slice-requests"),
    (("simulate", "--hw", "h100", "--seq", "4k", "--slice-requests", "1000000"), "--slice-requests"),
    (("predict", "--hw", "epyc-7763", "--seq", "4k", "--impl", "published-triton"), "is a cpu"),
])
def test_bad_numbers_are_one_line(cli, argv, needle):
    one_line_error(cli(*argv), needle)


def test_roofline_compression_overflow(cli, tmp_path):
    out = tmp_path / "r.png"
    one_line_error(cli("roofline", "--hw", "h100", "--compression", "1e309", "--out", out), "--compression")
    assert not out.exists()


def test_longest_sequence_still_predicts(cli):
    """The bound is generous: 1024m tokens is accepted and gives finite numbers."""
    code, out, err = cli("predict", "--hw", "h100", "--seq", "1024m", "--impl", "ideal", "--timing", "roofline",
                         "--format", "json")
    assert code == 0, err
    import json
    d = json.loads(out)
    assert d["workload"]["seq"] == 1 << 30
    assert 0 < d["dense"]["attention"]["time_s"] < 1e6


def test_published_triton_on_gpu_still_works(cli):
    code, out, err = cli("predict", "--hw", "a10g", "--seq", "4k", "--impl", "published-triton")
    assert code == 0, err


# --------------------------------------------------------------------------- hardware files

def _edited(tmp_path, name, old, new):
    text = (HW / f"{name}.toml").read_text()
    assert old in text
    path = tmp_path / f"{name}-bad.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old,new,needle", [
    ("capacity_bytes = { value = 85899345920", "capacity_bytes = { value = inf", "memory.capacity_bytes"),
    ("capacity_bytes = { value = 85899345920", "capacity_bytes = { value = nan", "memory.capacity_bytes"),
    ("bandwidth_Bps = { value = 3.35e12", "bandwidth_Bps = { value = 1e30", "memory.bandwidth_Bps"),
    ("bandwidth_Bps = { value = 3.35e12", "bandwidth_Bps = { value = inf", "memory.bandwidth_Bps"),
    ("float32 = { value = 67e12", "float32 = { value = 1e-30", "compute.peak_flops.float32"),
    ("launch_s = { value = 4e-6", "launch_s = { value = 1e6", "overheads.launch_s"),
    ("achievable_fraction = { value = 0.90", "achievable_fraction = { value = 0.0001", "achievable_fraction"),
    ("units = { value = 132", "units = { value = 132.5", "compute.units"),
    ("bandwidth_Bps = {", "bandwith_Bps = {", "unknown field 'bandwith_Bps' in section [memory]"),
    ("llc_bytes = {", "llc_byte = {", "unknown field 'llc_byte' in section [cache]"),
    ("units = {", "unit = {", "unknown field 'unit' in section [compute]"),
    ("launch_s = {", "launch_time_s = {", "unknown field 'launch_time_s' in section [overheads]"),
    ('kind = "gpu"', 'kind = "gpu"\nkinds = "gpu"', "unknown field 'kinds' in the top level"),
    ("value = 3.35e12, basis", "value = 3.35e12, units = \"B/s\", basis", "unknown keys units"),
])
def test_hardware_field_ranges_and_unknown_keys(cli, tmp_path, old, new, needle):
    path = _edited(tmp_path, "h100-sxm", old, new)
    for argv in (("predict", "--hw", path, "--seq", "4k"), ("plan", "--hw", path, "--seq", "4k"),
                 ("hw", "show", path)):
        one_line_error(cli(*argv), needle)


@pytest.mark.parametrize("old,new,needle", [
    ("channels = { value = 160", "channels = { value = 0.5", "dram.channels"),
    ("channels = { value = 160", "channels = { value = 0", "dram.channels"),
    ("idle_latency_s = { value = 480e-9", "idle_latency_s = { value = inf", "dram.idle_latency_s"),
    ("outstanding_per_unit = { value = 448", "outstanding_per_unit = { value = 1e30", "dram.outstanding_per_unit"),
    ("interleave_bytes = {", "interleave_byte = {", "unknown field 'interleave_byte' in section [dram]"),
    ('standard = "HBM3"', "standard = [1]", "dram.standard"),
])
def test_dram_section_ranges_and_unknown_keys(cli, tmp_path, old, new, needle):
    path = _edited(tmp_path, "h100-sxm", old, new)
    for argv in (("simulate", "--hw", path, "--seq", "4k"), ("predict", "--hw", path, "--seq", "4k", "--timing", "sim"),
                 ("hw", "show", path)):
        one_line_error(cli(*argv), needle)


def test_every_shipped_hardware_file_is_in_range(cli):
    for path in sorted(HW.glob("*.toml")):
        code, out, err = cli("hw", "show", path)
        assert code == 0, (path, err)


# --------------------------------------------------------------------------- measurement files

def _rows(tmp_path, edit):
    lines = A10G.read_text().splitlines()
    header, row = lines[0], lines[1]
    path = tmp_path / "m.csv"
    path.write_text(header + "\n" + edit(row) + "\n" + lines[2] + "\n")
    return path


def _field(n, value):
    def edit(row):
        cells = row.split(",")
        cells[n] = value
        return ",".join(cells)
    return edit


DURATION, DEVICE_NAME, SEQ = 11, 0, 5


@pytest.mark.parametrize("edit,needle", [
    (_field(DURATION, "inf"), "line 2: column duration_s must be a finite number"),
    (_field(DURATION, "nan"), "line 2: column duration_s must be a finite number"),
    (_field(DURATION, "0"), "line 2: column duration_s must be above 0"),
    (_field(DURATION, "-1e-4"), "line 2: column duration_s must be above 0"),
    (_field(DURATION, "1e9"), "line 2: column duration_s must be above 0 and at most 3600"),
    (_field(DEVICE_NAME, "AMD EPYC 7763 (0 threads)"), "line 2: bad device"),
    (_field(SEQ, "99999999999999999999999"), "line 2: column sequence_length"),
    (_field(SEQ, str(1 << 31)), "line 2: column sequence_length: must be at most"),
    (lambda row: ",".join(row.split(",")[:5]), "line 2: 5 fields, the header has 16"),
    (lambda row: row + ",extra", "line 2: 17 fields, the header has 16"),
    (_field(DURATION, "1" * 140_000), "line 2"),
    (_field(DURATION, "1" * 5000), "line 2: field duration_s has more than"),
])
@pytest.mark.parametrize("fit", [False, True])
def test_bad_measurement_rows_name_file_and_line(cli, tmp_path, edit, needle, fit):
    path = _rows(tmp_path, edit)
    err = one_line_error(cli("validate", "--measurements", path, *(["--fit"] if fit else [])), needle)
    assert str(path) in err


# --------------------------------------------------------------------------- calibration files

def test_empty_calibration_file(cli, tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("")
    one_line_error(cli("validate", "--measurements", A10G, "--calibration", path), "empty.toml")


def test_cpu_calibration_on_gpu_rows_is_an_error(cli):
    from sparq_sim.calibration.store import HERE
    err = one_line_error(cli("validate", "--measurements", A10G, "--calibration", HERE / "local-cpu.toml"),
                         "a10g is a gpu")
    assert "cpu constants" in err


def test_gpu_calibration_on_gpu_rows_is_accepted(cli):
    from sparq_sim.calibration.store import HERE
    code, out, err = cli("validate", "--measurements", A10G, "--calibration", HERE / "gpu.toml")
    assert code == 0, err


# --------------------------------------------------------------------------- standard output

def test_full_standard_output_is_one_line():
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "sparq_sim.cli", "predict", "--hw", "h100", "--seq", "32k"],
                             stdout=full, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    assert res.stderr.strip().splitlines() == ["sparq-sim: error: cannot write (standard output): "
                                               "No space left on device"]
