"""The live feed (``GET /feed``, ``GET /households/{id}/feed``): what a settled slot sends,
who may open a household's stream, resuming with ``Last-Event-ID`` (within a run and across a
restart), slow and stalled clients, and the cap on subscribers.

The streams are read from a real server (uvicorn in a thread) with httpx, every wait bounded:
a stream never ends, which a test client that reads whole bodies cannot take.
"""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import Session

from api.app import create_app
from api.feed import (
    ORIGIN,
    Book,
    FeedError,
    FeedHub,
    FeedLimits,
    FeedStore,
    OrderFacts,
    Position,
    Row,
    parse_event_id,
    replay_private,
    self_sufficiency,
)
from api.process import free_port
from api.settings import Settings
from ledger.mirror.models import SlotOutcomeRecord
from tests.api.conftest import OP, Api, Member, _settings, past_slot
from tests.conftest import ANVIL_KEY

WAIT_S = 30.0


# ───────────────────────────── A server and a stream reader ─────────────────────────────


class LiveServer:
    """The app under uvicorn in a thread, on a loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings, background=False)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.http = httpx.Client(base_url=self.base_url, timeout=WAIT_S)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the server did not stop"

    @property
    def api(self) -> Api:
        return Api(self.http, self.app.state.services)  # type: ignore[arg-type]

    @property
    def hub(self) -> FeedHub:
        hub: FeedHub = self.app.state.feed_hub
        return hub


class Stream:
    """A feed stream read in a thread: its status, then its events as they come."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url, self.headers = url, headers or {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.status: int | None = None
        self.body: Any = None
        self.opened, self.ended = threading.Event(), threading.Event()
        self._stop = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.opened.wait(WAIT_S), f"{url} did not answer"

    def _read(self) -> None:
        try:
            timeout = httpx.Timeout(WAIT_S, read=10.0)
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", self.url, headers=self.headers) as r,
            ):
                self.status = r.status_code
                if r.status_code != 200:
                    self.body = json.loads(r.read())
                    self.opened.set()
                    return
                self.opened.set()
                event: dict[str, Any] = {}
                for line in r.iter_lines():
                    if self._stop:
                        return
                    if not line:
                        if "data" in event:
                            event["data"] = json.loads(event["data"])
                            self.events.put(event)
                        event = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        event[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.ended.set()

    def next(self, timeout: float = WAIT_S) -> dict[str, Any]:
        event = self.events.get(timeout=timeout)
        self.seen.append(event)
        return event

    def until(self, kind: str, timeout: float = WAIT_S, **data: Any) -> dict[str, Any]:
        """Read up to the first event of ``kind`` whose data has ``data``'s values."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(deadline - time.monotonic(), 0.01))
            if event["event"] == kind and all(event["data"].get(k) == v for k, v in data.items()):
                return event

    def until_id(self, event_id: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.seen or self.seen[-1]["id"] != event_id:
            self.next(max(deadline - time.monotonic(), 0.01))

    def close(self) -> None:
        self._stop = True
        assert self.ended.wait(WAIT_S), "the stream did not end"


def _feed_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # Pings every half second: a reader notices a stop (or a dead stream) that soon.
    return _settings(tmp_path, feed_ping_s=0.5, feed_poll_s=0.2, **overrides)


@pytest.fixture(
    params=[
        "embedded-sqlite",
        pytest.param("anvil-postgres", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A server on the embedded chain with SQLite, and (the same tests) on anvil with
    PostgreSQL."""
    overrides: dict[str, Any] = {}
    if request.param == "anvil-postgres":
        overrides = {
            "chain": request.getfixturevalue("anvil_url"),
            "chain_key": ANVIL_KEY,
            "database_url": request.getfixturevalue("postgres_url"),
        }
    with LiveServer(_feed_settings(tmp_path, **overrides)) as server:
        yield server


def _pair(api: Api) -> tuple[Member, Member]:
    seller = api.register(prosumer=True, name="Amélie")
    buyer = api.register(prosumer=False, topup_ueur=3_000_000, name="Chloé")
    return seller, buyer


def _trade_in(api: Api, seller: Member, buyer: Member, slot: int) -> dict[str, Any]:
    """Meter a sale in ``slot`` (the agents' standing orders match it) and settle it."""
    batch = [
        api.reading(seller, slot, export_Wh=600),
        api.reading(buyer, slot, import_Wh=800),
    ]
    r = api.client.post("/readings", json={"readings": batch})
    assert r.status_code == 202, r.text
    r = api.client.post(f"/market/slots/{slot}/settle", headers=OP)
    assert r.status_code == 200, r.text
    outcome: dict[str, Any] = r.json()
    return outcome


# ───────────────────────────── Pure parts ─────────────────────────────


def test_event_ids_parse_and_order_as_the_chain_does() -> None:
    assert parse_event_id("1234-5-1") == Position(1234, 5, 1)
    assert parse_event_id("0") == ORIGIN
    assert Position(9, 10, 0) < Position(10, 0, 0) < Position(10, 0, 1) < Position(10, 1, 0)
    assert str(Position(7, 3, 1)) == "7-3-1"
    for bad in ("", "abc", "1-2", "1-2-3", "-1-2-0", "1-2-0-4", "9" * 13 + "-0-0", "1.2.0"):
        with pytest.raises(FeedError, match=r"not a feed event id|the part is at most"):
            parse_event_id(bad)


def test_self_sufficiency_needs_a_load_figure() -> None:
    assert self_sufficiency(None, 800, 600) is None
    assert self_sufficiency(0, 800, 600) is None
    # Load 1,000 Wh, metered import 800 Wh of which 600 Wh bought locally: 200 Wh from the grid.
    assert self_sufficiency(1_000, 800, 600) == 0.8


def _fill(block: int, log: int, buyer: int, seller: int, cost: int, fee: int) -> Row:
    args = {
        "slot": 5, "buyer": buyer, "seller": seller, "offerId": 1, "bidId": 2,
        "energyWh": 100, "priceUeurPerKWh": 100_000, "costUeur": cost, "feeUeur": fee,
    }  # fmt: skip
    return Row(block, log, "FillSettled", args, "0xf")


def test_a_replay_gives_the_events_the_live_book_gave() -> None:
    """Moving the book back over rows and forward again gives the same events (balances
    included) as moving it forward live: what makes a resume exact."""
    a, b = "0x" + "a" * 40, "0x" + "b" * 40
    book = Book.of({1: a, 2: b}, {1: 1_000, 2: 0})
    rows = [
        _fill(10, 0, buyer=1, seller=2, cost=300, fee=30),
        Row(11, 0, "Transfer", {"from": "0x" + "0" * 40, "to": a, "value": 500}, "0x1"),
        Row(12, 1, "AccountRotated", {"household": 1, "oldAccount": a, "newAccount": "0xc"}, "0x2"),
        Row(13, 0, "Transfer", {"from": "0x" + "0" * 40, "to": a, "value": 7}, "0x3"),
        Row(13, 1, "BidCancelled", {"bidId": 2, "by": a}, "0x4"),
        _fill(14, 2, buyer=1, seller=2, cost=100, fee=10),
    ]
    orders = {("bid", 2): OrderFacts(1, 42)}
    live = [e for row in rows for e in book.apply(row, orders)]
    mine = [e for e in live if e.household == 1]
    assert [(e.id, e.kind) for e in mine] == [
        ("10-0-0", "trade"),
        ("10-0-1", "balance_changed"),
        ("11-0-0", "balance_changed"),
        ("13-1-0", "order_changed"),
        ("14-2-0", "trade"),
        ("14-2-1", "balance_changed"),
    ]
    # 1,000 - 330 + 500 (the 7 sent to the rotated-away account are not the household's) - 110.
    assert [e.data["balance_ueur"] for e in mine if e.kind == "balance_changed"] == [
        670,
        1_170,
        1_060,
    ]
    assert mine[3].data == {
        "side": "bid", "chain_id": 2, "order_id": 42, "tx_hash": "0x4",
        "status": "cancelled", "cancelled_by": a,
    }  # fmt: skip
    for after in (ORIGIN, Position(10, 0, 0), Position(11, 0, 0), Position(14, 2, 0)):
        again = replay_private(rows, book, 1, orders, after)
        assert [(e.id, e.data) for e in again] == [
            (e.id, e.data) for e in mine if e.position > after
        ]


def test_a_forward_delivery_reads_as_day_ahead_with_its_escrow_moves() -> None:
    """A forward position: the buyer's reservation goes to the contract's escrow when it is
    cleared and comes back when it settles, then the delivery is paid as a fill with offer and
    bid id 0: the household sees its balance move each time and a ``day_ahead`` trade."""
    a, b, escrow = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "e" * 40
    book = Book.of({1: a, 2: b}, {1: 1_000, 2: 0})
    delivery = _fill(12, 1, buyer=1, seller=2, cost=100, fee=10)
    delivery.args.update(offerId=0, bidId=0)
    rows = [
        Row(10, 0, "Transfer", {"from": a, "to": escrow, "value": 130}, "0x1"),
        Row(12, 0, "Transfer", {"from": escrow, "to": a, "value": 130}, "0x2"),
        delivery,
    ]
    mine = [e for row in rows for e in book.apply(row, {}) if e.household == 1]
    assert [e.kind for e in mine] == [
        "balance_changed",
        "balance_changed",
        "trade",
        "balance_changed",
    ]
    assert [e.data["balance_ueur"] for e in mine if e.kind == "balance_changed"] == [
        870,
        1_000,
        890,
    ]
    trade = mine[2].data
    assert (trade["day_ahead"], trade["direct"], trade["offer_id"], trade["bid_id"]) == (
        True,
        False,
        0,
        0,
    )
    take = _fill(13, 0, buyer=1, seller=2, cost=1, fee=0)
    take.args.update(bidId=0)
    (event, _) = [e for e in book.apply(take, {}) if e.household == 1]
    assert (event.data["day_ahead"], event.data["direct"]) == (False, True)


# ───────────────────────────── Refusals (no stream opens) ─────────────────────────────


def test_a_household_feed_needs_that_households_token(embedded_api: Api) -> None:
    one, other = embedded_api.register(), embedded_api.register()
    c = embedded_api.client
    r = c.get(f"/households/{one.id}/feed")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized", r.text
    r = c.get(f"/households/{one.id}/feed", headers={"Authorization": "Bearer vsn_nope"})
    assert r.status_code == 401 and r.json()["message"] == "the bearer token is not valid"
    r = c.get(f"/households/{one.id}/feed", headers=other.auth)
    assert r.status_code == 403, r.text
    assert r.json() == {
        "code": "forbidden",
        "message": f"this token does not open household {one.id}'s feed; use its own",
    }
    r = c.get("/households/999/feed", headers=OP)
    assert r.status_code == 404 and r.json()["code"] == "unknown_household", r.text


def test_a_bad_or_unknown_last_event_id_is_refused(embedded_api: Api) -> None:
    one = embedded_api.register()
    c = embedded_api.client
    for path, headers in (("/feed", {}), (f"/households/{one.id}/feed", one.auth)):
        r = c.get(path, headers={**headers, "Last-Event-ID": "yesterday"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_last_event_id", r.text
        assert "<block>-<log index>-<part>" in r.json()["message"]
        r = c.get(path, params={"after": "1-2"}, headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "invalid_last_event_id", r.text
        r = c.get(path, headers={**headers, "Last-Event-ID": "999999-0-0"})
        assert r.status_code == 409 and r.json()["code"] == "unknown_last_event_id", r.text
        assert "reconnect without it" in r.json()["message"]


# ───────────────────────────── Streams ─────────────────────────────


def test_a_seal_mirrored_before_its_slot_is_settled_here_waits_for_it(embedded_api: Api) -> None:
    """A database restored from before a slot was settled mirrors the slot's seal before its
    recovery settles the slot again: the feed holds that event, and the ones after it, until
    the slot's outcome is recorded, then gives it with its figures, once."""
    api = embedded_api
    seller, buyer = _pair(api)
    slot = past_slot(4)
    outcome = _trade_in(api, seller, buyer, slot)
    services = api.services
    with Session(services.engine) as session:
        record = session.get(SlotOutcomeRecord, slot)
        assert record is not None
        kept = SlotOutcomeRecord.model_validate(record.model_dump())
        session.delete(record)
        session.commit()
    hub = FeedHub(FeedStore(services.engine, services.client.address, "Europe/Paris"), FeedLimits())

    asyncio.run(hub._poll())
    names = [e.kind for e in hub.ring]
    assert "trade" in names and "slot_settled" not in names
    asyncio.run(hub._poll())  # nothing new while the slot is not settled here
    assert [e.kind for e in hub.ring] == names
    with Session(services.engine) as session:
        session.add(kept)
        session.commit()
    asyncio.run(hub._poll())
    (settled,) = [e.data for e in hub.ring if e.kind == "slot_settled"]
    assert settled["matched_Wh"] == outcome["matched_Wh"] > 0
    assert [e.kind for e in hub.ring].count("trade") == names.count("trade")


def test_a_reading_committed_late_for_a_settled_slot_leaves_its_event_as_it_was(
    embedded_api: Api,
) -> None:
    """A replay of a settled slot's event gives what the live feed gave, though a meter
    reported the slot after it was settled."""
    api = embedded_api
    seller, buyer = _pair(api)
    late = api.register(prosumer=True)
    slot = past_slot(4)
    _trade_in(api, seller, buyer, slot)
    services = api.services

    def settled_event() -> dict[str, Any]:
        hub = FeedHub(
            FeedStore(services.engine, services.client.address, "Europe/Paris"), FeedLimits()
        )
        asyncio.run(hub._poll())
        (data,) = [e.data for e in hub.ring if e.kind == "slot_settled"]
        return data

    live = settled_event()
    r = api.client.post("/readings", json={"readings": [api.reading(late, slot, export_Wh=900)]})
    assert r.status_code == 202, r.text
    api.flush()
    replayed = settled_event()
    assert replayed == live and live["export_Wh"] == 600


def test_a_settled_slot_reaches_the_public_and_the_household_streams(live: LiveServer) -> None:
    api = live.api
    seller, buyer = _pair(api)
    public = Stream(f"{live.base_url}/feed")
    mine = Stream(f"{live.base_url}/households/{buyer.id}/feed", buyer.auth)
    theirs = Stream(f"{live.base_url}/households/{seller.id}/feed", seller.auth)
    try:
        assert (public.status, mine.status, theirs.status) == (200, 200, 200)
        slot = past_slot(4)
        outcome = _trade_in(api, seller, buyer, slot)
        assert outcome["fills"] >= 1

        settled = public.until("slot_settled", slot=slot)["data"]
        assert settled["import_Wh"] == 800 and settled["export_Wh"] == 600
        assert settled["matched_Wh"] == outcome["matched_Wh"] > 0
        assert settled["fills"] == outcome["fills"]
        assert settled["clearing_price_ueur_per_kWh"] == outcome["clearing_price_ueur_per_kWh"]
        assert settled["self_sufficiency"] is None  # meters alone give no load
        assert settled["starts_at"][-6:] in ("+01:00", "+02:00")  # Europe/Paris
        assert settled["starts_at_utc"].endswith("Z")

        trade = mine.until("trade", slot=slot)
        assert trade["data"]["role"] == "buyer" and trade["data"]["counterparty"] == seller.id
        paid = mine.until("balance_changed", slot=slot)
        assert paid["id"] == trade["id"][:-1] + "1"  # the same fill, its second part
        balance = api.client.get(f"/households/{buyer.id}/balance", headers=buyer.auth).json()
        assert paid["data"]["balance_ueur"] == balance["balance_ueur"]
        cost = trade["data"]["cost_ueur"] + trade["data"]["fee_ueur"]
        assert paid["data"]["change_ueur"] == -cost and paid["data"]["reason"] == "purchase"

        sold = theirs.until("trade", slot=slot)["data"]
        assert sold["role"] == "seller" and sold["fee_ueur"] == 0
        # A household sees its own events only.
        assert all(e["event"] != "trade" or e["data"]["role"] == "buyer" for e in mine.seen)
        ids = [parse_event_id(e["id"]) for e in mine.seen + public.seen]
        assert len(set(ids)) == len(ids)
    finally:
        for s in (public, mine, theirs):
            s.close()


def test_resume_with_last_event_id_gives_exactly_the_missed_events(live: LiveServer) -> None:
    api = live.api
    seller, buyer = _pair(api)
    base = live.base_url
    # Two streams that stay open throughout, from the start of the ledger.
    whole_public = Stream(f"{base}/feed?after=0")
    whole_mine = Stream(f"{base}/households/{buyer.id}/feed", {**buyer.auth, "Last-Event-ID": "0"})
    public = Stream(f"{base}/feed?after=0")
    mine = Stream(f"{base}/households/{buyer.id}/feed?after=0", buyer.auth)
    try:
        first = past_slot(6)
        _trade_in(api, seller, buyer, first)
        public.until("slot_settled", slot=first)
        mine.until("balance_changed", slot=first)
        public.close()
        mine.close()
        # Missed while disconnected: a top-up and two slots.
        r = api.client.post("/topups", json={"household": buyer.id, "amount_ueur": 5}, headers=OP)
        assert r.status_code == 201, r.text
        for slot in (first + 1, first + 2):
            _trade_in(api, seller, buyer, slot)
        whole_public.until("slot_settled", slot=first + 2)
        whole_mine.until("balance_changed", slot=first + 2)

        again_public = Stream(f"{base}/feed", {"Last-Event-ID": public.seen[-1]["id"]})
        # The header wins over ?after= (a browser's EventSource keeps its first URL).
        again_mine = Stream(
            f"{base}/households/{buyer.id}/feed?after=0",
            {**buyer.auth, "Last-Event-ID": mine.seen[-1]["id"]},
        )
        try:
            again_public.until_id(whole_public.seen[-1]["id"])
            again_mine.until_id(whole_mine.seen[-1]["id"])
        finally:
            again_public.close()
            again_mine.close()
        assert public.seen + again_public.seen == whole_public.seen
        assert mine.seen + again_mine.seen == whole_mine.seen
        kinds = {e["event"] for e in again_mine.seen}
        assert {"trade", "balance_changed"} <= kinds
        assert any(
            e["data"]["reason"] == "top_up" for e in again_mine.seen if "reason" in e["data"]
        )
    finally:
        whole_public.close()
        whole_mine.close()


def test_resume_across_a_restart(tmp_path: Path) -> None:
    settings = _feed_settings(tmp_path)
    with LiveServer(settings) as live:
        api = live.api
        seller, buyer = _pair(api)
        mine = Stream(f"{live.base_url}/households/{buyer.id}/feed?after=0", buyer.auth)
        public = Stream(f"{live.base_url}/feed?after=0")
        first = past_slot(6)
        _trade_in(api, seller, buyer, first)
        mine.until("balance_changed", slot=first)
        public.until("slot_settled", slot=first)
        mine.close()
        public.close()
        members = api.members
    with LiveServer(settings) as live:
        api = live.api
        api.members = members
        _trade_in(api, seller, buyer, first + 1)
        # After a restart, ids name the same events: a replay from the start ends with them.
        whole_mine = Stream(f"{live.base_url}/households/{buyer.id}/feed?after=0", buyer.auth)
        whole_public = Stream(f"{live.base_url}/feed?after=0")
        resumed_mine = Stream(
            f"{live.base_url}/households/{buyer.id}/feed",
            {**buyer.auth, "Last-Event-ID": mine.seen[-1]["id"]},
        )
        resumed_public = Stream(f"{live.base_url}/feed", {"Last-Event-ID": public.seen[-1]["id"]})
        try:
            whole_mine.until("balance_changed", slot=first + 1)
            whole_public.until("slot_settled", slot=first + 1)
            resumed_mine.until("balance_changed", slot=first + 1)
            resumed_public.until("slot_settled", slot=first + 1)
        finally:
            for s in (whole_mine, whole_public, resumed_mine, resumed_public):
                s.close()
        assert mine.seen + resumed_mine.seen == whole_mine.seen
        assert public.seen + resumed_public.seen == whole_public.seen
        # The resumed stream starts right after the event it named: the rest of its slot
        # (the forecast's refresh), then the next slot.
        assert [(e["event"], e["data"]["slot"]) for e in resumed_public.seen] == [
            ("forecast_refreshed", first),
            ("slot_settled", first + 1),
        ]


def _silent_client(port: int, path: str) -> socket.socket:
    """A client that asks for a stream and never reads it (a receive buffer of a few kB)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def test_a_client_that_does_not_read_delays_no_other(live: LiveServer) -> None:
    api = live.api
    seller, buyer = _pair(api)
    silent = [_silent_client(live.port, "/feed?after=0") for _ in range(3)]
    reader = Stream(f"{live.base_url}/feed")
    try:
        deadline = time.monotonic() + WAIT_S
        while len(live.hub.subscribers) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for slot in (past_slot(5), past_slot(4)):
            _trade_in(api, seller, buyer, slot)
            settled_at = time.monotonic()
            reader.until("slot_settled", slot=slot)
            # Found by the next poll (0.2 s here), whatever the silent clients do: nothing
            # waits for them (a broadcast that did would wait feed_send_timeout_s, 30 s).
            assert time.monotonic() - settled_at < 5.0
    finally:
        reader.close()
        for sock in silent:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    while live.hub.subscribers:  # closed sockets free their streams
        assert time.monotonic() < deadline, live.hub.subscribers
        time.sleep(0.05)


def test_a_stalled_subscriber_is_dropped_and_frees_everything(tmp_path: Path) -> None:
    """A client whose socket takes no more bytes (its send blocks, as a full TCP window
    makes it) falls behind; past feed_max_lag_events it is disconnected, while a reading
    client gets every event."""
    # A slot gives some nine events (trades, balances, its settlement, the forecast's refresh)
    # in one poll: the bound must hold one slot's burst, or the reader falls behind as well.
    with LiveServer(_feed_settings(tmp_path, feed_max_lag_events=16)) as live:
        api = live.api
        seller, buyer = _pair(api)
        reader = Stream(f"{live.base_url}/feed")
        while not live.hub.subscribers:
            time.sleep(0.05)
        loop = live.hub._task.get_loop()  # type: ignore[union-attr]
        stalled = asyncio.run_coroutine_threadsafe(_stalled_stream(live), loop)
        try:
            deadline = time.monotonic() + WAIT_S
            while len(live.hub.subscribers) < 2:
                if stalled.done():
                    raise AssertionError(f"the stalled stream ended at once: {stalled.result()}")
                assert time.monotonic() < deadline
                time.sleep(0.05)
            slot = past_slot(40)
            while not stalled.done():
                assert time.monotonic() < deadline, "the stalled subscriber was not dropped"
                assert slot < past_slot(1), "the stalled subscriber was not dropped"
                _trade_in(api, seller, buyer, slot)
                reader.until("slot_settled", slot=slot)
                slot += 1
            sent = stalled.result(timeout=1)
            assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
            assert live.hub.dropped == 1
            assert len(live.hub.subscribers) == 1  # the reader only
        finally:
            reader.close()
            stalled.cancel()


async def _stalled_stream(live: LiveServer) -> list[dict[str, Any]]:
    """Open /feed inside the server's own loop with a send that blocks after the first
    bytes (the ASGI server's send waits so while the client's window is full)."""
    sent: list[dict[str, Any]] = []
    never = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:  # the (empty) request body, then nothing: the client stays
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) > 2:
            await never.wait()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/feed", "raw_path": b"/feed", "root_path": "",
        "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", live.port),
    }  # fmt: skip
    await live.app(scope, receive, send)
    return sent


def test_the_subscriber_cap_refuses_with_503_and_a_closed_stream_frees_its_place(
    tmp_path: Path,
) -> None:
    with LiveServer(_feed_settings(tmp_path, feed_max_subscribers=2)) as live:
        first, second = Stream(f"{live.base_url}/feed"), Stream(f"{live.base_url}/feed")
        try:
            assert (first.status, second.status) == (200, 200)
            third = Stream(f"{live.base_url}/feed")
            assert third.status == 503 and third.body["code"] == "feed_full", third.body
            assert "VOISIN_FEED_MAX_SUBSCRIBERS" in third.body["message"]
            r = live.http.get("/feed")
            assert r.headers["retry-after"] == "5"
            first.close()
            deadline = time.monotonic() + WAIT_S
            while len(live.hub.subscribers) > 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            fourth = Stream(f"{live.base_url}/feed")
            assert fourth.status == 200
            fourth.close()
        finally:
            first.close()
            second.close()


def test_rotating_a_households_token_closes_the_streams_it_opened(live: LiveServer) -> None:
    api = live.api
    one = api.register()
    stream = Stream(f"{live.base_url}/households/{one.id}/feed", one.auth)
    try:
        assert stream.status == 200
        # No periodic check within the test: the rotation itself has the stream checked.
        live.hub.limits = replace(live.hub.limits, token_check_s=3600)
        assert not stream.ended.wait(1.0)  # still valid: still open
        r = api.client.post(f"/households/{one.id}/token", headers=OP)
        assert r.status_code == 200, r.text
        assert stream.ended.wait(WAIT_S), "the stream outlived its token"
        again = Stream(f"{live.base_url}/households/{one.id}/feed", one.auth)
        assert again.status == 401
        fresh = Stream(
            f"{live.base_url}/households/{one.id}/feed",
            {"Authorization": f"Bearer {r.json()['token']}"},
        )
        assert fresh.status == 200
        fresh.close()
    finally:
        stream.close()


def test_erasing_a_household_closes_its_streams_at_once(live: LiveServer) -> None:
    api = live.api
    one, other = api.register(), api.register()
    gone = Stream(f"{live.base_url}/households/{one.id}/feed", one.auth)
    kept = Stream(f"{live.base_url}/households/{other.id}/feed", other.auth)
    try:
        assert (gone.status, kept.status) == (200, 200)
        live.hub.limits = replace(live.hub.limits, token_check_s=3600)
        assert not gone.ended.wait(1.0)
        api.erase(one)
        assert gone.ended.wait(WAIT_S), "the erased household's stream stayed open"
        assert not kept.ended.wait(1.0), "another household's stream was closed"
    finally:
        gone.close()
        kept.close()


def test_a_replay_from_the_start_opens_with_the_deployments_tariffs(live: LiveServer) -> None:
    live.api.register()  # the mirror follows the chain from the first write on
    stream = Stream(f"{live.base_url}/feed?after=0")
    try:
        first = stream.next()
        assert first["event"] == "tariffs_changed"
        assert first["data"]["retail_ueur_per_kWh"] == 250_000
        assert first["data"]["feed_in_ueur_per_kWh"] == 40_000
    finally:
        stream.close()
    deadline = time.monotonic() + WAIT_S
    while live.hub.subscribers:
        assert time.monotonic() < deadline, live.hub.subscribers
        time.sleep(0.05)
