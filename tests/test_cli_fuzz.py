"""Property-based fuzz of the whole CLI: every verb, random and malformed arguments.

Properties, for every command line: no exception escapes ``main`` (no traceback), the exit code
is 0 or 2 (1 only from --max-median-error), a failure is one error line on stderr, and a
failing command leaves no file behind (nor does any command leave a temporary file).

The flags of each verb are read from the parser itself, so a new flag is fuzzed without
editing this file. Values mix good ones with malformed numbers, bad and unwritable paths, and
malformed hardware, measurement and calibration files. Steps that would measure this machine
(measure, profile, validate --local) are replaced by a stub that fails, so only their argument
handling and the checks before work run. SPARQ_FUZZ_EXAMPLES sets the number of examples
(default 250, under a minute here).
"""

import argparse
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sparq_sim.cli import build_parser, main  # noqa: E402
from sparq_sim.errors import UserError  # noqa: E402
from sparq_sim.hardware import HERE as HW  # noqa: E402
from sparq_sim.validation import published  # noqa: E402

EXAMPLES = int(os.environ.get("SPARQ_FUZZ_EXAMPLES", "250"))


def _verb_flags() -> dict:
    """verb -> [(flag, takes_value)] from the parser."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: [(a.option_strings[-1], a.nargs != 0) for a in p._actions
                   if a.option_strings and "-h" not in a.option_strings]
            for name, p in sub.choices.items()}


VERBS = _verb_flags()
FIXTURES = Path(tempfile.mkdtemp(prefix="sparq-fuzz-fixtures-"))
atexit.register(shutil.rmtree, FIXTURES, ignore_errors=True)


def _fixture_files() -> dict:
    """Good and malformed input files, written once outside the examples' folders."""
    h100 = (HW / "h100-sxm.toml").read_text()
    files = {
        "hw-good.toml": h100,
        "hw-inf-capacity.toml": h100.replace("capacity_bytes = { value = 85899345920", "capacity_bytes = { value = inf"),
        "hw-half-channel.toml": h100.replace("channels = { value = 160", "channels = { value = 0.5"),
        "hw-misspelt.toml": h100.replace("bandwidth_Bps = {", "bandwith_Bps = {"),
        "hw-huge-bw.toml": h100.replace("value = 3.35e12", "value = 1e30"),
        "hw-not-toml.toml": "[[[",
        "empty.toml": "",
    }
    lines = published("a10g").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    small = [r for i, r in enumerate(rows) if i % 40 == 0]
    files["m-small.csv"] = "\n".join([header] + small) + "\n"
    files["m-inf.csv"] = "\n".join([header, small[0].replace(small[0].split(",")[11], "inf", 1)] + small[1:]) + "\n"
    files["m-short.csv"] = "\n".join([header, ",".join(small[0].split(",")[:5])]) + "\n"
    files["m-empty.csv"] = ""
    files["m-header.csv"] = header + "\n"
    paths = {}
    for name, text in files.items():
        (FIXTURES / name).write_text(text)
        paths[name] = str(FIXTURES / name)
    return paths


FILES = _fixture_files()

NUMBERS = ["1", "2", "4", "8", "16", "64", "128", "0", "-1", "1e309", "nan", "inf", "-inf", "0.5", "1/8", "1/0",
           "99999999999999999999", "2147483648", "", " ", "x", "32q", "1e-30", "1_000"]
SEQS = ["1k", "4k", "4096", "32k", "1k..8k", "4k,16k", "1024m", "2048m", "8k..1k", "1k..", "0", "-4k"]
OUT_FILES = ["o.png", "o.svg", "o.csv", "o.json", "o.toml", "o.txt", "sub/o.png", "adir", "adir/o.png",
             "/proc/o.png", "/proc/o.csv", "/nonexistent/o.png", ""]
VALUES = {
    "--hw": ["h100", "a10g", "epyc-7763", "h200", "a100,h100", "local", "nope", "", *[FILES[k] for k in FILES
                                                                                    if k.startswith("hw-")]],
    "--seq": SEQS, "--train-seq": SEQS,
    "--compression": ["1/8", "1/4,1/8", "0.125", "1", "2", "0", "1e309", "nan", "1/0", "x"],
    "--model": ["llama-2-7b", "llama-2-70b", "mistral-7b", "nope"],
    "--models": ["llama-2-7b,llama-3-8b", "nope", ","],
    "--impl": ["ideal", "ideal", "gpt-fast", "llama.cpp", "published-triton", "published-torch", "cpu", "nope"],
    "--timing": ["roofline", "roofline", "roofline", "roofline", "sim", "calibrated", "nope"],
    "--kv-dtype": ["float16", "int8", "float32", "nope"], "--weight-dtype": ["float16", "int8", "nope"],
    "--dtype": ["float32", "float16", "int8", "nope"],
    "--store-k": ["once", "twice", "thrice"], "--format": ["table", "json", "xml"],
    "--method": ["dense", "sparq", "both", "none"], "--metric": ["step", "attention", "x"],
    "--holdout": ["seq", "batch"],
    "--k": ["64", "S/16", "S/0", "S/x", "99999999999", "0"], "--r": ["8", "16,32", "999", "0", "x"],
    "--slice-requests": ["100", "4000", "99", "100001", "99999999999", "x"],
    "--seed": ["0", "1", "-1", "4294967296", "x"],
    "--reserve": ["0.1", "0", "1", "-0.1", "nan", "x"],
    "--measurements": [FILES[k] for k in FILES if k.startswith("m-")] + ["missing.csv", "adir"],
    "--calibration": [FILES["empty.toml"], str(Path(__file__).parents[1] / "sparq_sim/calibration/gpu.toml"),
                      str(Path(__file__).parents[1] / "sparq_sim/calibration/local-cpu.toml"), "missing.toml"],
    "--out": OUT_FILES + ["w", "/proc/w"], "--plot": OUT_FILES, "--write-calibration": OUT_FILES,
    "--max-median-error": ["6", "0.1", "1e6", "nan", "-1", "x"],
    "--buffer-mib": ["64", "1024", "8", "x"],
}


