"""``POST /households`` (operator), ``GET /households/{id}/balance`` and ``/statement``, and the
operator's key rotation: ``POST /households/{id}/rotate-key``, ``/token`` and ``/meter``."""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Response
from sqlalchemy import Connection, Table, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, func, select

from api.auth import Caller, Operator, new_token
from api.deps import Svc, problems
from api.errors import ApiError, forbidden, not_found
from api.models import ApiHousehold, ApiOrder, IntakeReading
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
from ledger.market.agents import AgentSettings, default_orders
from ledger.market.data import MarketDataError, load_statement
from ledger.market.statements import StatementError
from ledger.mirror.models import BalanceRecord, FillRecord, IndexerCursor, ReadingRecord
from ledger.types import OPEN_END

router = APIRouter(tags=["households"])
log = logging.getLogger("voisin.api")


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdCreated,
    responses=problems(401, 403, 409, 422, 503),
    summary="Register a household (operator)",
)
def register(body: HouseholdIn, _: Operator, services: Svc) -> HouseholdCreated:
    """Registers the household on chain with a new account whose key the API holds, and posts
    its agent's default standing orders (prosumers offer, everyone bids). The bearer token in
    the answer is shown once."""
    from eth_utils.address import to_checksum_address

    meter = to_checksum_address(body.meter)
    with Session(services.engine) as session:
        if session.exec(select(ApiHousehold).where(ApiHousehold.meter == meter)).first():
            raise ApiError(409, "meter_already_registered", f"meter {meter} is already registered")
    account, key_json = services.vault.new_account()

    def register_on_chain() -> int:
        services.chain.fund(account.address)
        household = services.client.register_household(
            services.chain.operator,
            account.address,
            meter,
            prosumer=body.prosumer,
            import_baseline_Wh=body.import_baseline_Wh,
            export_baseline_Wh=body.export_baseline_Wh,
        )
        services.mirror()
        return household

    household_id = services.on_chain(register_on_chain)
    tariffs = services.tariffs()
    token, token_hash = new_token()
    # Standing from the first slot: the agent trades whatever the meter reports.
    first_slot = 1
    with Session(services.engine) as session, session.begin():
        session.add(
            ApiHousehold(
                id=household_id,
                name=body.name,
                account=account.address,
                meter=meter,
                prosumer=body.prosumer,
                token_hash=token_hash,
                key_json=key_json,
                meter_import_Wh=body.import_baseline_Wh,
                meter_export_Wh=body.export_baseline_Wh,
            )
        )
        for order in default_orders(
            {household_id: (body.prosumer, AgentSettings())}, set(), set(), tariffs
        ):
            session.add(
                ApiOrder(
                    side=order.side,
                    household=household_id,
                    price_limit_ueur_per_kWh=order.price_limit_ueur_per_kWh,
                    first_slot=first_slot,
                    last_slot=OPEN_END,
                    source="agent",
                )
            )
    return HouseholdCreated(
        id=household_id,
        account=account.address,
        meter=meter,
        prosumer=body.prosumer,
        name=body.name,
        token=token,
    )


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
    minus what the household actually paid. Slots ``from``..``to`` inclusive."""
    _known(services, household, caller)
    if to_slot < from_slot:
        raise ApiError(
            422, "invalid_input", f"to ({to_slot}) must not be before from ({from_slot})"
        )
    if to_slot - from_slot > 96 * 366:
        raise ApiError(422, "invalid_input", "a statement covers at most 366 days (35,136 slots)")
    try:
        return load_statement(services.engine, household, from_slot, to_slot).as_dict()
    except (MarketDataError, StatementError) as exc:
        raise ApiError(409, "statement_unavailable", str(exc)) from exc


# ───────────────────────────── Key rotation (operator) ─────────────────────────────


def _registered(services: Svc, household: int) -> ApiHousehold:
    with Session(services.engine) as session:
        record = session.get(ApiHousehold, household)
    if record is None:
        raise not_found("unknown_household", f"household {household} is not registered")
    return record


@router.post(
    "/households/{household}/rotate-key",
    response_model=KeyRotated,
    responses=problems(401, 403, 404, 422, 503),
    summary="Replace a household's account key (operator)",
)
def rotate_key(household: HouseholdPath, _: Operator, services: Svc) -> KeyRotated:
    """A new account key, generated and encrypted here, takes over the household on chain: its
    balance and open orders stay with it, and the old account can no longer act for it. The
    new key replaces the old one in the keystore in the same step, under the chain lock, so
    the outbox never signs with a retired key."""
    previous = _registered(services, household).account
    account, key_json = services.vault.new_account()

    def rotate_on_chain() -> None:
        services.chain.fund(account.address)
        services.client.rotate_account(services.chain.operator, household, account.address)
        with Session(services.engine) as session, session.begin():
            record = session.get(ApiHousehold, household)
            assert record is not None
            record.account = account.address
            record.key_json = key_json
            session.add(record)
        services.mirror()

    services.on_chain(rotate_on_chain)
    log.info("household %d: account key rotated", household)
    return KeyRotated(id=household, account=account.address, previous_account=previous)


@router.post(
    "/households/{household}/token",
    response_model=TokenRotated,
    responses=problems(401, 403, 404, 422),
    summary="Issue a new bearer token for a household; the old one stops working (operator)",
)
def rotate_token(household: HouseholdPath, _: Operator, services: Svc) -> TokenRotated:
    _registered(services, household)
    token, token_hash = new_token()
    with Session(services.engine) as session, session.begin():
        record = session.get(ApiHousehold, household)
        assert record is not None
        record.token_hash = token_hash
        session.add(record)
    # The cache remembers the old token's hash: forget every entry of this household.
    for digest in [d for d, h in list(services.token_cache.items()) if h == household]:
        services.token_cache.pop(digest, None)
    return TokenRotated(id=household, token=token)


@router.post(
    "/households/{household}/meter",
    response_model=MeterRotated,
    responses=problems(401, 403, 404, 409, 422, 503),
    summary="Replace a household's meter key (operator)",
)
def rotate_meter(
    household: HouseholdPath, body: MeterIn, _: Operator, services: Svc
) -> MeterRotated:
    """The new meter takes over after the old one's last accepted slot (no slot is metered
    twice), from the given registers. Refused while readings of the old meter still wait for
    the chain: they would be refused there once the old key is retired."""
    from eth_utils.address import to_checksum_address

    meter = to_checksum_address(body.meter)
    record = _registered(services, household)
    previous = record.meter
    with Session(services.engine) as session:
        if session.exec(select(ApiHousehold).where(ApiHousehold.meter == meter)).first():
            raise ApiError(409, "meter_already_registered", f"meter {meter} is already registered")
        waiting = session.exec(
            select(func.count())
            .select_from(IntakeReading)
            .where(IntakeReading.meter == previous, IntakeReading.status == "queued")
        ).one()
    if waiting:
        raise ApiError(
            409,
            "meter_readings_pending",
            f"{waiting} reading(s) of meter {previous} are not on chain yet; retry once the "
            "outbox has committed them (GET /health shows the backlog)",
        )

    def rotate_on_chain() -> int:
        services.client.rotate_meter(
            services.chain.operator,
            household,
            meter,
            body.import_baseline_Wh,
            body.export_baseline_Wh,
        )
        with Session(services.engine) as session, session.begin():
            row = session.get(ApiHousehold, household)
            assert row is not None
            row.meter = meter
            row.meter_import_Wh = body.import_baseline_Wh
            row.meter_export_Wh = body.export_baseline_Wh
            session.add(row)
            last_slot = row.meter_last_slot
        services.intake.forget(previous)
        services.mirror()
        return last_slot

    last_slot = services.on_chain(rotate_on_chain)
    log.info("household %d: meter rotated", household)
    return MeterRotated(
        id=household,
        meter=meter,
        previous_meter=previous,
        import_baseline_Wh=body.import_baseline_Wh,
        export_baseline_Wh=body.export_baseline_Wh,
        last_slot=last_slot,
    )
