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

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger.eip712 import Reading, SignedReading
from ledger.errors import LedgerError
from ledger.models import NeighbourhoodSlotRecord, SignedReadingRecord

__all__ = [
    "ConflictingReading",
    "load_signed_readings",
    "signed_from_record",
    "store_neighbourhood_flows",
    "store_signed_readings",
]


class ConflictingReading(LedgerError, ValueError):
    """A different signed reading is already stored for the same (meter, slot)."""


def _record(signed: SignedReading) -> SignedReadingRecord:
    rd = signed.reading
    return SignedReadingRecord(
        meter=rd.meter,
        slot=rd.slot,
        import_Wh=rd.import_Wh,
        export_Wh=rd.export_Wh,
        v=signed.v,
        r="0x" + signed.r.hex(),
        s="0x" + signed.s.hex(),
    )


def _same(a: SignedReadingRecord, b: SignedReadingRecord) -> bool:
    return (a.import_Wh, a.export_Wh, a.v, a.r.lower(), a.s.lower()) == (
        b.import_Wh,
        b.export_Wh,
        b.v,
        b.r.lower(),
        b.s.lower(),
    )


def store_signed_readings(engine: Engine, readings: Sequence[SignedReading]) -> int:
    """Store ``readings`` in one transaction; returns how many were new.

    Raises :class:`ConflictingReading` (storing nothing) if a stored (meter, slot) holds a
    different reading or signature.
    """
    if not readings:
        return 0
    new = [_record(r) for r in readings]
    slots = {r.slot for r in new}
    with Session(engine) as session, session.begin():
        existing = {
            (e.meter, e.slot): e
            for e in session.exec(
                select(SignedReadingRecord).where(col(SignedReadingRecord.slot).in_(slots))
            )
        }
        added = 0
        for record in new:
            key = (record.meter, record.slot)
            old = existing.get(key)
            if old is not None:
                if not _same(old, record):
                    raise ConflictingReading(
                        f"meter {record.meter} already has a different signed reading stored "
                        f"for slot {record.slot}; each (meter, slot) counts once"
                    )
                continue
            existing[key] = record
            session.add(record)
            added += 1
    return added


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
                select(SignedReadingRecord).order_by(
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
