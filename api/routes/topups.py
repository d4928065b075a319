"""``POST /topups`` (operator): mint payment token to a household that paid in.

Validated first (the household registered), then recorded, minted and confirmed once by the
intent runner (:mod:`api.intents`); an ``Idempotency-Key`` makes a retry answer the first
answer instead of minting again (:mod:`api.idempotency`).
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session

from api.auth import Operator
from api.deps import Svc, problems
from api.errors import not_found
from api.idempotency import Ask, IdempotencyKey
from api.intents import Plan, require_active
from api.models import ApiHousehold
from api.schemas import TopUpIn, TopUpOut

router = APIRouter(tags=["households"])


@router.post(
    "/topups",
    status_code=201,
    response_model=TopUpOut,
    responses=problems(401, 403, 404, 409, 422, 503),
    summary="Top up a household (operator)",
)
def top_up(
    body: TopUpIn,
    caller: Operator,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> TopUpOut:
    """Mints ``amount_ueur`` to the household's account (its account on chain when the
    transaction is sent, so a key rotation in between cannot strand the money). A deactivated
    household is refused (422 ``household_inactive``): it could never spend the money."""
    ask = Ask.of("topup", caller, idempotency_key, "POST /topups", body)

    def plan() -> Plan:
        with Session(services.engine) as session:
            household = session.get(ApiHousehold, body.household)
        if household is None:
            raise not_found("unknown_household", f"household {body.household} is not registered")
        on_chain = services.on_chain(lambda: services.client.household(body.household))
        require_active(body.household, on_chain.active)
        return Plan(household=body.household, payload={"amount_ueur": body.amount_ueur})

    answer = services.intents.submit(ask, plan)
    return TopUpOut.model_validate(answer.unwrap())
