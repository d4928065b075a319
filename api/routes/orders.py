"""``/offers`` and ``/bids``: standing or one-off limit orders, and ``POST /offers/{id}/take``.

A new order is stored (``queued``) before the answer (202) and posted on chain by the outbox
(``open``, with its ``chain_id``). ``DELETE`` asks for the cancellation (``cancel_requested``,
at once) and the outbox carries it out (:func:`api.outbox.ask_cancel`): a queued order is closed
without reaching the chain, an open one is cancelled on chain, even one the outbox was posting
at that very moment (right after it lands). Only the owner writes; any caller with a token reads.
A take is immediate: it buys from the offer on chain, partially if need be, and fails with 409
when nothing is left to buy.

A post and a take are validated completely first; the take is then recorded, sent and confirmed
once by the intent runner (:mod:`api.intents`), and a post is stored with its intent in one
transaction. Both take an ``Idempotency-Key`` (:mod:`api.idempotency`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import func
from sqlmodel import Session, col, select

from api import privacy
from api.auth import Caller, HouseholdCaller
from api.deps import Svc, problems
from api.errors import ApiError, forbidden, not_found
from api.idempotency import Ask, IdempotencyKey
from api.intents import Answer, Plan
from api.models import ApiHousehold, ApiIntent, ApiOrder
from api.outbox import ask_cancel
from api.schemas import (
    MAX_SLOT,
    HouseholdQuery,
    Limit,
    Offset,
    OrderIn,
    OrderOut,
    OrderPath,
    Page,
    TakeIn,
    TakeOut,
)
from ledger.mirror.models import SlotOutcomeRecord
from ledger.types import OPEN_END

log = logging.getLogger(__name__)
router = APIRouter(tags=["orders"])


def _out(o: ApiOrder) -> OrderOut:
    return OrderOut(
        id=o.id or 0,
        side=o.side,  # type: ignore[arg-type]
        household=o.household,
        price_limit_ueur_per_kWh=o.price_limit_ueur_per_kWh,
        first_slot=o.first_slot,
        last_slot=None if o.last_slot == OPEN_END else o.last_slot,
        max_Wh_per_slot=o.max_Wh_per_slot or None,
        status=o.status,  # type: ignore[arg-type]
        cancel_requested=o.cancel_requested,
        chain_id=o.chain_id,
        reason=o.reason,
        source=o.source,
    )


def _post(
    side: Literal["offer", "bid"],
    body: OrderIn,
    caller: HouseholdCaller,
    services: Svc,
    idempotency_key: str | None = None,
) -> JSONResponse:
    ask = Ask.of(side, caller, idempotency_key, f"POST /{side}s", body)
    answer = services.intents.submit(ask, lambda: _plan_order(side, body, caller, services))
    return JSONResponse(answer.unwrap(), answer.status)


def _plan_order(
    side: Literal["offer", "bid"], body: OrderIn, caller: HouseholdCaller, services: Svc
) -> Plan:
    """Every check of a post, then the post itself, applied with its intent in one transaction
    (the outbox sends it to the chain later)."""
    tariffs = services.tariffs()
    floor = tariffs.feed_in_ueur_per_kWh
    ceiling = tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh
    if not floor <= body.price_limit_ueur_per_kWh <= ceiling:
        raise ApiError(
            422,
            "price_out_of_bounds",
            f"price_limit_ueur_per_kWh must be between the feed-in tariff {floor} and retail "
            f"minus the grid fee {ceiling} (ueur/kWh), got {body.price_limit_ueur_per_kWh}",
        )
    last = OPEN_END if body.last_slot is None else body.last_slot
    if last < body.first_slot:
        raise ApiError(
            422, "invalid_slot_range", f"last_slot {last} is before first_slot {body.first_slot}"
        )
    household_id = caller.household
    assert household_id is not None
    with Session(services.engine) as session:
        household = session.get(ApiHousehold, household_id)
    assert household is not None
    if side == "offer" and not household.prosumer:
        raise forbidden("only a prosumer (a household with PV) may post offers")

    def apply(session: Session, _: ApiIntent) -> Answer:
        privacy.hold_household(session, household_id)  # not erased since it was checked
        # The household now sets its own order on this side: its agent's default steps aside.
        for default in session.exec(
            select(ApiOrder).where(
                ApiOrder.household == household_id,
                ApiOrder.side == side,
                ApiOrder.source == "agent",
                col(ApiOrder.status).in_(["queued", "open"]),
            )
        ):
            if default.status == "queued":
                default.status = "cancelled"
            else:
                default.cancel_requested = True
            session.add(default)
        order = ApiOrder(
            side=side,
            household=household_id,
            price_limit_ueur_per_kWh=body.price_limit_ueur_per_kWh,
            max_Wh_per_slot=body.max_Wh_per_slot or 0,
            first_slot=body.first_slot,
            last_slot=last,
        )
        session.add(order)
        session.flush()
        return Answer(202, _out(order).model_dump(mode="json"))

    return Plan(household=household_id, payload=body.model_dump(mode="json"), apply=apply)


def _list(
    side: str,
    services: Svc,
    household: int | None,
    slot: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> Page[OrderOut]:
    query = select(ApiOrder).where(ApiOrder.side == side)
    if household is not None:
        query = query.where(ApiOrder.household == household)
    if slot is not None:
        query = query.where(ApiOrder.first_slot <= slot, ApiOrder.last_slot >= slot)
    if status is not None:
        query = query.where(ApiOrder.status == status)
    with Session(services.engine) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.order_by(col(ApiOrder.id)).offset(offset).limit(limit)).all()
    return Page[OrderOut](
        items=[_out(o) for o in rows], total=int(total), limit=limit, offset=offset
    )


def _delete(side: str, order_id: int, caller: HouseholdCaller, services: Svc) -> JSONResponse:
    with Session(services.engine) as session:
        order = session.get(ApiOrder, order_id)
    if order is None or order.side != side:
        raise not_found(f"unknown_{side}", f"{side} {order_id} does not exist")
    if order.household != caller.household:
        raise forbidden(f"{side} {order_id} belongs to another household")
    asked = ask_cancel(services.engine, order_id)
    with Session(services.engine) as session:
        order = session.get(ApiOrder, order_id)
    assert order is not None
    if not asked:
        state = "being cancelled" if order.status in ("queued", "open") else order.status
        raise ApiError(
            409,
            "order_closed",
            f"{side} {order_id} is already {state}: only a queued or open {side} can be cancelled",
        )
    return JSONResponse(_out(order).model_dump(), 202)


OptSlot = Annotated[int | None, Query(ge=1, le=MAX_SLOT)]
OptStatus = Annotated[Literal["queued", "open", "cancelled", "rejected"] | None, Query()]
READ = problems(401, 422)
WRITE = problems(401, 403, 404, 409, 422, 429, 503)


@router.post(
    "/offers",
    status_code=202,
    response_model=OrderOut,
    responses=WRITE,
    summary="Post a sell offer (a prosumer)",
)
def post_offer(
    body: OrderIn,
    caller: HouseholdCaller,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return _post("offer", body, caller, services, idempotency_key)


@router.post(
    "/bids",
    status_code=202,
    response_model=OrderOut,
    responses=WRITE,
    summary="Post a buy bid (price excludes the grid fee)",
)
def post_bid(
    body: OrderIn,
    caller: HouseholdCaller,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return _post("bid", body, caller, services, idempotency_key)


@router.get("/offers", response_model=Page[OrderOut], responses=READ, summary="List offers")
def list_offers(
    _: Caller,
    services: Svc,
    household: HouseholdQuery = None,
    slot: OptSlot = None,
    status: OptStatus = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[OrderOut]:
    return _list("offer", services, household, slot, status, limit, offset)


@router.get("/bids", response_model=Page[OrderOut], responses=READ, summary="List bids")
def list_bids(
    _: Caller,
    services: Svc,
    household: HouseholdQuery = None,
    slot: OptSlot = None,
    status: OptStatus = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[OrderOut]:
    return _list("bid", services, household, slot, status, limit, offset)


@router.delete(
    "/offers/{order_id}",
    status_code=202,
    response_model=OrderOut,
    responses=WRITE,
    summary="Cancel an offer (its owner)",
)
def delete_offer(order_id: OrderPath, caller: HouseholdCaller, services: Svc) -> JSONResponse:
    return _delete("offer", order_id, caller, services)


@router.delete(
    "/bids/{order_id}",
    status_code=202,
    response_model=OrderOut,
    responses=WRITE,
    summary="Cancel a bid (its owner)",
)
def delete_bid(order_id: OrderPath, caller: HouseholdCaller, services: Svc) -> JSONResponse:
    return _delete("bid", order_id, caller, services)


@router.post(
    "/offers/{order_id}/take",
    response_model=TakeOut,
    responses=WRITE,
    summary="Buy directly from an offer, partially if need be (a household)",
)
def take(
    order_id: OrderPath,
    body: TakeIn,
    caller: HouseholdCaller,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> TakeOut:
    operation = f"POST /offers/{order_id}/take"
    ask = Ask.of("take", caller, idempotency_key, operation, body)
    answer = services.intents.submit(ask, lambda: _plan_take(order_id, body, caller, services))
    return TakeOut.model_validate(answer.unwrap())


def _plan_take(order_id: int, body: TakeIn, caller: HouseholdCaller, services: Svc) -> Plan:
    """Every check a take can fail before it is sent: the offer, its owner, its state and
    its slots. What the chain alone knows (credits, deficit, funds) its dry run checks."""
    with Session(services.engine) as session:
        order = session.get(ApiOrder, order_id)
    if order is None or order.side != "offer":
        raise not_found("unknown_offer", f"offer {order_id} does not exist")
    if order.household == caller.household:
        raise ApiError(409, "self_trade", "a household cannot buy from its own offer")
    if order.status != "open" or order.chain_id is None or order.cancel_requested:
        raise ApiError(
            409,
            "offer_not_open",
            f"offer {order_id} is {order.status}: only open offers can be taken",
        )
    if not order.first_slot <= body.slot <= order.last_slot:
        last = "open-ended" if order.last_slot == OPEN_END else str(order.last_slot)
        raise ApiError(
            422,
            "slot_outside_order",
            f"slot {body.slot} is outside offer {order_id}'s slots {order.first_slot} to {last}",
        )
    with Session(services.engine) as session:
        outcome = session.get(SlotOutcomeRecord, body.slot)
    if outcome is not None:
        raise ApiError(
            409,
            "slot_settled",
            f"slot {body.slot} is {'settled' if outcome.status == 'settled' else 'being settled'}"
            ": a direct take buys for a slot that is not settled yet",
        )
    return Plan(
        household=caller.household,
        payload={
            "offer": order_id,
            "chain_id": order.chain_id,
            "slot": body.slot,
            "max_Wh": body.max_Wh,
        },
    )
