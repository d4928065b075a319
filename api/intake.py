"""Durable intake of signed readings, with group commit.

Every request's readings go through one writer thread: it takes what is waiting (from many
concurrent requests), checks it in arrival order against the meters' state as the contract
will (:func:`ledger.readings.intake.classify`), stores the accepted readings and the meters' new
state
in **one** database transaction (one fsync), then answers every waiting request. Under load
this turns one fsync per request into one per group, and serialising the checks keeps each
meter's state exact without locks in the database.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from api.models import ApiHousehold, IntakeReading
from api.schemas import ReadingVerdict
from ledger.mirror.models import HouseholdRecord
from ledger.readings.eip712 import SignedReading
from ledger.readings.intake import Code, MeterRecord, Verdict, classify

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


class StaleCache(Exception):
    """Another writer moved a meter's state under this process's cache: load it and retry."""


def _verdict(i: int, same: bool, meter: str, slot: int) -> ReadingVerdict:
    return ReadingVerdict(
        index=i,
        status="duplicate" if same else "conflict",
        code=None if same else "conflicting_reading",
        message=(
            "already accepted"
            if same
            else f"meter {meter} already has a different reading for slot {slot}"
        ),
    )


class IntakeWriter:
    """The one thread that writes readings; requests wait on a future for their verdicts."""

    def __init__(self, services: Services) -> None:
        self.services = services
        #: Meter state as the last accepted reading left it. This thread is the only writer
        #: in this process; the database update is conditional on the cached slot, so a second
        #: process writing the same meters is detected (StaleCache) rather than overwritten.
        self._meters: dict[str, MeterRecord] = {}
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
            for attempt in range(3):
                try:
                    verdicts = self.store(everything, now_slot)
                    break
                except StaleCache:
                    if attempt == 2:
                        raise
        except Exception as exc:
            self._meters.clear()  # whatever happened, reload from the database next time
            log.warning("intake transaction failed: %s", exc)
            for _, _, future in group:
                future.set_exception(exc)
            return
        at = 0
        for signed, _, future in group:
            mine = verdicts[at : at + len(signed)]
            future.set_result([v.model_copy(update={"index": v.index - at}) for v in mine])
            at += len(signed)

    def store(self, signed: list[SignedReading], now_slot: int) -> list[ReadingVerdict]:
        """Check ``signed`` and store the accepted ones in one transaction; a verdict each."""
        engine = self.services.engine
        meters = {r.reading.meter for r in signed}
        with Session(engine) as session, session.begin():
            missing = meters - self._meters.keys()
            if missing:
                for h in session.exec(
                    select(ApiHousehold).where(col(ApiHousehold.meter).in_(missing))
                ):
                    self._meters[h.meter] = MeterRecord(
                        h.id, h.meter_last_slot, h.meter_import_Wh, h.meter_export_Wh
                    )
            inactive = set(
                session.exec(
                    select(HouseholdRecord.id).where(col(HouseholdRecord.active).is_(False))
                )
            )
            state = {
                m: replace(self._meters[m], active=self._meters[m].household not in inactive)
                for m in meters
                if m in self._meters
            }
            result = classify(signed, self.services.domain, state, now_slot=now_slot)
            verdicts: list[ReadingVerdict] = []
            first_copy: dict[tuple[str, int], SignedReading] = {}
            again: list[tuple[Verdict, SignedReading]] = []
            rows: list[dict[str, object]] = []
            for v in result.verdicts:
                r = signed[v.index]
                key = (r.reading.meter, r.reading.slot)
                if v.accepted:
                    first_copy[key] = r
                    rows.append(
                        {
                            "household": state[r.reading.meter].household,
                            "meter": r.reading.meter,
                            "slot": r.reading.slot,
                            "import_Wh": r.reading.import_Wh,
                            "export_Wh": r.reading.export_Wh,
                            "v": r.v,
                            "r": "0x" + r.r.hex(),
                            "s": "0x" + r.s.hex(),
                            "flags": ",".join(str(f) for f in v.flags),
                            "status": "queued",
                            "received_at": datetime.now(UTC),
                        }
                    )
                elif v.code in (Code.DUPLICATE, Code.STALE_SLOT):
                    if key in first_copy:
                        verdicts.append(_verdict(v.index, first_copy[key] == r, *key))
                        continue
                    again.append((v, r))
                    continue
                verdicts.append(
                    ReadingVerdict(
                        index=v.index,
                        status="accepted" if v.accepted else "rejected",
                        code=None if v.accepted else str(v.code),
                        message=v.message,
                        flags=[str(f) for f in v.flags],
                    )
                )
            if again:
                # An older or equal slot: a retry of a stored reading, or a conflicting one.
                stored = {
                    (x.meter, x.slot): x
                    for x in session.exec(
                        select(IntakeReading).where(
                            col(IntakeReading.meter).in_({r.reading.meter for _, r in again}),
                            col(IntakeReading.slot).in_({r.reading.slot for _, r in again}),
                        )
                    )
                }
                for v, r in again:
                    key = (r.reading.meter, r.reading.slot)
                    held = stored.get(key)
                    if held is not None:
                        verdicts.append(_verdict(v.index, _same(held, r), *key))
                    else:
                        verdicts.append(
                            ReadingVerdict(
                                index=v.index,
                                status="rejected",
                                code=str(v.code),
                                message=v.message,
                            )
                        )
            if rows:
                session.execute(insert(IntakeReading), rows)
            changed = {
                m: rec
                for m, rec in result.meters.items()
                if m in state and rec.last_slot != state[m].last_slot
            }
            for meter, rec in changed.items():
                before = state[meter]
                done = session.execute(
                    update(ApiHousehold)
                    .where(
                        col(ApiHousehold.id) == before.household,
                        # A rotated-away meter no longer matches: its cached state is stale.
                        col(ApiHousehold.meter) == meter,
                        col(ApiHousehold.meter_last_slot) == before.last_slot,
                    )
                    .values(
                        meter_last_slot=rec.last_slot,
                        meter_import_Wh=rec.import_Wh,
                        meter_export_Wh=rec.export_Wh,
                    )
                )
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    session.rollback()
                    self._meters.pop(meter, None)
                    raise StaleCache(meter)
        for meter, rec in changed.items():
            self._meters[meter] = replace(rec, active=True)
        verdicts.sort(key=lambda v: v.index)
        return verdicts

    def forget(self, meter: str) -> None:
        """Drop a meter's cached state (after a rotation); the next reading reloads it."""
        self._meters.pop(meter, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
