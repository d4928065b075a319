"""The five actions that write the chain during a request, each with what must hold once it
has happened exactly once: shared by the fault tests (an exception in process, and a
``kill -9`` of a real ``voisin serve``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.app import create_app
from api.intents import UNFINISHED
from api.models import ApiHousehold, ApiIntent
from api.settings import Settings
from ledger.chain.backends import HOUSEHOLD_GAS_WEI
from ledger.types import Event
from tests.api.conftest import OP, Api, Member, past_slot

#: The amount each top-up case mints; the buyer's money in the take case.
TOP_UP_UEUR = 777_000
BUYER_UEUR = 2_000_000


@dataclass
class Action:
    """One request, and the check that it happened exactly once (given the answer)."""

    kind: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]
    status: int
    check: Callable[[Api, dict[str, Any]], None]


@contextmanager
def opened(settings: Settings) -> Iterator[Api]:
    """The app on ``settings`` (a start reconciles what a previous one left unfinished), with
    a client that answers a server error as the 500 a real client sees."""
    app = create_app(settings, background=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, app.state.services)


def send(api: Api, action: Action, key: str) -> httpx.Response:
    headers = {**action.headers, "Idempotency-Key": key}
    if action.body is None:
        return api.client.post(action.path, headers=headers)
    return api.client.post(action.path, json=action.body, headers=headers)


def events(api: Api, name: str) -> list[Event]:
    client = api.services.client
    head = int(api.services.chain.w3.eth.block_number)
    return [e for e in client.events(api.services.deployment.block_number, head) if e.name == name]


def assert_converged(api: Api) -> None:
    """No intent left unfinished, and the operator's audit has nothing to say."""
    with Session(api.services.engine) as session:
        left = session.exec(
            select(ApiIntent.kind, ApiIntent.state).where(
                ApiIntent.state.in_(UNFINISHED)  # type: ignore[attr-defined]
            )
        ).all()
    assert left == []
    report = api.client.get("/audit/report", headers=OP)
    assert report.status_code == 200, report.text
    findings = report.json()["findings"]
    assert findings == [], findings


def _household_row(api: Api, household: int) -> ApiHousehold:
    with Session(api.services.engine) as session:
        row = session.get(ApiHousehold, household)
    assert row is not None
    return row


def _gas_money(api: Api, account: str) -> int:
    return int(api.services.chain.w3.eth.get_balance(account))  # type: ignore[arg-type]


# ───────────────────────────── The actions ─────────────────────────────


def register(api: Api) -> Action:
    meter: LocalAccount = Account.create()
    before = api.services.client.household_count()

    def check(api: Api, answer: dict[str, Any]) -> None:
        client = api.services.client
        assert client.household_count() == before + 1
        registered = [e.args for e in events(api, "HouseholdRegistered")]
        assert [int(a["household"]) for a in registered if a["meter"] == meter.address] == [
            answer["id"]
        ]
        assert client.meter_state(meter.address).household == answer["id"]
        assert client.household(answer["id"]).account == answer["account"]
        with Session(api.services.engine) as session:
            rows = session.exec(select(ApiHousehold).where(ApiHousehold.meter == meter.address))
            assert [(r.id, r.account) for r in rows] == [(answer["id"], answer["account"])]
        # Funded once (nothing has spent its gas yet: no outbox pass ran).
        assert _gas_money(api, answer["account"]) == HOUSEHOLD_GAS_WEI
        token = {"Authorization": f"Bearer {answer['token']}"}
        balance = api.client.get(f"/households/{answer['id']}/balance", headers=token)
        assert balance.status_code == 200, balance.text
        mine = api.client.get("/offers", params={"household": answer["id"]}, headers=token)
        assert mine.json()["total"] == 1  # its agent's default offer, once

    body = {"meter": meter.address, "prosumer": True, "name": "Zoé"}
    return Action("register", "/households", body, OP, 201, check)


def top_up(api: Api) -> Action:
    member = api.register(prosumer=False)

    def check(api: Api, answer: dict[str, Any]) -> None:
        client = api.services.client
        assert client.balance_of(member.account) == TOP_UP_UEUR
        minted = [e for e in events(api, "ToppedUp") if e.args["account"] == member.account]
        assert [(int(e.args["amountUeur"]), e.tx_hash) for e in minted] == [
            (TOP_UP_UEUR, answer["tx_hash"])
        ]
        shown = api.client.get(f"/households/{member.id}/balance", headers=member.auth)
        assert shown.json()["balance_ueur"] == TOP_UP_UEUR

    body = {"household": member.id, "amount_ueur": TOP_UP_UEUR}
    return Action("topup", "/topups", body, OP, 201, check)


