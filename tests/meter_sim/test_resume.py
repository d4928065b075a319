"""A stopped ``voisin simulate`` run goes on with ``--resume OUT`` and ends with the report an
uninterrupted run of the same options gives (but for its wall time): killed with SIGKILL in a
real process, and stopped in process at the awkward points of a slot (its readings committed
but not settled, half of them committed, its settlement planned but not sent)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

import meter_sim.run as run_module
from api.cli import main
from ledger.contract.client import VoisinClient
from ledger.market.settlement import SettlementWorker
from ledger.market.slot_step import SlotStep, commit_and_settle
from ledger.readings.eip712 import SignedReading
from meter_sim.report import RUN_RESOURCES
from meter_sim.run import RunResult, SimulationError, run_simulation
from tests.meter_sim.test_run import scenario

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: Twelve slots from 11:00 local time on a June day, four households: trades in every slot.
OPTIONS = ["--households", "4", "--start", "2026-06-21", "--first-slot", "44", "--slots", "12"]
FIRST, SLOTS = 44, 12
#: Where two runs of the same options may differ: their time, disk and memory.
WALL = RUN_RESOURCES


def figures(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in WALL}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("whole") / "out"
    assert main(["simulate", *OPTIONS, "--out", str(out)]) == 0
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def run_until_killed(out: Path, settled: int, whole_group: bool = True) -> str:
    """Start ``voisin simulate`` in its own process group, read its progress lines (a pipe:
    one plain line per step) and SIGKILL the group (or its first process alone) once
    ``settled`` slots are settled; returns what it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "simulate", *OPTIONS, "--out", str(out)],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = []
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            seen.append(line)
            done = re.search(r"(\d+)/\d+ slots", line)
            if done and int(done.group(1)) >= settled:
                if whole_group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
                break
        proc.wait(timeout=60)
        if not whole_group:
            # Its helper processes (the signing worker, a forked child) die with it.
            deadline = time.monotonic() + 30
            while _group_alive(proc.pid):
                assert time.monotonic() < deadline, "a helper process outlived the run"
                time.sleep(0.1)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return "".join(seen)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("whole_group", [True, False], ids=["group", "run-alone"])
def test_a_run_killed_mid_way_resumes_to_the_uninterrupted_report(
    uninterrupted: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    whole_group: bool,
) -> None:
    """Killed as a terminal's Ctrl-C or a reboot kills it (its whole group), or alone (``kill
    PID``, the OOM killer): either way ``--resume`` goes on."""
    out = tmp_path / "out"
    printed = run_until_killed(out, settled=4, whole_group=whole_group)
    assert " 4/12 slots" in printed, printed
    assert not (out / "report.json").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["finished_utc"] is None and record["options"]["slots"] == 12

    assert main(["simulate", "--resume", str(out)]) == 0
    err = capsys.readouterr().err
    assert "resuming default" in err and "100.0 %  12/12 slots" in err
    report = json.loads((out / "report.json").read_text())
    assert report["audit_ok"] is True, report["audit_findings"]
    # Nothing was sent twice: readings, fills, energy, money and gas are the uninterrupted run's.
    assert figures(report) == figures(uninterrupted)
    record = json.loads((out / "run.json").read_text())
    assert record["finished_utc"] and len(record["resumed_utc"]) == 1


