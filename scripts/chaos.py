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
5. waits for the outbox backlog (``GET /health``) to drain and settles every slot again
   (idempotent: each was settled during the rounds);
6. then four more events, one after the other, on the slots after the run's last:

   ``poisoned_batches``
       ``--poison-threads`` threads post their households' next readings at the same moment,
       for ``--poison-rounds`` slots; each batch also carries a copy of the next thread's
       readings (the same reading racing in two requests) and poisoned items: a reading
       signed by a key that is not the meter's (``bad_signature``), a replay of a reading
       accepted during the run (``duplicate``, stored once), a slot a year ahead
       (``future_slot``), a register below the meter's last accepted one
       (``register_decreased``); one batch per round also holds a register beyond the
       bounds the API takes (2^63), which refuses that whole request (422 ``invalid_input``
       naming the field), and the thread sends the batch again without it;
   ``future_reading``
       an outsider account (anvil's second dev account, no role) sends ``commitReadings``
       straight to the contract with a reading the meter's real key signed for a slot a
       year ahead of the chain's clock, then for slot 2^32 - 1: each refused with
       ``FutureReading`` at the estimate and again when mined anyway (status 0, its replay
       names the error); the meter's state is unchanged and its next two genuine readings
       are accepted and committed;
   ``intent_kills``
       ``voisin serve`` restarted with ``VOISIN_TEST_FAULT=register.sent:kill``, then with
       ``rotate_meter.sent:kill``, kills itself right after the chain write of a registration
       (of a new meter) and of a meter rotation (of a household with a history), before the
       database knows; restarted without the hook, the request is sent again with the same
       ``Idempotency-Key`` (twice: the same answer); one household and one rotation exist on
       chain and in the database, the new token works, the new meter's reading is accepted
       and the old meter's refused;
   ``form_replay``
       the operator's dashboard top-up form posted, then the same body (the same one-time
       form token) again as a reload would; another posted twice at once (a double click);
       another posted, the server SIGKILLed and restarted, and posted again: each token
       moves the money once (the API's balance, the chain's and its ToppedUp events);

7. settles the new slots, drains again, stops the server and runs ``voisin audit`` over the
   same chain and database.

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
- every poisoned item got its refusal, every valid reading of the poisoned batches was
  answered ``accepted`` exactly once (any copy ``duplicate``), and each of the four events
  after the run found what it checks (its ``problems`` in the summary are empty);
- every valid reading is on chain exactly once (``ReadingCommitted`` events) with its
  registers, nothing else is, and the database mirror and the intake table hold the same;
- the audit reports no finding: faulty readings are refused at the intake, so none of them
  reaches the evidence store or the chain, and the audit sees none of them;
- the API never answered a 5xx other than 503 (a 500 is a bug), and anvil came back with every
  block it had.

Usage: ``scripts/chaos [--households 30] [--slots 32] [--seed 1] [--json FILE] [--keep DIR]``
(``--help`` lists every option).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, text
from sqlmodel import Session, select
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from api.idempotency import HEADER as IDEMPOTENCY_KEY
from api.intents import FAULT_ENV
from api.models import ApiHousehold, ApiIntent, IntakeReading
from api.process import ServeProcess
from api.web.session import TOKEN_COOKIE
from ledger.chain.backends import HOUSEHOLD_GAS_WEI, open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import open_ledger
from ledger.errors import FutureReading, LedgerError
from ledger.mirror.models import HouseholdRecord, ReadingRecord
from ledger.readings.eip712 import Reading, SignedReading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json
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
#: Anvil's second dev account: an outsider to Voisin (ether for gas, no role, no household)
#: that sends readings straight to the contract.
OUTSIDER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
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
#: How far ahead of the clock the future-slot readings go (slots): a year.
FAR_AHEAD_SLOTS = 96 * 365
#: The largest slot a reading can name (uint32).
UINT32_MAX = 2**32 - 1
#: A register one past the largest the API takes (BIGINT in the databases): beyond the bounds.
BEYOND_BOUNDS_WH = 2**63
#: The answer each poisoned item of a batch must get: (verdict status, code). A register
#: beyond the bounds fails the request's schema, so that whole request is refused.
POISON_VERDICTS: dict[str, tuple[str, str | None]] = {
    "forged": ("rejected", "bad_signature"),
    "replay": ("duplicate", None),
    "future": ("rejected", "future_slot"),
    "decreased": ("rejected", "register_decreased"),
    "beyond_bounds": ("request_refused", "invalid_input"),
}
#: The test fault hook's kills (api.intents.FAULT_POINTS): right after the chain write of a
#: registration and of a meter rotation, before the database step.
INTENT_KILLS = ("register.sent:kill", "rotate_meter.sent:kill")
#: The dashboard top-ups of the form-replay event, as typed in the form (euros) and in
#: micro-euro: sent again after it was done, sent twice at once, sent again after a crash.
FORM_TOP_UPS = (("replayed", "1.25", 1_250_000), ("double_click", "0.75", 750_000),
                ("after_crash", "0.5", 500_000))  # fmt: skip


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
        self._lock = threading.Lock()  # threads count their answers too
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
            event_hooks={"response": [self.count]},
        )

    def _count(self, response: httpx.Response) -> None:
        with self._lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500 and response.status_code != 503:
                self.server_errors.append(
                    f"{response.request.method} {response.request.url.path} answered "
                    f"{response.status_code}: {response.text[:300]}"
                )

    async def count(self, response: httpx.Response) -> None:
        """An asynchronous client's response hook: count the answer (read a 5xx's body)."""
        if response.status_code >= 500:
            await response.aread()
        self._count(response)

    def count_sync(self, response: httpx.Response) -> None:
        """The same hook for a thread's synchronous client."""
        if response.status_code >= 500:
            response.read()
        self._count(response)

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
    server.env.pop(FAULT_ENV, None)  # armed only where an event asks for it, never inherited
    summary["services"] = {"postgres_port": pg.port, "anvil": anvil.url, "api": server.base_url}
    api: Api | None = None
    try:
        server.start()
        api = Api(server.base_url)
        found, street = await run_market(args, api, server, anvil, pg, summary)
        problems += found
        after = After(args, api, server, env, work, anvil, pg.url, street)
        for name, event in AFTER_RUN:
            problems += await after.run(name, event, summary)
        problems += await finish(after, summary)
        server.stop()
        problems += audit(data_dir, env, work, summary)
        problems += on_chain_check(anvil.url, data_dir, pg.url, street.valid, summary)
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
) -> tuple[list[str], Street]:
    """Register, deliver, settle under chaos, drain. Returns the unexpected findings and the
    street as the run left it (its valid readings among it)."""
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
    run_s = time.monotonic() - started
    outcome_table(envs, expected, outcomes, summary, problems)
    summary["market"] = {
        "fills": fills,
        "matched_Wh": matched_Wh,
        "backlog_at_end": backlog,
        "run_s": round(run_s, 1),
        "reading_requests": requests,
    }
    summary["run"]["contract"] = contract
    street = street_after(scenario, domain, household_ids, signed, envs, expected, args.seed)
    return problems, street


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


