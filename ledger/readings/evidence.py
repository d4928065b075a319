"""The audit's evidence store: signed readings as the meters signed them, and a simulation's
neighbourhood flows.

:func:`store_signed_readings` is called wherever readings go on chain (the simulator's run loop
before each ``commitReadings``, the API's outbox likewise). It is idempotent: storing the same
reading twice is a no-op, while a *different* reading for a stored (meter, slot) is refused,
because each (meter, slot) counts once. :func:`store_neighbourhood_flows` keeps the per-slot
PV, load and battery sums that only a simulator knows (meters measure import and export).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col
from sqlmodel import select as model_select

from ledger.errors import LedgerError
from ledger.mirror.models import NeighbourhoodSlotRecord, SignedReadingRecord
from ledger.readings.eip712 import Reading, SignedReading
from ledger.readings.intake import reading_to_json

__all__ = [
    "ConflictingReading",
    "load_signed_readings",
    "signed_from_record",
    "store_neighbourhood_flows",
    "store_signed_readings",
]


class ConflictingReading(LedgerError, ValueError):
    """A different signed reading is already stored for the same (meter, slot)."""


# The stored columns of a signed reading, in the order _evidence compares them.
_TABLE = SignedReadingRecord.__table__  # type: ignore[attr-defined]
_COMPARED = ("import_Wh", "export_Wh", "v", "r", "s")


def _evidence(
    import_Wh: object, export_Wh: object, v: object, r: object, s: object
) -> tuple[object, ...]:
    """What must match for a stored reading to be the same one (hex compared in lower case)."""
    return (import_Wh, export_Wh, v, str(r).lower(), str(s).lower())


def store_signed_readings(engine: Engine, readings: Sequence[SignedReading]) -> int:
    """Store ``readings`` in one transaction; returns how many were new.

    Raises :class:`ConflictingReading` (storing nothing) if a stored (meter, slot) holds a
    different reading or signature.

    Plain SQL statements (one select, one executemany insert) rather than ORM objects: this
    runs for every meter every slot, and building, validating and flushing an object per
    reading was most of its cost.
    """
    if not readings:
        return 0
    # A stored row holds the reading's wire form, field for field.
    rows = [reading_to_json(r) for r in readings]
    slots = {row["slot"] for row in rows}
    columns = [_TABLE.c.meter, _TABLE.c.slot, *(_TABLE.c[name] for name in _COMPARED)]
    with engine.begin() as connection:
        existing = {
            (meter, slot): _evidence(*rest)
            for meter, slot, *rest in connection.execute(
                select(*columns).where(_TABLE.c.slot.in_(slots))
            )
        }
        fresh: list[dict[str, Any]] = []
        for row in rows:
            key = (row["meter"], row["slot"])
            mine = _evidence(*(row[name] for name in _COMPARED))
            old = existing.get(key)
            if old is not None:
                if old != mine:
                    raise ConflictingReading(
                        f"meter {row['meter']} already has a different signed reading stored "
                        f"for slot {row['slot']}; each (meter, slot) counts once"
                    )
                continue
            existing[key] = mine
            fresh.append(row)
        if fresh:
            connection.execute(_TABLE.insert(), fresh)
    return len(fresh)


def signed_from_record(record: SignedReadingRecord) -> SignedReading:
    """The :class:`SignedReading` a stored row holds (as stored, tampered or not)."""
    return SignedReading(
        Reading(record.meter, record.slot, record.import_Wh, record.export_Wh),
        record.v,
        bytes.fromhex(record.r.removeprefix("0x")),
        bytes.fromhex(record.s.removeprefix("0x")),
    )


def load_signed_readings(engine: Engine) -> list[SignedReadingRecord]:
    """Every stored signed reading, by slot then meter."""
    with Session(engine) as session:
        return list(
            session.exec(
                model_select(SignedReadingRecord).order_by(
                    col(SignedReadingRecord.slot), col(SignedReadingRecord.meter)
                )
            )
        )


def store_neighbourhood_flows(
    engine: Engine,
    slots: Iterable[int],
    pv_Wh: Iterable[int],
    load_Wh: Iterable[int],
    charge_Wh: Iterable[int],
    discharge_Wh: Iterable[int],
) -> None:
    """Keep a simulation's per-slot neighbourhood sums (Wh), replacing any stored for a slot."""
    rows = list(zip(slots, pv_Wh, load_Wh, charge_Wh, discharge_Wh, strict=True))
    with Session(engine) as session, session.begin():
        for slot, pv, load, charge, discharge in rows:
            session.merge(
                NeighbourhoodSlotRecord(
                    slot=int(slot),
                    pv_Wh=int(pv),
                    load_Wh=int(load),
                    charge_Wh=int(charge),
                    discharge_Wh=int(discharge),
                )
            )
