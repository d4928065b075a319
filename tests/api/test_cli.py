"""The ``voisin`` command as a user runs it: the demo end to end, twice in one data dir, and
``voisin simulate``'s refusals of bad options."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from api.cli import iso_date, main, non_negative_int, positive_int, scenario_name

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end_and_again_in_the_same_data_dir(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    assert main(["demo", "--data-dir", str(tmp_path / "data"), "--json", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["ok"] is True and all(report["checks"].values())
    assert report["readings"] == 16 and report["fills"] > 0 and report["local_Wh"] > 0
    first_contract = report["contract"]
    assert main(["demo", "--data-dir", str(tmp_path / "data"), "--json", str(report_file)]) == 0
    assert json.loads(report_file.read_text())["contract"] == first_contract


def test_voisin_command_shows_help_and_rejects_unknown_commands() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "api.cli", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0 and "demo" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "api.cli", "fly"], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_demo_reports_a_locked_data_dir_clearly(tmp_path: Path) -> None:
    from ledger import open_chain

    with open_chain("embedded", tmp_path):
        assert main(["demo", "--data-dir", str(tmp_path)]) == 1


def test_the_voisin_program_runs_a_simulation_and_exits_with_its_status(tmp_path: Path) -> None:
    """The installed entry point (``api.cli.program``, as ``python -m api.cli`` runs it):
    everything printed reaches the pipes and the report is whole, although the program freezes
    the garbage collector before its run and its exit; a refused option exits 2."""
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "api.cli", "simulate", "--households", "3", "--start",
         "2026-06-21", "--first-slot", "46", "--slots", "2", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["audit_ok"] is True and report["readings"] == 6
    assert f"page with the plots: {(out / 'report.html').resolve()}" in run.stdout
    assert "2/2 slots" in run.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "api.cli", "simulate", "--households", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "usage: voisin simulate" in bad.stderr
    assert "argument --households: must be a whole number of at least 1, got '0'" in bad.stderr


AT_LEAST_1 = "must be a whole number of at least 1, got"
AT_LEAST_0 = "must be a whole number of at least 0, got"
A_DATE = "must be a real date written YYYY-MM-DD, got"


@pytest.mark.parametrize(
    ("argv", "option", "message"),
    [
        (["--households", "0"], "--households", f"{AT_LEAST_1} '0'"),
        (["--households", "-3"], "--households", f"{AT_LEAST_1} '-3'"),
        (["--households", "many"], "--households", f"{AT_LEAST_1} 'many'"),
        (["--days", "0"], "--days", f"{AT_LEAST_1} '0'"),
        (["--slots", "0"], "--slots", f"{AT_LEAST_1} '0'"),
        (["--seed", "-1"], "--seed", f"{AT_LEAST_0} '-1'"),
        (["--first-slot", "-1"], "--first-slot", f"{AT_LEAST_0} '-1'"),
        (["--start", "2026-02-30"], "--start", f"{A_DATE} '2026-02-30'"),
        (["--start", "tomorrow"], "--start", f"{A_DATE} 'tomorrow'"),
        (
            ["--scenario", "atlantis"],
            "--scenario",
            "unknown scenario 'atlantis': use 'default', 'quartierstrom' or a .json/.toml "
            "scenario file",
        ),
        (
            ["--scenario", "quartierstrom", "--households", "5"],
            "--households",
            "cannot change the households of 'quartierstrom' (only the default scenario takes "
            "--households)",
        ),
    ],
)
def test_voisin_simulate_refuses_a_bad_option_with_its_usage_before_running(
    argv: list[str],
    option: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", str(tmp_path / "o"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: voisin simulate")
    assert f"voisin simulate: error: argument {option}: {message}\n" in err
    assert not (tmp_path / "o").exists()


def test_simulate_option_types_take_what_their_help_allows(tmp_path: Path) -> None:
    scenario_file = tmp_path / "street.toml"
    scenario_file.write_text("")
    assert (positive_int("1"), positive_int("30"), non_negative_int("0")) == (1, 30, 0)
    assert iso_date("2026-06-21") == date(2026, 6, 21)
    assert scenario_name("default") == "default" and scenario_name("quartierstrom")
    assert scenario_name(str(scenario_file)) == str(scenario_file)
    with pytest.raises(argparse.ArgumentTypeError, match=r"at least 1, got '1\.5'"):
        positive_int("1.5")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown scenario"):
        scenario_name(str(tmp_path / "missing.toml"))


def test_only_a_process_of_its_own_freezes_the_collector() -> None:
    import gc

    from api.cli import FULL_COLLECTION_EVERY, _keep_for_good

    before = (gc.get_freeze_count(), gc.get_threshold())
    _keep_for_good(False)  # what main() does in a test's process
    assert (gc.get_freeze_count(), gc.get_threshold()) == before
    own = subprocess.run(
        [sys.executable, "-c", "import gc; from api.cli import _keep_for_good; "
         "_keep_for_good(True); print(gc.get_freeze_count(), gc.get_threshold()[2])"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    frozen, full_every = map(int, own.stdout.split())
    assert frozen > 1_000 and full_every == FULL_COLLECTION_EVERY