# ───────────────────────────── After the rounds: four more events ─────────────────────────────


@dataclass
class Street:
    """The neighbourhood as the events after the rounds need it.

    Per household (index ``h``): its id, meter and meter key (a rotation changes them), its
    true cumulative registers, the last reading the ledger accepted ``(slot, import_Wh,
    export_Wh)`` (the registration's baselines before any) and one accepted reading a replay can
    repeat. ``next_slot`` is the first slot no reading has named yet (the events take theirs
    from there on, after the run's last); ``valid`` holds every valid reading so far,
    ``(household id, slot) -> (import_Wh, export_Wh)``, which the end compares with the chain,
    the mirror and the intake.
    """

    scenario: Scenario
    domain: bytes
    ids: list[int]
    keys: list[bytes]
    meters: list[str]
    registers: list[tuple[int, int]]
    accepted: list[tuple[int, int, int]]
    replayable: list[SignedReading | None]
    first_new_slot: int
    next_slot: int
    valid: dict[tuple[int, int], tuple[int, int]]
    rng: random.Random

    def take_slot(self) -> int:
        slot = self.next_slot
        self.next_slot += 1
        return slot

    def reading(self, h: int, slot: int) -> SignedReading:
        """Household ``h``'s next genuine reading, for ``slot``: its registers grow."""
        import_Wh, export_Wh = self.registers[h]
        import_Wh += self.rng.randint(20, 400)
        if self.scenario.households[h].prosumer:
            export_Wh += self.rng.randint(0, 600)
        self.registers[h] = (import_Wh, export_Wh)
        reading = Reading(self.meters[h], slot, import_Wh, export_Wh)
        return sign_reading(self.keys[h], reading, self.domain)

    def accept(self, h: int, signed: SignedReading) -> None:
        """Count ``signed`` (household ``h``'s) as accepted: the chain must hold it once."""
        rd = signed.reading
        self.accepted[h] = (rd.slot, rd.import_Wh, rd.export_Wh)
        self.valid[(self.ids[h], rd.slot)] = (rd.import_Wh, rd.export_Wh)


def street_after(
    scenario: Scenario,
    domain: bytes,
    ids: list[int],
    signed: list[SignedReading],
    envs: list[Envelope],
    expected: list[tuple[str, str | None]],
    seed: int,
) -> Street:
    """The street once the rounds are over: what each meter got accepted, from the expected
    outcomes (the run has checked that each envelope got its expected answer)."""
    n_h = len(ids)
    accepted = [(0, i.import_baseline_Wh, i.export_baseline_Wh) for i in scenario.identities]
    replayable: list[SignedReading | None] = [None] * n_h
    valid: dict[tuple[int, int], tuple[int, int]] = {}
    for e, (status, _) in zip(envs, expected, strict=True):
        if status != "accepted":
            continue
        rd = e.signed.reading
        valid[(ids[e.household], rd.slot)] = (rd.import_Wh, rd.export_Wh)
        if rd.slot > accepted[e.household][0]:
            accepted[e.household] = (rd.slot, rd.import_Wh, rd.export_Wh)
        if replayable[e.household] is None:
            replayable[e.household] = e.signed
    final = signed[-n_h:]  # the last slot's readings, one per household (sign_readings' order)
    first_new = final[0].reading.slot + 1
    return Street(
        scenario=scenario,
        domain=domain,
        ids=list(ids),
        keys=[i.meter_key for i in scenario.identities],
        meters=[i.meter for i in scenario.identities],
        registers=[(r.reading.import_Wh, r.reading.export_Wh) for r in final],
        accepted=accepted,
        replayable=replayable,
        first_new_slot=first_new,
        next_slot=first_new,
        valid=valid,
        rng=random.Random(f"voisin-chaos/{seed}/street"),
    )


@dataclass
class After:
    """What the events after the rounds act on, and how each runs (:meth:`run`)."""

    args: argparse.Namespace
    api: Api
    server: ServeProcess
    env: dict[str, str]
    work: Path
    anvil: Anvil
    database_url: str
    street: Street
    _engine: Any = None

    async def run(
        self,
        name: str,
        event: Callable[[After, dict[str, Any], list[str]], Any],
        summary: dict[str, Any],
    ) -> list[str]:
        """Run one event; its report (with its ``problems`` and ``ok``) goes to ``summary``."""
        say(f"after the rounds: {name}")
        report: dict[str, Any] = {}
        problems: list[str] = []
        started = time.monotonic()
        try:
            await event(self, report, problems)
        except Exception as exc:
            problems.append(f"the event stopped: {type(exc).__name__}: {exc}")
        if self.server.proc is None or self.server.proc.poll() is not None:
            await asyncio.to_thread(self.server.start)  # the next event needs it
        report["took_s"] = round(time.monotonic() - started, 1)
        report["problems"] = problems
        report["ok"] = not problems
        summary[name] = report
        return [f"{name}: {p}" for p in problems]

    @contextlib.contextmanager
    def ledger(self) -> Any:
        """The contract's client on anvil (as the operator) and the deployment's block."""
        with open_chain(self.anvil.url, self.server.data_dir, ANVIL_KEY) as chain:
            client, deployment = open_ledger(chain)
            yield client, deployment.block_number

    def session(self) -> Session:
        """A session on the server's database (read only, for the checks)."""
        if self._engine is None:
            self._engine = create_engine(self.database_url)
        return Session(self._engine)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


