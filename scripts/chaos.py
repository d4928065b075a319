"""The chaos run: a neighbourhood through `voisin serve` on anvil and PostgreSQL,
with meter faults injected and the server, the node and the database knocked over on the way.

What it does, in order:

1. starts a private PostgreSQL cluster (initdb into a temporary folder, run as the postgres
   user when we are root), an anvil node whose state is kept on disk (``--state``: dumped on
   a graceful stop, loaded on start) and `voisin serve` on both (``VOISIN_AUTO_SETTLE=false``);
2. registers and tops up the households through the API (``POST /households``, ``/topups``);
3. signs every meter's readings and turns them into envelopes with every fault of
   :mod:`meter_sim.faults` at ``--fault-rate`` (5 % by default) each, then sends them one send
   slot ("round") at a time with :func:`meter_sim.deliver_http` (retrying across outages) and
   settles slot ``t`` after round ``t + max_late_slots`` with ``POST /market/slots/{t}/settle``
   (a grace period, so that a late reading can still count);
4. while it runs, a chaos thread kills the API server with SIGKILL while readings are sent
   (and restarts it), stops anvil for ``--anvil-down-s`` (20 s) while a slot is settled and
   restarts it with its state, restarts PostgreSQL while readings are sent, and kills the API
   server a second time while a slot is settled. The events fire at fixed fractions of the
   run's rounds, so a short run still hits every one; they run one after the other;
5. at the end waits for the outbox backlog (``GET /health``) to drain, settles every slot
   again (idempotent: each was settled during the rounds), stops the server and runs
   ``voisin audit`` over the same chain and database.

A clock-skewed reading is re-signed at send time for ``now + skew`` slots: the run's slots lie
in the past (a simulated day), so the skew must be taken against the server's clock, the one
that refuses future slots.

What must hold (else the exit status is 1), all written to ``--json``:

- every envelope got the answer it should: a reading that follows its meter's last accepted
  slot is accepted (or, after a lost answer, recognised as already delivered); tampered and
  wrong-key readings are refused ``bad_signature``, skewed ones ``future_slot``; a duplicate or
  a replay of a stored reading is answered ``duplicate`` and stored once; a late reading that
  an on-time successor overtook is refused ``stale_slot``. Injected-versus-refused counts per
  fault kind are printed and must match;
- every valid reading is on chain exactly once (``ReadingCommitted`` events) with its
  registers, nothing else is, and the database mirror holds the same;
- the audit reports no finding: faulty readings are refused at the intake, so none of them
  reaches the evidence store or the chain, and the audit sees none of them;
- the API never answered a 5xx other than 503 (a 500 is a bug), and anvil came back with every
  block it had.

Usage: ``scripts/chaos [--households 30] [--slots 32] [--seed 1] [--json FILE] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from api.process import ServeProcess
from ledger.chain.backends import open_chain
from ledger.contract.deploy import open_ledger
from ledger.mirror.models import ReadingRecord
from ledger.readings.eip712 import domain_separator, sign_reading
from meter_sim import (
    Envelope,
    FaultRates,
    Outcome,
    RetryPolicy,
    Scenario,
    default_scenario,
    deliver_http,
    envelopes,
    sign_readings,
    simulate,
)
from meter_sim.run import TOP_UP_MARGIN_UEUR, window

ROOT = Path(__file__).resolve().parent.parent
ANVIL_BIN = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
#: Anvil's first dev account (public test mnemonic): the operator, funded on every start.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
OPERATOR_TOKEN = "chaos-run-operator-token-0123456789abcdef"
#: The simulated day (a summer Sunday: PV surplus to trade around noon).
START = date(2026, 6, 21)
#: Slot of the day (UTC) the window is centred on: 12:00.
NOON_SLOT = 48
#: The chaos events, when they fire (a fraction of the run's rounds) and during what: while the
#: round's readings are sent (the intake's path), or while its slot is settled (the outbox
#: commits readings and the settlement worker its fills: the path to the chain).
SCHEDULE = (
    ("kill_api", 0.15, "readings"),
    ("stop_anvil", 0.35, "settle"),
    ("restart_postgres", 0.6, "readings"),
    ("kill_api", 0.8, "settle"),
)
#: How long after the settle call a "settle" event fires (s): the call takes about a second.
SETTLE_EVENT_DELAY_S = 0.1
#: Outcomes a fault meant to be refused may get, per kind (the intake's codes).
REFUSAL_CODES = {
    "tampered": "bad_signature",
    "wrong_key": "bad_signature",
    "clock_skew": "future_slot",
    "duplicate": "duplicate",
    "replay": "duplicate",
    "late": "stale_slot",
}


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ───────────────────────────── PostgreSQL ─────────────────────────────


class Postgres:
    """A private cluster in ``root`` (world-writable: the server runs as the postgres user)."""

    def __init__(self, root: Path) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not versions:
            raise SystemExit("chaos: PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = versions[-1].parent
        self.root = root
        self.cluster = root / "cluster"
        self.port = free_port()
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.url = f"postgresql+psycopg://voisin@127.0.0.1:{self.port}/voisin"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.cluster), *args],
            check=True,
            capture_output=True,
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o777)
        subprocess.run(
            [
                *self.run_as,
                str(self.bin / "initdb"),
                "-D",
                str(self.cluster),
                "-A",
                "trust",
                "-U",
                "voisin",
            ],
            check=True,
            capture_output=True,
        )
        self.start()
        admin = create_engine(
            f"postgresql+psycopg://voisin@127.0.0.1:{self.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "voisin"'))
        admin.dispose()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._ctl("-w", "-l", str(self.root / "log"), "-o", options, "start")

    def stop(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")


# ───────────────────────────── Anvil ─────────────────────────────


class Anvil:
    """Anvil on a fixed loopback port with its chain in ``state_file``: dumped every
    ``interval_s`` and on a graceful stop (SIGTERM), loaded again on start."""

    def __init__(self, root: Path, interval_s: int = 10) -> None:
        if not ANVIL_BIN.exists():
            raise SystemExit(f"chaos: anvil is missing at {ANVIL_BIN}: run scripts/install")
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_file = root / "anvil-state.json"
        self.interval_s = interval_s
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "anvil.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(ANVIL_BIN),
                    "--port",
                    str(self.port),
                    "--state",
                    str(self.state_file),
                    "--state-interval",
                    str(self.interval_s),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"anvil exited with status {self.proc.returncode}")
            try:
                self.rpc("eth_blockNumber")
                return
            except (httpx.HTTPError, RuntimeError):
                time.sleep(0.1)
        raise RuntimeError(f"anvil did not answer on {self.url}")

    def rpc(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer = httpx.post(self.url, json=body, timeout=10).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def stop(self) -> None:
        """SIGTERM: anvil dumps its state to ``state_file`` and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ───────────────────────────── The chaos thread ─────────────────────────────


