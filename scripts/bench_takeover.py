"""Leader takeover under load: ``voisin serve --workers N`` on anvil and PostgreSQL, its leader
killed with SIGKILL while meters post one signed reading per request.

What it does:

1. starts anvil (a fresh node, its first dev account as the operator), creates a fresh
   database on the PostgreSQL server of ``--database-url`` and starts ``voisin serve
   --workers N`` on both, settling each slot as soon as it closes;
2. registers ``--households`` households (every other one a prosumer);
3. ``--clients`` threads (gateways) post their meters' readings one per request, each meter
   in slot order, each thread on a keep-alive connection of its own (the kernel hands the
   connections to the workers), for ``--seconds`` seconds; a request whose connection breaks
   (its worker was killed) is sent again on a new connection, as a gateway would (readings
   are idempotent);
4. after ``--kill-at`` seconds it kills the leader (found before the load through ``GET
   /health``'s ``process``) with SIGKILL; the takeover is the time from the kill to the
   ``elected`` line in the server's log, and it asks ``/health`` until another process says
   it leads (which under load takes as long as a request waits for a worker);
5. once the clients stop, it waits for the backlog to drain, counts the readings committed on
   chain (the mirror's ``reading`` table: every accepted reading once) and asks the operator's
   audit (``GET /audit/report``).

It prints readings/s before and after the kill, the takeover time (kill to the new leader's
election, and to ``/health`` saying so), the backlog when the load stopped, the drain time
(kill to an empty backlog), readings accepted and committed, and the audit's findings. Times
are wall-clock on a shared machine.

Usage: ``.venv/bin/python scripts/bench_takeover.py --database-url
postgresql+psycopg://voisin@127.0.0.1:5432 [--workers 4] [--households 40] [--clients 20]
[--seconds 40] [--kill-at 15] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from sqlalchemy import create_engine, func, make_url, text
from sqlmodel import Session, select

from api.process import ServeProcess, ServerStartError
from ledger.chain.anvil import start_anvil
from ledger.mirror.models import ReadingRecord
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json

TOKEN = "bench-operator-token-0123456789abcdef"
OP = {"Authorization": f"Bearer {TOKEN}"}
#: Anvil's first dev account (public test mnemonic): the operator.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def say(message: str) -> None:
    print(f"bench_takeover: {message}", file=sys.stderr, flush=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server of ``server_url`` (its database is ignored)."""
    server = make_url(server_url)
    name = f"voisin_takeover_{int(time.time())}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def health(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/health", timeout=10).json())