async def post_readings(api: Api, readings: list[SignedReading]) -> tuple[int, dict[str, Any]]:
    """``POST /readings`` of genuine readings, sent again across an outage (idempotent)."""
    deadline = time.monotonic() + api.patience_s
    body = {"readings": [reading_to_json(r) for r in readings]}
    while True:
        try:
            response = await api.http.post("/readings", json=body)
            if response.status_code not in (429, 503) or time.monotonic() > deadline:
                return response.status_code, response.json()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


def verdicts(status: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-reading verdicts of a ``POST /readings`` answer (202, or 409/422 with them in
    ``details``); empty if the request itself was refused."""
    if status == 202:
        return list(body.get("results", []))
    details = body.get("details")
    return list(details.get("results", [])) if isinstance(details, dict) else []


# ─── Poisoned items in concurrent batches ───


@dataclass(frozen=True)
class Item:
    """One reading of a poisoned batch: ``valid`` (its thread's household's genuine reading),
    ``copy`` (another thread's genuine reading, sent by both at once) or a poison kind of
    :data:`POISON_VERDICTS`; whose it is (household index) and its wire form."""

    kind: str
    household: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Answered:
    """What one item got: a verdict's status and code, or ``request_refused`` with the error's
    code when its whole request was refused; ``retried`` if its request was sent again."""

    item: Item
    status: str
    code: str | None
    detail: str
    retried: bool = False


def thread_groups(n_households: int, threads: int) -> list[list[int]]:
    """The households (indices) each thread posts: thread i those with ``h % n == i``, with no
    more threads than households."""
    n = max(1, min(threads, n_households))
    return [list(range(i, n_households, n)) for i in range(n)]


def poisoned_batch(
    street: Street,
    own: list[int],
    racing: list[int],
    fresh: dict[int, SignedReading],
    target: int,
    now_slot: int,
    forger_key: bytes,
    beyond_bounds: bool,
    rng: random.Random,
) -> list[Item]:
    """One thread's batch of one round, shuffled: the round's genuine readings (``fresh``) of
    its households ``own`` and copies of ``racing``'s, and one item of each poison aimed at
    household ``target`` as the ledger knew it before the round (``street.accepted``).

    Each poison is refused whatever the other threads' batches did first: the forgery's
    signature fails, the replay repeats a stored reading, the future slot is a year past
    ``now_slot``, and the decreased registers lie below the meter's last accepted ones for the
    slot after the round's (so they are lower than the round's reading too).
    """
    items = [Item("valid", h, reading_to_json(fresh[h])) for h in own]
    items += [Item("copy", h, reading_to_json(fresh[h])) for h in racing]
    rd = fresh[target].reading
    meter, key, domain = street.meters[target], street.keys[target], street.domain
    forged = Reading(meter, rd.slot, rd.import_Wh, rd.export_Wh + 1_000)
    items.append(Item("forged", target, reading_to_json(sign_reading(forger_key, forged, domain))))
    old = street.replayable[target]
    if old is not None:
        items.append(Item("replay", target, reading_to_json(old)))
    ahead = Reading(meter, now_slot + FAR_AHEAD_SLOTS, rd.import_Wh, rd.export_Wh)
    items.append(Item("future", target, reading_to_json(sign_reading(key, ahead, domain))))
    _, import_Wh, export_Wh = street.accepted[target]
    if import_Wh > 0 or export_Wh > 0:
        lower = (import_Wh - 1, export_Wh) if import_Wh > 0 else (import_Wh, export_Wh - 1)
        decreased = Reading(meter, rd.slot + 1, *lower)
        signed = sign_reading(key, decreased, domain)
        items.append(Item("decreased", target, reading_to_json(signed)))
    if beyond_bounds:
        body = {**reading_to_json(fresh[target]), "import_Wh": BEYOND_BOUNDS_WH}
        items.append(Item("beyond_bounds", target, body))
    rng.shuffle(items)
    return items


def post_batch_sync(http: httpx.Client, items: list[Item]) -> tuple[int, dict[str, Any], bool]:
    """``POST /readings`` from a thread, sent again across a transport error, 503 or 429."""
    body = {"readings": [it.body for it in items]}
    for attempt in range(60):
        try:
            response = http.post("/readings", json=body)
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        if response.status_code in (429, 503):
            time.sleep(0.5)
            continue
        return response.status_code, response.json(), attempt > 0
    raise RuntimeError("POST /readings failed 60 times in a row")


def send_batch(
    base_url: str,
    items: list[Item],
    barrier: threading.Barrier,
    count: Callable[[httpx.Response], None],
) -> list[Answered]:
    """One thread's round: wait for the others at ``barrier``, then post ``items``. A batch
    holding a register beyond the bounds is refused whole (422 naming that item's field); it
    is sent again without it, as a gateway that reads the error would."""
    out: list[Answered] = []
    with httpx.Client(base_url=base_url, timeout=60, event_hooks={"response": [count]}) as http:
        barrier.wait(timeout=120)
        bad = [i for i, it in enumerate(items) if it.kind == "beyond_bounds"]
        if bad:
            status, body, retried = post_batch_sync(http, items)
            named = {f"readings.{i}.import_Wh" for i in bad}
            details = body.get("details")
            fields = {d.get("field") for d in details} if isinstance(details, list) else set()
            refused = status == 422 and fields == named
            for i in bad:
                out.append(
                    Answered(
                        items[i],
                        "request_refused" if refused else f"http_{status}",
                        body.get("code"),
                        str(body.get("message", body))[:300],
                        retried,
                    )
                )
            items = [it for it in items if it.kind != "beyond_bounds"]
        status, body, retried = post_batch_sync(http, items)
        found = verdicts(status, body)
        if len(found) != len(items):
            detail = f"{status}: {str(body)[:300]}"
            return out + [Answered(it, f"http_{status}", body.get("code"), detail) for it in items]
        for v in found:
            item = items[int(v["index"])]
            out.append(Answered(item, v["status"], v.get("code"), v.get("message", ""), retried))
    return out


def tally_poisoned(answers: list[Answered]) -> tuple[dict[str, Any], list[str]]:
    """Per kind, what the items got; every poison must get its :data:`POISON_VERDICTS`
    answer, and every genuine reading exactly one ``accepted`` (its copies ``duplicate``).

    A reading answered only ``duplicate``, by a request that was sent again after a lost
    answer, counts as accepted once: the first attempt stored it.
    """
    problems: list[str] = []
    kinds: dict[str, Counter[str]] = {}
    by_reading: dict[tuple[str, int], list[Answered]] = {}
    for a in answers:
        kind = a.item.kind
        kinds.setdefault(kind, Counter())[a.code or a.status] += 1
        if kind in ("valid", "copy"):
            by_reading.setdefault((a.item.body["meter"], a.item.body["slot"]), []).append(a)
        elif (a.status, a.code) != POISON_VERDICTS[kind]:
            want = " ".join(str(w) for w in POISON_VERDICTS[kind] if w)
            problems.append(
                f"{kind} item (household index {a.item.household}, slot {a.item.body['slot']}) "
                f"answered {a.status} {a.code or ''}, expected {want}: {a.detail[:200]}"
            )
    once = raced = lost = 0
    for (meter, slot), got in sorted(by_reading.items()):
        accepted = sum(a.status == "accepted" for a in got)
        duplicates = sum(a.status == "duplicate" for a in got)
        raced += len(got) > 1
        if accepted == 0 and any(a.retried and a.status == "duplicate" for a in got):
            accepted, duplicates, lost = 1, duplicates - 1, lost + 1
        if accepted == 1 and accepted + duplicates == len(got):
            once += 1
        else:
            problems.append(
                f"reading of {meter} for slot {slot}: answered "
                f"{[(a.status, a.code) for a in got]}, expected accepted once and the rest "
                "duplicate"
            )
    table = {
        kind: {"sent": sum(c.values()), "answers": dict(sorted(c.items()))}
        for kind, c in sorted(kinds.items())
    }
    return {
        "kinds": table,
        "readings": len(by_reading),
        "accepted_once": once,
        "raced": raced,
        "answer_lost": lost,
    }, problems


async def poisoned_batches(after: After, report: dict[str, Any], problems: list[str]) -> None:
    """Several threads post their households' next readings at the same moment, with poisoned
    items among them (see :func:`poisoned_batch`); ``--poison-rounds`` slots in a row."""
    street, args = after.street, after.args
    groups = thread_groups(len(street.ids), args.poison_threads)
    n = len(groups)
    forger_key = street.rng.randbytes(32)
    answers: list[Answered] = []
    fresh_keys: set[tuple[str, int]] = set()
    slots: list[int] = []
    requests = [0]

    def rounds() -> None:
        with ThreadPoolExecutor(n, thread_name_prefix="poisoned") as pool:
            for r in range(args.poison_rounds):
                slot = street.take_slot()
                slots.append(slot)
                now_slot = int(time.time()) // 900
                fresh = {h: street.reading(h, slot) for h in range(len(street.ids))}
                fresh_keys.update((s.reading.meter, slot) for s in fresh.values())
                batches = [
                    poisoned_batch(
                        street,
                        own,
                        groups[(i + 1) % n] if n > 1 else [],
                        fresh,
                        own[r % len(own)],
                        now_slot,
                        forger_key,
                        i == r % n,
                        street.rng,
                    )
                    for i, own in enumerate(groups)
                ]
                requests[0] += sum(
                    1 + any(it.kind == "beyond_bounds" for it in batch) for batch in batches
                )
                barrier = threading.Barrier(n)
                base_url, count = after.server.base_url, after.api.count_sync
                futures = [pool.submit(send_batch, base_url, b, barrier, count) for b in batches]
                for future in futures:
                    answers.extend(future.result())
                for h, signed in fresh.items():
                    street.accept(h, signed)

    await asyncio.to_thread(rounds)
    table, found = tally_poisoned(answers)
    problems += found
    seen = {(a.item.body["meter"], a.item.body["slot"]) for a in answers if a.item.kind == "valid"}
    if seen != fresh_keys:
        problems.append(f"{len(fresh_keys - seen)} genuine reading(s) never got an answer")
    report.update(
        threads=n,
        rounds=args.poison_rounds,
        slots=slots,
        requests=requests[0],
        **table,
    )


# ─── A future-slot reading sent straight to the contract ───


def refusal_of(exc: BaseException) -> dict[str, Any]:
    """A typed contract error as the summary shows it: its name and its values."""
    return {"error": type(exc).__name__, "values": dict(getattr(exc, "values", {}))}


def outsider_commit(
    client: VoisinClient, sender: LocalAccount, signed: SignedReading
) -> dict[str, Any]:
    """``commitReadings([signed])`` sent by ``sender`` straight to the contract, twice: through
    the client (the node's gas estimate runs it first), then as a transaction with its own gas
    limit, which the node mines whatever it does; its replay at the block before names the
    error. Returns what each did."""
    out: dict[str, Any] = {}
    try:
        result = client.commit_readings(sender, [signed])
    except LedgerError as exc:
        out["estimate"] = refusal_of(exc)
    else:
        out["estimate"] = {"error": None, "values": {}, "tx_hash": result.tx_hash}
    w3 = client.w3
    data = client.calldata("commitReadings", [signed.as_contract_tuple()])
    tx: Any = {
        "from": sender.address,
        "to": client.address,
        "data": data,
        "value": 0,
        "gas": 500_000,
        "gasPrice": int(w3.eth.gas_price),
        "nonce": int(w3.eth.get_transaction_count(sender.address, "pending")),
        "chainId": client.chain_id,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    block = int(receipt["blockNumber"])
    mined: dict[str, Any] = {"status": int(receipt["status"]), "block": block}
    mined["logs"] = len(receipt["logs"])
    call: Any = {"from": sender.address, "to": client.address, "data": data}
    try:
        w3.eth.call(call, block - 1)
    except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
        mined.update(refusal_of(client.decode_error(exc)))
    else:
        mined.update(error=None, values={})
    out["mined"] = mined
    return out


async def future_reading(after: After, report: dict[str, Any], problems: list[str]) -> None:
    """A reading the meter's real key signed for a slot far ahead of the chain's clock, then
    for slot 2^32 - 1, sent to the contract by an outsider: refused with FutureReading, the
    meter unchanged, and its next genuine readings accepted and committed."""
    street = after.street
    h = 0
    meter = street.meters[h]
    outsider: LocalAccount = Account.from_key(OUTSIDER_KEY)
    import_Wh, export_Wh = street.registers[h]
    attempts: list[dict[str, Any]] = []
    # Readings the steps before accepted reach the chain first: "the meter unchanged" must
    # compare the attack's before and after, not the outbox catching up in between.
    await drain(after.api)
    with after.ledger() as (client, _):
        max_slot = client.max_reading_slot()
        before = client.meter_state(meter)
        for slot in (max_slot + FAR_AHEAD_SLOTS, UINT32_MAX):
            reading = Reading(meter, slot, import_Wh + 1, export_Wh)
            signed = sign_reading(street.keys[h], reading, street.domain)
            attempt: dict[str, Any] = {"slot": slot, "ahead_slots": slot - max_slot}
            attempt.update(outsider_commit(client, outsider, signed))
            attempts.append(attempt)
            for stage in ("estimate", "mined"):
                got = attempt[stage]
                values = got.get("values", {})
                if (
                    got.get("error") != FutureReading.__name__
                    or values.get("slot") != slot
                    or values.get("meter") != meter
                ):
                    problems.append(
                        f"slot {slot} sent straight to the contract ({stage}): expected "
                        f"FutureReading naming the meter and the slot, got {got}"
                    )
            if attempt["mined"]["status"] != 0 or attempt["mined"]["logs"]:
                problems.append(f"slot {slot}: the mined transaction did not revert")
        unchanged = client.meter_state(meter)
    if unchanged != before:
        problems.append(f"the meter's state changed: {before} -> {unchanged}")
    report.update(
        household=street.ids[h],
        meter=meter,
        outsider=outsider.address,
        chain_max_slot=max_slot,
        meter_last_slot=before.last_slot,
        attempts=attempts,
        meter_unchanged=unchanged == before,
    )

    # The meter's next genuine readings: accepted, then committed by the outbox.
    nexts = [street.reading(h, street.take_slot()) for _ in range(2)]
    status, body = await post_readings(after.api, nexts)
    got = [(v["status"], v.get("code")) for v in verdicts(status, body)]
    if got != [("accepted", None)] * len(nexts):
        problems.append(f"the meter's next readings answered {status} {got}: {str(body)[:300]}")
    for signed in nexts:
        street.accept(h, signed)
    await drain(after.api)
    with after.ledger() as (client, _):
        state = client.meter_state(meter)
    last = nexts[-1].reading
    committed = (state.last_slot, state.import_Wh, state.export_Wh) == (
        last.slot,
        last.import_Wh,
        last.export_Wh,
    )
    if not committed:
        problems.append(f"the meter's next readings are not on chain: its state is {state}")
    report.update(next_slots=[s.reading.slot for s in nexts], next_answers=got)
    report["next_committed"] = committed


# ─── Kills between the chain and the database steps of an intent ───


async def keyed(api: Api, path: str, body: dict[str, Any], key: str) -> httpx.Response:
    """The operator's ``POST path`` with an ``Idempotency-Key``, sent again (the same key)
    across a connection error or a 503 until it is answered."""
    deadline = time.monotonic() + api.patience_s
    while True:
        try:
            response = await api.http.post(path, json=body, headers={IDEMPOTENCY_KEY: key})
            if response.status_code not in (429, 503) or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


async def killed_then_retried(
    after: After,
    fault: str,
    path: str,
    body: dict[str, Any],
    key: str,
    seen: Callable[[], dict[str, Any]],
    problems: list[str],
) -> tuple[httpx.Response, dict[str, Any]]:
    """Restart the server with the fault hook ``fault`` armed and send the request: the server
    kills itself midway. Look at what the chain and the database hold (``seen``), start it
    again without the hook, and send the same request with the same key twice: the second
    answer must be the first. Returns the first retry's answer and a report."""
    server = after.server
    report: dict[str, Any] = {"fault": fault, "path": path, "idempotency_key": key}
    await asyncio.to_thread(server.stop)
    hooked = ServeProcess(
        server.data_dir,
        {**after.env, FAULT_ENV: fault},
        port=server.port,
        log_path=after.work / "serve.log",
    )
    await asyncio.to_thread(hooked.start)
    try:
        # A new connection: one kept from the stopped server would fail without reaching it.
        headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}", IDEMPOTENCY_KEY: key}
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as fresh:
            try:
                answer = await fresh.post(path, json=body, headers=headers)
            except httpx.TransportError as exc:
                report["first_attempt"] = type(exc).__name__
            else:
                report["first_attempt"] = answer.status_code
                problems.append(
                    f"{fault}: answered {answer.status_code} instead of dying: {answer.text[:200]}"
                )
        proc = hooked.proc
        assert proc is not None
        try:
            report["exit"] = await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            report["exit"] = None
        if report["exit"] != -signal.SIGKILL:
            problems.append(f"{fault}: the server did not kill itself (exit {report['exit']})")
        report["before_restart"] = seen()
    finally:
        hooked.kill()
    down = time.monotonic()
    await asyncio.to_thread(server.start)
    report["restart_s"] = round(time.monotonic() - down, 2)
    first = await keyed(after.api, path, body, key)
    again = await keyed(after.api, path, body, key)
    report["retries"] = [first.status_code, again.status_code]
    if (again.status_code, again.json()) != (first.status_code, first.json()):
        problems.append(
            f"{fault}: the same key answered {first.status_code} {first.text[:200]}, then "
            f"{again.status_code} {again.text[:200]}"
        )
    return first, report


def intents_of(session: Session, key: str) -> list[str]:
    """The states of the operator's intents under ``key``."""
    rows = session.exec(
        select(ApiIntent).where(ApiIntent.scope == "operator", ApiIntent.idempotency_key == key)
    )
    return [row.state for row in rows]


def registration_seen(after: After, meter: str, key: str) -> dict[str, Any]:
    """Where a registration of ``meter`` stands: the households the chain registered with it,
    the API's and the mirror's rows with it, and the intent's state."""
    with after.ledger() as (client, first_block):
        events = client.events(first_block, int(client.w3.eth.block_number))
    on_chain = [
        int(e.args["household"])
        for e in events
        if e.name == "HouseholdRegistered" and str(e.args["meter"]).lower() == meter.lower()
    ]
    with after.session() as session:
        rows = [r for r in session.exec(select(ApiHousehold)) if r.meter.lower() == meter.lower()]
        mirrored = [
            r.id for r in session.exec(select(HouseholdRecord)) if r.meter.lower() == meter.lower()
        ]
        intents = intents_of(session, key)
    return {
        "on_chain": on_chain,
        "in_database": [r.id for r in rows],
        "accounts_in_database": [r.account for r in rows],
        "mirrored": mirrored,
        "intents": intents,
    }


def rotation_seen(after: After, household: int, key: str) -> dict[str, Any]:
    """Where a meter rotation of ``household`` stands: the chain's rotations and current meter,
    the API's and the mirror's meter, and the intent's state."""
    with after.ledger() as (client, first_block):
        events = client.events(first_block, int(client.w3.eth.block_number))
        meter = client.household(household).meter
    rotations = [
        [str(e.args["oldMeter"]), str(e.args["newMeter"])]
        for e in events
        if e.name == "MeterRotated" and int(e.args["household"]) == household
    ]
    with after.session() as session:
        row = session.get(ApiHousehold, household)
        mirrored = session.get(HouseholdRecord, household)
        intents = intents_of(session, key)
    return {
        "rotations_on_chain": rotations,
        "meter_on_chain": meter,
        "meter_in_database": row.meter if row is not None else None,
        "meter_mirrored": mirrored.meter if mirrored is not None else None,
        "intents": intents,
    }


async def intent_kills(after: After, report: dict[str, Any], problems: list[str]) -> None:
    """A registration and a meter rotation, each interrupted by a SIGKILL right after its
    chain write (before the database step), then sent again with the same key."""
    street, seed = after.street, after.args.seed
    await drain(after.api)  # a rotation waits for the meter's readings to reach the chain

    # A new household: killed after HouseholdRegistered is mined.
    newcomer = Account.from_key(street.rng.randbytes(32)).address
    key = f"chaos-{seed}-register-{newcomer}"
    body = {"meter": newcomer, "prosumer": True, "name": "Chaos newcomer"}
    answer, reg = await killed_then_retried(
        after,
        INTENT_KILLS[0],
        "/households",
        body,
        key,
        lambda: registration_seen(after, newcomer, key),
        problems,
    )
    report["register"] = reg
    before = reg["before_restart"]
    if len(before["on_chain"]) != 1 or before["in_database"]:
        problems.append(f"register: the kill did not land between chain and database: {before}")
    if answer.status_code != 201:
        problems.append(f"register: the retry answered {answer.status_code}: {answer.text[:300]}")
    else:
        created = answer.json()
        hid, account = int(created["id"]), str(created["account"])
        seen = registration_seen(after, newcomer, key)
        reg["after_restart"] = seen
        want = {
            "on_chain": [hid],
            "in_database": [hid],
            "accounts_in_database": [account],
            "mirrored": [hid],
            "intents": ["done"],
        }
        if seen != want:
            problems.append(f"register: expected one household {want}, found {seen}")
        token = {"Authorization": f"Bearer {created['token']}"}
        balance = await after.api.http.get(f"/households/{hid}/balance", headers=token)
        reg["token_works"] = balance.status_code == 200
        if balance.status_code != 200:
            problems.append(f"register: the new token answered {balance.status_code}")
        with after.ledger() as (client, _):
            gas = int(client.w3.eth.get_balance(account))
            on_chain_account = client.household(hid).account
        reg.update(household=hid, account=account, gas_wei=gas)
        if on_chain_account != account or not 0 < gas <= HOUSEHOLD_GAS_WEI:
            problems.append(
                f"register: household {hid}'s account on chain is {on_chain_account} holding "
                f"{gas} wei; expected {account}, funded once (at most {HOUSEHOLD_GAS_WEI})"
            )

    # A household with a history gets a new meter: killed after MeterRotated is mined.
    h = len(street.ids) - 1
    hid, old_meter, old_key = street.ids[h], street.meters[h], street.keys[h]
    new_key = street.rng.randbytes(32)
    new_meter = Account.from_key(new_key).address
    prosumer = street.scenario.households[h].prosumer
    baselines = (5_000, 2_000 if prosumer else 0)
    key = f"chaos-{seed}-rotate-{new_meter}"
    body = {"meter": new_meter, "import_baseline_Wh": baselines[0]}
    body["export_baseline_Wh"] = baselines[1]
    answer, rot = await killed_then_retried(
        after,
        INTENT_KILLS[1],
        f"/households/{hid}/meter",
        body,
        key,
        lambda: rotation_seen(after, hid, key),
        problems,
    )
    report["rotate_meter"] = rot
    rot.update(household=hid, old_meter=old_meter, new_meter=new_meter)
    before = rot["before_restart"]
    if before["meter_on_chain"] != new_meter or before["meter_in_database"] != old_meter:
        problems.append(f"rotate_meter: the kill did not land between chain and database: {before}")
    if answer.status_code != 200:
        problems.append(f"rotate_meter: the retry answered {answer.status_code}: {answer.text}")
        return
    rotated = answer.json()
    if (rotated["meter"], rotated["previous_meter"]) != (new_meter, old_meter):
        problems.append(f"rotate_meter: answered {rotated}")
    seen = rotation_seen(after, hid, key)
    rot["after_restart"] = seen
    want = {
        "rotations_on_chain": [[old_meter, new_meter]],
        "meter_on_chain": new_meter,
        "meter_in_database": new_meter,
        "meter_mirrored": new_meter,
        "intents": ["done"],
    }
    if seen != want:
        problems.append(f"rotate_meter: expected one rotation {want}, found {seen}")

    # The new meter reads on from its baselines; the old one is retired.
    last_slot, _, _ = street.accepted[h]
    old_registers = street.registers[h]
    street.keys[h], street.meters[h], street.registers[h] = new_key, new_meter, baselines
    street.accepted[h] = (last_slot, *baselines)
    street.replayable[h] = None
    slot = street.take_slot()
    fresh = street.reading(h, slot)
    stale = Reading(old_meter, slot, old_registers[0] + 10, old_registers[1])
    status, answered = await post_readings(
        after.api, [fresh, sign_reading(old_key, stale, street.domain)]
    )
    got = [(v["status"], v.get("code")) for v in verdicts(status, answered)]
    rot["readings_after"] = {"new_meter": got[:1], "old_meter": got[1:]}
    if got != [("accepted", None), ("rejected", "unknown_meter")]:
        problems.append(
            f"rotate_meter: the new meter's reading and the old one's answered {got}, "
            "expected accepted and unknown_meter"
        )
    street.accept(h, fresh)


# ─── Replayed dashboard form posts ───


class FormFields(HTMLParser):
    """The hidden fields of each form of a page, by the form's action."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and a.get("type") == "hidden" and self.forms:
            self.forms[-1][1][a.get("name", "")] = a.get("value", "")


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields (the form's tokens) of the first form posting to ``action``."""
    parser = FormFields()
    parser.feed(html)
    for where, fields in parser.forms:
        if where == action:
            return fields
    raise RuntimeError(f"no form posting to {action} on the page")


async def browser_request(
    browser: httpx.AsyncClient, method: str, path: str, data: dict[str, str] | None = None
) -> httpx.Response:
    """A browser's request, sent again if the connection breaks (a server restarting)."""
    for _ in range(120):
        try:
            return await browser.request(method, path, data=data)
        except httpx.TransportError:
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{method} {path}: the server did not answer for a minute")


async def form_replay(after: After, report: dict[str, Any], problems: list[str]) -> None:
    """The operator's top-up form sent again after it was done, sent twice at once, and sent
    again after a SIGKILL of the server: each one-time form token moves the money once."""
    street, server = after.street, after.server
    h = 1 % len(street.ids)
    hid = street.ids[h]
    page, action = "/ui/operator", "/ui/operator/topup"

    async def api_balance() -> int:
        answer = await after.api.call("GET", f"/households/{hid}/balance")
        return int(answer["balance_ueur"])

    with after.ledger() as (client, _):
        account = client.household(hid).account
        chain_before = client.balance_of(account)
        from_block = int(client.w3.eth.block_number) + 1
    api_before = await api_balance()
    report.update(household=hid, account=account, balance_before_ueur=api_before, posts={})
    added = 0
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=60, event_hooks={"response": [after.api.count]}
    ) as browser:
        signed_in = await browser_request(browser, "POST", "/ui/signin", {"token": OPERATOR_TOKEN})
        if TOKEN_COOKIE not in browser.cookies:
            problems.append(f"signing in answered {signed_in.status_code} without the cookie")
            browser.cookies.set(TOKEN_COOKIE, OPERATOR_TOKEN)
        for name, typed, amount_ueur in FORM_TOP_UPS:
            started = time.monotonic()
            shown = await browser_request(browser, "GET", page)
            page_s = time.monotonic() - started
            form = {**hidden_fields(shown.text, action), "household": str(hid), "amount": typed}
            if name == "double_click":
                answers = list(
                    await asyncio.gather(
                        browser_request(browser, "POST", action, form),
                        browser_request(browser, "POST", action, form),
                    )
                )
            else:
                answers = [await browser_request(browser, "POST", action, form)]
                if name == "after_crash":
                    await asyncio.to_thread(server.kill)
                    await asyncio.to_thread(server.start)
                answers.append(await browser_request(browser, "POST", action, form))
            statuses = [(a.status_code, a.headers.get("location")) for a in answers]
            notice = ""
            if name != "double_click":
                # The page after the second post says what the first did.
                text = (await browser_request(browser, "GET", page)).text
                notice = text.split('id="notice">', 1)[-1].split("</p>", 1)[0].strip()
            added += amount_ueur
            now = await api_balance()
            report["posts"][name] = {
                "amount_ueur": amount_ueur,
                "answers": statuses,
                "balance_change_ueur": now - api_before - (added - amount_ueur),
                "notice_after_second_post": notice[:200],
                "page_s": round(page_s, 2),
                "took_s": round(time.monotonic() - started, 2),
            }
            if any(s != (303, page) for s in statuses):
                problems.append(f"{name}: the posts answered {statuses}, expected 303 to {page}")
            if now != api_before + added:
                problems.append(
                    f"{name}: the balance is {now} µ€, expected {api_before + added} (each "
                    "form token adds its amount once)"
                )
            if notice and "already" not in notice:
                problems.append(f"{name}: the page after the second post says {notice!r}")
    with after.ledger() as (client, _):
        chain_after = client.balance_of(account)
        events = client.events(from_block, int(client.w3.eth.block_number))
    minted = [
        int(e.args["amountUeur"])
        for e in events
        if e.name == "ToppedUp" and str(e.args["account"]).lower() == account.lower()
    ]
    report.update(
        balance_after_ueur=await api_balance(),
        chain_balance_change_ueur=chain_after - chain_before,
        topped_up_events=minted,
    )
    if minted != [amount for _, _, amount in FORM_TOP_UPS] or chain_after - chain_before != added:
        problems.append(
            f"on chain: ToppedUp {minted} and a balance change of {chain_after - chain_before} "
            f"µ€, expected {[a for _, _, a in FORM_TOP_UPS]} and {added}"
        )


#: The events after the rounds, in the order they run.
AFTER_RUN = (
    ("poisoned_batches", poisoned_batches),
    ("future_reading", future_reading),
    ("intent_kills", intent_kills),
    ("form_replay", form_replay),
)


async def finish(after: After, summary: dict[str, Any]) -> list[str]:
    """Settle the slots the events added, drain, and wait until the mirror reaches the head."""
    problems: list[str] = []
    street = after.street
    fills = matched_Wh = 0
    slots = list(range(street.first_new_slot, street.next_slot))
    try:
        for slot in slots:
            settled = await after.api.call("POST", f"/market/slots/{slot}/settle")
            if settled["status"] != "settled":
                problems.append(f"slot {slot} after the run is {settled['status']!r}, not settled")
            fills += int(settled["fills"])
            matched_Wh += int(settled["matched_Wh"])
        backlog = await drain(after.api)
        await wait_for_mirror(after.api, after.anvil)
    finally:
        after.close()
    summary["after_run"] = {
        "slots": [slots[0], slots[-1]] if slots else [],
        "fills": fills,
        "matched_Wh": matched_Wh,
        "backlog_at_end": backlog,
    }
    return problems


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
        intake = [
            ((r.household, r.slot), (r.import_Wh, r.export_Wh), r.status)
            for r in session.exec(select(IntakeReading))
        ]
    engine.dispose()
    mirror_diff = sorted(set(mirror) ^ set(on_chain)) + sorted(
        k for k, n in mirror.items() if n > 1
    )
    # The intake stores each accepted reading once (what the API answered 202 for), and the
    # outbox marks it committed once the chain holds it.
    stored = Counter(k for k, _, _ in intake)
    intake_diff = sorted(set(stored) ^ set(want)) + sorted(k for k, n in stored.items() if n > 1)
    intake_diff += sorted(k for k, regs, _ in intake if k in want and regs != want[k])
    uncommitted = sorted(k for k, _, status in intake if status != "committed")
    for label, keys in (
        ("valid reading missing from the chain", missing),
        ("reading on chain that should have been refused", extra),
        ("reading on chain more than once", twice),
        ("reading on chain with other registers than signed", wrong),
        ("mirror differs from the chain", mirror_diff),
        ("intake reading differs from the valid ones", intake_diff),
        ("intake reading not marked committed", uncommitted),
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
        "readings_in_intake": len(intake),
        "intake_differences": len(intake_diff),
        "intake_uncommitted": len(uncommitted),
        "fills_on_chain": sum(1 for e in events if e.name == "FillSettled"),
    }
    return problems


def print_after_run(summary: dict[str, Any]) -> None:
    """One or two lines per event after the rounds."""
    p = summary.get("poisoned_batches")
    if p and "kinds" in p:
        refused = ", ".join(
            f"{kind} {row['sent']} {'/'.join(row['answers'])}"
            for kind, row in p["kinds"].items()
            if kind not in ("valid", "copy")
        )
        print(
            f"  after  poisoned_batches  {p['threads']} threads x {p['rounds']} rounds, "
            f"{p['requests']} requests: {p['accepted_once']} of {p['readings']} genuine "
            f"readings accepted once ({p['raced']} raced in two requests); {refused}; "
            f"{p['took_s']} s"
        )
    f = summary.get("future_reading")
    if f and "attempts" in f:
        tried = "; ".join(
            f"slot {a['slot']} (+{a['ahead_slots']}): estimate {a['estimate']['error']}, "
            f"mined status {a['mined']['status']} {a['mined']['error']}"
            for a in f["attempts"]
        )
        print(
            f"  after  future_reading    outsider {f['outsider'][:10]}.. at chain max slot "
            f"{f['chain_max_slot']}: {tried}; meter unchanged {f['meter_unchanged']}, next "
            f"readings {f.get('next_answers')} committed {f.get('next_committed')}; "
            f"{f['took_s']} s"
        )
    k = summary.get("intent_kills")
    if k:
        for kind in ("register", "rotate_meter"):
            r = k.get(kind)
            if r:
                print(
                    f"  after  intent_kills      {r['fault']}: exit {r.get('exit')}, "
                    f"restart {r.get('restart_s')} s, retries {r.get('retries')}; before "
                    f"restart {r.get('before_restart')}"
                )
        print(f"  after  intent_kills      {k['took_s']} s")
    form = summary.get("form_replay")
    if form and form.get("posts"):
        posts = ", ".join(
            f"{name} {len(row['answers'])} posts +{row['balance_change_ueur']} µ€"
            for name, row in form["posts"].items()
        )
        print(
            f"  after  form_replay       household {form['household']}: {posts}; ToppedUp "
            f"{form.get('topped_up_events')}; {form['took_s']} s"
        )
    for name, _ in AFTER_RUN:
        if name in summary and not summary[name]["ok"]:
            print(f"  after  {name}: {len(summary[name]['problems'])} problem(s)")


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
            f"differences {chain['mirror_differences']}; intake {chain['readings_in_intake']} "
            f"(differences {chain['intake_differences']}, uncommitted "
            f"{chain['intake_uncommitted']}); {chain['fills_on_chain']} fills"
        )
    print_after_run(summary)
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


