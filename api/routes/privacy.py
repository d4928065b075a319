"""A household's data protection rights: ``GET /households/{id}/export`` (everything Voisin
holds about it, as JSON or as a zip of CSVs) and ``POST /households/{id}/erasure`` (its
personal data removed, the household deactivated on chain).

Both are the household's own (its bearer token) or the operator's, acting on a request made
to it. The export is streamed (:mod:`api.privacy`). The erasure is validated completely (the
confirmation, the household, what it still holds), then carried out as an intent
(:mod:`api.intents`, kind ``erase``): the deactivation is sent once and the personal data go in
the transaction that confirms it, also across a crash. Asking again for an erased household
answers the erasure as it was done.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from api import privacy
from api.auth import Caller, Principal
from api.deps import Svc, problems
from api.errors import ApiError, forbidden, not_found
from api.idempotency import Ask, IdempotencyKey
from api.intents import Plan
from api.models import ApiHousehold
from api.ratelimit import too_many
from api.schemas import HouseholdPath
from api.services import Services

router = APIRouter(tags=["privacy"])
log = logging.getLogger("voisin.api")


def _visible(household: int, caller: Principal) -> None:
    if not caller.may_see(household):
        raise forbidden(f"household {household}'s data is visible to itself and the operator only")


@router.get(
    "/households/{household}/export",
    responses={
        **problems(401, 403, 404, 422, 429),
        200: {
            "description": "The export: a JSON document, or a zip of one CSV per kind",
            "content": {"application/json": {}, "application/zip": {}},
        },
    },
    response_class=StreamingResponse,
    summary="Everything Voisin holds about a household (the household itself or the operator)",
)
def export(
    household: HouseholdPath,
    caller: Caller,
    services: Svc,
    form: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> StreamingResponse:
    """Its identity, its addresses, its signed readings (with their signatures) as received
    and as committed, its orders, its trades, its monthly statements, its top-ups, its consents
    and its erasure, if any: nothing of another household but the id of a trade's
    counterpart. Every time is given in UTC and in the neighbourhood's local time
    (``VOISIN_TIMEZONE``). ``format=json`` (the default) gives one JSON document,
    ``{"format", "household", "timezone", "generated_at_utc", ..., "data": {kind: [rows]}}``;
    ``format=csv`` a zip of one CSV per kind with a README. Streamed: a long history is not
    held in memory."""
    _visible(household, caller)
    if not caller.is_operator:
        # An export reads the whole history: it costs the household's writes bucket a token.
        wait = services.token_limiter.take(f"household:{household}")
        if wait > 0:
            raise too_many(f"household {household}'s token", wait, services.token_limiter)
    tz = services.settings.timezone
    parts = privacy.sections(services.engine, household, tz)
    if form == "json":
        return StreamingResponse(
            privacy.json_chunks(household, parts, tz),
            media_type="application/json",
            headers=_attachment(f"voisin-household-{household}.json"),
        )
    return StreamingResponse(
        privacy.zip_chunks(household, parts, tz),
        media_type="application/zip",
        headers=_attachment(f"voisin-household-{household}.zip"),
    )


def _attachment(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }


@router.post(
    "/households/{household}/erasure",
    response_model=privacy.ErasureOut,
    responses=problems(401, 403, 404, 409, 422, 503),
    summary="Erase a household's personal data (the household itself or the operator)",
)
def erase(
    household: HouseholdPath,
    body: privacy.ErasureIn,
    caller: Caller,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> privacy.ErasureOut:
    """Deactivates the household on chain (no more readings, orders or trades), then removes
    its name, its bearer token (it stops working at once) and its account's key, closes its
    orders and withdraws its consents. Its pseudonymous id and addresses stay, on chain and in
    the audit's evidence, with its billing records (docs/privacy.md).

    ``confirm`` must be exactly ``erase household <id>``. Money left on the account is moved
    to the operator's account before the key goes (``refund_ueur``): the operator pays it
    back to the household outside Voisin. Refused (409) while readings of its meter wait for
    the chain, or while one of its orders is being sent. Asking again once it is erased
    answers the erasure as it was done."""
    _visible(household, caller)
    erasure = ask_erasure(services, household, body.confirm, caller, idempotency_key)
    log.info("household %d: personal data erased", household)
    return erasure


def ask_erasure(
    services: Services,
    household: int,
    confirm: str,
    caller: Principal,
    idempotency_key: str | None = None,
) -> privacy.ErasureOut:
    """Erase ``household`` for ``caller`` (who may see it): the route's work, which the
    household's page shares."""
    with Session(services.engine) as session:
        record = session.get(ApiHousehold, household)
    if record is None:
        raise not_found("unknown_household", f"household {household} is not registered")
    expected = privacy.confirmation(household)
    if confirm != expected:
        raise ApiError(
            422,
            "confirmation_mismatch",
            f"confirm: write exactly {expected!r} to erase household {household}'s personal "
            "data; nothing was done",
        )
    done = privacy.erasure_of(services.engine, household)
    if done is not None:
        services.forget_tokens_of(household)
        return privacy.erasure_out(done)
    body = privacy.ErasureIn(confirm=confirm)
    ask = Ask.of("erase", caller, idempotency_key, f"POST /households/{household}/erasure", body)

    def plan() -> Plan:
        refusal = privacy.blockers(
            household, privacy.holdings(services.engine, household, record.meter)
        )
        if refusal is not None:
            raise refusal
        return Plan(household=household, payload={"requested_by": caller.role})

    answer = services.intents.submit(ask, plan)
    return privacy.ErasureOut.model_validate(answer.unwrap())
