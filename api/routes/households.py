"""``POST /households`` (operator), ``GET /households/{id}/balance`` and ``/statement``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from api.auth import Caller, Operator, new_token
from api.deps import Svc, problems
from api.errors import ApiError, forbidden, not_found
from api.models import ApiHousehold, ApiOrder
from api.schemas import UINT32, Balance, CreditLine, HouseholdCreated, HouseholdIn, HouseholdPath
from ledger.agents import AgentSettings, default_orders
from ledger.client import OPEN_END
from ledger.indexer import index
from ledger.market_data import MarketDataError, load_statement
from ledger.models import BalanceRecord, FillRecord, IndexerCursor, ReadingRecord
from ledger.statements import StatementError

router = APIRouter(tags=["households"])


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
        index(services.client, services.engine, start_block=services.deployment.block_number)
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
def balance(household: HouseholdPath, caller: Caller, services: Svc) -> Balance:
    _known(services, household, caller)
    with Session(services.engine) as session:
        record = session.get(ApiHousehold, household)
        assert record is not None
        money = session.get(BalanceRecord, record.account)
        cursor = session.get(IndexerCursor, services.client.address)
        readings = session.exec(
            select(ReadingRecord)
            .where(ReadingRecord.household == household, ReadingRecord.export_delta_Wh > 0)
            .order_by(col(ReadingRecord.slot))
        ).all()
        sold: dict[int, int] = {}
        for f in session.exec(select(FillRecord).where(FillRecord.seller == household)):
            sold[f.slot] = sold.get(f.slot, 0) + f.energy_Wh
    return Balance(
        household=household,
        balance_ueur=money.balance_ueur if money else 0,
        as_of_block=cursor.last_block if cursor else 0,
        credits=[
            CreditLine(
                slot=r.slot,
                export_Wh=r.export_delta_Wh,
                sold_Wh=sold.get(r.slot, 0),
                credits_Wh=r.export_delta_Wh - sold.get(r.slot, 0),
            )
            for r in readings
        ],
    )


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
