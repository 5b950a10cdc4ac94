"""The re-record list covers every recorded validation result, and each command's inputs exist."""

from pathlib import Path

import pytest

from sparq_sim.validation.rerecord import records

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ("cpu-llamacpp",)    # benchmark timings of this project's C++ op, not validate outputs


def test_every_recorded_result_has_its_command():
    recorded = {p.relative_to(ROOT).as_posix() for p in (ROOT / "validation/results").glob("*.json")
                if not p.name.startswith(MEASURED)}
    written = [r.stdout for r in records() if r.stdout]
    assert len(written) == len(set(written))                    # no result written twice
    assert recorded == set(written)


def test_every_command_reads_files_that_exist_and_fits_before_it_is_used():
    order = [r.args for r in records()]
    for args in order:
        for token in args.replace(",", " ").split():
            if token.endswith(".csv"):
                assert (ROOT / token).is_file(), token
    gpu_fit = next(i for i, a in enumerate(order) if "--write-calibration sparq_sim/calibration/gpu.toml" in a)
    stored = [i for i, a in enumerate(order) if a.startswith("validate --measurements validation/data/")
              and "--fit" not in a and "--holdout" not in a]
    assert stored and min(stored) > gpu_fit                     # the stored checks use the fresh calibration


def test_largest_move_is_the_biggest_figure_change_in_points():
    from sparq_sim.validation.rerecord import largest_move
    stored = {"n": 10, "median": 6.17, "p90": 23.25, "speedup_median": 7.49, "speedup_p90": float("nan")}
    fresh = {"n": 10, "median": 6.16, "p90": 23.26, "speedup_median": 7.89, "speedup_p90": float("nan")}
    assert largest_move(stored, fresh) == pytest.approx(0.40)
    assert largest_move(stored, {**fresh, "n": 11}) == float("inf")            # other rows: not comparable
    assert largest_move({"text": "a"}, {"text": "b"}) == float("inf")


@pytest.mark.parametrize("argv, problem", [(["--check", "--tolerance", "-1"], "--tolerance must be"),
                                           (["--check", "--tolerance", "nan"], "--tolerance must be"),
                                           (["--tolerance", "0.5"], "--tolerance needs --check")])
def test_bad_tolerance_is_one_line_and_exit_2(argv, problem, capsys):
    from sparq_sim.validation.rerecord import main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and problem in err and len(err.strip().splitlines()) == 1


def test_check_fails_only_past_the_tolerance(monkeypatch, capsys, tmp_path):
    import json

    from sparq_sim.validation import rerecord
    one = rerecord.Record("validate --measurements x.csv --format json", "x.json")
    stored = {"overall": {"n": 5, "median_abs_pct_error": 6.17, "p90_abs_pct_error": 23.25}}
    fresh = {"overall": {"n": 5, "median_abs_pct_error": 6.47, "p90_abs_pct_error": 23.25}}
    (tmp_path / "x.json").write_text(json.dumps(stored))
    monkeypatch.setattr(rerecord, "records", lambda: [one])
    monkeypatch.setattr(rerecord, "_run", lambda record, root: json.dumps(fresh))
    assert rerecord.check(tmp_path, tolerance=0.5) == 0      # moved 0.30 points, within 0.5
    assert rerecord.check(tmp_path, tolerance=0.2) == 1      # past 0.2
    assert rerecord.check(tmp_path) == 1                     # default: any move fails
    assert "largest figure move 0.30 points" in capsys.readouterr().out
    (tmp_path / "x.json").write_text(json.dumps(fresh))
    assert rerecord.check(tmp_path) == 0                     # nothing moved
