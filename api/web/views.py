"""The figures each dashboard page shows, read from the database (the indexed mirror of the
chain, and the API's own tables). Reads only; amounts stay integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func
from sqlmodel import Session, col, or_, select

from api.models import ApiHousehold, ApiOrder, IntakeReading
from ledger import localtime
from ledger.market.data import MarketDataError, load_statement, tariff_schedule
from ledger.market.statements import SETTLED, Statement, StatementError
from ledger.mirror.models import (
    BalanceRecord,
    FillRecord,
    IndexerCursor,
    ReadingRecord,
    SlotOutcomeRecord,
)
from ledger.types import Tariffs

SLOTS_PER_DAY = 96


@dataclass(frozen=True, slots=True)
class Band:
    """The prices a household may set (µ€/kWh): feed-in up to retail minus the grid fee."""

    floor: int
    ceiling: int
    tariffs: Tariffs


def band(engine: Engine, fallback: Tariffs) -> Band:
    """The tariffs in force, from the mirror (no chain call: a page never waits on the
    settlement's lock); ``fallback`` (the deployment's) before the first event is indexed."""
    with Session(engine) as session:
        try:
            tariffs = tariff_schedule(session).tariffs[-1]
        except MarketDataError:
            tariffs = fallback
    return Band(
        tariffs.feed_in_ueur_per_kWh,
        tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh,
        tariffs,
    )


def day_slots(now_slot: int, tz: str) -> tuple[int, int]:
    """The first slot of today (the neighbourhood's local day) and the current slot."""
    return localtime.day_span(localtime.local_date(now_slot, tz), tz)[0], now_slot


def month_slots(year: int, month: int, now_slot: int, tz: str) -> tuple[int, int] | None:
    """The local month's slots up to now, or None when the month has not begun."""
    first, last = localtime.month_span(year, month, tz)
    if first > now_slot:
        return None
    return first, min(last, now_slot)


def statement(engine: Engine, household: int, span: tuple[int, int] | None) -> Statement | None:
    """The household's statement over ``span``; None when there is nothing to state yet."""
    if span is None:
        return None
    try:
        return load_statement(engine, household, span[0], span[1])
    except (MarketDataError, StatementError):
        return None


def balance_ueur(engine: Engine, account: str) -> int:
    with Session(engine) as session:
        record = session.get(BalanceRecord, account)
    return record.balance_ueur if record else 0


def household(engine: Engine, household_id: int) -> ApiHousehold | None:
    with Session(engine) as session:
        return session.get(ApiHousehold, household_id)


def households(engine: Engine) -> list[tuple[ApiHousehold, int]]:
    """Every household registered through the API, with its balance (µ€)."""
    with Session(engine) as session:
        rows = session.exec(select(ApiHousehold).order_by(col(ApiHousehold.id))).all()
        money = {b.account: b.balance_ueur for b in session.exec(select(BalanceRecord))}
    return [(h, money.get(h.account, 0)) for h in rows]


def standing(engine: Engine, household_id: int, side: str) -> ApiOrder | None:
    """The household's latest live order on ``side`` (its own, else its agent's default)."""
    with Session(engine) as session:
        rows = session.exec(
            select(ApiOrder)
            .where(
                ApiOrder.household == household_id,
                ApiOrder.side == side,
                col(ApiOrder.status).in_(["queued", "open"]),
                ApiOrder.cancel_requested == False,  # noqa: E712 (SQL, not Python)
            )
            .order_by(col(ApiOrder.id).desc())
        ).all()
    own = [o for o in rows if o.source != "agent"]
    best = own or list(rows)
    return best[0] if best else None


def own_live_orders(engine: Engine, household_id: int, side: str) -> list[ApiOrder]:
    """The household's own live orders on ``side`` (to replace when it sets a new price)."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(ApiOrder).where(
                    ApiOrder.household == household_id,
                    ApiOrder.side == side,
                    ApiOrder.source != "agent",
                    col(ApiOrder.status).in_(["queued", "open"]),
                    ApiOrder.cancel_requested == False,  # noqa: E712
                )
            ).all()
        )


def open_offers(engine: Engine, not_of: int | None, limit: int = 20) -> list[ApiOrder]:
    """Open offers on chain that a household other than ``not_of`` may take, cheapest first."""
    with Session(engine) as session:
        query = select(ApiOrder).where(
            ApiOrder.side == "offer",
            ApiOrder.status == "open",
            ApiOrder.cancel_requested == False,  # noqa: E712
        )
        if not_of is not None:
            query = query.where(ApiOrder.household != not_of)
        return list(
            session.exec(
                query.order_by(col(ApiOrder.price_limit_ueur_per_kWh), col(ApiOrder.id)).limit(
                    limit
                )
            ).all()
        )


def trades(engine: Engine, household_id: int | None, limit: int | None = 20) -> list[FillRecord]:
    """Fills, newest first: the household's own, or all (``None``)."""
    with Session(engine) as session:
        query = select(FillRecord)
        if household_id is not None:
            query = query.where(
                or_(FillRecord.seller == household_id, FillRecord.buyer == household_id)
            )
        query = query.order_by(
            col(FillRecord.block_number).desc(), col(FillRecord.log_index).desc()
        )
        if limit is not None:
            query = query.limit(limit)
        return list(session.exec(query).all())


def settled_slots(session: Session, first: int, last: int) -> set[int]:
    """The slots in ``first..last`` the settlement has run for."""
    return set(
        session.exec(
            select(SlotOutcomeRecord.slot).where(
                SlotOutcomeRecord.status == SETTLED,
                SlotOutcomeRecord.slot >= first,
                SlotOutcomeRecord.slot <= last,
            )
        ).all()
    )


def _left(
    session: Session, households: set[int], since: int, now: int
) -> dict[int, dict[int, tuple[int, int]]]:
    """Per household and slot since ``since`` (not settled yet): the metered import not yet
    bought and the export not yet sold, from the committed readings and the fills."""
    closed = settled_slots(session, since, now)
    left: dict[int, dict[int, tuple[int, int]]] = {h: {} for h in households}
    for r in session.exec(
        select(ReadingRecord).where(
            col(ReadingRecord.household).in_(households),
            ReadingRecord.slot >= since,
            ReadingRecord.slot <= now,
        )
    ):
        if r.slot not in closed:
            left[r.household][r.slot] = (r.import_delta_Wh, r.export_delta_Wh)
    for f in session.exec(
        select(FillRecord).where(
            FillRecord.slot >= since,
            FillRecord.slot <= now,
            col(FillRecord.buyer).in_(households) | col(FillRecord.seller).in_(households),
        )
    ):
        for party, bought in ((f.buyer, True), (f.seller, False)):
            slots = left.get(party)
            if slots is None or f.slot not in slots:
                continue
            imp, exp = slots[f.slot]
            slots[f.slot] = (imp - f.energy_Wh, exp) if bought else (imp, exp - f.energy_Wh)
    return left


def takeable(
    engine: Engine, buyer: int, offers: list[ApiOrder], since: int, now: int
) -> dict[int, list[int]]:
    """Per offer, the slots the buyer can take it for, newest first: metered, not settled
    yet, within the offer's slots, with import left to the buyer and export left to the
    seller (any other slot the ledger would refuse)."""
    sellers = {o.household for o in offers}
    with Session(engine) as session:
        left = _left(session, {buyer, *sellers}, since, now)
    wanting = {slot for slot, (imp, _) in left[buyer].items() if imp > 0}
    out: dict[int, list[int]] = {}
    for o in offers:
        has = left.get(o.household, {})
        out[o.id or 0] = sorted(
            (
                slot
                for slot in wanting
                if o.first_slot <= slot <= o.last_slot and has.get(slot, (0, 0))[1] > 0
            ),
            reverse=True,
        )
    return out


@dataclass(frozen=True, slots=True)
class BidDepth:
    """Neighbours' open bids against a seller's minimum (µ€/kWh)."""

    at_or_above: int
    below: int
    highest: int | None


def bid_depth(engine: Engine, seller: int, minimum: int | None) -> BidDepth:
    """How many of the neighbours' open bids would buy at the seller's minimum."""
    with Session(engine) as session:
        prices = session.exec(
            select(ApiOrder.price_limit_ueur_per_kWh).where(
                ApiOrder.side == "bid",
                ApiOrder.status == "open",
                ApiOrder.household != seller,
                ApiOrder.cancel_requested == False,  # noqa: E712
            )
        ).all()
    floor = minimum if minimum is not None else 0
    above = sum(1 for p in prices if p >= floor)
    return BidDepth(above, len(prices) - above, max(prices) if prices else None)


def outcomes(engine: Engine, limit: int = 48) -> list[SlotOutcomeRecord]:
    """The last ``limit`` cleared slots, oldest first."""
    with Session(engine) as session:
        rows = session.exec(
            select(SlotOutcomeRecord).order_by(col(SlotOutcomeRecord.slot).desc()).limit(limit)
        ).all()
    return sorted(rows, key=lambda r: r.slot)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What backs a slot (and a household in it): signed readings, fills and the outcome."""

    readings: list[tuple[ReadingRecord, IntakeReading | None]]
    fills: list[FillRecord]
    outcome: SlotOutcomeRecord | None


def evidence(engine: Engine, slot: int | None, household_id: int | None) -> Evidence:
    with Session(engine) as session:
        readings = select(ReadingRecord)
        fills = select(FillRecord)
        if slot is not None:
            readings = readings.where(ReadingRecord.slot == slot)
            fills = fills.where(FillRecord.slot == slot)
        if household_id is not None:
            readings = readings.where(ReadingRecord.household == household_id)
            fills = fills.where(
                or_(FillRecord.seller == household_id, FillRecord.buyer == household_id)
            )
        rows = session.exec(readings.order_by(col(ReadingRecord.slot)).limit(200)).all()
        signed = []
        for r in rows:
            intake = session.exec(
                select(IntakeReading).where(
                    IntakeReading.meter == r.meter, IntakeReading.slot == r.slot
                )
            ).first()
            signed.append((r, intake))
        return Evidence(
            signed,
            list(session.exec(fills.order_by(col(FillRecord.slot)).limit(200)).all()),
            session.get(SlotOutcomeRecord, slot) if slot is not None else None,
        )


def stamp(engine: Engine, contract: str) -> str:
    """Changes whenever the page could show something new: a block was indexed, or an
    order or a reading was accepted."""
    with Session(engine) as session:
        cursor = session.get(IndexerCursor, contract)
        orders = session.exec(select(func.max(ApiOrder.id))).one()
        readings = session.exec(select(func.max(IntakeReading.id))).one()
        settled = session.exec(select(func.count()).select_from(SlotOutcomeRecord)).one()
    return f"{cursor.last_block if cursor else 0}.{orders or 0}.{readings or 0}.{settled}"
