"""The ``voisin`` command as a user runs it: the demo end to end, twice in one data dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from api.cli import main

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
