"""The API's share of SECURITY.md: rate limits (429 and Retry-After), malleable signatures at
the intake, key custody (keys in no log and no answer) and the operator's key rotations."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
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
from ledger import errors
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, Api, Member, _settings, past_slot

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = N // 2


class FakeClock:
    """A monotonic clock the test moves by hand: no test waits for real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[Api, FakeClock]]:
    """An API whose household tokens may make 3 writes, then one per 2 s, and whose meters
    may deliver 2 readings, then one per 4 s; both limiters run on a hand-moved clock."""
    settings = _settings(
        tmp_path, token_burst=3, token_rate_per_s=0.5, meter_burst=2, meter_rate_per_s=0.25
    )
    app = create_app(settings, background=False)
    clock = FakeClock()
    with TestClient(app) as client:
        services = app.state.services
        services.token_limiter.clock = clock
        services.meter_limiter.clock = clock
        yield Api(client, services), clock


def _count(api: Api, table: type[Any]) -> int:
    with Session(api.services.engine) as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def _assert_429(r: Any, retry_after: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == str(retry_after)
    body = r.json()
    assert body["code"] == "rate_limited"
    assert f"retry after {retry_after} s" in body["message"]
    assert body["details"]["retry_after_s"] == retry_after


# ───────────────────────────── Rate limits ─────────────────────────────


def test_household_writes_beyond_the_token_limit_get_429_with_retry_after(
    limited: tuple[Api, FakeClock],
) -> None:
    api, clock = limited
    c = api.client
    a, b = api.register(prosumer=False), api.register(prosumer=False)
    bid = {"price_limit_ueur_per_kWh": 90_000, "first_slot": past_slot(2)}
    for _ in range(3):
        assert c.post("/bids", json=bid, headers=a.auth).status_code == 202
    orders = _count(api, ApiOrder)
    # The bucket is empty: one token comes back every 2 s.
    _assert_429(c.post("/bids", json=bid, headers=a.auth), 2)
    _assert_429(c.delete("/bids/1", headers=a.auth), 2)
    _assert_429(
        c.post("/offers/1/take", json={"slot": past_slot(2), "max_Wh": 1}, headers=a.auth), 2
    )
    assert _count(api, ApiOrder) == orders  # a refused request stores nothing
    # Another household's token has its own bucket; the operator is not limited.
    assert c.post("/bids", json=bid, headers=b.auth).status_code == 202
    api.register(prosumer=True)
    # Half the wait is not enough; the whole wait is.
    clock.now += 1
    _assert_429(c.post("/bids", json=bid, headers=a.auth), 1)
    clock.now += 1
    assert c.post("/bids", json=bid, headers=a.auth).status_code == 202


def test_meter_beyond_its_limit_gets_429_and_forgeries_in_its_name_do_not_drain_it(
    limited: tuple[Api, FakeClock],
) -> None:
    api, clock = limited
    c = api.client
    m, other = api.register(), api.register()
    slot = past_slot(20)
    forger = Account.create()
    forged = [
        reading_to_json(
            sign_reading(
                forger.key, Reading(m.meter.address, slot + i, 0, 10**6), api.services.domain
            )
        )
        for i in range(10)
    ]
    r = c.post("/readings", json={"readings": forged})
    assert r.status_code == 422 and r.json()["code"] == "bad_signature"
    # The meter's own two readings still fit its burst of 2.
    for i in range(2):
        r = c.post("/readings", json={"readings": [api.reading(m, slot + i, export_Wh=5)]})
        assert r.status_code == 202, r.text
    stored = _count(api, IntakeReading)
    third = api.reading(m, slot + 2, export_Wh=5)
    _assert_429(c.post("/readings", json={"readings": [third]}), 4)
    # A batch is refused whole if one of its meters is over: the other meter's reading too.
    mixed = [api.reading(other, slot, export_Wh=1), third]
    _assert_429(c.post("/readings", json={"readings": mixed}), 4)
    assert _count(api, IntakeReading) == stored
    assert c.post("/readings", json={"readings": [mixed[0]]}).status_code == 202
    clock.now += 4
    r = c.post("/readings", json={"readings": [third]})
    assert r.status_code == 202 and r.json()["accepted"] == 1


def test_replays_of_a_meters_readings_do_not_drain_its_bucket(
    limited: tuple[Api, FakeClock],
) -> None:
    """A committed reading is public (its transaction's call data): copies of it sent again
    and again are answered without being charged to the meter, whose next two readings
    still fit its burst of 2."""
    api, clock = limited
    c = api.client
    m = api.register()
    slot = past_slot(20)
    first = api.reading(m, slot, export_Wh=5)
    second = api.reading(m, slot + 1, export_Wh=5)
    assert c.post("/readings", json={"readings": [first, second]}).status_code == 202
    api.flush()
    clock.now += 8  # the bucket is full again
    for _ in range(5):
        for copy in (first, second):
            r = c.post("/readings", json={"readings": [copy]})
            assert r.status_code == 202 and r.json()["duplicates"] == 1, r.text
    for k in (2, 3):  # the meter's own next two readings: its whole burst is still there
        r = c.post("/readings", json={"readings": [api.reading(m, slot + k, export_Wh=5)]})
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text


def test_limits_are_documented_as_429_on_the_write_endpoints(
    limited: tuple[Api, FakeClock],
) -> None:
    api, _ = limited
    paths = api.client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/readings", "post"),
        ("/offers", "post"),
        ("/bids", "post"),
        ("/offers/{order_id}", "delete"),
        ("/offers/{order_id}/take", "post"),
    ]:
        assert "429" in paths[path][method]["responses"], (path, method)


