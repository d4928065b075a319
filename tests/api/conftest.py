"""The API under test: one app per test, on the embedded chain with SQLite, and (the same
tests) on an anvil node with PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from api.app import create_app
from api.models import ApiHousehold, ApiOrder, IntakeReading
from api.outbox import PassResult
from api.services import Services
from api.settings import Settings
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from tests.conftest import ANVIL_KEY

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"
OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@dataclass
class Member:
    id: int
    token: str
    meter: LocalAccount
    account: str
    prosumer: bool
    import_Wh: int = 0
    export_Wh: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Api:
    client: TestClient
    services: Services
    members: list[Member] = field(default_factory=list)

    def register(
        self, prosumer: bool = True, topup_ueur: int = 0, name: str | None = None
    ) -> Member:
        meter: LocalAccount = Account.create()
        body: dict[str, Any] = {"meter": meter.address, "prosumer": prosumer}
        if name:
            body["name"] = name
        r = self.client.post("/households", json=body, headers=OP)
        assert r.status_code == 201, r.text
        data = r.json()
        member = Member(data["id"], data["token"], meter, data["account"], prosumer)
        if topup_ueur:
            t = self.client.post(
                "/topups", json={"household": member.id, "amount_ueur": topup_ueur}, headers=OP
            )
            assert t.status_code == 201, t.text
        self.members.append(member)
        return member

    def reading(
        self, m: Member, slot: int, import_Wh: int = 0, export_Wh: int = 0, key: bytes | None = None
    ) -> dict[str, Any]:
        """The wire form of the member's next reading, adding the deltas to its registers."""
        m.import_Wh += import_Wh
        m.export_Wh += export_Wh
        signed = sign_reading(
            key or m.meter.key,
            Reading(m.meter.address, slot, m.import_Wh, m.export_Wh),
            self.services.domain,
        )
        return reading_to_json(signed)

    def flush(self) -> PassResult:
        result = self.services.outbox.run_once()
        assert not result.chain_down
        return result

    def erase(self, m: Member) -> None:
        """The member erases itself (its queued readings sent first), as its page does."""
        self.flush()
        r = self.client.post(
            f"/households/{m.id}/erasure",
            json={"confirm": f"erase household {m.id}"},
            headers=m.auth,
        )
        assert r.status_code == 200, r.text

    def spend_gas_money(self, m: Member) -> None:
        """The member's account sends all its ether away (as its own gas use does over time)."""
        w3 = self.services.chain.w3
        with Session(self.services.engine) as s:
            household = s.get(ApiHousehold, m.id)
            assert household is not None
            key = self.services.vault.account(household.key_json)
        price = int(w3.eth.gas_price) or 1
        tx = {
            "to": self.services.chain.operator.address,
            "value": w3.eth.get_balance(key.address) - 21_000 * price,
            "gas": 21_000,
            "gasPrice": price,
            "nonce": w3.eth.get_transaction_count(key.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
        sent = w3.eth.send_raw_transaction(key.sign_transaction(tx).raw_transaction)
        w3.eth.wait_for_transaction_receipt(sent)
        assert w3.eth.get_balance(key.address) < 21_000 * price

    def snapshot(self) -> tuple[int, ...]:
        """Row counts of the API's tables and the chain's head: "nothing changed" checks."""
        with Session(self.services.engine) as s:
            counts = tuple(
                int(s.exec(select(func.count()).select_from(t)).one())
                for t in (ApiHousehold, ApiOrder, IntakeReading)
            )
        return (*counts, int(self.services.chain.w3.eth.block_number))


def past_slot(back: int = 10) -> int:
    return int(time.time()) // 900 - back


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "operator_token": OPERATOR_TOKEN,
        "auto_settle": False,
        # In process: the suite opens an app per test. The node process `voisin serve` runs
        # by default has its own case of the end-to-end flow (test_api_flow.py), and the tests
        # that start real serve processes (durability, outage, --via api) use it too.
        "chain_process": False,
    }
    return Settings(**{**fields, **overrides})


@pytest.fixture(
    params=[
        "embedded-sqlite",
        pytest.param("anvil-postgres", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    if request.param == "embedded-sqlite":
        settings = _settings(tmp_path)
    elif request.param == "embedded-node-sqlite":
        settings = _settings(tmp_path, chain_process=True)
    else:
        settings = _settings(
            tmp_path,
            chain=request.getfixturevalue("anvil_url"),
            chain_key=ANVIL_KEY,
            database_url=request.getfixturevalue("postgres_url"),
        )
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        yield Api(client, app.state.services)


@pytest.fixture
def embedded_api(tmp_path: Path) -> Iterator[Api]:
    """Only the embedded backend (for tests whose point is not the backend)."""
    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        yield Api(client, app.state.services)