def post(
    http: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    """POST, again after a broken connection or a 5xx (the writes are idempotent); a broken
    connection is replaced by a new one, which the kernel may hand to another worker."""
    for attempt in range(100):
        try:
            r = http.post(path, json=body, headers=headers, timeout=60)
        except httpx.HTTPError:
            time.sleep(min(1.0, 0.05 * 2**attempt))
            continue
        if r.status_code < 500:
            return r
        time.sleep(0.1)
    raise SystemExit(f"bench_takeover: POST {path} never answered")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server (SQLAlchemy)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--households", type=int, default=40)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--kill-at", type=float, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.workers < 2 or args.households < 2 or args.clients < 1:
        parser.error("--workers at least 2, --households at least 2, --clients at least 1")
    if not 0 < args.kill_at < args.seconds:
        parser.error("--kill-at must fall within --seconds")

    node = start_anvil(chain_id=None, hardfork=None)
    url = fresh_database(args.database_url)
    data_dir = Path(tempfile.mkdtemp(prefix="voisin-bench-takeover-")) / "data"
    env = {
        "VOISIN_CHAIN": node.url,
        "VOISIN_CHAIN_KEY": ANVIL_KEY,
        "VOISIN_DATABASE_URL": url,
        "VOISIN_OPERATOR_TOKEN": TOKEN,
        "VOISIN_SETTLE_AFTER_S": "0",
    }
    server = ServeProcess(
        data_dir, env, workers=args.workers, log_path=data_dir.parent / "serve.log"
    )
    say(f"starting voisin serve --workers {args.workers} (log {data_dir.parent / 'serve.log'})")
    try:
        server.start()
    except ServerStartError as exc:
        node.stop()
        raise SystemExit(f"bench_takeover: {exc}") from exc
    try:
        row = run(args, server.base_url, url, data_dir.parent / "serve.log")
    finally:
        server.stop()
        node.stop()
    if args.json:
        args.json.write_text(json.dumps(row, indent=2) + "\n")
    return 0 if row["committed"] == row["accepted"] and row["findings"] == 0 else 1


def elected_after(log_path: Path, since_utc: float) -> float:
    """Seconds from ``since_utc`` to the first election the server's log records after it."""
    for line in log_path.read_text().splitlines():
        if '"voisin.cluster"' not in line or '"message": "elected' not in line:
            continue
        stamp = datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00"))
        if stamp.timestamp() >= since_utc:
            return stamp.timestamp() - since_utc
    raise SystemExit(f"bench_takeover: no election after the kill in {log_path}")


def run(args: argparse.Namespace, base: str, database_url: str, log_path: Path) -> dict[str, Any]:
    meters = [Account.create() for _ in range(args.households)]
    with httpx.Client(base_url=base) as http:
        for i, m in enumerate(meters):
            r = post(http, "/households", {"meter": m.address, "prosumer": i % 2 == 0}, OP)
            if r.status_code != 201:
                raise SystemExit(f"bench_takeover: registration refused: {r.text}")
    chain = health(base)["chain"]
    domain = domain_separator(int(chain["chain_id"]), chain["contract"])
    say(f"registered {len(meters)} households")

    # Readings from three weeks back, slot after slot: each one new, and its slot closed.
    back = 2_000
    first_slot = int(time.time()) // 900 - back
    stop = threading.Event()
    lock = threading.Lock()
    accepted: list[float] = []  # when each accepted reading was answered (monotonic)

    def client(k: int) -> None:
        """A gateway for its meters: one keep-alive connection, one reading per request."""
        mine = [(i, m) for i, m in enumerate(meters) if i % args.clients == k]
        with httpx.Client(base_url=base) as http:
            for n in range(back - 1):
                for i, m in mine:
                    if stop.is_set():
                        return
                    exported = 400 * (n + 1) * (i % 2 == 0)
                    reading = Reading(m.address, first_slot + n, 250 * (n + 1), exported)
                    signed = sign_reading(m.key, reading, domain)
                    r = post(http, "/readings", {"readings": [reading_to_json(signed)]})
                    if r.status_code != 202:
                        raise SystemExit(f"bench_takeover: reading refused: {r.text}")
                    with lock:
                        accepted.extend([time.monotonic()] * r.json()["accepted"])

    # The leader, found before the load (under load /health waits for the chain lock).
    leader = None
    while leader is None:
        p = health(base)["process"]
        leader = p["pid"] if p["leader"] else None
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.kill_at)
    killed, killed_utc = time.monotonic(), time.time()
    os.kill(leader, signal.SIGKILL)
    say(f"killed the leader, pid {leader}, at {killed - started:.1f} s")
    successor = None
    while successor is None:
        try:
            p = health(base)["process"]
        except httpx.HTTPError:
            continue
        if p["leader"] and p["pid"] != leader:
            successor = p["pid"]
    answered_s = time.monotonic() - killed
    elected_s = elected_after(log_path, killed_utc)
    say(
        f"pid {successor} leads: elected {elected_s:.3f} s after the kill (its log), said so at "
        f"/health {answered_s:.2f} s after it"
    )
    time.sleep(max(0.0, started + args.seconds - time.monotonic()))
    stop.set()
    for t in threads:
        t.join()
    ended = time.monotonic()
    backlog_at_end = health(base)["backlog"].get("readings")
    say(f"load stopped {ended - killed:.1f} s after the kill; {backlog_at_end} readings queued")

    while True:
        backlog = health(base)["backlog"]
        if backlog.get("readings") == 0:
            break
        time.sleep(0.2)
    drained_s = time.monotonic() - killed
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            committed = int(session.exec(select(func.count()).select_from(ReadingRecord)).one())
    finally:
        engine.dispose()
    report = httpx.get(f"{base}/audit/report", headers=OP, timeout=600).json()
    before_kill = sum(1 for t in accepted if t < killed) / (killed - started)
    after_kill = sum(1 for t in accepted if t >= killed) / (ended - killed)
    row = {
        "workers": args.workers,
        "clients": args.clients,
        "households": args.households,
        "readings_per_s_before_kill": round(before_kill, 1),
        "readings_per_s_after_kill": round(after_kill, 1),
        "elected_s_after_kill": round(elected_s, 3),
        "health_says_leader_s_after_kill": round(answered_s, 2),
        "drained_s_after_kill": round(drained_s, 2),
        "load_after_kill_s": round(ended - killed, 2),
        "backlog_when_load_stopped": backlog_at_end,
        "accepted": len(accepted),
        "committed": committed,
        "findings": len(report["findings"]),
    }
    print(
        "| workers | clients | readings/s before the kill | after | elected s after the kill "
        "| /health says so s | load after "
        "the kill s | queued when the load stopped | backlog empty s after the kill | accepted "
        "| committed | audit findings |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.workers} | {args.clients} | {before_kill:.0f} | {after_kill:.0f} | "
        f"{elected_s:.3f} | {answered_s:.2f} | {ended - killed:.1f} | {backlog_at_end:,} | "
        f"{drained_s:.1f} | "
        f"{len(accepted):,} | {committed:,} | {len(report['findings'])} |"
    )
    return row


if __name__ == "__main__":
    raise SystemExit(main())