def value_for(flag: str):
    pool = st.sampled_from(VALUES.get(flag, NUMBERS))
    return st.one_of(pool, pool, pool, st.text(max_size=6))   # mostly the pool, sometimes any text


# good values of the flags each verb needs, so that a fair share of the examples run to the end
REQUIRED = {
    "predict": {"--hw": ["h100", "a10g", "epyc-7763"], "--seq": ["4k", "32k"]},
    "simulate": {"--hw": ["h100", "a10g", "epyc-7763"], "--seq": ["1k", "4k"]},
    "plan": {"--hw": ["h100", "a10g", "epyc-7763"], "--seq": ["4k", "32k"]},
    "roofline": {"--hw": ["h100", "a10g"], "--out": ["o.png", "o.svg", "adir/o.png"]},
    "sweep": {"--hw": ["h100", "a100,h100"], "--seq": ["4k", "1k..8k"], "--out": ["o.csv", "o.json"]},
    "validate": {"--measurements": [FILES["m-small.csv"]]},
    "profile": {"--seq": ["1k", "4k"]},
}


@st.composite
def command_lines(draw):
    verb = draw(st.sampled_from(sorted(VERBS)))
    if verb == "hw":
        sub = draw(st.sampled_from(["list", "show", "nope"]))
        argv = ["hw", sub]
        if sub == "show":
            argv.append(draw(st.sampled_from(["h100", "epyc-7763", "nope", *[FILES[k] for k in FILES
                                                                             if k.startswith("hw-")]])))
        if draw(st.booleans()):
            argv += ["--format", draw(st.sampled_from(["table", "json", "xml"]))]
        return argv
    flags = VERBS[verb]
    argv = [verb]
    # mostly the verb's required flags with good values, then random flags (some from other verbs)
    for flag, good in REQUIRED.get(verb, {}).items():
        if draw(st.integers(0, 9)) > 0:
            argv += [flag, draw(st.sampled_from(good))]
    for _ in range(draw(st.integers(0, 3))):
        flag, takes = draw(st.sampled_from(flags)) if draw(st.integers(0, 9)) else \
            draw(st.sampled_from([("--bogus", True), ("--hw", True), ("--local", False), ("--fit", False)]))
        argv.append(flag)
        if takes and draw(st.integers(0, 19)):
            argv.append(draw(value_for(flag)))
    return argv


def _stub(*args, **kwargs):
    raise UserError("stub: this fuzz does not measure the machine")


@pytest.fixture
def no_measuring(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("SPARQ_SIM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    import sparq_sim.validation.local as local
    monkeypatch.setattr(local, "run_local", _stub)
    try:
        import sparq_sim.kernels.membench as membench
        import sparq_sim.kernels.profiling as profiling
        import sparq_sim.kernels.timing as timing
        monkeypatch.setattr(membench, "run_all", _stub)
        monkeypatch.setattr(profiling, "profile_case", _stub)
        monkeypatch.setattr(timing, "measure_stream_bandwidth", _stub)
    except ImportError:   # the light install: these commands already stop at "needs the kernels extra"
        pass


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=command_lines())
def test_cli_never_breaks(no_measuring, capsys, argv):
    fixtures_before = listing(FIXTURES)
    with tempfile.TemporaryDirectory(prefix="sparq-fuzz-") as tmp:
        work = Path(tmp)
        (work / "adir").mkdir()
        before = listing(work)
        old = os.getcwd()
        os.chdir(work)
        try:
            code = main(argv)          # an exception here is the traceback a user would see
        finally:
            os.chdir(old)
        out, err = capsys.readouterr()
        after = listing(work)
    allowed = {0, 2} | ({1} if "--max-median-error" in argv else set())
    assert code in allowed, (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("sparq-sim")]
        assert len(errors) == 1, (argv, err)
        assert after == before, (argv, "a failing command left files", sorted(set(after) - set(before)))
    assert not [p for p in after if ".tmp" in p or "sparq-sim-probe" in p], (argv, after)
    assert listing(FIXTURES) == fixtures_before, argv
