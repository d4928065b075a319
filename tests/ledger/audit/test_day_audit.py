"""A clean simulated day audits with zero findings; each tamper of its database, made on a
fresh copy, is flagged with the right check, slot and household."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlmodel import Session, select

from api.cli import main
from ledger.mirror.models import (
    ChainEvent,
    FillRecord,
    HouseholdRecord,
    ReadingRecord,
    SignedReadingRecord,
)
from meter_sim.run import RunResult
from tests.ledger.audit.conftest import audit_dir, copy_data, db_engine


def where(report: object) -> set[tuple[str, int | None, int | None]]:
    return {(f.check, f.slot, f.household) for f in report.findings}  # type: ignore[attr-defined]


def test_a_clean_simulated_day_gives_zero_findings(clean_day: RunResult, tmp_path: Path) -> None:
    assert clean_day.report["audit_ok"] is True
    assert clean_day.report["audit_findings"] == []
    data = copy_data(clean_day, tmp_path)
    report = audit_dir(data, feeder=True)
    assert report.findings == []
    d = report.as_dict()
    assert d["ok"] is True and d["findings"] == []
    assert all(c["ran"] and c["findings"] == 0 for c in d["checks"].values())
    s = d["summary"]
    assert (s["slots"], s["households"], s["readings"]) == (96, 6, 6 * 96)
    assert s["fills"] == clean_day.report["fills"] > 0
    assert s["sealed_slots"] == 96 and s["digest_head"].startswith("0x")
    # The neighbourhood series agree with the simulator's flows.
    flows = clean_day.flows
    assert [a["pv_Wh"] for a in d["neighbourhood"]] == flows.pv_Wh.sum(axis=0).tolist()
    assert (
        sum(a["local_traded_Wh"] for a in d["neighbourhood"])
        == (clean_day.report["local_traded_Wh"])
    )
    assert (
        sum(a["grid_import_Wh"] for a in d["neighbourhood"]) == (clean_day.report["grid_import_Wh"])
    )
    assert len(d["feeder"]["slots"]) == 96


def test_the_cli_exits_0_on_a_clean_day_and_writes_every_output(
    clean_day: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(clean_day, tmp_path)
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "--data-dir",
            str(data),
            "--json",
            str(tmp_path / "audit.json"),
            "--html",
            str(tmp_path / "audit.html"),
            "--csv",
            str(out),
            "--open-data",
            str(tmp_path / "open"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "audit.json").read_text())
    assert report["ok"] is True and report["findings"] == [] and report["feeder"] is None
    assert (out / "findings.csv").read_text().splitlines() == [
        "check,severity,slot,slot_start_local,household,message,evidence"
    ]
    assert len((out / "neighbourhood.csv").read_text().splitlines()) == 97
    assert not (out / "feeder.csv").exists()
    assert "OK: no findings" in (tmp_path / "audit.html").read_text()
    assert "audit ok" in capsys.readouterr().out


def test_a_changed_reading_in_the_database_is_flagged(clean_day: RunResult, tmp_path: Path) -> None:
    data = copy_data(clean_day, tmp_path)
    with Session(db_engine(data)) as session, session.begin():
        row = session.exec(
            select(ReadingRecord).where(ReadingRecord.export_delta_Wh > 0).limit(1)
        ).one()
        row.export_Wh += 250
        row.export_delta_Wh += 250
        session.add(row)
        slot, household = row.slot, row.household
    report = audit_dir(data)
    assert report.findings
    assert where(report) == {("integrity", slot, household)}
    messages = " | ".join(f.message for f in report.findings)
    assert "reading row in the database differs" in messages
    assert "changed in the database after the slot was sealed" in messages


def test_a_changed_signed_reading_in_the_evidence_store_is_flagged(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data = copy_data(clean_day, tmp_path)
    engine = db_engine(data)
    with Session(engine) as session, session.begin():
        row = session.exec(
            select(SignedReadingRecord).where(SignedReadingRecord.export_Wh > 0).limit(1)
        ).one()
        row.export_Wh += 1
        session.add(row)
        meter, slot = row.meter, row.slot
    with Session(engine) as session:
        household = session.exec(
            select(HouseholdRecord).where(HouseholdRecord.meter == meter)
        ).one()
    report = audit_dir(data)
    # The provenance check flags the slot; the register growth check of the evidence store
    # also sees the next reading of that meter go down.
    assert where(report) == {
        ("provenance", slot, household.id),
        ("integrity", slot + 1, household.id),
    }
    messages = {f.message for f in report.findings}
    assert f"a register of meter {meter} decreased in the evidence store" in messages
    assert "the stored signed reading differs from the committed one" in messages
    assert "the stored signature does not recover to the reading's meter" in messages


def test_a_deleted_event_row_is_flagged(clean_day: RunResult, tmp_path: Path) -> None:
    data = copy_data(clean_day, tmp_path)
    with Session(db_engine(data)) as session, session.begin():
        row = session.exec(
            select(ChainEvent).where(ChainEvent.name == "FillSettled").limit(1)
        ).one()
        args = json.loads(row.args_json)
        session.exec(delete(ChainEvent).where(ChainEvent.id == row.id))  # type: ignore[call-overload]
    report = audit_dir(data)
    assert [(f.check, f.slot, f.household) for f in report.findings] == [
        ("integrity", args["slot"], args["seller"])
    ]
    assert "missing from the database mirror" in report.findings[0].message
    assert report.findings[0].evidence["args"]["buyer"] == args["buyer"]


def test_an_inserted_fake_fill_row_is_flagged(clean_day: RunResult, tmp_path: Path) -> None:
    data = copy_data(clean_day, tmp_path)
    with Session(db_engine(data)) as session, session.begin():
        real = session.exec(select(FillRecord).limit(1)).one()
        fake = FillRecord(
            slot=real.slot,
            seller=real.seller,
            buyer=real.buyer,
            offer_id=real.offer_id,
            bid_id=real.bid_id,
            energy_Wh=400,
            price_ueur_per_kWh=real.price_ueur_per_kWh,
            cost_ueur=400 * real.price_ueur_per_kWh // 1000,
            fee_ueur=12,
            block_number=real.block_number,
            log_index=real.log_index + 500,
            tx_hash=real.tx_hash,
        )
        session.add(fake)
        slot, seller, buyer = real.slot, real.seller, real.buyer
    report = audit_dir(data)
    assert where(report) <= {("integrity", slot, seller), ("integrity", slot, buyer)}
    extra = [f for f in report.findings if "fill table holds a row" in f.message]
    assert [(f.slot, f.household) for f in extra] == [(slot, seller)]
    assert extra[0].evidence["database"][5] == 400


def test_a_meter_registered_to_the_wrong_household_is_flagged(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data = copy_data(clean_day, tmp_path)
    engine = db_engine(data)
    with Session(engine) as session, session.begin():
        a, b = session.exec(select(HouseholdRecord).order_by(HouseholdRecord.id).limit(2)).all()
        a.meter = b.meter  # household a's register now names b's meter
        session.add(a)
        victim = a.id
    with Session(engine) as session:
        slots = {
            r.slot
            for r in session.exec(select(ReadingRecord).where(ReadingRecord.household == victim))
        }
    report = audit_dir(data)
    provenance = {(f.slot, f.household) for f in report.findings if f.check == "provenance"}
    assert provenance == {(s, victim) for s in slots} and len(slots) == 96
    integrity = [f for f in report.findings if f.check == "integrity"]
    assert [(f.slot, f.household) for f in integrity] == [(None, victim)]
    assert "household row in the database differs" in integrity[0].message
    assert {f.check for f in report.findings} == {"provenance", "integrity"}


def test_the_cli_exits_1_on_findings_and_2_on_bad_arguments(
    clean_day: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(clean_day, tmp_path)
    with Session(db_engine(data)) as session, session.begin():
        row = session.exec(select(FillRecord).limit(1)).one()
        row.fee_ueur += 1
        session.add(row)
        slot = row.slot
    assert main(["audit", "--data-dir", str(data), "--json", str(tmp_path / "a.json")]) == 1
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["ok"] is False
    assert {(f["check"], f["slot"]) for f in report["findings"]} == {("integrity", slot)}
    assert all(
        set(f) >= {"check", "severity", "slot", "household", "evidence"} for f in report["findings"]
    )
    # The window leaves the tampered slot out.
    assert main(["audit", "--data-dir", str(data), "--from", str(slot + 1)]) == 0
    capsys.readouterr()
    assert main(["audit", "--data-dir", str(data), "--from", "9", "--to", "3"]) == 2
    assert "--from 9 is after --to 3" in capsys.readouterr().err
    assert main(["audit", "--data-dir", str(data), "--from", "-1"]) == 2
    assert main(["audit", "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "holds no Voisin deployment" in capsys.readouterr().err
    assert main(["audit", "--data-dir", str(data), "--feeder", "--network", "nope"]) == 2
    assert "unknown --network 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--from", "noon"])
    assert exc.value.code == 2


def test_the_cli_prints_each_finding_once_with_its_severity_once(
    clean_day: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(clean_day, tmp_path)
    with Session(db_engine(data)) as session, session.begin():
        row = session.exec(select(FillRecord).limit(1)).one()
        row.price_ueur_per_kWh += 1
        session.add(row)
        slot = row.slot
    assert main(["audit", "--data-dir", str(data)]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert lines, "the findings are listed"
    for line in lines:
        assert line.count("[error]") + line.count("[warning]") == 1, line
    assert any(line.startswith(f"  integrity [error] slot {slot}") for line in lines), lines
