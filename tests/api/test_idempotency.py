"""Idempotency keys and validation before anything irreversible.

The same ``Idempotency-Key`` with the same request answers the first answer again and applies
nothing twice, also while the first is still in flight; another request with that key is a
409; keys belong to their caller. A request refused by validation mines nothing, records
nothing and keeps no answer.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy import func
from sqlmodel import Session, select

from api.idempotency import HEADER, KEY_RETENTION
from api.intents import FAULT_ENV, FaultHook, InjectedFault
from api.models import ApiHousehold, ApiIntent, ApiOrder
from ledger.errors import ChainUnavailable
from tests.api.conftest import OP, Api, Member, past_slot


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, HEADER: key}


def head(api: Api) -> int:
    return int(api.services.chain.w3.eth.block_number)


def intents(api: Api) -> list[ApiIntent]:
    with Session(api.services.engine) as session:
        return list(session.exec(select(ApiIntent)))


def topped_up(api: Api, account: str) -> list[int]:
    client = api.services.client
    found = client.events(api.services.deployment.block_number, head(api))
    return [
        int(e.args["amountUeur"])
        for e in found
        if e.name == "ToppedUp" and e.args["account"] == account
    ]


# ───────────────────────────── The same request again ─────────────────────────────


def test_a_registration_sent_again_with_its_key_answers_the_same_household_and_token(
    api: Api,
) -> None:
    meter = Account.create()
    body = {"meter": meter.address, "prosumer": True, "name": "Inès"}
    first = api.client.post("/households", json=body, headers=keyed(OP, "reg-1"))
    assert first.status_code == 201, first.text
    count, block = api.services.client.household_count(), head(api)
    again = api.client.post("/households", json=body, headers=keyed(OP, "reg-1"))
    assert (again.status_code, again.json()) == (201, first.json())
    assert (api.services.client.household_count(), head(api)) == (count, block)
    token = {"Authorization": f"Bearer {again.json()['token']}"}
    assert api.client.get(f"/households/{first.json()['id']}/balance", headers=token).is_success
    with Session(api.services.engine) as session:
        stored = session.exec(select(ApiIntent)).one()
    assert first.json()["token"] not in (stored.response or "") + stored.payload


def test_a_top_up_sent_again_with_its_key_mints_once(api: Api) -> None:
    m = api.register(prosumer=False)
    body = {"household": m.id, "amount_ueur": 1_234}
    first = api.client.post("/topups", json=body, headers=keyed(OP, "top-1"))
    again = api.client.post("/topups", json=body, headers=keyed(OP, "top-1"))
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert topped_up(api, m.account) == [1_234]
    assert api.services.client.balance_of(m.account) == 1_234


def test_the_same_key_with_another_request_is_refused_and_changes_nothing(api: Api) -> None:
    m = api.register(prosumer=False)
    first = api.client.post(
        "/topups", json={"household": m.id, "amount_ueur": 10}, headers=keyed(OP, "k")
    )
    assert first.status_code == 201
    block = head(api)
    for path, body in [
        ("/topups", {"household": m.id, "amount_ueur": 11}),
        ("/households", {"meter": Account.create().address, "prosumer": False}),
    ]:
        r = api.client.post(path, json=body, headers=keyed(OP, "k"))
        assert r.status_code == 409 and r.json()["code"] == "idempotency_key_reused", r.text
    r = api.client.post(f"/households/{m.id}/rotate-key", headers=keyed(OP, "k"))
    assert r.status_code == 409 and r.json()["code"] == "idempotency_key_reused"
    assert head(api) == block
    assert api.services.client.balance_of(m.account) == 10


def test_two_idempotency_keys_in_one_request_are_refused_before_anything_is_done(
    embedded_api: Api,
) -> None:
    api = embedded_api
    m = api.register(prosumer=False)
    block = head(api)
    keys = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    bid = {"price_limit_ueur_per_kWh": 100_000, "first_slot": past_slot(1)}
    for path, body, auth in [
        ("/topups", {"household": m.id, "amount_ueur": 5}, OP),
        ("/bids", bid, m.auth),
        (f"/households/{m.id}/token", None, OP),
    ]:
        r = api.client.post(path, json=body, headers=[*auth.items(), *keys])
        assert r.status_code == 422 and "one Idempotency-Key header" in r.json()["message"], r.text
    assert head(api) == block
    # Each key alone then applies once.
    for key in ("a", "b"):
        r = api.client.post(
            "/topups", json={"household": m.id, "amount_ueur": 5}, headers=keyed(OP, key)
        )
        assert r.status_code == 201, r.text
    assert api.services.client.balance_of(m.account) == 10


def test_keys_belong_to_their_caller(embedded_api: Api) -> None:
    api = embedded_api
    a, b = api.register(prosumer=False), api.register(prosumer=False)
    bid = {"price_limit_ueur_per_kWh": 100_000, "first_slot": past_slot(1)}
    ra = api.client.post("/bids", json=bid, headers=keyed(a.auth, "same"))
    rb = api.client.post("/bids", json=bid, headers=keyed(b.auth, "same"))
    assert (ra.status_code, rb.status_code) == (202, 202)
    assert (ra.json()["household"], rb.json()["household"]) == (a.id, b.id)
    assert ra.json()["id"] != rb.json()["id"]
    topup = api.client.post(
        "/topups", json={"household": a.id, "amount_ueur": 5}, headers=keyed(OP, "same")
    )
    assert topup.status_code == 201  # the operator's "same" is not the households'


def test_an_order_sent_again_with_its_key_is_stored_once_and_answered_as_first_stored(
    embedded_api: Api,
) -> None:
    api = embedded_api
    m = api.register(prosumer=True)
    for side in ("offers", "bids"):
        body = {"price_limit_ueur_per_kWh": 90_000, "first_slot": past_slot(1)}
        first = api.client.post(f"/{side}", json=body, headers=keyed(m.auth, f"order-{side}"))
        assert first.status_code == 202 and first.json()["status"] == "queued", first.text
        api.flush()  # the order is open now; the answer stays what it was
        again = api.client.post(f"/{side}", json=body, headers=keyed(m.auth, f"order-{side}"))
        assert (again.status_code, again.json()) == (202, first.json())
    with Session(api.services.engine) as session:
        own = session.exec(
            select(ApiOrder.side, func.count())
            .where(ApiOrder.household == m.id, ApiOrder.source == "household")
            .group_by(ApiOrder.side)  # type: ignore[arg-type]
        ).all()
    assert sorted(own) == [("bid", 1), ("offer", 1)]


def test_a_take_sent_again_with_its_key_buys_once(api: Api) -> None:
    _seller, buyer, slot, offer = _trade_ready(api)
    body = {"slot": slot, "max_Wh": 200}
    first = api.client.post(f"/offers/{offer}/take", json=body, headers=keyed(buyer.auth, "t"))
    again = api.client.post(f"/offers/{offer}/take", json=body, headers=keyed(buyer.auth, "t"))
    assert first.status_code == 200, first.text
    assert (again.status_code, again.json()) == (200, first.json())
    assert api.services.client.slot_energy(buyer.id, slot).bought_Wh == 200
    trades = api.client.get("/trades", headers=buyer.auth).json()
    assert trades["total"] == 1


def test_a_refusal_from_the_chain_is_the_answer_given_again(embedded_api: Api) -> None:
    """A take that found nothing to buy is answered 409 again with its key, even once there
    is something: the first answer is the answer (a new key makes a new take)."""
    api = embedded_api
    seller, buyer, slot, offer = _trade_ready(api)
    empty = slot + 1  # the seller exported nothing then
    assert api.client.post(
        "/readings", json={"readings": [api.reading(buyer, empty, import_Wh=10)]}
    ).is_success
    api.flush()
    body = {"slot": empty, "max_Wh": 5}
    first = api.client.post(f"/offers/{offer}/take", json=body, headers=keyed(buyer.auth, "e"))
    assert first.status_code == 409 and first.json()["code"] == "insufficient_credits", first.text
    assert api.client.post(
        "/readings", json={"readings": [api.reading(seller, empty, export_Wh=50)]}
    ).is_success
    api.flush()
    block = head(api)
    again = api.client.post(f"/offers/{offer}/take", json=body, headers=keyed(buyer.auth, "e"))
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert head(api) == block
    (intent,) = [i for i in intents(api) if i.idempotency_key == "e"]
    assert intent.state == "failed"


def test_a_token_issued_again_with_its_key_is_the_same_token(embedded_api: Api) -> None:
    api = embedded_api
    m = api.register(prosumer=False)
    first = api.client.post(f"/households/{m.id}/token", headers=keyed(OP, "tok"))
    again = api.client.post(f"/households/{m.id}/token", headers=keyed(OP, "tok"))
    assert first.status_code == 200 and again.json() == first.json()
    new = {"Authorization": f"Bearer {first.json()['token']}"}
    assert api.client.get(f"/households/{m.id}/balance", headers=new).is_success
    assert api.client.get(f"/households/{m.id}/balance", headers=m.auth).status_code == 401


class PausedAfterRecording(FaultHook):
    """Holds the first top-up right after its intent is recorded, until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.go = threading.Event()

    def at(self, kind: str, step: str) -> None:
        if (kind, step) == ("topup", "recorded") and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(30)