def rotate_key(api: Api) -> Action:
    member = api.register(prosumer=True, topup_ueur=TOP_UP_UEUR)

    def check(api: Api, answer: dict[str, Any]) -> None:
        client = api.services.client
        assert answer["previous_account"] == member.account
        assert client.household(member.id).account == answer["account"]
        assert client.household_of(member.account) == 0
        assert client.balance_of(answer["account"]) == TOP_UP_UEUR
        rotated = [e.args for e in events(api, "AccountRotated")]
        assert [(a["oldAccount"], a["newAccount"]) for a in rotated] == [
            (member.account, answer["account"])
        ]
        row = _household_row(api, member.id)
        assert row.account == answer["account"]
        assert api.services.vault.account(row.key_json).address == answer["account"]
        assert _gas_money(api, answer["account"]) == HOUSEHOLD_GAS_WEI  # funded once
        # The outbox signs with the new key: the agent's default orders reach the chain.
        api.flush()
        orders = api.client.get("/offers", params={"household": member.id}, headers=member.auth)
        assert [o["status"] for o in orders.json()["items"]] == ["open"]

    return Action("rotate_key", f"/households/{member.id}/rotate-key", None, OP, 200, check)


def rotate_meter(api: Api) -> Action:
    member = api.register(prosumer=True)
    old = member.meter
    new: LocalAccount = Account.create()

    def check(api: Api, answer: dict[str, Any]) -> None:
        client = api.services.client
        assert (answer["meter"], answer["previous_meter"]) == (new.address, old.address)
        assert client.household(member.id).meter == new.address
        assert client.meter_state(old.address).retired
        rotated = [e.args for e in events(api, "MeterRotated")]
        assert [(a["oldMeter"], a["newMeter"]) for a in rotated] == [(old.address, new.address)]
        assert _household_row(api, member.id).meter == new.address
        # The new meter's readings are taken, and reach the chain.
        member.meter = new
        slot = past_slot(3)
        r = api.client.post("/readings", json={"readings": [api.reading(member, slot, 0, 40)]})
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
        assert api.flush().committed == 1
        assert client.slot_energy(member.id, slot).export_Wh == 40

    body = {"meter": new.address}
    return Action("rotate_meter", f"/households/{member.id}/meter", body, OP, 200, check)


def take(api: Api) -> Action:
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=BUYER_UEUR)
    slot = past_slot(5)
    readings = [api.reading(seller, slot, export_Wh=1000), api.reading(buyer, slot, import_Wh=800)]
    assert api.client.post("/readings", json={"readings": readings}).status_code == 202
    api.flush()  # the readings and the agents' default orders reach the chain
    listed = api.client.get(
        "/offers", params={"household": seller.id, "status": "open"}, headers=buyer.auth
    ).json()["items"]
    (offer,) = listed

    def check(api: Api, answer: dict[str, Any]) -> None:
        client = api.services.client
        fills = [e for e in events(api, "FillSettled") if int(e.args["buyer"]) == buyer.id]
        assert [(int(e.args["energyWh"]), e.tx_hash) for e in fills] == [(300, answer["tx_hash"])]
        assert (answer["energy_Wh"], answer["offer"]) == (300, offer["id"])
        paid = answer["cost_ueur"] + answer["fee_ueur"]
        assert client.balance_of(buyer.account) == BUYER_UEUR - paid
        assert client.balance_of(seller.account) == answer["cost_ueur"]
        assert client.slot_energy(buyer.id, slot).bought_Wh == 300
        trades = api.client.get("/trades", headers=buyer.auth).json()
        assert Counter((t["slot"], t["energy_Wh"]) for t in trades["items"]) == {(slot, 300): 1}

    body = {"slot": slot, "max_Wh": 300}
    return Action("take", f"/offers/{offer['id']}/take", body, buyer.auth, 200, check)


ACTIONS: dict[str, Callable[[Api], Action]] = {
    "register": register,
    "topup": top_up,
    "rotate_key": rotate_key,
    "rotate_meter": rotate_meter,
    "take": take,
}

__all__ = ["ACTIONS", "Action", "Member", "assert_converged", "events", "opened", "send"]
