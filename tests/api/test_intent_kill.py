"""A real ``voisin serve`` killed with SIGKILL right after any step of an action: once
restarted, the action has happened exactly once, and a retry with its key answers it.

For each kind (registration, top-up, key rotation, meter rotation, take), the server is started
with the test fault hook armed (``VOISIN_TEST_FAULT=<kind>.<step>:kill``): it kills itself
with SIGKILL right after that step, while the client's request is open. It is started again
without the hook (its start reconciles the interrupted intent with the chain), the client
sends the same request with the same ``Idempotency-Key`` twice and gets the action's answer
both times. Then the next step, with a new key, on the same data. At the end, read from the
data directory, the chain and the database hold each keyed action exactly once and the audit
is clean. The embedded chain runs in its node process, as ``voisin serve`` runs it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, select

from api.intents import FAULT_ENV, FAULT_POINTS
from api.models import ApiHousehold
from api.process import ServeProcess
from api.settings import Settings
from ledger.chain.backends import HOUSEHOLD_GAS_WEI
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, OPERATOR_TOKEN, Api, past_slot
from tests.api.intent_cases import assert_converged, events, opened
from tests.conftest import _free_port


def _start(data_dir: Path, port: int, fault: str | None = None) -> subprocess.Popen[bytes]:
    """``voisin serve`` on the embedded chain in ``data_dir``, with the fault hook armed at
    ``fault`` (or off), once it answers ``/health``."""
    env = {
        "VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "VOISIN_AUTO_SETTLE": "false",
        "VOISIN_OUTBOX_INTERVAL_S": "0.2",
    }
    server = ServeProcess(data_dir, env, port=port, start_timeout_s=90)
    server.env.pop(FAULT_ENV, None)
    if fault is not None:
        server.env[FAULT_ENV] = fault
    proc = server.start().proc
    assert proc is not None
    return proc


@contextmanager
def _served(data_dir: Path, port: int) -> Iterator[httpx.Client]:
    proc = _start(data_dir, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield http
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _caught_up(http: httpx.Client) -> None:
    """Wait until the outbox has sent every reading and order."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        backlog = http.get("/health").json()["backlog"]
        if backlog["readings"] == 0 and backlog["orders"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the outbox did not catch up: {backlog}")


def _register(http: httpx.Client, prosumer: bool, topup_ueur: int = 0) -> dict[str, Any]:
    meter: LocalAccount = Account.create()
    r = http.post("/households", json={"meter": meter.address, "prosumer": prosumer}, headers=OP)
    assert r.status_code == 201, r.text
    member = r.json() | {
        "meter_key": meter.key,
        "auth": {"Authorization": f"Bearer {r.json()['token']}"},
    }
    if topup_ueur:
        t = http.post(
            "/topups", json={"household": member["id"], "amount_ueur": topup_ueur}, headers=OP
        )
        assert t.status_code == 201, t.text
    return member


@dataclass
class World:
    """What one kind's requests act on, each step's request, and the final check."""

    request: Callable[[int], tuple[str, dict[str, Any] | None, dict[str, str]]]
    status: int
    check: Callable[[Api, list[dict[str, Any]]], None]
    notes: dict[str, Any] = field(default_factory=dict)


def _registrations(http: httpx.Client, steps: int) -> World:
    meters = [Account.create().address for _ in range(steps)]

    def check(api: Api, answers: list[dict[str, Any]]) -> None:
        registered = [e.args for e in events(api, "HouseholdRegistered")]
        for meter, answer in zip(meters, answers, strict=True):
            assert [int(a["household"]) for a in registered if a["meter"] == meter] == [
                answer["id"]
            ]
            with Session(api.services.engine) as session:
                rows = session.exec(select(ApiHousehold).where(ApiHousehold.meter == meter))
                assert [(r.id, r.account) for r in rows] == [(answer["id"], answer["account"])]
            gas = int(api.services.chain.w3.eth.get_balance(answer["account"]))
            assert 0 < gas <= HOUSEHOLD_GAS_WEI  # funded once (then spent on its orders)
            token = {"Authorization": f"Bearer {answer['token']}"}
            assert api.client.get(f"/households/{answer['id']}/balance", headers=token).is_success

    return World(
        lambda i: ("/households", {"meter": meters[i], "prosumer": i % 2 == 0}, OP), 201, check
    )


def _top_ups(http: httpx.Client, steps: int) -> World:
    member = _register(http, prosumer=False)
    amounts = [1_000 + i for i in range(steps)]

    def check(api: Api, answers: list[dict[str, Any]]) -> None:
        minted = [
            (int(e.args["amountUeur"]), e.tx_hash)
            for e in events(api, "ToppedUp")
            if e.args["account"] == member["account"]
        ]
        assert minted == [(a["amount_ueur"], a["tx_hash"]) for a in answers]
        assert [a["amount_ueur"] for a in answers] == amounts
        assert api.services.client.balance_of(member["account"]) == sum(amounts)

    body = lambda i: {"household": member["id"], "amount_ueur": amounts[i]}  # noqa: E731
    return World(lambda i: ("/topups", body(i), OP), 201, check)


def _key_rotations(http: httpx.Client, steps: int) -> World:
    member = _register(http, prosumer=True, topup_ueur=5_000)
    path = f"/households/{member['id']}/rotate-key"

    def check(api: Api, answers: list[dict[str, Any]]) -> None:
        rotated = [
            (e.args["oldAccount"], e.args["newAccount"]) for e in events(api, "AccountRotated")
        ]
        accounts = [member["account"]] + [a["account"] for a in answers]
        assert rotated == list(pairwise(accounts))
        assert [a["previous_account"] for a in answers] == accounts[:-1]
        client = api.services.client
        assert client.household(member["id"]).account == accounts[-1]
        assert client.balance_of(accounts[-1]) == 5_000
        with Session(api.services.engine) as session:
            row = session.get(ApiHousehold, member["id"])
        assert row is not None and row.account == accounts[-1]
        for account in accounts[1:]:
            assert int(api.services.chain.w3.eth.get_balance(account)) <= HOUSEHOLD_GAS_WEI

    return World(lambda i: (path, None, OP), 200, check)


def _meter_rotations(http: httpx.Client, steps: int) -> World:
    member = _register(http, prosumer=True)
    meters = [Account.create().address for _ in range(steps)]
    path = f"/households/{member['id']}/meter"

    def check(api: Api, answers: list[dict[str, Any]]) -> None:
        rotated = [(e.args["oldMeter"], e.args["newMeter"]) for e in events(api, "MeterRotated")]
        chain = [member["meter"], *meters]
        assert rotated == list(pairwise(chain))
        assert [a["previous_meter"] for a in answers] == chain[:-1]
        assert api.services.client.household(member["id"]).meter == meters[-1]
        with Session(api.services.engine) as session:
            row = session.get(ApiHousehold, member["id"])
        assert row is not None and row.meter == meters[-1]

    return World(lambda i: (path, {"meter": meters[i]}, OP), 200, check)


def _takes(http: httpx.Client, steps: int) -> World:
    seller = _register(http, prosumer=True)
    buyer = _register(http, prosumer=False, topup_ueur=2_000_000)
    chain = http.get("/health").json()["chain"]
    domain = domain_separator(int(chain["chain_id"]), chain["contract"])
    slot = past_slot(5)
    signed = [
        sign_reading(seller["meter_key"], Reading(seller["meter"], slot, 0, 1_000), domain),
        sign_reading(buyer["meter_key"], Reading(buyer["meter"], slot, 1_000, 0), domain),
    ]
    r = http.post("/readings", json={"readings": [reading_to_json(s) for s in signed]})
    assert r.status_code == 202 and r.json()["accepted"] == 2, r.text
    _caught_up(http)
    listed = http.get(
        "/offers", params={"household": seller["id"], "status": "open"}, headers=buyer["auth"]
    ).json()["items"]
    (offer,) = listed
    path = f"/offers/{offer['id']}/take"

    def check(api: Api, answers: list[dict[str, Any]]) -> None:
        fills = [
            (int(e.args["energyWh"]), e.tx_hash)
            for e in events(api, "FillSettled")
            if int(e.args["buyer"]) == buyer["id"]
        ]
        assert fills == [(100, a["tx_hash"]) for a in answers]
        paid = sum(a["cost_ueur"] + a["fee_ueur"] for a in answers)
        assert api.services.client.balance_of(buyer["account"]) == 2_000_000 - paid
        assert api.services.client.slot_energy(buyer["id"], slot).bought_Wh == 100 * steps

    body = {"slot": slot, "max_Wh": 100}
    return World(lambda i: (path, body, buyer["auth"]), 200, check)


WORLDS: dict[str, Callable[[httpx.Client, int], World]] = {
    "register": _registrations,
    "topup": _top_ups,
    "rotate_key": _key_rotations,
    "rotate_meter": _meter_rotations,
    "take": _takes,
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(FAULT_POINTS))
def test_a_server_killed_after_any_step_of_an_action_converges_once_restarted(
    tmp_path: Path, kind: str
) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    points = FAULT_POINTS[kind]
    with _served(data_dir, port) as http:
        world = WORLDS[kind](http, len(points))
    answers: list[dict[str, Any]] = []
    for i, point in enumerate(points):
        path, body, headers = world.request(i)
        headers = {**headers, "Idempotency-Key": f"{kind}-{point}"}
        proc = _start(data_dir, port, fault=f"{kind}.{point}:kill")
        with pytest.raises(httpx.TransportError):
            httpx.post(f"http://127.0.0.1:{port}{path}", json=body, headers=headers, timeout=60)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        with _served(data_dir, port) as http:
            first = http.post(path, json=body, headers=headers)
            assert first.status_code == world.status, f"{point}: {first.text}"
            again = http.post(path, json=body, headers=headers)
            assert (again.status_code, again.json()) == (first.status_code, first.json())
            answers.append(first.json())
            _caught_up(http)
    settings = Settings(
        data_dir=data_dir, operator_token=OPERATOR_TOKEN, auto_settle=False, chain_process=False
    )
    with opened(settings) as api:
        world.check(api, answers)
        assert_converged(api)
