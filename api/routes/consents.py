"""``/v1/households/{id}/consents``: a household grants a third-party app's key the right to
read its data (``household:read``), and withdraws it, with its own token.

``GET`` lists the household's grants, withdrawn ones included (the household or the
operator). ``POST .../{key_id}`` grants (201; 200 if the consent holds already),
``DELETE .../{key_id}`` withdraws it now: the key's next request for the household is refused.
Only the household itself decides: not the operator, not the app.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api import apikeys
from api.apikeys_rules import MAX_KEY_ID, ConsentOut, ConsentsOut
from api.auth import Caller, HouseholdCaller, Principal
from api.deps import Svc, problems
from api.errors import forbidden
from api.schemas import HouseholdPath

router = APIRouter(prefix="/households/{household}/consents", tags=["consents"])
KeyPath = Annotated[int, Path(ge=1, le=MAX_KEY_ID, description="The API key's id")]


def _itself(caller: Principal, household: int) -> None:
    if caller.household != household:
        raise forbidden(f"only household {household} itself grants or withdraws its consents")


@router.get(
    "",
    response_model=ConsentsOut,
    responses=problems(401, 403, 404, 422),
    summary="A household's consents to API keys, withdrawn ones included",
)
def list_consents(household: HouseholdPath, caller: Caller, services: Svc) -> ConsentsOut:
    if caller.is_app or not caller.may_see(household):
        raise forbidden(f"household {household}'s consents are visible to itself and the operator")
    return apikeys.consents(services.engine, household)


@router.post(
    "/{key_id}",
    status_code=201,
    response_model=ConsentOut,
    responses={
        200: {"model": ConsentOut, "description": "The consent already held"},
        **problems(401, 403, 404, 409, 422, 429),
    },
    summary="Let an API key read this household's data (the household)",
)
def grant_consent(
    household: HouseholdPath, key_id: KeyPath, caller: HouseholdCaller, services: Svc
) -> JSONResponse:
    """From now on the key may read the household's balance, statement, trades, offers and
    bids, until the household withdraws it or the operator revokes the key."""
    _itself(caller, household)
    consent, new = apikeys.grant(services.engine, household, key_id)
    return JSONResponse(consent.model_dump(mode="json"), 201 if new else 200)


@router.delete(
    "/{key_id}",
    response_model=ConsentOut,
    responses=problems(401, 403, 404, 422, 429),
    summary="Withdraw an API key's consent (the household)",
)
def withdraw_consent(
    household: HouseholdPath, key_id: KeyPath, caller: HouseholdCaller, services: Svc
) -> ConsentOut:
    """Effective at once: the key's next request for the household's data is refused (403)."""
    _itself(caller, household)
    return apikeys.withdraw(services.engine, household, key_id)
