"""``voisin upgrade-contract`` (api/upgrade_cli.py) on the walk-through's data dir: the plan
changes nothing, the migration records both deployments, the audit across them is clean."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from api import upgrade_cli
from ledger.demo import run_demo


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="voisin")
    upgrade_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_plan_then_migrate_then_audit_across(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.delenv("VOISIN_DATABASE_URL", raising=False)
    report = run_demo("embedded", data, f"sqlite:///{data / 'voisin.db'}", say=lambda _: None)
    assert report.ok
    records = data / "deployments.json"
    before = records.read_text()
    base = ["upgrade-contract", "--data-dir", str(data), "--chain", "embedded"]

    assert _main([*base, "--plan"]) == 0
    assert "would freeze" in capsys.readouterr().out
    assert records.read_text() == before

    out_json = tmp_path / "migration.json"
    assert _main([*base, "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "carried over" in printed
    migrated = json.loads(out_json.read_text())
    entry = json.loads(records.read_text())
    [current] = entry.values()
    assert current["address"] == migrated["new"]
    assert current["history"][0]["address"] == migrated["old"] == report.contract

    assert _main([*base, "--audit"]) == 0
    assert "audit across the upgrade ok" in capsys.readouterr().out
    # A second upgrade continues the new deployment; the history keeps both before it.
    assert _main([*base]) == 0
    capsys.readouterr()
    [again] = json.loads(records.read_text()).values()
    assert [h["address"] for h in again["history"]] == [migrated["old"], migrated["new"]]
    assert again["migrated_from"] == migrated["new"]
    assert _main([*base, "--audit"]) == 0
    assert "audit across the upgrade ok" in capsys.readouterr().out

    with pytest.raises(SystemExit) as both:
        _main([*base, "--audit", "--plan"])
    assert both.value.code == 2


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["upgrade-contract", "--data-dir", str(tmp_path), "--batch-size", "0"]) == 2
    assert _main(["upgrade-contract", "--data-dir", str(tmp_path)]) == 2
    assert "holds no Voisin deployment" in capsys.readouterr().err