EVENTS_HELP = """\
chaos events, during the rounds (at fixed fractions of them):
  kill_api          SIGKILL voisin serve while readings are sent, restart it
  stop_anvil        stop anvil for --anvil-down-s while a slot is settled, restart it
                    with its state (every block and the contract must come back)
  restart_postgres  stop PostgreSQL for 2 s while readings are sent
  kill_api          SIGKILL voisin serve again, while a slot is settled
meter faults, at --fault-rate each: dropped, duplicate, late, replay, tampered, wrong_key,
  clock_skew (each refused with its code, or stored once)
after the rounds, one after the other, on the slots after the run's:
  poisoned_batches  --poison-threads threads post their households' next readings at once,
                    --poison-rounds times, each batch with a copy of another thread's and
                    poisoned items: a forged signature (bad_signature), a replay of an
                    accepted reading (duplicate), a slot a year ahead (future_slot), a
                    register below the last (register_decreased), and in one batch a round
                    a register beyond the bounds (the request refused 422 invalid_input
                    naming the field, then sent without it); each genuine reading is
                    accepted exactly once
  future_reading    an outsider account sends commitReadings straight to the contract
                    with a reading the meter's key signed a year ahead of the chain's clock,
                    then for slot 2^32 - 1: refused FutureReading (estimated and mined);
                    the meter's next readings are still accepted and committed
  intent_kills      voisin serve with VOISIN_TEST_FAULT=register.sent:kill, then
                    rotate_meter.sent:kill, dies right after the chain write; restarted
                    without it, the same Idempotency-Key twice: one household and one
                    rotation on chain and in the database, the token and the new meter work
  form_replay       the operator's top-up form posted again (a reload), twice at once (a
                    double click), and again after a SIGKILL of the server: the money moves
                    once per one-time form token
at the end: every valid reading on chain exactly once (and in the mirror and the intake),
  nothing else; voisin audit finds nothing; no 500. Exit 0 if all holds, else 1.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EVENTS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser.add_argument(
        "--poison-threads",
        type=int,
        default=4,
        help="threads posting poisoned batches at once (poisoned_batches)",
    )
    parser.add_argument(
        "--poison-rounds", type=int, default=3, help="slots of poisoned batches, one per round"
    )
    parser.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    parser.add_argument("--keep", metavar="DIR", help="keep the run's data and logs in DIR")
    args = parser.parse_args(argv)
    if args.households < 1 or not 5 <= args.slots <= 96:
        parser.error("--households must be at least 1 and --slots between 5 and 96")
    if args.poison_threads < 1 or args.poison_rounds < 1:
        parser.error("--poison-threads and --poison-rounds must be at least 1")
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
