"""The outbox's pass (:meth:`api.outbox.Outbox.run_once`) with ``auto_settle``, as the
background loop runs it: readings first, then the orders, then each closed metered slot
settled once; and the chain gate that every pass and request goes through."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlmodel import Session, select

from api.chain_gate import ChainGate
from api.errors import ApiError
from api.intents import FaultHook, InjectedFault
from api.models import ApiOrder, IntakeReading
from ledger import errors as ledger_errors
from ledger.mirror.models import ReadingRecord, SlotOutcomeRecord
from ledger.readings.evidence import load_signed_readings
from tests.api.conftest import OP, Api, past_slot


def test_an_auto_settling_pass_settles_each_closed_metered_slot_once(embedded_api: Api) -> None:
    api = embedded_api
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=1_000_000)
    first = past_slot(6)
    for slot in (first, first + 1):
        batch = [
            api.reading(seller, slot, export_Wh=400),
            api.reading(buyer, slot, import_Wh=300),
        ]
        assert api.client.post("/readings", json={"readings": batch}).status_code == 202
    result = api.services.outbox.run_once(auto_settle=True)
    assert not result.chain_down and result.committed == 4
    assert result.settled_slots == [first, first + 1]
    with Session(api.services.engine) as session:
        assert {r.status for r in session.exec(select(IntakeReading))} == {"committed"}
        settled = {
            o.slot: o.status
            for o in session.exec(select(SlotOutcomeRecord))
            if o.slot in (first, first + 1)
        }
    assert settled == {first: "settled", first + 1: "settled"}
    head = api.services.chain.w3.eth.block_number
    again = api.services.outbox.run_once(auto_settle=True)
    assert (again.committed, again.settled_slots, again.chain_down) == (0, [], False)
    assert api.services.chain.w3.eth.block_number == head  # nothing sent twice


def test_a_pass_without_auto_settle_commits_and_mirrors_but_settles_nothing(
    embedded_api: Api,
) -> None:
    api = embedded_api
    seller = api.register(prosumer=True)
    slot = past_slot(6)
    body = {"readings": [api.reading(seller, slot, export_Wh=250)]}
    assert api.client.post("/readings", json=body).status_code == 202
    result = api.services.outbox.run_once()
    assert (result.committed, result.settled_slots) == (1, [])
    assert api.services.worker.outcome(slot) is None
    assert api.services.client.meter_state(seller.meter.address).last_slot == slot
    with Session(api.services.engine) as session:
        mirrored = session.exec(select(ReadingRecord).where(ReadingRecord.slot == slot)).one()
    assert (mirrored.meter, mirrored.export_Wh) == (seller.meter.address, 250)
    evidence = load_signed_readings(api.services.engine)
    assert [(e.meter, e.slot, e.export_Wh) for e in evidence] == [(seller.meter.address, slot, 250)]


# ───────────────────────────── The chain gate ─────────────────────────────


def test_the_gate_turns_an_unreachable_node_into_a_503_and_recovers_on_the_next_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = ChainGate()

    def down() -> int:
        raise ConnectionRefusedError("node gone")

    with caplog.at_level(logging.WARNING, logger="voisin.api"):
        for _ in range(2):
            with pytest.raises(ApiError) as refused:
                gate.on_chain(down)
            assert (refused.value.status, refused.value.code) == (503, "chain_unavailable")
    assert not gate.up and gate.last_error == "ConnectionRefusedError: node gone"
    assert [r.getMessage() for r in caplog.records] == ["chain unreachable: node gone"]
    assert gate.on_chain(lambda: 7) == 7
    assert gate.up and gate.waiters == 0


def test_the_gate_answers_a_contract_refusal_as_a_domain_error_and_keeps_the_chain_up() -> None:
    gate = ChainGate()

    def refused() -> None:
        raise ledger_errors.DuplicateReading({"index": 0})

    with pytest.raises(ApiError) as answer:
        gate.on_chain(refused)
    assert (answer.value.status, answer.value.code) == (409, "duplicate_reading")
    assert gate.up and gate.last_error is None
    assert gate.lock.acquire(blocking=False)  # released after the refusal
    gate.lock.release()


def test_a_household_without_gas_money_holds_back_no_other_households_order(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = embedded_api
    poor, other = api.register(prosumer=True), api.register(prosumer=True)
    slot = past_slot(-20)
    for member in (poor, other):
        body = {"price_limit_ueur_per_kWh": 90_000, "first_slot": slot, "last_slot": slot}
        r = api.client.post("/offers", json=body, headers=member.auth)
        assert r.status_code in (201, 202), r.text
    client = api.services.client
    real_post = client.post_offer

    def post_offer(account: Any, *args: Any, **kwargs: Any) -> int:
        if account.address == poor.account:
            raise ledger_errors.NoGasMoney(f"account {poor.account} has no ether")
        return real_post(account, *args, **kwargs)

    monkeypatch.setattr(client, "post_offer", post_offer)
    result = api.services.outbox.run_once()
    assert not result.chain_down

    def offers() -> dict[int, str]:
        with Session(api.services.engine) as session:
            rows = session.exec(select(ApiOrder).where(ApiOrder.price_limit_ueur_per_kWh == 90_000))
            return {o.household: o.status for o in rows}

    assert offers() == {other.id: "open", poor.id: "queued"}
    monkeypatch.setattr(client, "post_offer", real_post)
    api.services.outbox.run_once()
    assert offers() == {other.id: "open", poor.id: "open"}


def test_orders_wait_while_their_households_key_rotation_is_unfinished(embedded_api: Api) -> None:
    """A key rotation that failed after it was mined waits for the intents' pass: meanwhile
    the household's queued order is not signed with the key the chain replaced (and refused
    for good), and once the rotation is finished it is posted with the new key."""
    api = embedded_api
    member = api.register(prosumer=True)
    body = {"price_limit_ueur_per_kWh": 120_000, "first_slot": past_slot(-20)}
    r = api.client.post("/bids", json=body, headers=member.auth)
    assert r.status_code == 202, r.text
    bid = r.json()["id"]
    api.services.intents.fault = FaultHook("rotate_key.sent")
    with pytest.raises(InjectedFault):
        api.client.post(f"/households/{member.id}/rotate-key", headers=OP)
    api.services.intents.fault = FaultHook()
    api.flush()  # the outbox's pass: the bid waits
    with Session(api.services.engine) as session:
        assert session.get(ApiOrder, bid).status == "queued"  # type: ignore[union-attr]
    assert api.services.intents.reconcile() == 1
    api.flush()
    with Session(api.services.engine) as session:
        assert session.get(ApiOrder, bid).status == "open"  # type: ignore[union-attr]


def test_a_cancel_from_an_account_without_gas_money_is_sent_by_the_operator(
    embedded_api: Api,
) -> None:
    """A household whose account has no ether left asks to cancel its offer: the operator
    cancels it (it may cancel any order), and the pass goes on with the other orders."""
    api = embedded_api
    poor, other = api.register(prosumer=True), api.register(prosumer=True)
    slot = past_slot(-20)
    body = {"price_limit_ueur_per_kWh": 90_000, "first_slot": slot, "last_slot": slot}
    offer = api.client.post("/offers", json=body, headers=poor.auth).json()["id"]
    api.flush()
    assert api.client.delete(f"/offers/{offer}", headers=poor.auth).status_code == 202
    bid = api.client.post("/bids", json=body, headers=other.auth).json()["id"]
    api.spend_gas_money(poor)

    api.services.outbox.run_once()
    with Session(api.services.engine) as session:
        statuses = {o.id: o.status for o in session.exec(select(ApiOrder))}
    assert statuses[offer] == "cancelled" and statuses[bid] == "open"