class Chaos:
    """Runs the chaos events one after the other in a thread; :meth:`fire` queues one."""

    def __init__(
        self, server: Any, anvil: Anvil, pg: Postgres, contract: str, anvil_down_s: float
    ) -> None:
        self.server, self.anvil, self.pg = server, anvil, pg
        self.contract = contract
        self.anvil_down_s = anvil_down_s
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.t0 = time.monotonic()
        self._queue: queue.Queue[tuple[str, int, str, float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self._thread.start()

    def fire(self, name: str, round_: int, phase: str, delay_s: float) -> None:
        self._queue.put((name, round_, phase, delay_s))

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            name, round_, phase, delay_s = item
            time.sleep(delay_s)  # let the round's requests get going first
            started = time.monotonic()
            event: dict[str, Any] = {"event": name, "round": round_, "during": phase}
            event["at_s"] = round(started - self.t0, 2)
            say(f"chaos: {name} (round {round_})")
            try:
                getattr(self, name)(event)
            except Exception as exc:
                self.problems.append(f"{name} at round {round_} failed: {exc!r}")
                event["error"] = repr(exc)
            event["took_s"] = round(time.monotonic() - started, 2)
            self.events.append(event)

    def kill_api(self, event: dict[str, Any]) -> None:
        pid = self.server.proc.pid
        self.server.kill()
        event["killed_pid"] = pid
        down = time.monotonic()
        self.server.start()
        event["api_down_s"] = round(time.monotonic() - down, 2)

    def stop_anvil(self, event: dict[str, Any]) -> None:
        head = self.anvil.head()
        code = self.anvil.rpc("eth_getCode", self.contract, "latest")
        self.anvil.stop()
        time.sleep(self.anvil_down_s)
        self.anvil.start()
        after = self.anvil.head()
        event.update(head_before=head, head_after=after, down_s=self.anvil_down_s)
        # The outbox may have mined between our look and the stop: the head can only be equal
        # or later, and the contract must be there with the same code.
        if after < head:
            self.problems.append(f"anvil came back at block {after}, it had reached {head}")
        if self.anvil.rpc("eth_getCode", self.contract, "latest") != code:
            self.problems.append("anvil came back without the Voisin contract's code")

    def restart_postgres(self, event: dict[str, Any]) -> None:
        self.pg.stop()
        time.sleep(2)
        self.pg.start()
        event["down_s"] = 2


# ───────────────────────────── Calls to the API ─────────────────────────────


class Api:
    """Operator calls that ride out outages: retried on connection errors, 503 and 429 until
    ``patience_s`` has passed. Every answer's status is counted (a 500 is a bug)."""

    def __init__(self, base_url: str, patience_s: float = 240.0) -> None:
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []
        self.patience_s = patience_s

        async def count(response: httpx.Response) -> None:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500 and response.status_code != 503:
                await response.aread()
                self.server_errors.append(
                    f"{response.request.method} {response.request.url.path} answered "
                    f"{response.status_code}: {response.text[:300]}"
                )

        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
            event_hooks={"response": [count]},
        )

    async def call(
        self, method: str, path: str, body: Any = None, *, expect: int = 200
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.patience_s
        delay = 0.25
        last = ""
        while True:
            try:
                response = await self.http.request(method, path, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == expect:
                    data: dict[str, Any] = response.json()
                    return data
                last = f"{response.status_code}: {response.text[:300]}"
                if response.status_code not in (429, 500, 502, 503, 504):
                    raise RuntimeError(f"{method} {path} answered {last}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: gave up after {self.patience_s} s: {last}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


# ───────────────────────────── What each envelope should get ─────────────────────────────


def expected_outcomes(envs: list[Envelope]) -> list[tuple[str, str | None]]:
    """Per envelope, in send order: ``(status, code)`` the API should answer, from each meter's
    last accepted slot (see the module docstring)."""
    last: dict[str, int] = {}
    out: list[tuple[str, str | None]] = []
    for e in envs:
        kind = e.fault.value if e.fault is not None else None
        meter = e.signed.reading.meter
        if not e.sent:
            out.append(("not_sent", None))
        elif kind in ("tampered", "wrong_key", "clock_skew"):
            out.append(("rejected", REFUSAL_CODES[kind]))
        elif kind in ("duplicate", "replay"):
            out.append(("already_delivered", "duplicate"))
        elif e.slot > last.get(meter, -1):
            last[meter] = e.slot
            out.append(("accepted", None))
        else:
            out.append(("rejected", "stale_slot"))
    return out


def rounds_for_events(n_rounds: int) -> list[tuple[str, int, str]]:
    """The round index (0-based) of each scheduled event: distinct, in order, none in the
    first round nor after the last."""
    out: list[tuple[str, int, str]] = []
    previous = 0
    for name, fraction, phase in SCHEDULE:
        r = max(previous + 1, round(fraction * n_rounds))
        out.append((name, r, phase))
        previous = r
    if previous >= n_rounds:
        raise SystemExit(f"chaos: {n_rounds} rounds are too few for {len(SCHEDULE)} events")
    return out


# ───────────────────────────── The run ─────────────────────────────


async def drive(args: argparse.Namespace, work: Path, summary: dict[str, Any]) -> list[str]:
    """Everything between the servers' start and stop; returns the unexpected findings."""
    problems: list[str] = []
    pg = Postgres(work / "pg")
    anvil = Anvil(work / "anvil")
    pg.init()
    anvil.start()
    say(f"PostgreSQL on port {pg.port}, anvil on {anvil.url} (state in {anvil.state_file})")
    env = {
        "VOISIN_CHAIN": anvil.url,
        "VOISIN_CHAIN_KEY": ANVIL_KEY,
        "VOISIN_DATABASE_URL": pg.url,
        "VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "VOISIN_ENVIRONMENT": "development",
        "VOISIN_AUTO_SETTLE": "false",
    }
    data_dir = work / "data"
    server = ServeProcess(data_dir, env, log_path=work / "serve.log")
    summary["services"] = {"postgres_port": pg.port, "anvil": anvil.url, "api": server.base_url}
    api: Api | None = None
    try:
        server.start()
        api = Api(server.base_url)
        found, valid = await run_market(args, api, server, anvil, pg, summary)
        problems += found
        server.stop()
        problems += audit(data_dir, env, work, summary)
        problems += on_chain_check(anvil.url, data_dir, pg.url, valid, summary)
    finally:
        if api is not None:
            await api.http.aclose()
            summary["http_statuses"] = {str(k): v for k, v in sorted(api.statuses.items())}
            if api.server_errors:
                problems += [f"the API answered a server error: {e}" for e in api.server_errors]
        server.kill()
        anvil.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop()
    return problems


async def run_market(
    args: argparse.Namespace,
    api: Api,
    server: ServeProcess,
    anvil: Anvil,
    pg: Postgres,
    summary: dict[str, Any],
) -> tuple[list[str], dict[tuple[int, int], tuple[int, int]]]:
    """Register, deliver, settle under chaos, drain. Returns the unexpected findings and the
    valid readings: (household id, slot) -> (import_Wh, export_Wh) registers."""
    problems: list[str] = []
    scenario = default_scenario(args.households, 1, START, args.seed)
    first = max(0, min(96 - args.slots, NOON_SLOT - args.slots // 2))
    flows = window(simulate(scenario), first, args.slots)
    n_h, n_t = flows.shape
    health = await api.call("GET", "/health")
    contract = str(health["chain"]["contract"])
    chain_id = int(health["chain"]["chain_id"])
    domain = domain_separator(chain_id, contract)
    say(f"voisin serve on {server.base_url}: chain {chain_id}, Voisin at {contract}")

    household_ids: list[int] = []
    for spec, ident in zip(scenario.households, scenario.identities, strict=True):
        created = await api.call(
            "POST",
            "/households",
            {
                "meter": ident.meter,
                "prosumer": spec.prosumer,
                "name": spec.name,
                "import_baseline_Wh": ident.import_baseline_Wh,
                "export_baseline_Wh": ident.export_baseline_Wh,
            },
            expect=201,
        )
        household_ids.append(int(created["id"]))
    retail = int((await api.call("GET", "/market/tariffs"))["retail_ueur_per_kWh"])
    for h, hid in enumerate(household_ids):
        amount = int(flows.import_Wh[h].sum()) * retail // 1000 + TOP_UP_MARGIN_UEUR
        await api.call("POST", "/topups", {"household": hid, "amount_ueur": amount}, expect=201)
    say(f"registered and topped up {n_h} households")

    rates = dataclasses.replace(
        FaultRates.uniform(args.fault_rate), max_late_slots=args.max_late_slots
    )
    signed = sign_readings(scenario, flows, domain)
    envs = envelopes(scenario, signed, domain, rates)
    expected = expected_outcomes(envs)
    slots = flows.slots.tolist()
    first_slot, last_slot = slots[0], slots[-1]
    grace = args.max_late_slots
    round_slots = list(range(first_slot, last_slot + grace + 1))
    events = rounds_for_events(len(round_slots))
    summary["run"] = {
        "households": n_h,
        "slots": n_t,
        "first_slot": first_slot,
        "last_slot": last_slot,
        "rounds": len(round_slots),
        "fault_rate": args.fault_rate,
        "max_late_slots": grace,
        "seed": args.seed,
        "readings": len(signed),
        "envelopes": len(envs),
        "schedule": [{"event": n, "round": r + 1, "during": p} for n, r, p in events],
    }
    by_round: dict[int, list[int]] = {}
    for i, e in enumerate(envs):
        by_round.setdefault(e.send_slot, []).append(i)

    chaos = Chaos(server, anvil, pg, contract, args.anvil_down_s)
    policy = RetryPolicy(attempts=60, backoff_s=0.25, max_backoff_s=4.0, seed=args.seed)
    outcomes: list[Outcome | None] = [None] * len(envs)
    fills = matched_Wh = requests = 0
    started = time.monotonic()
    try:
        for r, send_slot in enumerate(round_slots):
            settle = send_slot - grace
            settles = first_slot <= settle <= last_slot
            now = [(name, phase) for name, at, phase in events if at == r]
            for name, phase in now:
                if phase == "readings" or not settles:
                    chaos.fire(name, r + 1, "readings", args.event_delay_s)
            members = by_round.get(send_slot, [])
            batch = [resign_skewed(envs[i], scenario, domain) for i in members]
            report = await deliver_http(
                batch, server.base_url, client=api.http, concurrency=8, retry=policy
            )
            for i, outcome in zip(members, report.outcomes, strict=True):
                outcomes[i] = outcome
            requests += report.requests
            if settles:
                for name, phase in now:
                    if phase == "settle":
                        chaos.fire(name, r + 1, phase, SETTLE_EVENT_DELAY_S)
                settled = await api.call("POST", f"/market/slots/{settle}/settle")
                fills += int(settled["fills"])
                matched_Wh += int(settled["matched_Wh"])
            say(
                f"round {r + 1}/{len(round_slots)} (slot {send_slot}): {len(members)} envelopes, "
                f"{fills} fills so far"
            )
    finally:
        chaos.finish()
    problems += chaos.problems
    summary["events"] = chaos.events

    # Drain: everything accepted on chain, then every slot settled (idempotent).
    backlog = await drain(api)
    for slot in slots:
        # Settled during the rounds already: the API answers the recorded outcome.
        again = await api.call("POST", f"/market/slots/{slot}/settle")
        if again["status"] != "settled":
            problems.append(f"slot {slot} is {again['status']!r} after the run, not settled")
    backlog = await drain(api)
    await wait_for_mirror(api, anvil)
    run_s = time.monotonic() - started
    outcome_table(envs, expected, outcomes, summary, problems)
    summary["market"] = {
        "fills": fills,
        "matched_Wh": matched_Wh,
        "backlog_at_end": backlog,
        "run_s": round(run_s, 1),
        "reading_requests": requests,
    }
    valid = {
        (household_ids[e.household], e.slot): (
            e.signed.reading.import_Wh,
            e.signed.reading.export_Wh,
        )
        for e, (status, _) in zip(envs, expected, strict=True)
        if status == "accepted"
    }
    summary["run"]["contract"] = contract
    return problems, valid


def resign_skewed(e: Envelope, scenario: Scenario, domain: bytes) -> Envelope:
    """A skewed reading re-signed ``skew`` slots ahead of the server's clock now."""
    if e.fault is None or e.fault.value != "clock_skew":
        return e
    rd = e.signed.reading
    skew = rd.slot - e.slot
    ahead = dataclasses.replace(rd, slot=int(time.time()) // 900 + skew)
    key = scenario.identities[e.household].meter_key
    return dataclasses.replace(e, signed=sign_reading(key, ahead, domain))


async def drain(api: Api, timeout_s: float = 300.0) -> dict[str, int]:
    """Wait until ``GET /health`` says the chain is up and nothing is left in the outbox."""
    deadline = time.monotonic() + timeout_s
    backlog: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            response = await api.http.get("/health")
            body = response.json()
            backlog = body.get("backlog", {})
            if response.status_code == 200 and not any(backlog.values()):
                return backlog
        except (httpx.HTTPError, ValueError):
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the outbox did not drain within {timeout_s} s: {backlog}")


async def wait_for_mirror(api: Api, anvil: Anvil, timeout_s: float = 120.0) -> None:
    """Wait until the server's indexer has mirrored the chain up to its head (one outbox pass
    after the last transaction), so the audit compares the whole chain."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        head = anvil.head()
        await asyncio.sleep(1.5)  # a few outbox passes (0.5 s apart)
        response = await api.http.get("/health")
        if response.status_code == 200 and anvil.head() == head:
            await asyncio.sleep(1.5)
            return
    raise RuntimeError("the chain kept moving: the mirror could not catch up")


def outcome_table(
    envs: list[Envelope],
    expected: list[tuple[str, str | None]],
    outcomes: list[Outcome | None],
    summary: dict[str, Any],
    problems: list[str],
) -> None:
    """Per fault kind: injected, refused (by code), accepted; every mismatch is a problem."""
    kinds: dict[str, dict[str, Any]] = {}
    for e, (want_status, want_code), got in zip(envs, expected, outcomes, strict=True):
        kind = e.fault.value if e.fault is not None else "none"
        row = kinds.setdefault(
            kind,
            {
                "injected": 0,
                "expected_refused": 0,
                "refused": Counter(),
                "accepted": 0,
                "not_sent": 0,
                "retried": 0,
                "answer_lost": 0,
                "mismatches": 0,
            },
        )
        row["injected"] += 1
        if want_status in ("rejected", "already_delivered"):
            row["expected_refused"] += 1
        if got is None:
            problems.append(f"envelope {e.seq} ({kind}) was never sent")
            row["mismatches"] += 1
            continue
        status = got.status.value
        row["retried"] += got.attempts > 1
        if status == "not_sent":
            row["not_sent"] += 1
        elif status == "accepted":
            row["accepted"] += 1
        elif status in ("rejected", "already_delivered"):
            row["refused"][got.code or status] += 1
        ok = status == want_status and (want_code is None or got.code == want_code)
        if want_status == "accepted" and status == "already_delivered" and got.attempts > 1:
            # The first attempt was stored but its answer lost (the server was killed): the
            # retry is recognised as the same reading. Delivered once.
            ok = True
            row["accepted"] += 1
            row["answer_lost"] += 1
            row["refused"][got.code or status] -= 1
            row["refused"] += Counter()  # drop zero counts
        if not ok:
            row["mismatches"] += 1
            problems.append(
                f"{kind} envelope of household index {e.household}, slot {e.slot} (sent at "
                f"{e.send_slot}): expected {want_status} {want_code or ''}, got {status} "
                f"{got.code or ''} after {got.attempts} attempt(s): {got.message[:200]}"
            )
    table = {}
    for kind, row in sorted(kinds.items()):
        refused = sum(row["refused"].values())
        table[kind] = {**row, "refused": dict(row["refused"]), "refused_total": refused}
        if kind != "none" and refused != row["expected_refused"]:
            problems.append(
                f"{kind}: {row['expected_refused']} meant to be refused, {refused} refused"
            )
    summary["faults"] = table


# ───────────────────────────── After the run ─────────────────────────────


def audit(data_dir: Path, env: dict[str, str], work: Path, summary: dict[str, Any]) -> list[str]:
    """``voisin audit`` over the run's chain and database: no finding may remain."""
    report_path = work / "audit.json"
    child_env = {**os.environ, **env}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "audit",
            "--data-dir",
            str(data_dir),
            "--json",
            str(report_path),
        ],
        env=child_env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    say(f"voisin audit exited {done.returncode}: {done.stdout.strip().splitlines()[-1:]}")
    if not report_path.exists():
        summary["audit"] = {"exit": done.returncode, "stderr": done.stderr[-2000:]}
        return [f"voisin audit wrote no report (exit {done.returncode}): {done.stderr[-500:]}"]
    report = json.loads(report_path.read_text())
    findings = report.get("findings", [])
    summary["audit"] = {
        "exit": done.returncode,
        "ok": report.get("ok"),
        "findings": len(findings),
        "summary": report.get("summary"),
        "checks": report.get("checks"),
        "first_findings": findings[:20],
    }
    problems = [
        f"audit finding: {f['check']} [{f['severity']}] slot {f['slot']} household "
        f"{f['household']}: {f['message']}"
        for f in findings
    ]
    if done.returncode != 0 and not problems:
        problems.append(f"voisin audit exited {done.returncode}: {done.stderr[-500:]}")
    return problems


def on_chain_check(
    anvil_url: str,
    data_dir: Path,
    database_url: str,
    want: dict[tuple[int, int], tuple[int, int]],
    summary: dict[str, Any],
) -> list[str]:
    """Every valid reading on chain exactly once, nothing else, and the mirror the same."""
    problems: list[str] = []
    with open_chain(anvil_url, data_dir, ANVIL_KEY) as chain:
        client, deployment = open_ledger(chain)
        head = int(client.w3.eth.block_number)
        events = client.events(deployment.block_number, head)
    committed = [e for e in events if e.name == "ReadingCommitted"]
    on_chain = Counter((int(e.args["household"]), int(e.args["slot"])) for e in committed)
    registers = {
        (int(e.args["household"]), int(e.args["slot"])): (
            int(e.args["importWh"]),
            int(e.args["exportWh"]),
        )
        for e in committed
    }
    missing = sorted(set(want) - set(on_chain))
    extra = sorted(set(on_chain) - set(want))
    twice = sorted(k for k, n in on_chain.items() if n > 1)
    wrong = sorted(k for k in set(want) & set(registers) if registers[k] != want[k])
    engine = create_engine(database_url)
    with Session(engine) as session:
        mirror = Counter((r.household, r.slot) for r in session.exec(select(ReadingRecord)))
    engine.dispose()
    mirror_diff = sorted(set(mirror) ^ set(on_chain)) + sorted(
        k for k, n in mirror.items() if n > 1
    )
    for label, keys in (
        ("valid reading missing from the chain", missing),
        ("reading on chain that should have been refused", extra),
        ("reading on chain more than once", twice),
        ("reading on chain with other registers than signed", wrong),
        ("mirror differs from the chain", mirror_diff),
    ):
        if keys:
            problems.append(f"{len(keys)} {label}: (household, slot) {keys[:10]}")
    summary["chain"] = {
        "head_block": head,
        "valid_readings": len(want),
        "readings_on_chain": sum(on_chain.values()),
        "readings_in_mirror": sum(mirror.values()),
        "missing": len(missing),
        "extra": len(extra),
        "doubled": len(twice),
        "wrong_registers": len(wrong),
        "mirror_differences": len(mirror_diff),
        "fills_on_chain": sum(1 for e in events if e.name == "FillSettled"),
    }
    return problems


def print_summary(summary: dict[str, Any], problems: list[str]) -> None:
    run = summary.get("run", {})
    print(
        f"chaos run: {run.get('households')} households, {run.get('slots')} slots "
        f"({run.get('envelopes')} envelopes for {run.get('readings')} readings), faults at "
        f"{100 * float(run.get('fault_rate', 0)):.0f} % each"
    )
    for e in summary.get("events", []):
        extra = {k: v for k, v in e.items() if k not in ("event", "round", "at_s")}
        print(f"  event {e['event']:<17} round {e['round']:>3} at {e['at_s']:>7.1f} s  {extra}")
    print(
        f"  {'fault':<11} {'injected':>8} {'to refuse':>9} {'refused':>7} {'accepted':>8}"
        f" {'not sent':>8} {'retried':>7} {'lost ans.':>9}  refused by code"
    )
    for kind, row in summary.get("faults", {}).items():
        print(
            f"  {kind:<11} {row['injected']:>8} {row['expected_refused']:>9} "
            f"{row['refused_total']:>7} {row['accepted']:>8} {row['not_sent']:>8} "
            f"{row['retried']:>7} {row['answer_lost']:>9}  {row['refused']}"
        )
    chain = summary.get("chain", {})
    if chain:
        print(
            f"  on chain: {chain['readings_on_chain']} readings for {chain['valid_readings']} "
            f"valid ones (missing {chain['missing']}, extra {chain['extra']}, doubled "
            f"{chain['doubled']}, wrong registers {chain['wrong_registers']}); mirror "
            f"differences {chain['mirror_differences']}; {chain['fills_on_chain']} fills"
        )
    a = summary.get("audit", {})
    if a:
        print(f"  audit: {a.get('findings')} finding(s), exit {a.get('exit')}")
    market = summary.get("market", {})
    if market:
        print(
            f"  market: {market['fills']} fills, {market['matched_Wh'] / 1000:.1f} kWh traded; "
            f"{market['reading_requests']} POST /readings; rounds and drain {market['run_s']} s"
        )
    print(f"  HTTP answers: {summary.get('http_statuses')}")
    print(f"  wall {summary.get('wall_s')} s")
    if problems:
        print(f"chaos run FAILED: {len(problems)} unexpected finding(s)")
        for p in problems:
            print(f"  - {p}")
    else:
        print("chaos run ok: every valid reading on chain once, every fault refused, audit clean")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=30)
    parser.add_argument("--slots", type=int, default=32, help="15-minute slots (max 96)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.05, help="rate of each fault")
    parser.add_argument("--max-late-slots", type=int, default=3)
    parser.add_argument("--anvil-down-s", type=float, default=20.0)
    parser.add_argument(
        "--event-delay-s",
        type=float,
        default=0.3,
        help="how far into its round an event fires (while the round's readings are sent)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    parser.add_argument("--keep", metavar="DIR", help="keep the run's data and logs in DIR")
    args = parser.parse_args(argv)
    if args.households < 1 or not 5 <= args.slots <= 96:
        parser.error("--households must be at least 1 and --slots between 5 and 96")
    if args.keep:
        work = Path(args.keep).resolve()
        if work.exists() and any(work.iterdir()):
            parser.error(f"--keep {work} is not empty")
        work.mkdir(parents=True, exist_ok=True)
    else:
        # Not under a private temporary root: the PostgreSQL server runs as the postgres user.
        work = Path(tempfile.mkdtemp(prefix="voisin-chaos-"))
    os.chmod(work, 0o755)
    summary: dict[str, Any] = {"work_dir": str(work)}
    started = time.monotonic()
    try:
        problems = asyncio.run(drive(args, work, summary))
    except Exception as exc:
        problems = [f"the run stopped: {type(exc).__name__}: {exc}"]
    summary["wall_s"] = round(time.monotonic() - started, 1)
    summary["ok"] = not problems
    summary["problems"] = problems
    print_summary(summary, problems)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if not args.keep and not problems:
        shutil.rmtree(work, ignore_errors=True)
    elif problems:
        print(f"data and logs kept in {work}", file=sys.stderr)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
