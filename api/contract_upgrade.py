"""The API's side of a contract upgrade (`voisin upgrade-contract`, ledger.contract.upgrade).

The migration freezes the old deployment (its open orders cancelled there, then paused) and
carries households, registers and balances to a new one; the API's own tables hold what the
households asked for, and two facts about them follow:

- **Before**, nothing the API accepted may still be on its way to the old deployment: a queued
  reading would be refused by the paused contract, then by the new one (signed in the old
  one's domain), and lost. :func:`backlog` counts it; the command refuses to migrate while it
  is not empty, and says to let ``voisin serve`` send it first.
- **After**, every order the API had open was cancelled on the old deployment by the freeze.
  :func:`carry_orders` closes each (``cancelled``, with the reason) and queues it again for
  the slots the new deployment can still trade (after the old one's last metered slot), so
  the outbox posts it there with the household's key, as any order. It runs once per new
  deployment (a marker in ``kept_state``), in one database transaction: by the command right
  after the migration, and again by ``voisin serve`` at start, so a crash between the two
  changes nothing but the moment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, func, inspect
from sqlmodel import Session, col, select

from api.models import ApiIntent, ApiOrder, ApiOrderPost, IntakeReading, KeptState

log = logging.getLogger("voisin.api")

#: ``kept_state`` key marking the orders carried to a deployment: ``<prefix><address>``.
CARRIED_MARK = "orders_carried_to:"


@dataclass(frozen=True, slots=True)
class Backlog:
    """What the API accepted and has not yet written on chain."""

    readings: int
    orders: int
    actions: int

    @property
    def empty(self) -> bool:
        return not (self.readings or self.orders or self.actions)

    def describe(self) -> str:
        return (
            f"{self.readings} readings, {self.orders} orders or cancellations and "
            f"{self.actions} registrations, top-ups or other actions"
        )


def serves_households(engine: Engine) -> bool:
    """Whether the database is a served one (it has the API's tables)."""
    return bool(inspect(engine).has_table(ApiOrder.__tablename__))


def backlog(engine: Engine) -> Backlog:
    with Session(engine) as session:
        readings = session.exec(
            select(func.count()).where(col(IntakeReading.status) == "queued")
        ).one()
        orders = session.exec(
            select(func.count()).where(
                (col(ApiOrder.status) == "queued")
                | ((col(ApiOrder.status) == "open") & col(ApiOrder.cancel_requested))
            )
        ).one()
        posts = session.exec(select(func.count()).select_from(ApiOrderPost)).one()
        actions = session.exec(
            select(func.count()).where(col(ApiIntent.state).in_(["pending", "sending"]))
        ).one()
    return Backlog(int(readings), int(orders) + int(posts), int(actions))


@dataclass(frozen=True, slots=True)
class OrdersCarried:
    closed: int
    queued: int


def carry_orders(engine: Engine, new_contract: str, last_slot: int) -> OrdersCarried | None:
    """Close the orders the freeze cancelled and queue them again from ``last_slot + 1`` for
    ``new_contract``; None if that was done already for it."""
    mark = f"{CARRIED_MARK}{new_contract.lower()}"
    with Session(engine) as session:
        if session.get(KeptState, mark) is not None:
            return None
        reason = f"cancelled by the contract upgrade to {new_contract}"
        closed = queued = 0
        for order in session.exec(select(ApiOrder).where(col(ApiOrder.status) == "open")).all():
            order.status = "cancelled"
            order.reason = reason
            session.add(order)
            closed += 1
            if order.last_slot <= last_slot:
                continue
            session.add(
                ApiOrder(
                    side=order.side,
                    household=order.household,
                    price_limit_ueur_per_kWh=order.price_limit_ueur_per_kWh,
                    max_Wh_per_slot=order.max_Wh_per_slot,
                    first_slot=max(order.first_slot, last_slot + 1),
                    last_slot=order.last_slot,
                    source=order.source,
                )
            )
            queued += 1
        session.add(KeptState(key=mark, value=f"{closed} closed, {queued} queued again"))
        session.commit()
    if closed:
        log.info(
            "contract upgrade to %s: %d orders closed, %d queued again",
            new_contract,
            closed,
            queued,
        )
    return OrdersCarried(closed, queued)