def test_a_retry_while_the_first_is_in_flight_finishes_it_once_and_both_answer_the_same(
    embedded_api: Api,
) -> None:
    api = embedded_api
    m = api.register(prosumer=False)
    body = {"household": m.id, "amount_ueur": 42}
    hook = PausedAfterRecording()
    api.services.intents.fault = hook
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(api.client.post("/topups", json=body, headers=keyed(OP, "flight")))

    first = threading.Thread(target=send)
    first.start()
    assert hook.reached.wait(30)  # recorded, not yet sent: in flight
    send()  # the retry
    hook.go.set()
    first.join(30)
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert topped_up(api, m.account) == [42]


def test_a_retry_waits_for_the_chain_held_by_the_first_and_answers_the_same(
    embedded_api: Api,
) -> None:
    api = embedded_api
    m = api.register(prosumer=False)
    body = {"household": m.id, "amount_ueur": 43}
    hook = PausedAfterRecording()
    api.services.intents.fault = hook
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(api.client.post("/topups", json=body, headers=keyed(OP, "busy")))

    first = threading.Thread(target=send)
    first.start()
    assert hook.reached.wait(30)
    with api.services.gate.lock:  # the chain is busy: both wait for it
        hook.go.set()
        second = threading.Thread(target=send)
        second.start()
        time.sleep(0.3)
        assert answers == []
    first.join(30)
    second.join(30)
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert topped_up(api, m.account) == [43]