def test_resume_refuses_what_it_cannot_go_on_with(
    uninterrupted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["simulate", "--resume", str(empty)]) == 2
    assert capsys.readouterr().err == (
        f"voisin simulate: {empty} holds no run to resume (no run.json)\n"
    )
    out = tmp_path / "out"
    assert main(["simulate", *OPTIONS, "--slots", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    # A finished run.
    assert main(["simulate", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"the run in {out} finished at " in err and f"its report is {out}/report.json" in err
    # Options that contradict the run's (the same value is fine, the others are named).
    record = json.loads((out / "run.json").read_text())
    record["finished_utc"] = None
    (out / "run.json").write_text(json.dumps(record))
    assert main(["simulate", "--resume", str(out), "--slots", "3", "--mechanism", "midpoint",
                 "--households", "4"]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        f"voisin simulate: --resume {out} goes on with the run's own options; these differ: "
        "--mechanism midpoint (the run was started with pay-as-clear); "
        "--slots 3 (the run was started with 1)\n"
    )
    # Even an option given as its default value, when the run was started otherwise.
    record["options"]["mechanism"] = "midpoint"
    (out / "run.json").write_text(json.dumps(record))
    assert main(["simulate", "--resume", str(out), "--mechanism", "pay-as-clear"]) == 2
    assert "--mechanism pay-as-clear (the run was started with midpoint)" in (
        capsys.readouterr().err
    )
    record["options"]["via"] = "api"
    (out / "run.json").write_text(json.dumps(record))
    assert main(["simulate", "--resume", str(out)]) == 2
    assert "(--via api), which cannot be resumed" in capsys.readouterr().err


class Stop(Exception):
    """Stands for the process dying at that point."""


Step = Callable[..., SlotStep]
#: Readings per commitReadings transaction in the in-process runs below: two per slot for six
#: households, so that a stop between them leaves a whole first batch on chain, as a stop
#: between batches of :data:`ledger.market.slot_step.READINGS_PER_BATCH` does in a large
#: neighbourhood.
BATCH = 3


def stepping(stop_at: int | None = None, how: str = "") -> Step:
    """``commit_and_settle`` as the slot loop calls it (in batches of :data:`BATCH`), but at
    ``stop_at`` it does only part of the step and stops: ``committed`` (readings on chain, slot
    not settled), ``half`` (the first batch on chain), ``planned`` (readings on chain,
    settlement planned, nothing sent)."""

    def step(
        client: VoisinClient,
        sender: LocalAccount,
        readings: Sequence[SignedReading],
        *,
        worker: SettlementWorker,
        settle: Sequence[int],
    ) -> SlotStep:
        if stop_at is None or list(settle) != [stop_at]:
            return commit_and_settle(
                client, sender, readings, worker=worker, settle=settle, batch_size=BATCH
            )
        part = readings[:BATCH] if how == "half" else readings
        commit_and_settle(client, sender, part, worker=worker, batch_size=BATCH)
        if how == "planned":
            worker._plan(stop_at, client.tariffs())
        raise Stop(how)

    return step


def whole_run(data: Path) -> RunResult:
    return run_simulation(scenario(), "midpoint", "embedded", data, first_slot=FIRST, slots=SLOTS)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_module, "commit_and_settle", stepping())
        return whole_run(tmp_path_factory.mktemp("reference") / "data").report


@pytest.mark.parametrize("how", ["committed", "half", "planned"])
def test_a_run_stopped_inside_a_slot_resumes_without_sending_anything_twice(
    reference: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Each (meter, slot) is committed once and each batch settled once, so even the gas is
    the uninterrupted run's."""
    data = tmp_path / "data"
    stop_slot = scenario().first_slot + FIRST + 5
    monkeypatch.setattr(run_module, "commit_and_settle", stepping(stop_slot, how))
    with pytest.raises(Stop):
        whole_run(data)
    monkeypatch.setattr(run_module, "commit_and_settle", stepping())
    # A fresh run in that data dir is refused; resuming another run too.
    with pytest.raises(SimulationError, match="already holds a run"):
        whole_run(data)
    with pytest.raises(SimulationError, match="holds another run"):
        run_simulation(scenario(), "pay-as-clear", "embedded", data, first_slot=FIRST,
                       slots=SLOTS, resume=True)  # fmt: skip
    shown: list[run_module.Progress] = []
    resumed = run_simulation(scenario(), "midpoint", "embedded", data, first_slot=FIRST,
                             slots=SLOTS, resume=True, progress=shown.append)  # fmt: skip
    assert [p.slots_done for p in shown] == list(range(6, SLOTS + 1))
    assert {p.slots_before for p in shown} == {5}
    assert resumed.report["audit_ok"] is True, resumed.report["audit_findings"]
    assert figures(resumed.report) == figures(reference)


def test_signed_slots_from_a_later_slot_are_the_same_readings() -> None:
    from meter_sim.meters import signed_slots

    sc = scenario()
    flows = run_module.run_flows(sc, "midpoint", FIRST, SLOTS)
    domain = b"\x01" * 32
    every: Iterator[list[SignedReading]] = signed_slots(sc, flows, domain, slots_per_job=3,
                                                        jobs_ahead=2)  # fmt: skip
    whole = list(every)
    assert len(whole) == SLOTS
    assert (
        list(signed_slots(sc, flows, domain, start=5, slots_per_job=3, jobs_ahead=1)) == (whole[5:])
    )
    assert list(signed_slots(sc, flows, domain, start=SLOTS)) == []


def test_a_run_stopped_before_its_mirror_existed_resumes_with_a_servable_database(
    uninterrupted: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C in the first seconds (its record written, its flows being computed, no
    database yet): the resumed run's database is at the API's revision, as a new run's."""
    import api.cli

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        patched.setattr(api.cli, "start_flows", interrupted)
        with pytest.raises(KeyboardInterrupt):
            main(["simulate", *OPTIONS, "--out", str(out)])
    assert (out / "run.json").exists() and not (out / "data" / "voisin.db").exists()
    assert main(["simulate", "--resume", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert figures(report) == figures(uninterrupted)
    capsys.readouterr()
    assert main(["db", "current", "--data-dir", str(out / "data")]) == 0, capsys.readouterr()


def test_a_new_run_leaves_a_folder_holding_another_run_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    one = [*OPTIONS, "--slots", "1", "--out", str(out)]
    assert main(["simulate", *one]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["simulate", *one, "--data-dir", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds another run (run.json)" in err and "--resume" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not (tmp_path / "other").exists()
    # A report file named as the run's own folder (not there yet) is refused before the run.
    fresh = tmp_path / "fresh"
    assert main(["simulate", *one[:-1], str(fresh), "--json", str(fresh)]) == 2
    assert "is the run's own folder" in capsys.readouterr().err
    assert not fresh.exists()


def test_resume_refuses_a_run_whose_data_dir_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Moved or deleted: refused, not started again from the first slot."""
    out = tmp_path / "out"
    assert main(["simulate", *OPTIONS, "--slots", "1", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    record["finished_utc"] = None
    (out / "run.json").write_text(json.dumps(record))
    (out / "data").rename(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(["simulate", "--resume", str(out)]) == 2
    assert f"the run's data dir {out / 'data'} is gone" in capsys.readouterr().err
    assert not (out / "data").exists()


def test_a_run_stopped_while_writing_its_page_is_not_finished_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meter_sim.plots import BackgroundPlots

    drawn = BackgroundPlots.write_report_html

    def stopped(self: BackgroundPlots, result: Any) -> None:
        drawn(self, result)  # its plots' child done, then Ctrl-C
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        patched.setattr(BackgroundPlots, "write_report_html", stopped)
        assert main(["simulate", *OPTIONS, "--slots", "1", "--out", str(out)]) == 130
    assert f"voisin simulate --resume {out} writes it" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["finished_utc"] is None
    assert main(["simulate", "--resume", str(out)]) == 0
    assert (out / "report.html").is_file()
    assert json.loads((out / "run.json").read_text())["finished_utc"]
