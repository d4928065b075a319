"""The ``voisin`` command as a user runs it: the demo end to end, twice in one data dir,
``voisin simulate``'s refusals of bad options, and the command's edges with their exact
messages and exit statuses: ``--version``, ports, an unknown scenario, outputs it cannot write,
relative paths, and ``voisin audit`` on a data dir a running server holds."""

from __future__ import annotations

import argparse
import json
import os
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

    from api.simulate_parts import FULL_COLLECTION_EVERY, keep_for_good

    before = (gc.get_freeze_count(), gc.get_threshold())
    keep_for_good(False)  # what main() does in a test's process
    assert (gc.get_freeze_count(), gc.get_threshold()) == before
    own = subprocess.run(
        [sys.executable, "-c", "import gc; from api.simulate_parts import keep_for_good; "
         "keep_for_good(True); print(gc.get_freeze_count(), gc.get_threshold()[2])"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    frozen, full_every = map(int, own.stdout.split())
    assert frozen > 1_000 and full_every == FULL_COLLECTION_EVERY


# ───────────────────────────── The command's edges ─────────────────────────────


def test_voisin_version_prints_the_installed_version_and_exits_0() -> None:
    from importlib.metadata import version

    run = subprocess.run(
        [str(Path(sys.executable).parent / "voisin"), "--version"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (run.returncode, run.stdout, run.stderr) == (0, f"voisin {version('voisin')}\n", "")


PORT = "must be a port number from 1 to 65535, got"


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1", "eighty", "80.5", ""])
def test_voisin_serve_refuses_a_port_nothing_could_listen_on(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", port])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: voisin serve")
    assert err.endswith(f"voisin serve: error: argument --port: {PORT} {port!r}\n")


def test_the_port_type_takes_every_port_from_1_to_65535() -> None:
    from api.cli import port_number

    assert [port_number(p) for p in ("1", "8000", "65535")] == [1, 8000, 65535]


KNOWN = "use 'default', 'quartierstrom' or a .json/.toml scenario file"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "nowhere", "--households", "2"], f"unknown scenario 'nowhere': {KNOWN}"),
        (["--households", "2", "--scenario", "nowhere"], f"unknown scenario 'nowhere': {KNOWN}"),
        (
            ["--scenario", "street.toml", "--households", "2"],
            f"unknown scenario 'street.toml': no such file; {KNOWN}",
        ),
    ],
)
def test_an_unknown_scenario_is_named_before_any_other_option(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", str(tmp_path / "o"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(f"voisin simulate: error: argument --scenario: {message}\n")
    assert "--households" not in err.splitlines()[-1]


def _outputs(tmp_path: Path) -> dict[str, Path]:
    """Paths nothing can be written to, even by root: below a file, a file where a folder is
    wanted, a folder where a file is wanted, a file in a folder that does not exist."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    return {
        "below_a_file": a_file / "out",
        "a_file": a_file,
        "a_folder": tmp_path,
        "no_folder": tmp_path / "missing" / "report.json",
    }


@pytest.mark.parametrize(
    ("option", "path", "reason"),
    [
        ("--out", "below_a_file", "Not a directory"),
        ("--out", "a_file", "it is a file, not a folder"),
        ("--json", "a_folder", "it is a folder, not a file"),
        ("--json", "no_folder", "no folder {tmp}/missing"),
        ("--json", "below_a_file", "{tmp}/a-file is not a folder"),
        ("--data-dir", "below_a_file", "Not a directory"),
    ],
)
def test_voisin_simulate_refuses_an_output_it_cannot_write_in_one_line_before_running(
    option: str, path: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _outputs(tmp_path)[path]
    argv = ["simulate", "--households", "2", "--slots", "1", option, str(target)]
    if option != "--out":
        argv += ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    expected = f"cannot write to {option} {target}: {reason.format(tmp=tmp_path)}"
    assert err == f"voisin simulate: {expected}\n"
    assert not (tmp_path / "o" / "data").exists()


def test_other_commands_refuse_an_output_they_cannot_write_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _outputs(tmp_path)
    bad, a_file, a_folder = paths["below_a_file"], paths["a_file"], paths["a_folder"]
    is_a_folder = "it is a folder, not a file"
    cases = [
        (["demo", "--data-dir", str(bad)], "demo", f"--data-dir {bad}: Not a directory"),
        (
            ["demo", "--data-dir", str(tmp_path / "d"), "--json", str(a_folder)],
            "demo",
            f"--json {a_folder}: {is_a_folder}",
        ),
        (["audit", "--json", str(bad)], "audit", f"--json {bad}: {a_file} is not a folder"),
        (["audit", "--html", str(a_folder)], "audit", f"--html {a_folder}: {is_a_folder}"),
        (["audit", "--csv", str(bad)], "audit", f"--csv {bad}: Not a directory"),
        (
            ["audit", "--open-data", str(a_file)],
            "audit",
            f"--open-data {a_file}: it is a file, not a folder",
        ),
    ]
    for argv, command, message in cases:
        assert main(argv) == 2, argv
        assert capsys.readouterr().err == f"voisin {command}: cannot write to {message}\n"
    monkeypatch.setenv("VOISIN_DATA_DIR", str(bad))
    assert main(["serve", "--port", "8000"]) == 2
    err = capsys.readouterr().err
    assert err == f"voisin serve: cannot write to VOISIN_DATA_DIR {bad}: Not a directory\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_a_folder_without_write_permission_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert main(["simulate", "--households", "2", "--out", str(locked)]) == 2
        err = capsys.readouterr().err
        assert err == f"voisin simulate: cannot write to --out {locked}: Permission denied\n"
    finally:
        locked.chmod(0o700)


def test_voisin_audit_on_a_data_dir_in_use_says_to_ask_the_running_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger import open_chain

    (tmp_path / "deployments.json").write_text("{}")
    (tmp_path / "voisin.db").write_text("")
    with open_chain("embedded", tmp_path):
        code = main(["audit", "--data-dir", str(tmp_path), "--from", "5", "--to", "9", "--feeder"])
    assert code == 3
    assert capsys.readouterr().err == (
        f"voisin audit: {tmp_path} is in use: another process holds its chain "
        f"(pid {os.getpid()}), most likely a running voisin serve.\n"
        "Ask that server for the audit instead: GET http://HOST:PORT/audit/report"
        "?from=5&to=9&feeder=true with the operator token (Authorization: Bearer TOKEN), or "
        "stop it and run voisin audit again.\n"
    )


def test_relative_paths_are_taken_in_the_folder_the_command_starts_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import build_parser
    from api.simulate_parts import run_paths

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["simulate", "--out", "runs/noon"])
    assert run_paths(args) == (tmp_path / "runs" / "noon", tmp_path / "runs" / "noon" / "data")
    args = build_parser().parse_args(["simulate", "--out", "o", "--data-dir", "../elsewhere"])
    assert run_paths(args) == (tmp_path / "o", tmp_path.parent / "elsewhere")


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000/"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000/"),
        ("::", 8080, "http://[::1]:8080/"),
        ("fe80::1", 1, "http://[fe80::1]:1/"),
        ("voisin.example", 443, "http://voisin.example:443/"),
    ],
)
def test_voisin_serve_prints_a_dashboard_address_a_browser_here_can_open(
    host: str, port: int, url: str
) -> None:
    from api.cli import dashboard_url

    assert dashboard_url(host, port) == url


def test_voisin_serve_names_where_the_operator_token_is_never_the_token(tmp_path: Path) -> None:
    from api.cli import operator_token_source
    from api.settings import Settings

    token = "a-token-of-my-own-choosing-0123456789"
    given = Settings(data_dir=tmp_path, operator_token=token)  # type: ignore[arg-type]
    assert operator_token_source(given) == "from VOISIN_OPERATOR_TOKEN"
    generated = Settings(data_dir=tmp_path)
    assert operator_token_source(generated) == f"in {tmp_path / 'operator.token'}"


def test_commands_refuse_a_database_or_date_they_cannot_use_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No traceback: a --start at the calendar's end, a voisin.db that is no database, a
    database URL of no known kind."""
    assert (
        main(["simulate", "--start", "0001-01-01", "--slots", "1", "--out", str(tmp_path / "o")])
        == 2
    )
    assert capsys.readouterr().err == (
        "voisin simulate: --start 0001-01-01: give a date between the years 2 and 9998\n"
    )
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "voisin.db").write_text("not a database\n")
    assert main(["db", "current", "--data-dir", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voisin db current: cannot read sqlite:///") and err.count("\n") == 1
    monkeypatch.setenv("VOISIN_SIGNED_READING_RETENTION_DAYS", "1")
    assert main(["purge-readings", "--data-dir", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voisin purge-readings: cannot use the database") and err.count("\n") == 1
    monkeypatch.setenv("VOISIN_DATABASE_URL", "bogus://nowhere/db")
    assert main(["db", "current", "--data-dir", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("voisin db current: cannot use the database 'bogus://")
        and err.count("\n") == 1
    )


def test_the_audit_hint_of_a_city_names_the_routes_a_city_answers(tmp_path: Path) -> None:
    from api.audit_cli import served_audit_hint

    def hint(**given: object) -> str:
        options = {"from_slot": 5, "to_slot": None, "feeder": True, "market": None, "city": False}
        return served_audit_hint(argparse.Namespace(**{**options, **given}), tmp_path)

    assert hint() == "GET http://HOST:PORT/audit/report?from=5&feeder=true"
    assert hint(market="north") == (
        "GET http://HOST:PORT/markets/north/v1/audit/report?from=5&feeder=true"
    )
    assert hint(city=True) == "GET http://HOST:PORT/v1/city/audit?from=5"
