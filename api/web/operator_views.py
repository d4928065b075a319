"""The figures of the grid operator's page beyond the slots' outcomes: the fees collected, the
meters that stopped reporting, the closed slots waiting for settlement, and the small
writers the page needs (a local moment, a decimal in the reader's language, a short meter
address). Reads only, each a bounded query (the page stays fast with a long history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from api.models import ApiHousehold, IntakeReading
from ledger import localtime
from ledger.mirror.models import FillRecord, HouseholdRecord, ReadingRecord, SlotOutcomeRecord
from ledger.types import SLOT_SECONDS

#: A meter is listed as silent once it has missed this many closed slots.
SILENT_AFTER_SLOTS = 4
#: How far back the settle form looks for closed slots with readings and no settlement (two
#: days of slots: older ones are long settled, by the outbox or by hand).
SETTLE_WINDOW_SLOTS = 192


@dataclass(frozen=True, slots=True)
class Fees:
    """Grid fees paid by buyers to the operator (µ€): over the slots shown, and in all."""

    shown_ueur: int
    all_ueur: int


def fees(engine: Engine, first: int | None, last: int | None) -> Fees:
    """The fees of every settled fill (batch fills and direct takes) of the slots
    ``first``..``last``, and of all time."""
    with Session(engine) as session:
        total = session.exec(select(func.sum(FillRecord.fee_ueur))).one()
        shown = 0
        if first is not None and last is not None:
            shown = session.exec(
                select(func.sum(FillRecord.fee_ueur)).where(
                    col(FillRecord.slot) >= first, col(FillRecord.slot) <= last
                )
            ).one()
    return Fees(int(shown or 0), int(total or 0))


@dataclass(frozen=True, slots=True)
class Silent:
    """A meter that has missed at least :data:`SILENT_AFTER_SLOTS` closed slots: its
    household, its address and the last slot it reported (``None``: never, since
    ``since_slot``, the slot its household was registered in)."""

    household: int
    name: str | None
    meter: str
    last_slot: int | None
    since_slot: int
    missed: int


def silent_meters(engine: Engine, now_slot: int, after: int = SILENT_AFTER_SLOTS) -> list[Silent]:
    """Active households whose meter has not reported the last ``after`` closed slots (the
    API's record of each meter's last accepted reading), longest silent first."""
    last_closed = now_slot - 1
    with Session(engine) as session:
        rows = session.execute(
            sa_select(
                col(ApiHousehold.id),
                col(ApiHousehold.name),
                col(ApiHousehold.meter),
                col(ApiHousehold.meter_last_slot),
                col(ApiHousehold.created_at),
            ).where(col(ApiHousehold.meter_last_slot) <= last_closed - after)
        ).all()
        inactive = set(
            session.exec(select(HouseholdRecord.id).where(col(HouseholdRecord.active).is_(False)))
        )
    out = []
    for household, name, meter, last, created in rows:
        if household in inactive:
            continue
        when = created if created.tzinfo else created.replace(tzinfo=UTC)
        since = int(when.timestamp()) // SLOT_SECONDS
        reported = last if last > 0 else None
        missed = last_closed - (reported if reported is not None else since)
        if missed < after:
            continue
        out.append(Silent(household, name, meter, reported, since, missed))
    return sorted(out, key=lambda s: (-s.missed, s.household))


def settleable_slots(engine: Engine, now_slot: int, window: int = SETTLE_WINDOW_SLOTS) -> list[int]:
    """Closed slots of the last ``window`` with a reading (accepted by the API or committed)
    and no settlement yet, newest first."""
    since = now_slot - window
    with Session(engine) as session:
        metered = set(
            session.exec(
                select(ReadingRecord.slot)
                .where(col(ReadingRecord.slot) >= since, col(ReadingRecord.slot) < now_slot)
                .distinct()
            )
        )
        metered |= set(
            session.exec(
                select(IntakeReading.slot)
                .where(
                    col(IntakeReading.slot) >= since,
                    col(IntakeReading.slot) < now_slot,
                    col(IntakeReading.status) != "rejected",
                )
                .distinct()
            )
        )
        settled = set(
            session.exec(
                select(SlotOutcomeRecord.slot).where(
                    col(SlotOutcomeRecord.slot) >= since, SlotOutcomeRecord.status == "settled"
                )
            )
        )
    return sorted(metered - settled, reverse=True)


def moment(seconds: int, tz: str) -> str:
    """A moment (unix seconds) as the neighbourhood's local date and time, e.g.
    ``2026-11-26 14:32 CET``."""
    local = datetime.fromtimestamp(seconds, UTC).astimezone(localtime.zone(tz))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def decimal(value: float, places: int, lang: str) -> str:
    """A measured value with ``places`` decimals, with a decimal comma in French."""
    text = f"{value:.{places}f}"
    return text.replace(".", ",") if lang == "fr" else text


def short_address(address: str) -> str:
    """A meter's or an account's address shortened for narrow screens: ``0x1234…abcd``."""
    return address if len(address) <= 13 else f"{address[:6]}…{address[-4:]}"