# ───────────────────────────── Signatures at the intake ─────────────────────────────


def test_high_s_reading_is_refused_at_the_intake_and_its_low_s_twin_accepted(
    embedded_api: Api,
) -> None:
    api = embedded_api
    m = api.register()
    low = sign_reading(
        m.meter.key, Reading(m.meter.address, past_slot(3), 0, 250), api.services.domain
    )
    s = int.from_bytes(low.s, "big")
    assert s <= HALF_N  # eth-keys signs low-s; the twin below is the same point, mirrored
    high = {**reading_to_json(low), "v": 55 - low.v, "s": "0x" + (N - s).to_bytes(32, "big").hex()}
    r = api.client.post("/readings", json={"readings": [high]})
    assert r.status_code == 422
    assert r.json()["code"] == "bad_signature"
    assert "malleable" in r.json()["message"]
    assert _count(api, IntakeReading) == 0
    r = api.client.post("/readings", json={"readings": [reading_to_json(low)]})
    assert r.status_code == 202 and r.json()["accepted"] == 1


def test_reading_signed_for_another_deployment_is_refused_at_the_intake(
    embedded_api: Api,
) -> None:
    from ledger.readings.eip712 import domain_separator

    api = embedded_api
    m = api.register()
    services = api.services
    for domain in (
        domain_separator(services.chain_id + 1, services.client.address),
        domain_separator(services.chain_id, Account.create().address),
    ):
        other = sign_reading(m.meter.key, Reading(m.meter.address, past_slot(3), 0, 1), domain)
        r = api.client.post("/readings", json={"readings": [reading_to_json(other)]})
        assert r.status_code == 422 and r.json()["code"] == "bad_signature"
    assert _count(api, IntakeReading) == 0


# ───────────────────────────── Key custody ─────────────────────────────


def _household_keys(api: Api) -> list[LocalAccount]:
    with Session(api.services.engine) as s:
        rows = s.exec(select(ApiHousehold)).all()
    return [api.services.vault.account(h.key_json) for h in rows]


def test_household_keys_appear_in_no_log_and_no_answer(
    embedded_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = embedded_api
    c = api.client
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []

    def keep(r: Any) -> Any:
        answers.append(r.text + json.dumps(dict(r.headers)))
        return r

    seller, buyer = api.register(prosumer=True), api.register(prosumer=False, topup_ueur=10**6)
    slot = past_slot(4)
    readings = [api.reading(seller, slot, export_Wh=900), api.reading(buyer, slot, import_Wh=900)]
    keep(c.post("/readings", json={"readings": readings}))
    offer = keep(
        c.post(
            "/offers",
            json={"price_limit_ueur_per_kWh": 80_000, "first_slot": slot},
            headers=seller.auth,
        )
    ).json()["id"]
    api.flush()
    keep(c.post(f"/offers/{offer}/take", json={"slot": slot, "max_Wh": 100}, headers=buyer.auth))
    keep(c.post(f"/households/{buyer.id}/rotate-key", headers=OP))
    for path in (
        f"/households/{buyer.id}/balance",
        f"/households/{seller.id}/balance",
        "/offers",
        "/trades",
        "/health",
        "/metrics",
        "/openapi.json",
    ):
        keep(c.get(path, headers=OP))
    # An error on the key path says nothing about the key either.
    keep(c.post("/households/999/rotate-key", headers=OP))
    api.flush()

    keys = _household_keys(api)
    assert len(keys) == 2
    secret = api.services.vault._secret
    text = "\n".join(answers) + "\n" + caplog.text
    for key in keys:
        for form in (key.key.hex(), key.key.hex().removeprefix("0x"), str(int.from_bytes(key.key))):
            assert form not in text
    assert secret not in text
    with Session(api.services.engine) as s:
        stored = [h.key_json for h in s.exec(select(ApiHousehold))]
    # At rest, only the scrypt keystore: no plain key, and the wrong secret cannot open it.
    for key, key_json in zip(keys, stored, strict=True):
        assert key.key.hex().removeprefix("0x") not in key_json
        keystore = json.loads(key_json)
        assert keystore["crypto"]["kdf"] == "scrypt"
        with pytest.raises(ValueError):
            Account.decrypt(keystore, "not-the-server-secret")


# ───────────────────────────── Rotation ─────────────────────────────


def _trade_ready(api: Api) -> tuple[Member, Member, int, int]:
    c = api.client
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=2_000_000)
    slot = past_slot(5)
    readings = [api.reading(seller, slot, export_Wh=1000), api.reading(buyer, slot, import_Wh=1000)]
    assert c.post("/readings", json={"readings": readings}).status_code == 202
    offer = c.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 80_000, "first_slot": slot},
        headers=seller.auth,
    ).json()["id"]
    api.flush()
    return seller, buyer, slot, offer