# ───────────────────────────── Refused: nothing happens ─────────────────────────────


def test_a_zero_meter_is_refused_before_anything_is_mined(api: Api) -> None:
    m = api.register(prosumer=True)
    before = (head(api), api.snapshot(), len(intents(api)))
    zero = "0x" + "0" * 40
    r = api.client.post("/households", json={"meter": zero, "prosumer": True}, headers=OP)
    assert r.status_code == 422 and r.json()["code"] == "zero_address", r.text
    r = api.client.post(f"/households/{m.id}/meter", json={"meter": zero}, headers=OP)
    assert r.status_code == 422 and r.json()["code"] == "zero_address", r.text
    assert (head(api), api.snapshot(), len(intents(api))) == before


def test_a_meter_already_on_chain_is_refused_before_anything_is_mined(api: Api) -> None:
    """A meter the chain knows but the API does not (registered by another tool, or by a
    registration whose database write failed) cannot be registered or rotated to again."""
    m = api.register(prosumer=True)
    services = api.services
    meter = Account.create()
    with services.gate.lock:
        services.client.register_household(
            services.chain.operator, Account.create().address, meter.address, prosumer=False
        )
    before = (head(api), api.snapshot(), services.client.household(m.id).meter)
    r = api.client.post("/households", json={"meter": meter.address, "prosumer": True}, headers=OP)
    assert r.status_code == 409 and r.json()["code"] == "meter_already_registered", r.text
    r = api.client.post(f"/households/{m.id}/meter", json={"meter": meter.address}, headers=OP)
    assert r.status_code == 409 and r.json()["code"] == "meter_already_registered", r.text
    assert (head(api), api.snapshot(), services.client.household(m.id).meter) == before


def test_a_deactivated_household_is_not_topped_up(api: Api) -> None:
    m = api.register(prosumer=False)
    services = api.services
    with services.gate.lock:
        services.client.deactivate_household(services.chain.operator, m.id)
    block = head(api)
    r = api.client.post("/topups", json={"household": m.id, "amount_ueur": 5}, headers=OP)
    assert r.status_code == 422 and r.json()["code"] == "household_inactive", r.text
    assert head(api) == block and topped_up(api, m.account) == []


