"""Order states are serialised per order: the last price a household set is the one live.

The API accepts an order (``queued``), the outbox posts it on chain (``open``) and cancels it
there when its owner asks (``cancelled``). Those steps interleave: a household may set a new
price, or cancel an order, while the outbox is between its chain write and its database write
for that very order. Whatever the interleaving, once the outbox has caught up exactly the
household's last order is live, on chain and in the database, and every older one (its
agent's default included) is closed in both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from sqlmodel import Session, col, select

from api.auth import Principal
from api.models import ApiOrder
from api.routes import orders
from api.schemas import OrderIn
from tests.api.conftest import Api, Member, past_slot

PRICES = st.integers(min_value=40_000, max_value=200_000)


class Household:
    """A prosumer setting its selling price as the dashboard does: post the new offer, then
    cancel its older ones. ``direct`` calls go through the routes' functions in this thread,
    as the dashboard's forms do (an outbox pass in this thread holds the chain's lock, which
    a request from another thread would wait for)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.member: Member = api.register(prosumer=True)
        self.who = Principal("household", self.member.id)
        #: The API's ids of the offers it posted, oldest first, and those it cancelled (202):
        #: once the outbox has caught up, the others are live, and only they.
        self.posted: list[int] = []
        self.cancelled: set[int] = set()

    def post(self, price: int, *, direct: bool = False) -> int:
        body = {"price_limit_ueur_per_kWh": price, "first_slot": past_slot(1)}
        if direct:
            answer = orders.post_offer(OrderIn(**body), self.who, self.api.services)
            assert answer.status_code == 202
            order_id = int(json.loads(answer.body)["id"])
        else:
            r = self.api.client.post("/offers", json=body, headers=self.member.auth)
            assert r.status_code == 202, r.text
            order_id = int(r.json()["id"])
        self.posted.append(order_id)
        return order_id

    def cancel_stale(self, *, direct: bool = False) -> None:
        """Cancel every live offer of its own but the newest (the dashboard's second step)."""
        for order in self.orders():
            if order.source != "household" or order.id == self.posted[-1]:
                continue
            if order.status not in ("queued", "open") or order.cancel_requested:
                continue
            if direct:
                orders.delete_offer(order.id or 0, self.who, self.api.services)
            else:
                r = self.api.client.delete(f"/offers/{order.id}", headers=self.member.auth)
                assert r.status_code == 202, r.text
            self.cancelled.add(order.id or 0)

    def set_price(self, price: int, *, direct: bool = False) -> None:
        self.post(price, direct=direct)
        self.cancel_stale(direct=direct)

    def orders(self) -> list[ApiOrder]:
        with Session(self.api.services.engine) as session:
            return list(
                session.exec(
                    select(ApiOrder)
                    .where(ApiOrder.household == self.member.id, ApiOrder.side == "offer")
                    .order_by(col(ApiOrder.id))
                )
            )

    def catch_up(self) -> None:
        """Outbox passes until nothing is left to send (the household does nothing more)."""
        for _ in range(5):
            self.api.flush()
            if self.api.services.outbox.backlog()["orders"] == 0:
                return
        raise AssertionError(f"the outbox did not catch up: {self.api.services.outbox.backlog()}")

    def check_live(self) -> list[ApiOrder]:
        """Exactly the offers posted and not cancelled are live (the agent's default only if
        the household posted none), open on chain at their price; every other one is closed
        in the database and on chain. Returns the live ones, oldest first."""
        mine = self.orders()
        expected = [i for i in self.posted if i not in self.cancelled]
        if not self.posted:
            expected = [next(o.id or 0 for o in mine if o.source == "agent")]
        live = [o for o in mine if o.status in ("queued", "open") and not o.cancel_requested]
        assert [o.id for o in live] == expected, [
            (o.id, o.source, o.status, o.cancel_requested, o.chain_id) for o in mine
        ]
        assert all(o.status == "open" and o.chain_id is not None for o in live)
        client = self.api.services.client
        on_chain = [client.offer(i) for i in range(1, client.offer_count() + 1)]
        open_here = [o for o in on_chain if o.household == self.member.id and o.open]
        assert [(o.id, o.price_limit_ueur_per_kWh) for o in open_here] == [
            (o.chain_id, o.price_limit_ueur_per_kWh) for o in live
        ]
        for order in mine:
            if order.id not in expected:
                assert order.status in ("cancelled", "rejected"), order
        return live

    def check_only_the_last_is_live(self) -> None:
        assert [o.id for o in self.check_live()] == self.posted[-1:]


