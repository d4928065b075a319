"""A real ``voisin serve`` killed with SIGKILL right after its outbox put an order on chain,
before the database write: once restarted, the order is on chain exactly once.

The server is started with the test fault hook armed (``VOISIN_TEST_FAULT=post_offer.sent:kill``
and the like): its outbox posts the household's new offer or bid, and the process kills itself
right after the post is mined. Started again without the hook, it finds the post on chain
(its sender and nonce were recorded before it was sent) instead of posting it again. The same
for a cancel, which the contract refuses a second time (taken as done). Then, read from the data
directory, exactly the household's order is open, on chain and in the database, at its price,
and the audit is clean. The embedded chain runs in its node process, as ``voisin serve`` runs it.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from tests.api.conftest import OPERATOR_TOKEN, past_slot
from tests.api.intent_cases import opened
from tests.api.order_cases import PRICE, SIDES, assert_cancelled_once, assert_posted_once
from tests.api.test_intent_kill import _caught_up, _register, _served, _start
from tests.conftest import _free_port

CASES = [*(f"post_{side}" for side in SIDES), *(f"cancel_{side}" for side in SIDES)]


def _killed_after(data_dir: Path, port: int, fault: str, request: httpx.Request) -> None:
    """Start the server armed to kill itself after ``fault``, send ``request`` (stored before
    the answer; its answer may be lost with the process), and wait for the SIGKILL."""
    proc = _start(data_dir, port, fault=f"{fault}:kill")
    try:
        with httpx.Client(timeout=60) as http:
            answer = http.send(request)
        assert answer.status_code == 202, answer.text
    except httpx.TransportError:
        pass  # killed before it answered: the request was stored all the same
    assert proc.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("fault", CASES)
def test_a_server_killed_right_after_its_outbox_wrote_an_order_on_chain_converges_once(
    tmp_path: Path, fault: str
) -> None:
    action, _, side = fault.partition("_")
    data_dir = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    body = {"price_limit_ueur_per_kWh": PRICE, "first_slot": past_slot(1)}
    with _served(data_dir, port) as http:
        member: dict[str, Any] = _register(http, prosumer=side == "offer")
        auth = {**member["auth"], "Idempotency-Key": f"{side}-at-{PRICE}"}
        if action == "cancel":
            posted = http.post(f"/{side}s", json=body, headers=auth)
            assert posted.status_code == 202, posted.text
            order_id = int(posted.json()["id"])
        _caught_up(http)  # the agent's defaults (and the order to cancel) are on chain
    if action == "post":
        request = httpx.Request("POST", f"{url}/{side}s", json=body, headers=auth)
    else:
        request = httpx.Request("DELETE", f"{url}/{side}s/{order_id}", headers=member["auth"])
    _killed_after(data_dir, port, f"{fault}.sent", request)
    with _served(data_dir, port) as http:
        if action == "post":
            # The same request again answers the order stored before the kill: one order.
            again = http.post(f"/{side}s", json=body, headers=auth)
            assert again.status_code == 202, again.text
            order_id = int(again.json()["id"])
        _caught_up(http)
        listed = http.get(f"/{side}s", params={"household": member["id"]}, headers=member["auth"])
        statuses = {o["id"]: o["status"] for o in listed.json()["items"]}
        assert statuses[order_id] == ("open" if action == "post" else "cancelled")
    settings = Settings(
        data_dir=data_dir, operator_token=OPERATOR_TOKEN, auto_settle=False, chain_process=False
    )
    with opened(settings) as api:
        if action == "post":
            assert_posted_once(api, side, member["id"], order_id)
        else:
            assert_cancelled_once(api, side, member["id"], order_id)
