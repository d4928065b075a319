"""Webhooks against a receiver on loopback: signed deliveries a receiver verifies, retries
with the same delivery id, a dead receiver's deliveries failed then retried, a crash between
recording and delivering, the operator's routes and what they refuse."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, col, select

from api.app import create_app
from api.models import KeptAudit, WebhookDelivery, WebhookSubscription
from api.services import Services
from api.settings import Settings
from api.webhooks import (
    ChainPlace,
    WebhookWorker,
    audit_state,
    chain_event_data,
    new_uid,
    retry_delay_s,
    signature,
    verify,
)
from ledger.mirror.models import SlotOutcomeRecord
from tests.api.conftest import OP, OPERATOR_TOKEN, Api, _settings, past_slot
from tests.conftest import ANVIL_KEY

#: Short schedules, so that three attempts take a fraction of a second; every wait bounded.
FAST: dict[str, Any] = {
    "webhook_backoff_s": 0.05,
    "webhook_backoff_max_s": 0.2,
    "webhook_timeout_s": 1.0,
    "webhook_max_attempts": 3,
    "webhook_poll_s": 0.05,
}
DEADLINE_S = 20.0


# ───────────────────────────── The receiver ─────────────────────────────


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on loopback that records every POST and answers the statuses it is
    given in turn (then 200), after ``delay_s``."""

    answers: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?source=voisin"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a stuck client never holds this thread for long

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                content = self.rfile.read(length)
                receiver.received.append(Received(dict(self.headers.items()), content))
                time.sleep(receiver.delay_s)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left: what the slow receiver is for

        server = Server(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def verified(secret: str, received: Received, now: float | None = None) -> dict[str, Any]:
    """The body, once checked as docs/webhooks.md tells a receiver to (written out here, not
    taken from api.webhooks): a recent timestamp and the HMAC-SHA256 of
    ``timestamp + "." + body`` under the secret."""
    timestamp = received.headers["Voisin-Timestamp"]
    assert abs((now or time.time()) - int(timestamp)) <= 300
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(received.headers["Voisin-Signature"], f"v1={expected}")
    parsed: dict[str, Any] = json.loads(received.body)
    assert parsed["type"] == received.headers["Voisin-Event"]
    return parsed


# ───────────────────────────── The app ─────────────────────────────


def _open(settings: Settings) -> tuple[TestClient, Api]:
    app = create_app(settings, background=False)
    client = TestClient(app)
    client.__enter__()
    return client, Api(client, app.state.services)


@pytest.fixture(
    params=[
        "embedded-sqlite",
        pytest.param("anvil-postgres", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The short schedules, on the embedded chain with SQLite and on anvil with PostgreSQL."""
    if request.param == "embedded-sqlite":
        return _settings(tmp_path, **FAST)
    return _settings(
        tmp_path,
        chain=request.getfixturevalue("anvil_url"),
        chain_key=ANVIL_KEY,
        database_url=request.getfixturevalue("postgres_url"),
        **FAST,
    )


@pytest.fixture
def hooks(settings: Settings) -> Iterator[Api]:
    client, api = _open(settings)
    try:
        yield api
    finally:
        client.__exit__(None, None, None)


@pytest.fixture
def embedded_hooks(tmp_path: Path) -> Iterator[Api]:
    """Only the embedded backend, for the routes' checks (their point is not the backend)."""
    client, api = _open(_settings(tmp_path, **FAST))
    try:
        yield api
    finally:
        client.__exit__(None, None, None)


def subscribe(api: Api, url: str, *types: str) -> dict[str, Any]:
    r = api.client.post("/webhooks", json={"url": url, "event_types": list(types)}, headers=OP)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def drive(services: Services, until: Callable[[], bool], deadline_s: float = DEADLINE_S) -> None:
    """Passes of the webhooks' worker (new events, due attempts) until ``until()``."""
    end = time.monotonic() + deadline_s
    while not until():
        assert time.monotonic() < end, "the webhooks did not get there in time"
        services.webhooks.run_once(timeout_s=5)
        time.sleep(0.02)


def deliveries(services: Services) -> list[WebhookDelivery]:
    with Session(services.engine) as session:
        return list(session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))))


def count(services: Services, table: Any) -> int:
    with Session(services.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


# ───────────────────────────── Pure parts ─────────────────────────────


def test_the_wait_between_attempts_doubles_up_to_its_cap_with_jitter() -> None:
    rng = random.Random(7)
    for failed, ceiling in [(1, 5.0), (2, 10.0), (3, 20.0), (8, 640.0), (12, 3600.0), (99, 3600.0)]:
        waits = [retry_delay_s(failed, 5.0, 3600.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 10  # jittered, not one value


def test_a_receiver_rejects_a_stale_timestamp_or_another_body() -> None:
    secret, content, now = "whsec_" + "ab" * 32, b'{"type":"topup"}', 1_800_000_000
    header = "v1=" + signature(secret, now, content)
    assert verify(secret, content, str(now), header, now=now + 299)
    assert not verify(secret, content, str(now), header, now=now + 301)
    assert not verify(secret, content + b" ", str(now), header, now=now)
    assert not verify(secret, content, str(now + 1), header, now=now)
    assert not verify("whsec_" + "cd" * 32, content, str(now), header, now=now)
    assert not verify(secret, content, "not-a-time", header, now=now)


def test_a_trade_body_names_both_households_and_how_it_was_traded() -> None:
    args = {
        "slot": 1995000,
        "seller": 1,
        "buyer": 2,
        "offerId": 4,
        "bidId": 0,
        "energyWh": 500,
        "priceUeurPerKWh": 120_000,
        "costUeur": 60_000,
        "feeUeur": 15_000,
    }
    place = ChainPlace("0x" + "11" * 20, 42, 3, "0x" + "22" * 32)
    data = chain_event_data("FillSettled", args, place)
    assert data == {
        "slot": 1995000,
        "seller": 1,
        "buyer": 2,
        "offer_chain_id": 4,
        "bid_chain_id": 0,
        "kind": "take",
        "energy_Wh": 500,
        "price_ueur_per_kWh": 120_000,
        "cost_ueur": 60_000,
        "fee_ueur": 15_000,
        "chain": {
            "contract": "0x" + "11" * 20,
            "block_number": 42,
            "log_index": 3,
            "tx_hash": "0x" + "22" * 32,
        },
    }
    auction = chain_event_data("FillSettled", {**args, "bidId": 7}, place)
    forward = chain_event_data("FillSettled", {**args, "offerId": 0}, place)
    assert (auction["kind"], forward["kind"]) == ("auction", "day-ahead")
    with pytest.raises(ValueError, match="not an event webhooks send"):
        chain_event_data("Paused", {}, place)
    assert [audit_state(True, None, 2), audit_state(None, "boom", 0)] == ["ok", "not_run"]
    assert audit_state(False, None, 3) == "findings:3"


# ───────────────────────────── Deliveries ─────────────────────────────


def test_a_delivery_is_signed_so_that_the_receiver_can_verify_it(
    hooks: Api, receiver: Receiver
) -> None:
    created = subscribe(hooks, receiver.url, "household_registered", "topup")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) == 6 + 64
    member = hooks.register(prosumer=False, topup_ueur=2_000_000)
    drive(hooks.services, lambda: len(receiver.received) == 2)
    registered, topped_up = (verified(secret, r) for r in receiver.received)
    assert registered["type"] == "household_registered"
    assert registered["data"]["household"] == member.id
    assert registered["data"]["account"] == member.account
    assert registered["data"]["meter"] == member.meter.address
    assert registered["data"]["prosumer"] is False
    assert topped_up["type"] == "topup"
    assert topped_up["data"]["household"] == member.id
    assert topped_up["data"]["amount_ueur"] == 2_000_000
    assert topped_up["data"]["chain"]["tx_hash"].startswith("0x")
    ids = {r.headers["Voisin-Delivery"] for r in receiver.received}
    assert len(ids) == 2 and all(i.startswith("dlv_") for i in ids)
    # The secret is not stored in clear, nor shown again.
    with Session(hooks.services.engine) as session:
        row = session.exec(select(WebhookSubscription)).one()
    assert secret not in row.secret_json and secret.removeprefix("whsec_") not in row.secret_json
    listed = hooks.client.get("/webhooks", headers=OP).json()
    assert listed["total"] == 1 and "secret" not in listed["items"][0]
    assert listed["items"][0]["event_types"] == ["household_registered", "topup"]
    # Another body under the same signature is refused by the same check.
    forged = Received(receiver.received[0].headers, receiver.received[0].body + b" ")
    with pytest.raises(AssertionError):
        verified(secret, forged)
    done = hooks.client.get("/webhooks/deliveries", params={"status": "delivered"}, headers=OP)
    assert done.json()["total"] == 2


def test_a_deactivated_household_is_sent_with_its_id(hooks: Api, receiver: Receiver) -> None:
    secret = subscribe(hooks, receiver.url, "household_deactivated")["secret"]
    member = hooks.register()
    services = hooks.services

    def deactivate() -> None:
        services.client.deactivate_household(services.chain.operator, member.id)
        services.mirror()

    services.on_chain(deactivate)
    drive(services, lambda: len(receiver.received) == 1)
    sent = verified(secret, receiver.received[0])
    assert sent["type"] == "household_deactivated" and sent["data"]["household"] == member.id
    assert sent["event_id"].startswith("chain_event:")


def test_a_receiver_failing_twice_gets_one_delivery_id_three_times_and_the_event_once(
    hooks: Api, receiver: Receiver
) -> None:
    secret = subscribe(hooks, receiver.url, "household_registered")["secret"]
    receiver.answers = [500, 503]
    member = hooks.register()
    drive(hooks.services, lambda: [d.status for d in deliveries(hooks.services)] == ["delivered"])
    assert len(receiver.received) == 3
    assert len({r.headers["Voisin-Delivery"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    # The receiver acts once per delivery id: the event once.
    acted = {r.headers["Voisin-Delivery"]: verified(secret, r) for r in receiver.received}
    assert [body["data"]["household"] for body in acted.values()] == [member.id]
    (row,) = deliveries(hooks.services)
    assert (row.attempts, row.last_status_code, row.last_error) == (3, 200, None)
    # Nothing more is sent.
    hooks.services.webhooks.run_once()
    assert len(receiver.received) == 3


def test_a_dead_receivers_delivery_fails_is_listed_and_a_retry_delivers_it(
    hooks: Api, receiver: Receiver
) -> None:
    secret = subscribe(hooks, receiver.url, "household_registered")["secret"]
    receiver.stop()
    hooks.register()
    drive(hooks.services, lambda: [d.status for d in deliveries(hooks.services)] == ["failed"])
    c = hooks.client
    failed = c.get("/webhooks/deliveries", params={"status": "failed"}, headers=OP).json()
    assert (failed["total"], failed["limit"], failed["offset"]) == (1, 100, 0)
    (item,) = failed["items"]
    assert (item["attempts"], item["last_status_code"], item["event_type"]) == (
        3,
        None,
        "household_registered",
    )
    assert "ConnectError" in item["last_error"] and item["next_attempt_at"] is None
    assert c.get("/webhooks/deliveries", params={"status": "pending"}, headers=OP).json() == {
        "items": [],
        "total": 0,
        "limit": 100,
        "offset": 0,
    }
    receiver.start()  # back, on the same port
    r = c.post(f"/webhooks/deliveries/{item['id']}/retry", headers=OP)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    drive(hooks.services, lambda: [d.status for d in deliveries(hooks.services)] == ["delivered"])
    (got,) = receiver.received
    assert got.headers["Voisin-Delivery"] == item["delivery_id"]
    assert verified(secret, got) == item["body"]
    again = c.post(f"/webhooks/deliveries/{item['id']}/retry", headers=OP)
    assert again.status_code == 409 and again.json()["code"] == "delivery_not_failed"


def test_a_crash_between_recording_and_delivering_delivers_each_once_after_restart(
    settings: Settings, receiver: Receiver
) -> None:
    client, api = _open(settings)
    try:
        secret = subscribe(api, receiver.url, "household_registered")["secret"]
        members = [api.register(), api.register()]
        api.flush()
        assert api.services.webhooks.enqueue() == 2
        # One attempt claimed, then the process dies before it POSTs: its lease lapses.
        api.services.webhooks.lease_ms = 0
        first = deliveries(api.services)[0]
        assert api.services.webhooks.claim(first.id or 0, int(time.time() * 1000)) is not None
        assert [d.status for d in deliveries(api.services)] == ["sending", "pending"]
    finally:
        client.__exit__(None, None, None)
    assert receiver.received == []

    client, api = _open(settings)
    try:
        drive(api.services, lambda: {d.status for d in deliveries(api.services)} == {"delivered"})
        assert len(receiver.received) == 2
        bodies = [verified(secret, r)["data"]["household"] for r in receiver.received]
        assert sorted(bodies) == sorted(m.id for m in members)
        assert len({r.headers["Voisin-Delivery"] for r in receiver.received}) == 2
        # Read again from the cursor: nothing is recorded twice, nothing sent twice.
        assert api.services.webhooks.enqueue() == 0
        api.services.webhooks.run_once()
        assert len(receiver.received) == 2 and len(deliveries(api.services)) == 2
    finally:
        client.__exit__(None, None, None)


def test_two_workers_on_one_database_record_and_send_each_event_once(
    hooks: Api, receiver: Receiver
) -> None:
    """As two API processes on one PostgreSQL would: the cursor's compare-and-set and the
    claims' make each delivery recorded once and attempted once."""
    subscribe(hooks, receiver.url, "household_registered", "topup")
    for _ in range(3):
        hooks.register(topup_ueur=1_000_000)
    hooks.flush()
    services = hooks.services
    other = WebhookWorker(services.engine, services.vault, services.settings)
    workers = [services.webhooks, other]
    try:
        barrier = threading.Barrier(2)

        def enqueue(worker: WebhookWorker) -> None:
            barrier.wait(timeout=10)
            worker.enqueue()

        threads = [threading.Thread(target=enqueue, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(deliveries(services)) == 6
        end = time.monotonic() + DEADLINE_S
        while {d.status for d in deliveries(services)} != {"delivered"}:
            assert time.monotonic() < end
            for worker in workers:
                worker.dispatch()
            time.sleep(0.02)
        assert len(receiver.received) == 6
        assert len({r.headers["Voisin-Delivery"] for r in receiver.received}) == 6
    finally:
        other.stop()


def test_a_slow_receiver_holds_up_neither_the_api_nor_another_webhook(
    hooks: Api, receiver: Receiver
) -> None:
    slow = Receiver(delay_s=3.0).start()
    try:
        subscribe(hooks, slow.url, "household_registered")
        subscribe(hooks, receiver.url, "household_registered")
        hooks.services.webhooks.start()

        def statuses() -> dict[int, str]:
            return {d.subscription_id: d.status for d in deliveries(hooks.services)}

        started = time.monotonic()
        hooks.register()
        end = time.monotonic() + DEADLINE_S
        while statuses().get(2) != "delivered":
            assert time.monotonic() < end
            time.sleep(0.02)
        assert time.monotonic() - started < 5
        assert len(receiver.received) == 1
        t0 = time.monotonic()
        assert hooks.client.get("/webhooks", headers=OP).status_code == 200
        assert time.monotonic() - t0 < 1.0
        # The slow one times out (1 s) at every attempt: never delivered while it stalls.
        assert statuses()[1] != "delivered"
    finally:
        hooks.services.webhooks.stop()
        slow.stop()


def test_a_backlog_for_one_webhook_does_not_hold_back_another(
    hooks: Api, receiver: Receiver
) -> None:
    dead = Receiver().start()
    dead.stop()
    behind = subscribe(hooks, dead.url, "topup")["id"]
    subscribe(hooks, receiver.url, "topup")
    with Session(hooks.services.engine) as session, session.begin():
        for i in range(200):  # a day of events for a receiver that is down
            session.add(
                WebhookDelivery(
                    uid=new_uid(),
                    subscription_id=behind,
                    event_key=f"backlog:{i}",
                    event_type="topup",
                    body="{}",
                )
            )
    hooks.register(topup_ueur=1_000_000)
    hooks.flush()
    assert hooks.services.webhooks.enqueue() == 2
    # One pass: the other webhook's delivery goes at once, beside one of the backlog's.
    assert hooks.services.webhooks.run_once() == 2
    assert len(receiver.received) == 1


def _settle_a_trade(api: Api) -> tuple[int, Any]:
    """A seller and a buyer metered in a past slot, which is settled: the slot and the
    settle route's answer."""
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=3_000_000)
    slot = past_slot(4)
    batch = [api.reading(seller, slot, export_Wh=800), api.reading(buyer, slot, import_Wh=600)]
    assert api.client.post("/readings", json={"readings": batch}).status_code == 202
    api.flush()
    outcome = api.client.post(f"/market/slots/{slot}/settle", headers=OP)
    assert outcome.status_code == 200, outcome.text
    return slot, outcome


def test_settled_trades_and_slots_are_sent_with_their_figures(
    hooks: Api, receiver: Receiver
) -> None:
    secret = subscribe(hooks, receiver.url, "trade_settled", "slot_settled")["secret"]
    c = hooks.client
    slot, outcome = _settle_a_trade(hooks)
    trades = c.get("/trades", params={"slot": slot}, headers=OP).json()["items"]
    assert trades
    drive(hooks.services, lambda: len(receiver.received) == len(trades) + 1)
    bodies = [verified(secret, r) for r in receiver.received]
    sent_trades = [b["data"] for b in bodies if b["type"] == "trade_settled"]
    assert [
        (t["slot"], t["seller"], t["buyer"], t["energy_Wh"], t["cost_ueur"], t["fee_ueur"])
        for t in sent_trades
    ] == [
        (t["slot"], t["seller"], t["buyer"], t["energy_Wh"], t["cost_ueur"], t["fee_ueur"])
        for t in trades
    ]
    assert [t["chain"]["tx_hash"] for t in sent_trades] == [t["tx_hash"] for t in trades]
    (settled,) = [b["data"] for b in bodies if b["type"] == "slot_settled"]
    expected = outcome.json()
    for key in ("slot", "matched_Wh", "clearing_price_ueur_per_kWh", "fills", "cost_ueur"):
        assert settled[key] == expected[key]


def test_a_slot_sealed_before_its_outcome_is_recorded_here_is_sent_once_it_is(
    embedded_hooks: Api, receiver: Receiver
) -> None:
    """A database restored from before a slot was settled mirrors the slot's seal before its
    recovery settles the slot again: the slot's webhook waits for that outcome, never sent
    without its figures, and the events before the seal go meanwhile."""
    api = embedded_hooks
    secret = subscribe(api, receiver.url, "trade_settled", "slot_settled")["secret"]
    slot, outcome = _settle_a_trade(api)
    # As a restore from before the slot was settled leaves it: seal mirrored, no outcome.
    with Session(api.services.engine) as session:
        record = session.get(SlotOutcomeRecord, slot)
        assert record is not None
        kept = SlotOutcomeRecord.model_validate(record.model_dump())
        session.delete(record)
        session.commit()
    trades = api.client.get("/trades", params={"slot": slot}, headers=OP).json()["items"]
    drive(api.services, lambda: len(receiver.received) == len(trades))
    api.services.webhooks.run_once(timeout_s=5)
    assert {verified(secret, r)["type"] for r in receiver.received} == {"trade_settled"}
    with Session(api.services.engine) as session:
        session.add(kept)
        session.commit()
    drive(api.services, lambda: len(receiver.received) == len(trades) + 1)
    (settled,) = [
        b["data"]
        for b in (verified(secret, r) for r in receiver.received)
        if b["type"] == "slot_settled"
    ]
    for key in ("slot", "matched_Wh", "clearing_price_ueur_per_kWh", "fills", "cost_ueur"):
        assert settled[key] == outcome.json()[key]


def test_a_failing_audit_is_sent_when_it_starts_failing_or_fails_otherwise(
    hooks: Api, receiver: Receiver
) -> None:
    secret = subscribe(hooks, receiver.url, "audit_failed")["secret"]

    def run(ok: bool | None, findings: int = 0, problem: str | None = None) -> None:
        with Session(hooks.services.engine) as session, session.begin():
            now = int(time.time())
            session.add(
                KeptAudit(started_s=now, finished_s=now, ok=ok, findings=findings, problem=problem)
            )

    runs: list[tuple[bool | None, int, str | None]] = [
        (True, 0, None),
        (False, 2, None),
        (False, 2, None),  # the same failure again: not sent again
        (False, 3, None),
        (None, 0, "no node"),
        (True, 0, None),
    ]
    for ok, findings, problem in runs:
        run(ok, findings, problem)
    drive(hooks.services, lambda: len(receiver.received) >= 3)
    hooks.services.webhooks.run_once()
    sent = [verified(secret, r)["data"] for r in receiver.received]
    assert [(d["ran"], d["findings"], d["problem"]) for d in sent] == [
        (True, 2, None),
        (True, 3, None),
        (False, 0, "no node"),
    ]


# ───────────────────────────── The routes ─────────────────────────────


def test_the_operators_page_lists_the_failed_deliveries(
    embedded_hooks: Api, receiver: Receiver
) -> None:
    c = embedded_hooks.client
    subscribe(embedded_hooks, receiver.url, "household_registered")
    signed = c.post("/ui/signin", data={"token": OPERATOR_TOKEN})
    assert signed.status_code == 200 and str(signed.url).endswith("/ui/operator")
    page = c.get("/ui/operator").text
    assert 'id="webhooks-none"' in page and "No failed delivery; webhooks subscribed: 1." in page
    receiver.stop()
    embedded_hooks.register()
    services = embedded_hooks.services
    drive(services, lambda: [d.status for d in deliveries(services)] == ["failed"])
    (failed,) = deliveries(services)
    page = c.get("/ui/operator").text
    assert "Deliveries to your systems that failed after every attempt: 1." in page
    row = re.search(rf'<tr data-delivery="{failed.id}">(.*?)</tr>', page)
    assert row is not None
    assert "household_registered" in row.group(1) and "127.0.0.1 (#1)" in row.group(1)
    assert "ConnectError" in row.group(1)
    french = c.get("/ui/operator", headers={"Accept-Language": "fr"}).text
    assert "Envois à vos systèmes en échec après toutes leurs tentatives\u00a0: 1." in french


def test_a_deleted_webhook_gets_nothing_more_and_its_deliveries_are_cancelled(
    embedded_hooks: Api, receiver: Receiver
) -> None:
    created = subscribe(embedded_hooks, receiver.url, "household_registered", "topup")
    receiver.stop()
    embedded_hooks.register()
    embedded_hooks.services.webhooks.enqueue()
    c = embedded_hooks.client
    r = c.delete(f"/webhooks/{created['id']}", headers=OP)
    assert r.status_code == 200 and r.json()["active"] is False
    assert [d.status for d in deliveries(embedded_hooks.services)] == ["cancelled"]
    embedded_hooks.register()
    assert embedded_hooks.services.webhooks.run_once() == 0
    assert len(deliveries(embedded_hooks.services)) == 1
    assert c.get("/webhooks", headers=OP).json()["total"] == 0
    assert c.get(f"/webhooks/{created['id']}", headers=OP).json()["active"] is False
    again = c.delete(f"/webhooks/{created['id']}", headers=OP)
    assert again.status_code == 409 and again.json()["code"] == "webhook_deleted"
    (row,) = deliveries(embedded_hooks.services)
    retry = c.post(f"/webhooks/deliveries/{row.id}/retry", headers=OP)
    assert retry.status_code == 409 and retry.json()["code"] == "webhook_deleted"


GOOD = {"url": "https://billing.example/voisin", "event_types": ["topup"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "url": "ftp://billing.example/voisin"}, "url"),
        ({**GOOD, "url": "javascript:alert(1)"}, "url"),
        ({**GOOD, "url": "billing.example/voisin"}, "url"),
        ({**GOOD, "url": "http://"}, "url"),
        ({**GOOD, "url": "http:///path"}, "url"),
        ({**GOOD, "url": "https://user:pw@billing.example/"}, "url"),
        ({**GOOD, "url": "https://billing.example/#top"}, "url"),
        ({**GOOD, "url": "http://[::1/"}, "url"),
        ({**GOOD, "url": "http://billing.example:99999/"}, "url"),
        ({**GOOD, "url": "http://billing.example/a b"}, "url"),
        ({**GOOD, "url": "https://billing.example/" + "a" * 2000}, "url"),
        ({**GOOD, "url": 123}, "url"),
        ({**GOOD, "url": None}, "url"),
        ({**GOOD, "event_types": ["topup", "meter_exploded"]}, "event_types.1"),
        ({**GOOD, "event_types": []}, "event_types"),
        ({**GOOD, "event_types": "topup"}, "event_types"),
        ({**GOOD, "event_types": [1]}, "event_types.0"),
        ({**GOOD, "description": "billing\u202e"}, "description"),
        ({**GOOD, "description": "x" * 201}, "description"),
        ({**GOOD, "secret": "mine"}, "secret"),
        ({"event_types": ["topup"]}, "url"),
    ],
)
def test_bad_subscriptions_are_refused_and_store_nothing(
    embedded_hooks: Api, body: dict[str, Any], field: str
) -> None:
    r = embedded_hooks.client.post("/webhooks", json=body, headers=OP)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert r.json()["details"][0]["field"] == field
    assert count(embedded_hooks.services, WebhookSubscription) == 0


def test_the_documented_examples_are_what_the_routes_take_and_answer(
    embedded_hooks: Api,
) -> None:
    schemas = embedded_hooks.client.get("/openapi.json").json()["components"]["schemas"]
    (example,) = schemas["WebhookIn"]["examples"]
    r = embedded_hooks.client.post("/webhooks", json=example, headers=OP)
    assert r.status_code == 201, r.text
    for name in ("WebhookOut", "WebhookCreated", "DeliveryOut"):
        (answer,) = schemas[name]["examples"]
        # The served document leaves out the examples' nulls.
        assert set(answer) <= set(schemas[name]["properties"]), name
        assert {k for k, v in answer.items() if v is not None} >= {"id", "created_at"}, name
    created = schemas["WebhookCreated"]["examples"][0]
    assert set(r.json()) >= set(created) and r.json()["event_types"] == created["event_types"]


def test_a_subscription_takes_each_event_type_once(embedded_hooks: Api) -> None:
    r = embedded_hooks.client.post(
        "/webhooks",
        json={
            "url": "http://127.0.0.1:9/x",
            "event_types": ["slot_settled", "topup", "slot_settled"],
            "description": "CRM",
        },
        headers=OP,
    )
    assert r.status_code == 201, r.text
    assert r.json()["event_types"] == ["topup", "slot_settled"]
    assert r.json()["description"] == "CRM" and r.json()["active"] is True


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("get", "/webhooks/424242", None, 404),
        ("delete", "/webhooks/424242", None, 404),
        ("post", "/webhooks/deliveries/424242/retry", None, 404),
        ("get", "/webhooks/0", None, 422),
        ("delete", "/webhooks/abc", None, 404),
        ("delete", "/webhooks/deliveries", None, 405),
        ("delete", "/webhooks/9223372036854775808", None, 422),
        ("delete", "/webhooks/99999999999999999999999999", None, 422),
        ("post", "/webhooks/deliveries/9223372036854775808/retry", None, 422),
        ("post", "/webhooks/deliveries/-1/retry", None, 422),
        ("get", "/webhooks/deliveries", {"status": "lost"}, 422),
        ("get", "/webhooks/deliveries", {"webhook": "9223372036854775808"}, 422),
        ("get", "/webhooks/deliveries", {"limit": "100000"}, 422),
        ("get", "/webhooks/deliveries", {"sttus": "failed"}, 422),
        ("get", "/webhooks", {"offset": "-1"}, 422),
    ],
)
def test_unknown_ids_and_bad_numbers_are_refused(
    embedded_hooks: Api, method: str, path: str, params: dict[str, str] | None, status: int
) -> None:
    r = embedded_hooks.client.request(method.upper(), path, params=params, headers=OP)
    assert r.status_code == status, r.text
    assert r.json()["message"]
    if status == 404:
        assert r.json()["code"] in ("unknown_webhook", "unknown_delivery", "not_found")
    if status == 405:
        assert r.headers["Allow"] == "GET"


def test_households_are_refused_on_every_webhook_route(embedded_hooks: Api) -> None:
    member = embedded_hooks.register()
    created = subscribe(embedded_hooks, "https://billing.example/voisin", "topup")
    c = embedded_hooks.client
    calls = [
        ("POST", "/webhooks", GOOD),
        ("GET", "/webhooks", None),
        ("GET", f"/webhooks/{created['id']}", None),
        ("DELETE", f"/webhooks/{created['id']}", None),
        ("GET", "/webhooks/deliveries", None),
        ("POST", "/webhooks/deliveries/1/retry", None),
    ]
    for method, path, body in calls:
        r = c.request(method, path, json=body, headers=member.auth)
        assert r.status_code == 403, (method, path, r.text)
        assert c.request(method, path, json=body).status_code == 401
    assert count(embedded_hooks.services, WebhookSubscription) == 1
    assert c.get("/webhooks", headers=OP).json()["items"][0]["active"] is True
