"""``GET /trades``: settled fills (batch fills and direct takes). A household sees its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from api.auth import Caller
from api.deps import Svc, problems
from api.errors import forbidden
from api.schemas import MAX_PAGE, HouseholdQuery, Offset, Page, SlotQuery, Trade
from ledger.mirror.models import FillRecord

router = APIRouter(tags=["trades"])


@router.get(
    "/trades",
    response_model=Page[Trade],
    responses=problems(401, 403, 422),
    summary="Settled fills, by slot and household",
)
def trades(
    caller: Caller,
    services: Svc,
    household: HouseholdQuery = None,
    slot: SlotQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> Page[Trade]:
    """The operator sees every trade; a household sees only trades it took part in (asking for
    another household's is refused)."""
    if not caller.is_operator:
        if household is not None and household != caller.household:
            raise forbidden("a household sees only its own trades")
        household = caller.household
    query = select(FillRecord)
    if household is not None:
        query = query.where(or_(FillRecord.seller == household, FillRecord.buyer == household))
    if slot is not None:
        query = query.where(FillRecord.slot == slot)
    with Session(services.engine) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(FillRecord.block_number), col(FillRecord.log_index))
            .offset(offset)
            .limit(limit)
        ).all()
    return Page[Trade](
        items=[
            Trade(
                slot=f.slot,
                seller=f.seller,
                buyer=f.buyer,
                offer_chain_id=f.offer_id,
                bid_chain_id=f.bid_id,
                energy_Wh=f.energy_Wh,
                price_ueur_per_kWh=f.price_ueur_per_kWh,
                cost_ueur=f.cost_ueur,
                fee_ueur=f.fee_ueur,
                tx_hash=f.tx_hash,
            )
            for f in rows
        ],
        total=int(total),
        limit=limit,
        offset=offset,
    )
