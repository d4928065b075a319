"""``GET /audit/report``: the operator's audit through the API, over readings that went
through the intake and the outbox (which store the signed readings as evidence)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from api.app import create_app
from ledger.mirror.models import FillRecord, SignedReadingRecord
from tests.api.conftest import OP, Api, _settings, past_slot


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        yield Api(client, app.state.services)


def test_the_operator_gets_the_audit_report_and_others_are_refused(api: Api) -> None:
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=3_000_000)
    c = api.client
    first = past_slot(6)
    slots = range(first, first + 3)
    for slot in slots:
        batch = [api.reading(seller, slot, export_Wh=600), api.reading(buyer, slot, import_Wh=500)]
        r = c.post("/readings", json={"readings": batch})
        assert r.status_code == 202, r.text
    api.flush()
    for slot in slots:
        assert c.post(f"/market/slots/{slot}/settle", headers=OP).status_code == 200
    with Session(api.services.engine) as session:
        stored = session.exec(select(func.count()).select_from(SignedReadingRecord)).one()
        fills = session.exec(select(FillRecord)).all()
    assert stored == 6 and fills

    r = c.get("/audit/report", headers=OP)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True, body["findings"]
    assert body["findings"] == [] and body["feeder"] is None
    assert body["summary"]["readings"] == 6 and body["summary"]["sealed_slots"] == 3
    assert [a["slot"] for a in body["neighbourhood"]] == list(slots)

    r = c.get("/audit/report", params={"feeder": "true", "from": first + 1}, headers=OP)
    assert r.status_code == 200, r.text
    feeder = r.json()["feeder"]
    assert feeder["slots"] == [first + 1, first + 2]
    for key in ("vm_min_pu", "vm_max_pu", "max_line_loading_percent", "trafo_loading_percent"):
        assert len(feeder[key]) == 2
    assert feeder["vm_min_pu"][0] <= 1.0 <= feeder["vm_max_pu"][0] + 0.05

    # A tampered fill shows through the API too.
    with Session(api.services.engine) as session, session.begin():
        fill = session.exec(select(FillRecord).limit(1)).one()
        fill.cost_ueur += 1
        session.add(fill)
        where = (fill.slot, fill.seller)
    body = c.get("/audit/report", headers=OP).json()
    assert body["ok"] is False
    assert {(f["check"], f["slot"], f["household"]) for f in body["findings"]} >= {
        ("integrity", *where)
    }

    assert c.get("/audit/report", headers=seller.auth).status_code == 403
    assert c.get("/audit/report").status_code == 401
    r = c.get("/audit/report", params={"from": 9, "to": 3}, headers=OP)
    assert r.status_code == 422 and "after to slot 3" in r.json()["message"]
    assert c.get("/audit/report", params={"from": -1}, headers=OP).status_code == 422
    assert c.get("/audit/report", params={"form": 1}, headers=OP).status_code == 422