def interrupted_pass(api: Api, method: str, action: Callable[[], None]) -> None:
    """An outbox pass in which ``action`` runs right after the first ``method`` call of the
    client (``post_offer`` or ``cancel_offer``) lands on chain, before the outbox writes its
    outcome to the database."""
    client = api.services.client
    real = getattr(client, method)
    fired: list[bool] = []

    def landed_then_act(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not fired:
            fired.append(True)
            action()
        return result

    setattr(client, method, landed_then_act)
    try:
        api.flush()
    finally:
        delattr(client, method)


def test_a_cancel_between_the_outboxs_chain_write_and_its_database_write_is_applied(
    api: Api,
) -> None:
    home = Household(api)
    api.flush()  # the agent's defaults are on chain
    offer = home.post(70_000)
    interrupted_pass(api, "post_offer", lambda: orders.delete_offer(offer, home.who, api.services))
    mine = {o.id: o for o in home.orders()}
    assert mine[offer].status == "cancelled" and mine[offer].chain_id is not None
    assert not api.services.client.offer(mine[offer].chain_id).open
    live = [o for o in mine.values() if o.status in ("queued", "open")]
    assert live == []


def test_setting_the_price_twice_while_the_first_is_being_sent_leaves_only_the_second(
    api: Api,
) -> None:
    home = Household(api)
    api.flush()
    home.set_price(70_000)
    interrupted_pass(api, "post_offer", lambda: home.set_price(90_000, direct=True))
    home.catch_up()
    home.check_only_the_last_is_live()


def test_a_new_price_while_the_agents_default_is_being_sent_closes_the_default(
    api: Api,
) -> None:
    """The household's first own offer cancels its agent's default: at once while it is
    queued, which the outbox may be posting at that very moment."""
    home = Household(api)
    interrupted_pass(api, "post_offer", lambda: home.set_price(80_000, direct=True))
    home.catch_up()
    home.check_only_the_last_is_live()


def test_deleting_a_queued_order_twice_is_a_conflict_and_it_never_reaches_the_chain(
    embedded_api: Api,
) -> None:
    api = embedded_api
    home = Household(api)
    api.flush()
    offer = home.post(60_000)
    first = api.client.delete(f"/offers/{offer}", headers=home.member.auth)
    assert first.status_code == 202 and first.json()["cancel_requested"] is True
    again = api.client.delete(f"/offers/{offer}", headers=home.member.auth)
    assert again.status_code == 409 and again.json()["code"] == "order_closed"
    count = api.services.client.offer_count()
    api.flush()
    assert api.services.client.offer_count() == count  # never posted
    (mine,) = [o for o in home.orders() if o.id == offer]
    assert (mine.status, mine.chain_id) == ("cancelled", None)


def _machine(api: Api) -> type[RuleBasedStateMachine]:
    class OrderInterleavings(RuleBasedStateMachine):
        """Posts, cancels and outbox passes in any order, with the household acting in the
        middle of the outbox's chain writes."""

        def __init__(self) -> None:
            super().__init__()
            self.home = Household(api)

        @rule(price=PRICES)
        def post(self, price: int) -> None:
            self.home.post(price)

        @rule()
        def cancel_stale(self) -> None:
            if self.home.posted:
                self.home.cancel_stale()

        @rule(price=PRICES)
        def set_price(self, price: int) -> None:
            self.home.set_price(price)

        @rule()
        def outbox_pass(self) -> None:
            api.flush()

        @rule(
            method=st.sampled_from(["post_offer", "cancel_offer"]),
            what=st.sampled_from(["set_price", "post", "cancel_stale"]),
            price=PRICES,
        )
        def outbox_pass_with_the_household_acting_mid_write(
            self, method: str, what: str, price: int
        ) -> None:
            def act() -> None:
                if what == "set_price":
                    self.home.set_price(price, direct=True)
                elif what == "post":
                    self.home.post(price, direct=True)
                elif self.home.posted:
                    self.home.cancel_stale(direct=True)

            interrupted_pass(api, method, act)

        def teardown(self) -> None:
            self.home.catch_up()
            self.home.check_live()

    return OrderInterleavings


@pytest.mark.slow
def test_any_interleaving_of_posts_cancels_and_outbox_passes_leaves_the_last_price_live(
    api: Api,
) -> None:
    postgres = api.services.engine.dialect.name != "sqlite"
    run_state_machine_as_test(
        _machine(api),
        settings=settings(
            max_examples=12 if postgres else 30,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_a_paused_ledger_still_takes_old_prices_off_and_keeps_the_rest_queued(
    embedded_api: Api,
) -> None:
    """A pause stops readings and new orders on chain, not cancellations: the outbox pass goes
    on past the refused readings, cancels what was asked, keeps the rest queued, and sends it
    once the ledger resumes."""
    api = embedded_api
    home = Household(api)
    api.flush()
    old = home.post(70_000)
    api.flush()
    services = api.services
    services.client.pause(services.chain.operator)
    reading = api.reading(home.member, past_slot(4), export_Wh=100)
    assert api.client.post("/readings", json={"readings": [reading]}).status_code == 202
    home.set_price(90_000)  # a new offer (queued while paused) and the old one cancelled
    paused = api.flush()
    assert (paused.committed, paused.orders_posted, paused.orders_cancelled) == (0, 0, 1)
    mine = {o.id: o for o in home.orders()}
    assert mine[old].status == "cancelled"
    assert not services.client.offer(mine[old].chain_id or 0).open
    assert mine[home.posted[-1]].status == "queued"
    assert services.outbox.backlog() == {"readings": 1, "orders": 1}
    services.client.unpause(services.chain.operator)
    resumed = api.flush()
    assert (resumed.committed, resumed.orders_posted) == (1, 1)
    home.check_only_the_last_is_live()
