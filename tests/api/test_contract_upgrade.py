"""A served ledger moved to a new deployment of the contract (``voisin upgrade-contract``),
then served again: what households see across the upgrade.

Refused while the server has not sent everything it accepted; afterwards balances are the
same, the orders the freeze cancelled are closed and posted again on the new deployment,
meters sign in the new deployment's domain (a reading signed in the old one is refused), and
the audit across the two deployments is clean.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from api.app import create_app
from api.cli import main
from api.models import ApiOrder
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, Api, _settings, past_slot


def _served(settings: object) -> TestClient:
    return TestClient(create_app(settings, background=False))  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_served_ledger_across_a_contract_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)
    data = settings.data_dir
    monkeypatch.delenv("VOISIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("VOISIN_CHAIN", raising=False)
    upgrade = ["upgrade-contract", "--data-dir", str(data)]
    first = past_slot(12)
    with _served(settings) as client:
        api = Api(client, client.app.state.services)  # type: ignore[attr-defined]
        seller = api.register(prosumer=True)
        buyer = api.register(prosumer=False, topup_ueur=2_000_000)
        offer = client.post(
            "/offers", json={"price_limit_ueur_per_kWh": 60_000, "first_slot": first},
            headers=seller.auth,
        )  # fmt: skip
        assert offer.status_code == 202, offer.text
        bid = client.post(
            "/bids",
            json={"price_limit_ueur_per_kWh": 200_000, "first_slot": first, "max_Wh_per_slot": 800},
            headers=buyer.auth,
        )
        assert bid.status_code == 202, bid.text
        for slot in (first, first + 1):
            readings = [
                api.reading(seller, slot, export_Wh=600),
                api.reading(buyer, slot, import_Wh=500),
            ]
            assert client.post("/readings", json={"readings": readings}).status_code == 202
        api.flush()
        for slot in (first, first + 1):
            assert client.post(f"/market/slots/{slot}/settle", headers=OP).status_code == 200
        api.flush()
        balances = {
            m.id: client.get(f"/households/{m.id}/balance", headers=m.auth).json()["balance_ueur"]
            for m in (seller, buyer)
        }
        assert balances[seller.id] > 0
        old_domain = api.services.domain
        # Accepted, not yet sent: the migration must wait for it.
        late = api.reading(buyer, first + 2, import_Wh=300)
        assert client.post("/readings", json={"readings": [late]}).status_code == 202

    assert main(upgrade) == 1
    err = capsys.readouterr().err
    assert "has not yet sent 1 readings" in err and "empty backlog" in err
    with _served(settings) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        services.outbox.run_once()
        assert client.post(f"/market/slots/{first + 2}/settle", headers=OP).status_code == 200
        services.outbox.run_once()
        old_contract = services.client.address

    assert main(upgrade) == 0
    out = capsys.readouterr().out
    assert "the API's open orders: " in out

    with _served(settings) as client:
        api = Api(client, client.app.state.services)  # type: ignore[attr-defined]
        services = api.services
        assert services.client.address != old_contract
        assert services.deployment.migrated_from == old_contract
        for m in (seller, buyer):
            got = client.get(f"/households/{m.id}/balance", headers=m.auth).json()
            assert got["balance_ueur"] == balances[m.id] == services.client.balance_of(m.account)
        with Session(services.engine) as session:
            orders = session.exec(select(ApiOrder).order_by(col(ApiOrder.id))).all()
        closed = [o for o in orders if o.reason and "contract upgrade" in o.reason]
        again = [o for o in orders if o.status == "queued"]
        assert {o.household for o in closed} >= {seller.id, buyer.id}
        assert len(again) == len(closed)
        assert all(o.first_slot == first + 3 for o in again if o.household == seller.id)
        api.flush()
        with Session(services.engine) as session:
            for o in again:
                reposted = session.get(ApiOrder, o.id)
                assert reposted is not None and reposted.status == "open", reposted
                assert reposted.chain_id is not None
        # Meters go on in the new deployment's domain; the old domain's signature is refused.
        assert services.domain != old_domain
        forged = reading_to_json(
            sign_reading(
                seller.meter.key,
                Reading(seller.meter.address, first + 3, seller.import_Wh, seller.export_Wh + 400),
                old_domain,
            )
        )
        refused = client.post("/readings", json={"readings": [forged]})
        assert refused.status_code == 422 and refused.json()["code"] == "bad_signature"
        good = api.reading(seller, first + 3, export_Wh=400)
        assert client.post("/readings", json={"readings": [good]}).status_code == 202
        api.flush()
        assert services.client.meter_state(seller.meter.address).last_slot == first + 3

    assert main([*upgrade, "--audit"]) == 0
    assert "audit across the upgrade ok" in capsys.readouterr().out

    # A backup holds the frozen deployment's mirror too: restored elsewhere, the audit across
    # the upgrade is clean there.
    archive = tmp_path / "after-upgrade.tar.gz"
    assert main(["backup", "--data-dir", str(data), "--to", str(archive)]) == 0
    restored = tmp_path / "restored"
    assert main(["restore", str(archive), "--data-dir", str(restored)]) == 0
    assert sorted(p.name for p in (restored / "archive").iterdir()) == [f"{old_contract}.db"]
    capsys.readouterr()
    assert main(["upgrade-contract", "--data-dir", str(restored), "--audit"]) == 0
    assert "audit across the upgrade ok" in capsys.readouterr().out