def test_rotating_a_households_key_keeps_its_money_and_orders_and_retires_the_old_key(
    api: Api,
) -> None:
    c = api.client
    seller, buyer, slot, offer = _trade_ready(api)
    old_key = api.services.vault.account(_key_json(api, buyer.id))
    before = c.get(f"/households/{buyer.id}/balance", headers=buyer.auth).json()["balance_ueur"]

    r = c.post(f"/households/{buyer.id}/rotate-key", headers=OP)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["previous_account"] == buyer.account == old_key.address
    assert body["account"] != buyer.account
    chain = api.services.client
    assert chain.household(buyer.id).account == body["account"]
    assert chain.household_of(old_key.address) == 0
    # The stored keystore now holds the new key; the money followed it, in the mirror too.
    assert api.services.vault.account(_key_json(api, buyer.id)).address == body["account"]
    after = c.get(f"/households/{buyer.id}/balance", headers=buyer.auth).json()["balance_ueur"]
    assert after == before == 2_000_000
    # The household still trades (the API signs with the new key); the old key cannot.
    take = c.post(f"/offers/{offer}/take", json={"slot": slot, "max_Wh": 100}, headers=buyer.auth)
    assert take.status_code == 200, take.text
    assert chain.slot_energy(buyer.id, slot).bought_Wh == 100
    with pytest.raises(errors.NotHousehold):
        chain.take_offer(old_key, 1, slot, 100)
    # The seller's key rotates too, and its open offer stays open and cancellable by it.
    assert c.post(f"/households/{seller.id}/rotate-key", headers=OP).status_code == 200
    assert c.delete(f"/offers/{offer}", headers=seller.auth).status_code == 202
    api.flush()
    listed = c.get(f"/offers?household={seller.id}", headers=OP).json()["items"]
    assert [o["status"] for o in listed if o["id"] == offer] == ["cancelled"]


def _key_json(api: Api, household: int) -> str:
    with Session(api.services.engine) as s:
        record = s.get(ApiHousehold, household)
        assert record is not None
        return record.key_json


def test_key_rotation_is_the_operators_and_needs_a_known_household(embedded_api: Api) -> None:
    c = embedded_api.client
    m = embedded_api.register()
    for path in (f"/households/{m.id}/rotate-key", f"/households/{m.id}/token"):
        assert c.post(path, headers=m.auth).status_code == 403
        assert c.post(path).status_code == 401
        r = c.post(path.replace(str(m.id), "999"), headers=OP)
        assert r.status_code == 404 and r.json()["code"] == "unknown_household"
    r = c.post(
        f"/households/{m.id}/meter", json={"meter": Account.create().address}, headers=m.auth
    )
    assert r.status_code == 403


def test_a_new_token_replaces_the_old_one(embedded_api: Api) -> None:
    c = embedded_api.client
    m = embedded_api.register()
    assert c.get(f"/households/{m.id}/balance", headers=m.auth).status_code == 200  # now cached
    r = c.post(f"/households/{m.id}/token", headers=OP)
    assert r.status_code == 200
    new = r.json()["token"]
    assert new != m.token and new.startswith("vsn_")
    old = c.get(f"/households/{m.id}/balance", headers=m.auth)
    assert old.status_code == 401 and old.json()["code"] == "unauthorized"
    fresh = {"Authorization": f"Bearer {new}"}
    assert c.get(f"/households/{m.id}/balance", headers=fresh).status_code == 200


