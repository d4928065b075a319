"""Durable intake of signed readings, with group commit.

Every request's readings go through one writer thread: it takes what is waiting (from many
concurrent requests), checks it in arrival order against the meters' state as the contract
will (:func:`ledger.intake.classify`), stores the accepted readings and the meters' new state
in **one** database transaction (one fsync), then answers every waiting request. Under load
this turns one fsync per request into one per group, and serialising the checks keeps each
meter's state exact without locks in the database.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from api.models import ApiHousehold, IntakeReading
from api.schemas import ReadingVerdict
from ledger.eip712 import SignedReading
from ledger.intake import MeterRecord, classify
from ledger.models import HouseholdRecord

if TYPE_CHECKING:
    from api.services import Services

log = logging.getLogger("voisin.intake")

#: Most requests folded into one transaction.
MAX_GROUP = 256


def _same(stored: IntakeReading, r: SignedReading) -> bool:
    return (
        stored.import_Wh == r.reading.import_Wh
        and stored.export_Wh == r.reading.export_Wh
        and stored.v == r.v
        and stored.r == "0x" + r.r.hex()
        and stored.s == "0x" + r.s.hex()
    )


def store(services: Services, signed: list[SignedReading], now_slot: int) -> list[ReadingVerdict]:
    """Check ``signed`` and store the accepted ones, in one transaction; a verdict per reading."""
    results: list[ReadingVerdict | None] = [None] * len(signed)
    with Session(services.engine) as session, session.begin():
        meters = {r.reading.meter for r in signed}
        households = {
            h.meter: h
            for h in session.exec(
                select(ApiHousehold).where(col(ApiHousehold.meter).in_(meters)).with_for_update()
            )
        }
        inactive = {
            h.id
            for h in session.exec(
                select(HouseholdRecord).where(
                    col(HouseholdRecord.id).in_([h.id for h in households.values()]),
                    col(HouseholdRecord.active).is_(False),
                )
            )
        }
        stored = {
            (s.meter, s.slot): s
            for s in session.exec(
                select(IntakeReading).where(
                    col(IntakeReading.meter).in_(meters),
                    col(IntakeReading.slot).in_({r.reading.slot for r in signed}),
                )
            )
        }
        fresh: list[int] = []
        first_copy: dict[tuple[str, int], SignedReading] = {}
        for i, r in enumerate(signed):
            key = (r.reading.meter, r.reading.slot)
            held = stored.get(key)
            earlier = first_copy.get(key)
            if held is not None or earlier is not None:
                same = _same(held, r) if held is not None else earlier == r
                results[i] = ReadingVerdict(
                    index=i,
                    status="duplicate" if same else "conflict",
                    code=None if same else "conflicting_reading",
                    message=(
                        "already accepted"
                        if same
                        else f"meter {key[0]} already has a different reading for slot {key[1]}"
                    ),
                )
                continue
            first_copy[key] = r
            fresh.append(i)
        state = {
            meter: MeterRecord(
                household=h.id,
                last_slot=h.meter_last_slot,
                import_Wh=h.meter_import_Wh,
                export_Wh=h.meter_export_Wh,
                active=h.id not in inactive,
            )
            for meter, h in households.items()
        }
        verdicts = classify([signed[i] for i in fresh], services.domain, state, now_slot=now_slot)
        for v in verdicts.verdicts:
            i = fresh[v.index]
            results[i] = ReadingVerdict(
                index=i,
                status="accepted" if v.accepted else "rejected",
                code=None if v.accepted else str(v.code),
                message=v.message,
                flags=[str(f) for f in v.flags],
            )
            if v.accepted:
                rd = signed[i]
                session.add(
                    IntakeReading(
                        household=households[rd.reading.meter].id,
                        meter=rd.reading.meter,
                        slot=rd.reading.slot,
                        import_Wh=rd.reading.import_Wh,
                        export_Wh=rd.reading.export_Wh,
                        v=rd.v,
                        r="0x" + rd.r.hex(),
                        s="0x" + rd.s.hex(),
                        flags=",".join(str(f) for f in v.flags),
                    )
                )
        for meter, record in verdicts.meters.items():
            h = households.get(meter)
            if h is not None and record.last_slot != h.meter_last_slot:
                h.meter_last_slot = record.last_slot
                h.meter_import_Wh = record.import_Wh
                h.meter_export_Wh = record.export_Wh
                session.add(h)
    return [r for r in results if r is not None]


class IntakeWriter:
    """The one thread that writes readings; requests wait on a future for their verdicts."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._queue: queue.Queue[tuple[list[SignedReading], int, Future[list[ReadingVerdict]]]]
        self._queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voisin-intake", daemon=True)
        self._thread.start()

    def submit(self, signed: list[SignedReading], now_slot: int) -> list[ReadingVerdict]:
        future: Future[list[ReadingVerdict]] = Future()
        self._queue.put((signed, now_slot, future))
        return future.result(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                group = [self._queue.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(group)

    def _write(
        self, group: list[tuple[list[SignedReading], int, Future[list[ReadingVerdict]]]]
    ) -> None:
        everything = [r for signed, _, _ in group for r in signed]
        now_slot = min(now for _, now, _ in group)
        try:
            verdicts = store(self.services, everything, now_slot)
        except Exception as exc:
            log.warning("intake transaction failed: %s", exc)
            for _, _, future in group:
                future.set_exception(exc)
            return
        at = 0
        for signed, _, future in group:
            mine = verdicts[at : at + len(signed)]
            future.set_result([v.model_copy(update={"index": v.index - at}) for v in mine])
            at += len(signed)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
