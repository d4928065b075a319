"""``POST /topups`` (operator): mint payment token to a household that paid in."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session

from api.auth import Operator
from api.deps import Svc, problems
from api.errors import not_found
from api.models import ApiHousehold
from api.schemas import TopUpIn, TopUpOut

router = APIRouter(tags=["households"])


@router.post(
    "/topups",
    status_code=201,
    response_model=TopUpOut,
    responses=problems(401, 403, 404, 422, 503),
    summary="Top up a household (operator)",
)
def top_up(body: TopUpIn, _: Operator, services: Svc) -> TopUpOut:
    with Session(services.engine) as session:
        household = session.get(ApiHousehold, body.household)
    if household is None:
        raise not_found("unknown_household", f"household {body.household} is not registered")
    account = household.account

    def mint() -> str:
        tx = services.client.top_up(services.chain.operator, account, body.amount_ueur)
        services.mirror()
        return tx.tx_hash

    tx_hash = services.on_chain(mint)
    return TopUpOut(household=body.household, amount_ueur=body.amount_ueur, tx_hash=tx_hash)
