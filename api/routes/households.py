"""``POST /households`` (operator), ``GET /households/{id}/balance`` and ``/statement``, and the
operator's key rotation: ``POST /households/{id}/rotate-key``, ``/token`` and ``/meter``.

The writes validate the whole request first (every field, the addresses not zero, the meter
new to the database, to unfinished intents and to the chain), then hand it to the intent
runner (:mod:`api.intents`), which records it, writes the chain and confirms in the database,
once, also across a crash; each takes an ``Idempotency-Key`` (:mod:`api.idempotency`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Response
from sqlalchemy import Connection, Table, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, func, select

from api import privacy
from api.auth import Caller, Operator, hash_token
from api.deps import Svc, problems
from api.errors import ApiError, forbidden, not_found
from api.idempotency import Ask, IdempotencyKey
from api.intents import Answer, Plan, claimed, meter_in_another_market
from api.models import ApiHousehold, ApiIntent, HouseholdErasure, IntakeReading
from api.schemas import (
    UINT32,
    Balance,
    CreditLine,
    HouseholdCreated,
    HouseholdIn,
    HouseholdPath,
    KeyRotated,
    MeterIn,
    MeterRotated,
    TokenRotated,
)
from ledger.market.data import MarketDataError, load_statement
from ledger.market.statements import StatementError
from ledger.mirror.models import BalanceRecord, FillRecord, IndexerCursor, ReadingRecord

router = APIRouter(tags=["households"])
log = logging.getLogger("voisin.api")


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdCreated,
    responses=problems(401, 403, 409, 422, 503),
    summary="Register a household (operator)",
)
def register(
    body: HouseholdIn,
    caller: Operator,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> HouseholdCreated:
    """Registers the household on chain with a new account whose key the API holds, and posts
    its agent's default standing orders (prosumers offer, everyone bids). The bearer token in
    the answer is shown once (and again to a retry with the same ``Idempotency-Key``)."""
    ask = Ask.of("register", caller, idempotency_key, "POST /households", body)
    answer = services.intents.submit(ask, lambda: _plan_registration(services, body))
    return HouseholdCreated.model_validate(answer.unwrap())


def _plan_registration(services: Svc, body: HouseholdIn) -> Plan:
    """Everything a registration needs checked before its account is funded and registered."""
    meter = _new_meter(services, body.meter)
    account, key_json = services.vault.new_account()
    salt = services.intents.new_salt()
    return Plan(
        subject=meter,
        payload={
            "meter": meter,
            "prosumer": body.prosumer,
            "name": body.name,
            "import_baseline_Wh": body.import_baseline_Wh,
            "export_baseline_Wh": body.export_baseline_Wh,
            "account": account.address,
            "key_json": key_json,
            "token_salt": salt,
            "token_hash": hash_token(services.intents.token_for(salt)),
        },
    )


def _new_meter(services: Svc, address: str) -> str:
    """``address`` checksummed, if it may become a meter: not zero, and registered nowhere:
    not in the database, not claimed by an unfinished registration or rotation, not on
    chain (a meter key is used once, even retired), and in a city, not in another market."""
    from eth_utils.address import to_checksum_address

    meter = to_checksum_address(address)
    if int(meter, 16) == 0:
        raise ApiError(
            422, "zero_address", "meter: the zero address cannot be a meter; give its key's address"
        )
    with Session(services.engine) as session:
        if session.exec(select(ApiHousehold.id).where(ApiHousehold.meter == meter)).first():
            raise ApiError(409, "meter_already_registered", f"meter {meter} is already registered")
        if claimed(session, meter):
            raise ApiError(
                409,
                "meter_already_registered",
                f"meter {meter} is being registered by another request; a meter key is used once",
            )
    state = services.on_chain(lambda: services.client.meter_state(meter))
    if state.household != 0 or state.retired:
        raise ApiError(
            409,
            "meter_already_registered",
            f"meter {meter} is already registered on chain (household {state.household}"
            f"{', retired' if state.retired else ''}); a meter key is used once",
        )
    elsewhere = services.on_chain(lambda: services.meter_elsewhere(meter))
    if elsewhere is not None:
        raise meter_in_another_market(meter, elsewhere)
    return meter


def _known(services: Svc, household: int, caller: Caller) -> None:
    if not caller.may_see(household):
        raise forbidden(f"household {household}'s data is visible to itself and the operator only")
    with Session(services.engine) as session:
        if session.get(ApiHousehold, household) is None:
            raise not_found("unknown_household", f"household {household} is not registered")


@router.get(
    "/households/{household}/balance",
    response_model=Balance,
    responses=problems(401, 403, 404, 422),
    summary="Money and credits per slot (the household itself or the operator)",
)
def balance(household: HouseholdPath, caller: Caller, services: Svc) -> Response:
    if not caller.may_see(household):
        raise forbidden(f"household {household}'s data is visible to itself and the operator only")
    with services.engine.connect() as conn:
        row = conn.execute(_BALANCE, {"household": household}).first()
        if row is None:
            raise not_found("unknown_household", f"household {household} is not registered")
        as_of = conn.execute(_AS_OF, {"contract": services.client.address}).scalar()
        credits = credit_lines(conn, household)
    answer = Balance(
        household=household,
        balance_ueur=row.balance_ueur or 0,
        as_of_block=as_of or 0,
        credits=credits,
    )
    # The API's most frequent read: serialised once here, instead of FastAPI validating the
    # model it was just built from again (the schema still comes from response_model).
    return Response(answer.model_dump_json(), media_type="application/json")


# The balance's statements, built once: building a SELECT and its cache key on every request
# was most of the request's database time (py-spy on scripts/bench_api.py's balance runs).
def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


_HOUSEHOLD = _table(ApiHousehold).c
_MONEY = _table(BalanceRecord).c
_CURSOR = _table(IndexerCursor).c
_FILL = _table(FillRecord).c
_READING = _table(ReadingRecord).c
_BALANCE = (
    sa_select(_HOUSEHOLD.account, _MONEY.balance_ueur)
    .select_from(
        _table(ApiHousehold).outerjoin(_table(BalanceRecord), _MONEY.account == _HOUSEHOLD.account)
    )
    .where(_HOUSEHOLD.id == bindparam("household"))
)
_AS_OF = sa_select(_CURSOR.last_block).where(_CURSOR.contract == bindparam("contract"))
_SOLD = (
    sa_select(_FILL.slot, func.sum(_FILL.energy_Wh).label("sold_Wh"))
    .where(_FILL.seller == bindparam("household"))
    .group_by(_FILL.slot)
    .subquery()
)
_CREDITS = (
    sa_select(_READING.slot, _READING.export_delta_Wh, _SOLD.c.sold_Wh)
    .outerjoin(_SOLD, _SOLD.c.slot == _READING.slot)
    .where(_READING.household == bindparam("household"), _READING.export_delta_Wh > 0)
    .order_by(_READING.slot)
)


def credit_lines(conn: Connection | Session, household: int) -> list[CreditLine]:
    """Per metered-export slot: the export, what of it was sold locally and the credits left.

    One query (the fills summed per slot, joined to the readings) and no ORM objects: a
    household's history grows by a row per slot, and this is the API's most frequent read.
    """
    rows = conn.execute(_CREDITS, {"household": household}).all()
    return [
        CreditLine(
            slot=slot,
            export_Wh=export,
            sold_Wh=int(sold_Wh or 0),
            credits_Wh=export - int(sold_Wh or 0),
        )
        for slot, export, sold_Wh in rows
    ]


#: The longest statement: 366 days of slots, ``from`` and ``to`` included.
MAX_STATEMENT_SLOTS = 96 * 366


@router.get(
    "/households/{household}/statement",
    responses=problems(401, 403, 404, 422),
    summary="The bill over a slot range, with savings against grid-only supply",
)
def statement(
    household: HouseholdPath,
    caller: Caller,
    services: Svc,
    from_slot: Annotated[int, Query(alias="from", ge=0, le=UINT32)],
    to_slot: Annotated[int, Query(alias="to", ge=0, le=UINT32)],
) -> dict[str, Any]:
    """Local energy bought and sold, grid import and export, what was paid, earned and paid in
    fees, and the savings: what the same meter data would have cost with no local market,
    minus what the household actually paid. Slots ``from``..``to`` inclusive.

    Each line has a ``status``: ``settled``, or ``pending`` until the settlement has run for
    its slot. On a pending line the energy not yet traded is under ``pending_import_Wh`` and
    ``pending_export_Wh`` (not the grid's), no grid price is charged, and the savings leave it
    out; ``pending_slots`` counts them."""
    _known(services, household, caller)
    if to_slot < from_slot:
        raise ApiError(
            422, "invalid_input", f"to ({to_slot}) must not be before from ({from_slot})"
        )
    if to_slot - from_slot + 1 > MAX_STATEMENT_SLOTS:
        raise ApiError(
            422,
            "invalid_input",
            f"a statement covers at most 366 days ({MAX_STATEMENT_SLOTS:,} slots, from and to "
            f"included); from {from_slot} to {to_slot} is {to_slot - from_slot + 1:,}",
        )
    try:
        return load_statement(services.engine, household, from_slot, to_slot).as_dict()
    except (MarketDataError, StatementError) as exc:
        raise ApiError(409, "statement_unavailable", str(exc)) from exc


# ───────────────────────────── Key rotation (operator) ─────────────────────────────


def _registered(services: Svc, household: int) -> ApiHousehold:
    """The household, registered and not erased: an erased household gets no new key, token
    or meter (its erasure removed them for good)."""
    with Session(services.engine) as session:
        record = session.get(ApiHousehold, household)
        erased = session.get(HouseholdErasure, household) is not None
    if record is None:
        raise not_found("unknown_household", f"household {household} is not registered")
    if erased:
        raise ApiError(
            409,
            "household_erased",
            f"household {household} was erased at its request: it gets no new key, token or "
            "meter; a new registration starts a new household",
        )
    return record


@router.post(
    "/households/{household}/rotate-key",
    response_model=KeyRotated,
    responses=problems(401, 403, 404, 409, 422, 503),
    summary="Replace a household's account key (operator)",
)
def rotate_key(
    household: HouseholdPath,
    caller: Operator,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> KeyRotated:
    """A new account key, generated and encrypted here, takes over the household on chain: its
    balance and open orders stay with it, and the old account can no longer act for it. The
    new key replaces the old one in the keystore under the chain lock, so the outbox never
    signs with a retired key."""
    operation = f"POST /households/{household}/rotate-key"
    ask = Ask.of("rotate_key", caller, idempotency_key, operation)

    def plan() -> Plan:
        _registered(services, household)
        account, key_json = services.vault.new_account()
        return Plan(household=household, payload={"account": account.address, "key_json": key_json})

    answer = services.intents.submit(ask, plan)
    log.info("household %d: account key rotated", household)
    return KeyRotated.model_validate(answer.unwrap())


@router.post(
    "/households/{household}/token",
    response_model=TokenRotated,
    responses=problems(401, 403, 404, 409, 422),
    summary="Issue a new bearer token for a household; the old one stops working (operator)",
)
def rotate_token(
    household: HouseholdPath,
    caller: Operator,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> TokenRotated:
    """The new token is shown once (and again to a retry with the same ``Idempotency-Key``)."""
    ask = Ask.of("token", caller, idempotency_key, f"POST /households/{household}/token")

    def plan() -> Plan:
        _registered(services, household)
        salt = services.intents.new_salt()

        def apply(session: Session, _: ApiIntent) -> Answer:
            token = services.intents.token_for(salt)
            record = privacy.hold_household(session, household)
            record.token_hash = hash_token(token)
            session.add(record)
            return Answer(200, TokenRotated(id=household, token=token).model_dump(mode="json"))

        return Plan(household=household, payload={"token_salt": salt}, apply=apply)

    answer = services.intents.submit(ask, plan)
    # The cache remembers the old token's hash: forget every entry of this household.
    services.forget_tokens_of(household)
    return TokenRotated.model_validate(answer.unwrap())


@router.post(
    "/households/{household}/meter",
    response_model=MeterRotated,
    responses=problems(401, 403, 404, 409, 422, 503),
    summary="Replace a household's meter key (operator)",
)
def rotate_meter(
    household: HouseholdPath,
    body: MeterIn,
    caller: Operator,
    services: Svc,
    idempotency_key: IdempotencyKey = None,
) -> MeterRotated:
    """The new meter takes over after the old one's last accepted slot (no slot is metered
    twice), from the given registers. Refused while readings of the old meter still wait for
    the chain: they would be refused there once the old key is retired."""
    operation = f"POST /households/{household}/meter"
    ask = Ask.of("rotate_meter", caller, idempotency_key, operation, body)

    def plan() -> Plan:
        record = _registered(services, household)
        meter = _new_meter(services, body.meter)
        with Session(services.engine) as session:
            waiting = session.exec(
                select(func.count())
                .select_from(IntakeReading)
                .where(IntakeReading.meter == record.meter, IntakeReading.status == "queued")
            ).one()
        if waiting:
            raise ApiError(
                409,
                "meter_readings_pending",
                f"{waiting} reading(s) of meter {record.meter} are not on chain yet; retry once "
                "the outbox has committed them (GET /health shows the backlog)",
            )
        return Plan(
            household=household,
            subject=meter,
            payload={
                "meter": meter,
                "import_baseline_Wh": body.import_baseline_Wh,
                "export_baseline_Wh": body.export_baseline_Wh,
            },
        )

    answer = services.intents.submit(ask, plan)
    log.info("household %d: meter rotated", household)
    return MeterRotated.model_validate(answer.unwrap())