def test_a_refused_request_keeps_no_answer_for_its_key(embedded_api: Api) -> None:
    api = embedded_api
    m = api.register(prosumer=False)
    r = api.client.post(
        "/topups", json={"household": 9_999, "amount_ueur": 5}, headers=keyed(OP, "later")
    )
    assert r.status_code == 404
    assert not any(i.idempotency_key == "later" for i in intents(api))
    r = api.client.post(
        "/topups", json={"household": m.id, "amount_ueur": 5}, headers=keyed(OP, "later")
    )
    assert r.status_code == 201, r.text


def test_an_unkeyed_registration_interrupted_after_the_chain_still_gets_its_household(
    embedded_api: Api,
) -> None:
    """Without a key: the household the chain registered is confirmed in the database by the
    reconciliation, a second registration of its meter is refused with nothing mined, and the
    operator issues it a token."""
    api = embedded_api
    meter = Account.create()
    api.services.intents.fault = FaultHook("register.sent")
    with pytest.raises(InjectedFault):
        api.client.post("/households", json={"meter": meter.address, "prosumer": True}, headers=OP)
    assert api.services.intents.reconcile() == 1
    with Session(api.services.engine) as session:
        (row,) = session.exec(select(ApiHousehold).where(ApiHousehold.meter == meter.address))
    block = head(api)
    again = api.client.post(
        "/households", json={"meter": meter.address, "prosumer": True}, headers=OP
    )
    assert again.status_code == 409 and again.json()["code"] == "meter_already_registered"
    assert head(api) == block
    token = api.client.post(f"/households/{row.id}/token", headers=OP).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert api.client.get(f"/households/{row.id}/balance", headers=auth).is_success


# ───────────────────────────── The node stops answering ─────────────────────────────


