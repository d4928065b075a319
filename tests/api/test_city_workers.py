"""A city under ``voisin serve --workers 2 --markets north,south`` on an anvil node and one
PostgreSQL database: each market has exactly one leader among the processes, registrations
and one-reading-per-request meters from both processes never clash on the operator's nonces
across markets, every accepted reading is committed once in its own market's schema, and
``voisin audit --city`` finds every market clean."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy import create_engine, text

from api.city import market_schema
from api.cli import main
from api.process import ServeProcess
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, OPERATOR_TOKEN, past_slot
from tests.api.test_workers import node  # noqa: F401  (the fixture: a node of this test's own)
from tests.conftest import ANVIL_KEY

pytestmark = [pytest.mark.anvil, pytest.mark.postgres]

MARKETS = ("north", "south")
HOUSEHOLDS = 4
SLOTS = 6


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """POST on a fresh connection, so the kernel may hand it to either process."""
    for _ in range(50):
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=60)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if r.status_code < 500:
            return r
        time.sleep(0.1)
    raise AssertionError(f"POST {url} never answered")


def _leaders(base: str, market: str, timeout_s: float = 60) -> dict[int, bool]:
    """Both processes as one market sees them (pid: leads that market?)."""
    seen: dict[int, bool] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(seen) < 2:
        answer = httpx.get(f"{base}/markets/{market}/health", timeout=10).json()["process"]
        seen[answer["pid"]] = answer["leader"]
    return seen


def test_two_workers_serve_a_city_of_two_markets(
    node: Any,  # noqa: F811
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "VOISIN_CHAIN": node.url,
        "VOISIN_CHAIN_KEY": ANVIL_KEY,
        "VOISIN_DATABASE_URL": postgres_url,
        "VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "VOISIN_MARKETS": ",".join(MARKETS),
        "VOISIN_SETTLE_AFTER_S": "0",
        "VOISIN_OUTBOX_INTERVAL_S": "0.2",
    }
    data = tmp_path / "data"
    server = ServeProcess(
        data, env, workers=2, log_path=tmp_path / "serve.log", start_timeout_s=240
    )
    first = past_slot(SLOTS + 2)
    with server:
        base = server.base_url
        for market in MARKETS:
            seen = _leaders(base, market)
            assert sorted(seen.values()) == [False, True], (market, seen)

        # Registrations in both markets at once, from both processes: one operator account
        # sends every transaction, one process at a time.
        meters = {m: [Account.create() for _ in range(HOUSEHOLDS)] for m in MARKETS}
        jobs = [(m, i) for m in MARKETS for i in range(HOUSEHOLDS)]

        def register(job: tuple[str, int]) -> Any:
            market, i = job
            body = {"meter": meters[market][i].address, "prosumer": i % 2 == 0}
            r = _post(f"{base}/markets/{market}/v1/households", body, OP)
            if r.status_code == 201 and i % 2:
                topup = {"household": r.json()["id"], "amount_ueur": 2_000_000}
                t = _post(f"{base}/markets/{market}/v1/topups", topup, OP)
                assert t.status_code == 201, t.text
            return r

        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(pool.map(register, jobs))
        assert [a.status_code for a in answers] == [201] * len(jobs), [a.text for a in answers]

        domains = {}
        for market in MARKETS:
            chain = httpx.get(f"{base}/markets/{market}/health").json()["chain"]
            domains[market] = domain_separator(int(chain["chain_id"]), chain["contract"])

        def send(job: tuple[str, int]) -> int:
            market, i = job
            meter, accepted = meters[market][i], 0
            for slot in range(first, first + SLOTS):
                n = slot - first + 1
                reading = Reading(meter.address, slot, 200 * n, 450 * n * (i % 2 == 0))
                signed = sign_reading(meter.key, reading, domains[market])
                r = _post(
                    f"{base}/markets/{market}/v1/readings", {"readings": [reading_to_json(signed)]}
                )
                assert r.status_code == 202, r.text
                accepted += r.json()["accepted"]
            return accepted

        with ThreadPoolExecutor(len(jobs)) as pool:
            assert sum(pool.map(send, jobs)) == len(jobs) * SLOTS

        # Each market's leader drains its backlog and settles the closed slots.
        for market in MARKETS:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                health = httpx.get(f"{base}/markets/{market}/health", timeout=10).json()
                if health["backlog"].get("readings") == 0:
                    break
                time.sleep(0.5)
            assert health["backlog"].get("readings") == 0, (market, health["backlog"])
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            span = {"from": first, "to": first + SLOTS - 1}
            city = httpx.get(f"{base}/v1/city", params=span, headers=OP, timeout=30).json()
            if all(m["slots_settled"] == SLOTS for m in city["markets"]):
                break
            time.sleep(1)
        assert [m["slots_settled"] for m in city["markets"]] == [SLOTS, SLOTS], city
        assert all(m["fills"] > 0 for m in city["markets"]), city

    # One database, one schema per market, every reading once.
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            for market in MARKETS:
                schema = market_schema(market)
                rows, distinct = conn.execute(
                    text(f'SELECT count(*), count(DISTINCT (meter, slot)) FROM "{schema}".reading')
                ).one()
                assert rows == distinct == HOUSEHOLDS * SLOTS, (market, rows, distinct)
    finally:
        engine.dispose()

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["audit", "--data-dir", str(data), "--city"]) == 0