def test_rotating_a_meter_hands_over_after_the_last_slot_and_retires_the_old_key(
    api: Api,
) -> None:
    c = api.client
    m = api.register()
    slot = past_slot(8)
    assert (
        c.post("/readings", json={"readings": [api.reading(m, slot, export_Wh=300)]}).status_code
        == 202
    )
    new: LocalAccount = Account.create()
    body = {"meter": new.address, "import_baseline_Wh": 40, "export_baseline_Wh": 50}
    # Not while the old meter's reading waits for the chain.
    r = c.post(f"/households/{m.id}/meter", json=body, headers=OP)
    assert r.status_code == 409 and r.json()["code"] == "meter_readings_pending"
    api.flush()
    other = api.register()
    taken = {**body, "meter": other.meter.address}
    r = c.post(f"/households/{m.id}/meter", json=taken, headers=OP)
    assert r.status_code == 409 and r.json()["code"] == "meter_already_registered"

    r = c.post(f"/households/{m.id}/meter", json=body, headers=OP)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": m.id,
        "meter": new.address,
        "previous_meter": m.meter.address,
        "import_baseline_Wh": 40,
        "export_baseline_Wh": 50,
        "last_slot": slot,
    }
    assert api.services.client.household(m.id).meter == new.address
    # The old key is refused now, even for a slot it never sent.
    r = c.post("/readings", json={"readings": [api.reading(m, slot + 1, export_Wh=10)]})
    assert r.status_code == 422 and r.json()["code"] == "unknown_meter"
    # The new meter cannot re-meter the old one's last slot, and goes on from its baselines.
    old_meter = m.meter
    m.meter, m.import_Wh, m.export_Wh = new, 40, 50
    r = c.post("/readings", json={"readings": [api.reading(m, slot, export_Wh=1)]})
    assert r.status_code == 422
    m.export_Wh -= 1
    r = c.post("/readings", json={"readings": [api.reading(m, slot + 1, export_Wh=70)]})
    assert r.status_code == 202 and r.json()["accepted"] == 1
    api.flush()
    assert api.services.client.slot_energy(m.id, slot + 1).export_Wh == 70
    assert api.services.client.meter_state(old_meter.address).retired


# ───────────────────────────── Load ─────────────────────────────


def test_background_work_hands_the_chain_over_to_requests_waiting_for_it(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import api.chain_gate

    gate = embedded_api.services.gate

    def no_sleep(_: float) -> None:
        raise AssertionError("yield_to_requests slept")

    monkeypatch.setattr(api.chain_gate.time, "sleep", no_sleep)
    embedded_api.services.last_request = time.monotonic() + 3600  # a request "just started"
    # No request waits for the chain: the background work lets running requests go first.
    with pytest.raises(AssertionError, match="slept"):
        gate.yield_to_requests()
    # A request blocked on the chain lock, which the background work holds (as an outbox
    # pass does): the yield lets it run its chain work, then takes the lock back.
    ran: list[str] = []
    gate.lock.acquire()
    try:
        waiter = threading.Thread(
            target=embedded_api.services.on_chain, args=(lambda: ran.append("request"),)
        )
        waiter.start()
        while gate.waiters == 0:
            time.perf_counter()  # busy-wait: time.sleep is patched out
        assert ran == []
        gate.yield_to_requests(max_wait_s=3600)
        assert ran == ["request"]
        ran.append("background")
    finally:
        gate.lock.release()
    waiter.join()
    assert ran == ["request", "background"] and gate.waiters == 0


def test_background_work_waits_for_a_quiet_moment_only_beside_an_evm_in_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the EVM in a node process or a JSON-RPC node, a steady load of requests must not
    hold the outbox back (it would send one batch per ``max_wait_s``)."""
    import time

    import api.chain_gate
    from api.chain_gate import ChainGate

    slept: list[float] = []
    monkeypatch.setattr(api.chain_gate.time, "sleep", slept.append)
    elsewhere = ChainGate(evm_here=False)
    elsewhere.last_request = time.monotonic() + 3600  # a request "just started"
    elsewhere.yield_to_requests(max_wait_s=0.05)
    assert slept == []
    here = ChainGate(evm_here=True)
    here.last_request = time.monotonic() + 3600
    here.yield_to_requests(max_wait_s=0.05)
    assert slept and all(s == 0.1 for s in slept)


def test_development_secrets_are_created_private_and_kept(tmp_path: Path) -> None:
    import stat

    from api.custody import load_or_create_secret

    path = tmp_path / "data" / "key.secret"
    first = load_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 40  # 32 random bytes, URL-safe base64
    assert load_or_create_secret(path) == first
    assert load_or_create_secret(tmp_path / "other.secret") != first
