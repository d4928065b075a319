"""What must hold once the outbox has posted (or cancelled) a household's order exactly once:
shared by the outbox's fault tests (an exception in process, and a ``kill -9`` of a real
``voisin serve``)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from api.models import ApiOrder, ApiOrderPost
from ledger.types import Order
from tests.api.conftest import Api
from tests.api.intent_cases import assert_converged, events

#: The price of the household's own order in these tests: no agent's default has it.
PRICE = 123_457
SIDES = ("offer", "bid")


def chain_orders(api: Api, side: str, household: int) -> list[Order]:
    """Every order of ``household`` on ``side`` on chain, open or not, by id."""
    client = api.services.client
    if side == "offer":
        every = [client.offer(i) for i in range(1, client.offer_count() + 1)]
    else:
        every = [client.bid(i) for i in range(1, client.bid_count() + 1)]
    return [o for o in every if o.household == household]


def stored_orders(api: Api, side: str, household: int) -> list[ApiOrder]:
    with Session(api.services.engine) as session:
        return list(
            session.exec(
                select(ApiOrder)
                .where(ApiOrder.household == household, ApiOrder.side == side)
                .order_by(col(ApiOrder.id))
            )
        )


def posts_in_flight(api: Api) -> list[int]:
    with Session(api.services.engine) as session:
        return [p.order_id for p in session.exec(select(ApiOrderPost))]


def caught_up(api: Api, passes: int = 5) -> None:
    """Outbox passes until nothing is left to send."""
    for _ in range(passes):
        api.flush()
        if api.services.outbox.backlog()["orders"] == 0:
            return
    raise AssertionError(f"the outbox did not catch up: {api.services.outbox.backlog()}")


def assert_posted_once(api: Api, side: str, household: int, order_id: int) -> None:
    """The household's order ``order_id`` is the one live order on ``side``, open in the
    database and on chain at :data:`PRICE`; it was posted on chain once (one ``OfferPosted``
    or ``BidPosted`` at that price, ever); every other order of that side is closed in both;
    no post is left in flight and the audit is clean."""
    stored = stored_orders(api, side, household)
    live = [o for o in stored if o.status in ("queued", "open")]
    assert [(o.id, o.status, o.cancel_requested) for o in live] == [(order_id, "open", False)], [
        (o.id, o.source, o.status, o.cancel_requested, o.chain_id) for o in stored
    ]
    (mine,) = live
    assert mine.price_limit_ueur_per_kWh == PRICE and mine.chain_id is not None
    on_chain = chain_orders(api, side, household)
    assert [(o.id, o.price_limit_ueur_per_kWh) for o in on_chain if o.open] == [
        (mine.chain_id, PRICE)
    ]
    assert [o.id for o in on_chain if o.price_limit_ueur_per_kWh == PRICE] == [mine.chain_id]
    posted = [
        e.args
        for e in events(api, f"{side.capitalize()}Posted")
        if int(e.args["household"]) == household and int(e.args["priceLimitUeurPerKWh"]) == PRICE
    ]
    assert [int(a[f"{side}Id"]) for a in posted] == [mine.chain_id]
    for order in stored:
        if order.id != order_id:
            assert order.status == "cancelled", order
            if order.chain_id is not None:
                assert not next(o for o in on_chain if o.id == order.chain_id).open
    assert posts_in_flight(api) == []
    assert_converged(api)


def assert_cancelled_once(api: Api, side: str, household: int, order_id: int) -> None:
    """The order is cancelled in the database and closed on chain, by one cancel event;
    nothing of the household is live on ``side``; the audit is clean."""
    stored = stored_orders(api, side, household)
    (mine,) = [o for o in stored if o.id == order_id]
    assert (mine.status, mine.chain_id is not None) == ("cancelled", True), mine
    assert [o.id for o in stored if o.status in ("queued", "open")] == []
    assert [o.id for o in chain_orders(api, side, household) if o.open] == []
    cancels = [
        int(e.args[f"{side}Id"])
        for e in events(api, f"{side.capitalize()}Cancelled")
        if int(e.args[f"{side}Id"]) == mine.chain_id
    ]
    assert cancels == [mine.chain_id]
    assert_converged(api)
