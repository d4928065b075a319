"""``voisin serve --workers 2`` on an anvil node and PostgreSQL, as an operator runs it: both
processes answer, exactly one leads the background work, chain writes from both never clash,
and when the leader is killed under load (SIGKILL, one reading per request from several
meters meanwhile) another process leads within seconds, the backlog drains, every accepted
reading is committed once and the audit is clean."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, func
from sqlmodel import Session, select

from api.cli import main
from api.process import ServeProcess
from ledger.chain.anvil import ANVIL_BIN, AnvilProcess, start_anvil
from ledger.mirror.models import ReadingRecord
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, OPERATOR_TOKEN, past_slot
from tests.conftest import ANVIL_KEY

pytestmark = [pytest.mark.anvil, pytest.mark.postgres]

HOUSEHOLDS = 6
#: Slots of readings per meter, oldest first, ending two slots ago.
SLOTS = 24


@pytest.fixture
def node() -> Iterator[AnvilProcess]:
    """A node of this test's own: its processes send from anvil's first account."""
    if not ANVIL_BIN.exists():
        pytest.skip("anvil is not installed (run scripts/install)")
    anvil = start_anvil(chain_id=None, hardfork=None)
    try:
        yield anvil
    finally:
        anvil.stop()


def _processes(base_url: str, want: int, timeout_s: float = 60) -> dict[int, bool]:
    """The serving processes seen answering ``/health`` on fresh connections (pid: leads?),
    once ``want`` of them answered."""
    seen: dict[int, bool] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base_url}/health", timeout=10).json()["process"]
        seen[answer["pid"]] = answer["leader"]
        if len(seen) >= want:
            return seen
    raise AssertionError(f"only {seen} answered within {timeout_s} s")


def _leader(base_url: str, not_pid: int | None, timeout_s: float) -> int:
    """The pid of a leading process other than ``not_pid``, once one answers."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            answer = httpx.get(f"{base_url}/health", timeout=5).json()["process"]
        except httpx.HTTPError:
            continue
        if answer["leader"] and answer["pid"] != not_pid:
            return int(answer["pid"])
        time.sleep(0.05)
    raise AssertionError(f"no process other than {not_pid} led within {timeout_s} s")


def _post(base_url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """POST on a fresh connection (so the kernel may hand it to either process), again while
    the connection breaks (the process that took it was killed): every write is idempotent."""
    path = "/readings" if headers is None else "/households"
    for _ in range(50):
        try:
            r = httpx.post(f"{base_url}{path}", json=body, headers=headers, timeout=60)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if r.status_code < 500:
            return r
        time.sleep(0.1)
    raise AssertionError(f"POST {path} never answered")


def test_more_than_one_worker_needs_postgres_and_a_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOISIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VOISIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("VOISIN_CHAIN", raising=False)
    assert main(["serve", "--workers", "2"]) == 2
    assert "needs a JSON-RPC chain" in capsys.readouterr().err
    monkeypatch.setenv("VOISIN_CHAIN", "http://127.0.0.1:1")
    assert main(["serve", "--workers", "2"]) == 2
    assert "needs a PostgreSQL database" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--workers", "0"])
    assert "--workers" in capsys.readouterr().err


def test_two_workers_share_the_market_and_survive_the_leaders_death(
    node: AnvilProcess, postgres_url: str, tmp_path: Path
) -> None:
    env = {
        "VOISIN_CHAIN": node.url,
        "VOISIN_CHAIN_KEY": ANVIL_KEY,
        "VOISIN_DATABASE_URL": postgres_url,
        "VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "VOISIN_SETTLE_AFTER_S": "0",
        "VOISIN_OUTBOX_INTERVAL_S": "0.2",
    }
    server = ServeProcess(
        tmp_path / "data", env, workers=2, log_path=tmp_path / "serve.log", start_timeout_s=180
    )
    with server:
        base = server.base_url
        seen = _processes(base, want=2)
        assert sorted(seen.values()) == [False, True], seen  # exactly one leads

        # Registrations from both processes at once: each sends transactions as the operator.
        meters: list[LocalAccount] = [Account.create() for _ in range(HOUSEHOLDS)]
        with ThreadPoolExecutor(HOUSEHOLDS) as pool:
            answers = list(
                pool.map(
                    lambda i: _post(base, {"meter": meters[i].address, "prosumer": i % 2 == 0}, OP),
                    range(HOUSEHOLDS),
                )
            )
        assert [a.status_code for a in answers] == [201] * HOUSEHOLDS, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == HOUSEHOLDS

        chain = httpx.get(f"{base}/health").json()["chain"]
        domain = domain_separator(int(chain["chain_id"]), chain["contract"])
        first = past_slot(SLOTS + 1)

        def send_meter(i: int, slots: range) -> int:
            """One reading per request, in slot order; the prosumers export, the rest import."""
            accepted = 0
            for slot in slots:
                n = slot - first + 1
                reading = Reading(meters[i].address, slot, 300 * n, 500 * n * (i % 2 == 0))
                signed = sign_reading(meters[i].key, reading, domain)
                r = _post(base, {"readings": [reading_to_json(signed)]})
                assert r.status_code == 202, r.text
                accepted += r.json()["accepted"] + r.json()["duplicates"]
            return accepted

        half = range(first, first + SLOTS // 2)
        rest = range(first + SLOTS // 2, first + SLOTS)
        with ThreadPoolExecutor(HOUSEHOLDS) as pool:
            sent = sum(pool.map(lambda i: send_meter(i, half), range(HOUSEHOLDS)))
        assert sent == HOUSEHOLDS * len(half)

        # Kill the leader while the second half goes in, one reading per request.
        (leader,) = [pid for pid, leads in seen.items() if leads]
        with ThreadPoolExecutor(HOUSEHOLDS) as pool:
            posting = [pool.submit(send_meter, i, rest) for i in range(HOUSEHOLDS)]
            time.sleep(0.5)
            killed_at = time.monotonic()
            os.kill(leader, signal.SIGKILL)
            successor = _leader(base, not_pid=leader, timeout_s=30)
            took_over_s = time.monotonic() - killed_at
            sent += sum(f.result() for f in posting)
        assert successor != leader
        assert took_over_s < 10, took_over_s
        assert sent == HOUSEHOLDS * SLOTS

        # The supervisor starts a new worker in the dead one's place: two answer again.
        assert len(_processes(base, want=2, timeout_s=120)) == 2
        assert leader not in _processes(base, want=2)

        # The backlog drains: every reading accepted is on chain, once.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            backlog = httpx.get(f"{base}/health", timeout=10).json()["backlog"]
            if backlog.get("readings") == 0:
                break
            time.sleep(0.5)
        assert backlog.get("readings") == 0, backlog
        engine = create_engine(postgres_url)
        try:
            with Session(engine) as session:
                committed = session.exec(select(func.count()).select_from(ReadingRecord)).one()
                distinct = session.exec(
                    select(func.count()).select_from(
                        select(ReadingRecord.meter, ReadingRecord.slot).distinct().subquery()
                    )
                ).one()
        finally:
            engine.dispose()
        assert committed == distinct == HOUSEHOLDS * SLOTS

        # The slots settle and the operator's audit finds nothing wrong.
        report = httpx.get(f"{base}/audit/report", headers=OP, timeout=300)
        assert report.status_code == 200, report.text
        assert report.json()["findings"] == [], report.json()["findings"]
        status = httpx.get(f"{base}/health").json()
        assert status["chain"]["ok"] and status["database"]["ok"]
    log = (tmp_path / "serve.log").read_text()
    assert "elected" in log and "with 2 workers" in log
