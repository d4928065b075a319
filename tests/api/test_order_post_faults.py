"""An order the outbox was posting when its pass was interrupted is on chain exactly once.

The outbox posts a household's queued offer or bid on chain, then records it open with its
chain id. Nothing on chain refuses a second post of the same order, so the post is recorded
(sender, nonce, head block, call data) before it is sent, and a pass that finds such a record
looks for the transaction on chain before posting again. Here the test fault hook
(:data:`api.intents.OUTBOX_FAULT_POINTS`) raises right after the post is recorded
(``sending``) or right after it is mined (``sent``), before the database write; then the server
restarts, or the same server runs its next pass. Either way exactly one order is open, on chain
and in the database, at the household's price, and the audit is clean. A cancel interrupted
after it is mined is sent again and refused as already closed, which is taken as done.

In process on the embedded chain with SQLite and on anvil with PostgreSQL; the ``kill -9`` of a
real ``voisin serve`` is in ``test_order_post_kill.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from api.intents import FaultHook, InjectedFault
from api.models import ApiHousehold, ApiOrder
from api.settings import Settings
from tests.api.conftest import OPERATOR_TOKEN, Api, Member, past_slot
from tests.api.intent_cases import opened
from tests.api.order_cases import (
    PRICE,
    SIDES,
    assert_cancelled_once,
    assert_posted_once,
    caught_up,
    chain_orders,
    posts_in_flight,
)
from tests.conftest import ANVIL_KEY

POINTS = ("sending", "sent")
CASES = [(side, point) for side in SIDES for point in POINTS]


@pytest.fixture(
    params=[
        "embedded-sqlite",
        pytest.param("anvil-postgres", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """One backend's settings, opened twice by a test (before and after the restart)."""
    fields = {
        "data_dir": tmp_path / "data",
        "operator_token": OPERATOR_TOKEN,
        "auto_settle": False,
        "chain_process": False,
    }
    if request.param == "anvil-postgres":
        fields |= {
            "chain": request.getfixturevalue("anvil_url"),
            "chain_key": ANVIL_KEY,
            "database_url": request.getfixturevalue("postgres_url"),
        }
    return Settings(**fields)


def _household(api: Api, side: str) -> Member:
    """A household whose agent's defaults are on chain (a prosumer to post offers)."""
    member = api.register(prosumer=side == "offer")
    api.flush()
    return member


def _post(api: Api, member: Member, side: str) -> int:
    body = {"price_limit_ueur_per_kWh": PRICE, "first_slot": past_slot(1)}
    r = api.client.post(f"/{side}s", json=body, headers=member.auth)
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def _interrupted_pass(api: Api, point: str) -> None:
    """An outbox pass that the fault hook stops right after ``point``."""
    api.services.outbox.fault = FaultHook(point)
    with pytest.raises(InjectedFault):
        api.services.outbox.run_once()


def _order(api: Api, order_id: int) -> ApiOrder:
    with Session(api.services.engine) as session:
        order = session.get(ApiOrder, order_id)
    assert order is not None
    return order


def _interrupted_post(api: Api, side: str, point: str) -> tuple[Member, int]:
    """A household's own order whose post the fault hook interrupted after ``point``."""
    member = _household(api, side)
    order_id = _post(api, member, side)
    _interrupted_pass(api, f"post_{side}.{point}")
    # The database still has it queued, its post in flight; the chain has it if it was mined.
    assert (_order(api, order_id).status, posts_in_flight(api)) == ("queued", [order_id])
    prices = [o.price_limit_ueur_per_kWh for o in chain_orders(api, side, member.id)]
    assert prices.count(PRICE) == (1 if point == "sent" else 0)
    return member, order_id


def _found_or_posted(api: Api, point: str) -> None:
    """The next pass adopts the mined post (``sent``) or posts it (``sending``), once."""
    result = api.flush()
    expected = (1, 0) if point == "sent" else (0, 1)
    assert (result.orders_found, result.orders_posted) == expected


@pytest.mark.slow
@pytest.mark.parametrize(("side", "point"), CASES, ids=[f"{s}.{p}" for s, p in CASES])
def test_an_order_post_interrupted_after_any_step_is_on_chain_once_after_a_restart(
    settings: Settings, side: str, point: str
) -> None:
    with opened(settings) as api:
        member, order_id = _interrupted_post(api, side, point)
    with opened(settings) as api:
        _found_or_posted(api, point)
        caught_up(api)
        assert_posted_once(api, side, member.id, order_id)


@pytest.mark.slow
@pytest.mark.parametrize(("side", "point"), CASES, ids=[f"{s}.{p}" for s, p in CASES])
def test_an_order_post_interrupted_after_any_step_is_on_chain_once_after_the_next_pass(
    settings: Settings, side: str, point: str
) -> None:
    with opened(settings) as api:
        member, order_id = _interrupted_post(api, side, point)
        _found_or_posted(api, point)
        caught_up(api)
        assert_posted_once(api, side, member.id, order_id)


@pytest.mark.slow
def test_an_agents_default_posted_before_a_crash_and_replaced_meanwhile_is_cancelled_on_chain(
    settings: Settings,
) -> None:
    """The household's own offer closes its agent's queued default at once, in the database:
    a default the interrupted pass had already put on chain is found there, recorded open with
    its cancel owed, and cancelled on chain; only the household's own offer stays live."""
    with opened(settings) as api:
        member = api.register(prosumer=True)  # its agent's defaults are queued
        _interrupted_pass(api, "post_offer.sent")
        (default,) = posts_in_flight(api)
        order_id = _post(api, member, "offer")
        assert (_order(api, default).status, _order(api, default).chain_id) == ("cancelled", None)
    with opened(settings) as api:
        caught_up(api)
        closed = _order(api, default)
        assert (closed.status, closed.cancel_requested) == ("cancelled", True)
        assert closed.chain_id is not None
        assert not api.services.client.offer(closed.chain_id).open
        assert_posted_once(api, "offer", member.id, order_id)


@pytest.mark.slow
def test_a_post_whose_nonce_another_transaction_took_is_posted_once(settings: Settings) -> None:
    """Recorded, not sent; then the household's account sends something else with that
    nonce (here an approval): the record's transaction can never be mined, and the order is
    posted once."""
    with opened(settings) as api:
        member, order_id = _interrupted_post(api, "offer", "sending")
        with Session(api.services.engine) as session:
            row = session.get(ApiHousehold, member.id)
        assert row is not None
        account = api.services.vault.account(row.key_json)
        api.services.client.approve(account, api.services.chain.operator.address, 1)
    with opened(settings) as api:
        _found_or_posted(api, "sending")
        caught_up(api)
        assert_posted_once(api, "offer", member.id, order_id)


@pytest.mark.slow
@pytest.mark.parametrize("side", SIDES)
def test_a_cancel_interrupted_after_it_is_mined_is_recorded_once_after_a_restart(
    settings: Settings, side: str
) -> None:
    with opened(settings) as api:
        member = _household(api, side)
        order_id = _post(api, member, side)
        api.flush()
        r = api.client.delete(f"/{side}s/{order_id}", headers=member.auth)
        assert r.status_code == 202, r.text
        _interrupted_pass(api, f"cancel_{side}.sent")
        stored = _order(api, order_id)
        assert (stored.status, stored.cancel_requested) == ("open", True)
        on_chain = [o for o in chain_orders(api, side, member.id) if o.id == stored.chain_id]
        assert [o.open for o in on_chain] == [False]
    with opened(settings) as api:
        assert api.flush().orders_cancelled == 1
        assert_cancelled_once(api, side, member.id, order_id)