def test_a_node_down_before_sending_does_nothing_and_frees_the_key(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = embedded_api
    m = api.register(prosumer=False)

    def down(*_: Any) -> Any:
        raise ChainUnavailable("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(api.services.client, "household", down)
        r = api.client.post(
            "/topups", json={"household": m.id, "amount_ueur": 9}, headers=keyed(OP, "down")
        )
    assert r.status_code == 503 and r.json()["code"] == "chain_unavailable", r.text
    assert [i for i in intents(api) if i.idempotency_key == "down"] == []
    r = api.client.post(
        "/topups", json={"household": m.id, "amount_ueur": 9}, headers=keyed(OP, "down")
    )
    assert r.status_code == 201, r.text
    assert topped_up(api, m.account) == [9]


def test_a_node_down_while_sending_is_finished_once_it_answers(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = embedded_api
    m = api.register(prosumer=False)

    def down(*_: Any, **__: Any) -> Any:
        raise ChainUnavailable("connection reset")

    with monkeypatch.context() as patch:
        patch.setattr(api.services.client, "top_up", down)
        r = api.client.post(
            "/topups", json={"household": m.id, "amount_ueur": 8}, headers=keyed(OP, "mid")
        )
    assert r.status_code == 503 and "same Idempotency-Key" in r.json()["message"], r.text
    assert [i.state for i in intents(api) if i.idempotency_key == "mid"] == ["sending"]
    r = api.client.post(
        "/topups", json={"household": m.id, "amount_ueur": 8}, headers=keyed(OP, "mid")
    )
    assert r.status_code == 201, r.text
    assert topped_up(api, m.account) == [8]


def test_a_node_down_while_an_older_intent_is_finished_leaves_the_newer_undone(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A household's intents run oldest first; if the node stops answering while an older one
    is finished, the newer one (never started) is dropped with the 503, not done later."""
    api = embedded_api
    m = api.register(prosumer=False)
    api.services.intents.fault = FaultHook("topup.recorded")
    with pytest.raises(InjectedFault):
        api.client.post(
            "/topups", json={"household": m.id, "amount_ueur": 1}, headers=keyed(OP, "old")
        )

    real = api.services.client.household
    calls: list[int] = []

    def down_after_the_check(household: int) -> Any:
        calls.append(household)
        if len(calls) == 1:  # the new request's validation
            return real(household)
        raise ChainUnavailable("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(api.services.client, "household", down_after_the_check)
        r = api.client.post(
            "/topups", json={"household": m.id, "amount_ueur": 2}, headers=keyed(OP, "new")
        )
    assert r.status_code == 503 and r.json()["code"] == "chain_unavailable", r.text
    assert [i for i in intents(api) if i.kind == "topup"] == []
    api.services.intents.reconcile()
    assert topped_up(api, m.account) == []
    for key, amount in [("new", 2), ("old", 1)]:
        body = {"household": m.id, "amount_ueur": amount}
        assert api.client.post("/topups", json=body, headers=keyed(OP, key)).status_code == 201
    assert topped_up(api, m.account) == [2, 1]


# ───────────────────────────── Keys, documents, the hook ─────────────────────────────


def test_finished_intents_are_forgotten_after_the_retention(embedded_api: Api) -> None:
    api = embedded_api
    m = api.register(prosumer=False)
    body = {"household": m.id, "amount_ueur": 3}
    assert api.client.post("/topups", json=body, headers=keyed(OP, "old")).status_code == 201
    assert api.services.intents.purge() == 0
    kept = len(intents(api))
    later = time.time() + KEY_RETENTION.total_seconds() + 1
    assert api.services.intents.purge(now=later) == kept > 0
    assert intents(api) == []
    # Past the retention the key is new again: the same request is a new top-up.
    assert api.client.post("/topups", json=body, headers=keyed(OP, "old")).status_code == 201
    assert topped_up(api, m.account) == [3, 3]


def test_every_money_and_registering_route_documents_the_key_header(
    embedded_api: Api,
) -> None:
    paths = embedded_api.client.get("/openapi.json").json()["paths"]
    keyed_routes = [
        "/households",
        "/topups",
        "/households/{household}/rotate-key",
        "/households/{household}/token",
        "/households/{household}/meter",
        "/offers",
        "/bids",
        "/offers/{order_id}/take",
    ]
    for path in keyed_routes:
        operation = paths[path]["post"]
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert [h["name"] for h in headers] == [HEADER], path
        assert "7 days" in headers[0]["description"]
        assert "409" in operation["responses"], path


def test_a_bad_key_is_refused_as_input(embedded_api: Api) -> None:
    api = embedded_api
    m = api.register(prosumer=False)
    body = {"household": m.id, "amount_ueur": 1}
    for bad in ["has space", "x" * 256]:
        r = api.client.post("/topups", json=body, headers=keyed(OP, bad))
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", r.text
    assert topped_up(api, m.account) == []


def test_the_fault_hook_is_off_unless_the_environment_arms_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(FAULT_ENV, raising=False)
    assert FaultHook.from_environment().point is None
    monkeypatch.setenv(FAULT_ENV, "topup.sent:kill")
    armed = FaultHook.from_environment()
    assert (armed.point, armed.action) == ("topup.sent", "kill")
    for bad in ["topup", "topup.nowhere", "nothing.sent", "topup.sent:explode"]:
        monkeypatch.setenv(FAULT_ENV, bad)
        with pytest.raises(ValueError, match=FAULT_ENV):
            FaultHook.from_environment()
    hook = FaultHook("take.sent")
    hook.at("take", "sending")
    with pytest.raises(InjectedFault):
        hook.at("take", "sent")
    hook.at("take", "sent")  # fires once


def _trade_ready(api: Api) -> tuple[Member, Member, int, int]:
    c = api.client
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=2_000_000)
    slot = past_slot(5)
    readings = [api.reading(seller, slot, export_Wh=1000), api.reading(buyer, slot, import_Wh=1000)]
    assert c.post("/readings", json={"readings": readings}).status_code == 202
    offer = c.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 80_000, "first_slot": slot - 2},
        headers=seller.auth,
    ).json()["id"]
    api.flush()
    return seller, buyer, slot, int(offer)


def test_two_rotations_to_one_new_meter_at_once_give_it_to_one_and_leave_nothing_unfinished(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rotations of one household to the same new meter, both checked before either is
    recorded (two tabs of the operator's page): one rotates, the other is refused as the
    meter being taken; nothing stays unfinished, and the household's next action goes."""
    import api.routes.households as households_routes
    from api.intents import claimed as real_claimed

    api = embedded_api
    member = api.register(prosumer=False)
    api.flush()
    meter = Account.create().address
    both_checked = threading.Barrier(2, timeout=30)

    def claimed(session: Any, subject: str) -> bool:
        found = real_claimed(session, subject)
        both_checked.wait()
        return found

    monkeypatch.setattr(households_routes, "claimed", claimed)
    answers: list[httpx.Response] = []

    def rotate() -> None:
        answers.append(
            api.client.post(f"/households/{member.id}/meter", json={"meter": meter}, headers=OP)
        )

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    monkeypatch.setattr(households_routes, "claimed", real_claimed)
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    (refused,) = [r for r in answers if r.status_code == 409]
    assert refused.json()["code"] == "meter_already_registered"
    assert api.services.intents.unfinished() == 0
    r = api.client.post("/topups", json={"household": member.id, "amount_ueur": 5}, headers=OP)
    assert r.status_code == 201, r.text


def test_a_reading_of_the_old_meter_accepted_during_its_rotation_leaves_the_slot_to_the_new(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading of the old meter is accepted while the rotation is between the chain and
    the database: the chain has retired that meter, so the reading is rejected, saying why,
    and the new meter takes over from the old one's last slot on chain: its reading for the
    same slot is accepted and committed."""
    from api.models import IntakeReading
    from api.services import slot_now
    from ledger.readings.intake import reading_from_json

    api = embedded_api
    member = api.register()
    slot = past_slot(8)
    r = api.client.post("/readings", json={"readings": [api.reading(member, slot, export_Wh=300)]})
    assert r.status_code == 202, r.text
    api.flush()
    late = api.reading(member, slot + 1, export_Wh=100)
    verdicts: list[Any] = []
    rotate = api.services.intents.client.rotate_meter

    def a_reading_arrives_meanwhile(*args: Any, **kwargs: Any) -> Any:
        sent = rotate(*args, **kwargs)
        verdicts.extend(api.services.intake.submit([reading_from_json(late)], slot_now()))
        return sent

    monkeypatch.setattr(api.services.intents.client, "rotate_meter", a_reading_arrives_meanwhile)
    new = Account.create()
    body = {"meter": new.address, "import_baseline_Wh": 0, "export_baseline_Wh": 0}
    r = api.client.post(f"/households/{member.id}/meter", json=body, headers=OP)
    assert r.status_code == 200, r.text
    assert r.json()["last_slot"] == slot == api.services.client.meter_state(new.address).last_slot
    assert [v.status for v in verdicts] == ["accepted"]
    api.flush()
    with Session(api.services.engine) as session:
        (held,) = session.exec(select(IntakeReading).where(IntakeReading.slot == slot + 1))
    assert held.status == "rejected" and "replaced" in (held.reason or "")

    member.meter, member.import_Wh, member.export_Wh = new, 0, 0
    again = api.reading(member, slot + 1, export_Wh=100)
    r = api.client.post("/readings", json={"readings": [again]})
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    api.flush()
    assert api.services.client.meter_state(new.address).last_slot == slot + 1


def test_a_rotation_a_restored_database_holds_pending_is_done_if_the_chain_did_it(
    embedded_api: Api,
) -> None:
    """A backup taken while a meter rotation was recorded but not sent; the server went on
    and rotated the meter on chain: in the restored database the rotation is found done, and
    the household gets its new meter (not a refusal leaving it on the retired one)."""
    import json

    api = embedded_api
    member = api.register()
    api.flush()
    old, new = member.meter.address, Account.create().address
    r = api.client.post(f"/households/{member.id}/meter", json={"meter": new}, headers=OP)
    assert r.status_code == 200, r.text
    with Session(api.services.engine) as session:  # as the backup held it
        (intent,) = session.exec(select(ApiIntent).where(ApiIntent.kind == "rotate_meter"))
        intent_id = intent.id
        payload = json.loads(intent.payload)
        del payload["previous_meter"]
        intent.payload, intent.state, intent.status_code, intent.response = (
            json.dumps(payload), "pending", None, None
        )  # fmt: skip
        session.add(intent)
        row = session.get(ApiHousehold, member.id)
        assert row is not None
        row.meter = old
        session.add(row)
        session.commit()
    assert api.services.intents.reconcile() == 1
    with Session(api.services.engine) as session:
        row = session.get(ApiHousehold, member.id)
        done = session.get(ApiIntent, intent_id)
    assert row is not None and row.meter == new
    assert done is not None and done.state == "done"
    assert json.loads(done.response or "{}")["previous_meter"] == old
