"""Durable intake of signed readings, with group commit.

Every request's readings go through one writer thread: it takes what is waiting (from many
concurrent requests), checks it in arrival order against the meters' state as the contract
will (:func:`ledger.readings.intake.classify`), stores the accepted readings and the meters'
new state in **one** database transaction (one fsync), then answers every waiting request.
Under load this turns one fsync per request into one per group, and serialising the checks
keeps each meter's state exact without locks in the database.

The writer needs only the database and the contract's EIP-712 domain: it never touches the
chain (the outbox, :mod:`api.outbox`, sends what it stored).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, update
from sqlmodel import Session, col, select

from api.models import ApiHousehold, IntakeReading
from api.schemas import ReadingVerdict
from ledger.mirror.models import HouseholdRecord
from ledger.readings.eip712 import SignedReading
from ledger.readings.intake import Code, MeterRecord, Verdict, classify

log = logging.getLogger("voisin.intake")

#: Most requests folded into one transaction.
MAX_GROUP = 256

#: A (meter address, slot) pair: what the contract and the intake table count once.
Key = tuple[str, int]


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


def _queued_row(r: SignedReading, v: Verdict, household: int) -> dict[str, object]:
    """The ``intake_reading`` row of an accepted reading, queued for the outbox."""
    return {
        "household": household,
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


@dataclass
class _Triage:
    """What :func:`_triage` makes of one group's verdicts."""

    #: The answers known without the database: accepted, rejected, or a repeat of a reading
    #: accepted earlier in this same group.
    verdicts: list[ReadingVerdict] = field(default_factory=list)
    #: The accepted readings' rows, to insert.
    rows: list[dict[str, object]] = field(default_factory=list)
    #: Readings for a slot the meter already has: a retry of a stored reading, or a
    #: conflicting one; only the stored row can tell (:meth:`IntakeWriter._judge_repeats`).
    repeats: list[tuple[Verdict, SignedReading]] = field(default_factory=list)


def _triage(
    signed: list[SignedReading], verdicts: Iterable[Verdict], state: Mapping[str, MeterRecord]
) -> _Triage:
    """Sort ``classify``'s verdicts (input order) into answers, rows to store and repeats."""
    out = _Triage()
    first_copy: dict[Key, SignedReading] = {}  # the accepted reading of each key in the group
    for v in verdicts:
        r = signed[v.index]
        key = (r.reading.meter, r.reading.slot)
        if v.accepted:
            first_copy[key] = r
            out.rows.append(_queued_row(r, v, state[r.reading.meter].household))
        elif v.code in (Code.DUPLICATE, Code.STALE_SLOT):
            if key in first_copy:
                out.verdicts.append(_verdict(v.index, first_copy[key] == r, *key))
            else:
                out.repeats.append((v, r))
            continue
        out.verdicts.append(
            ReadingVerdict(
                index=v.index,
                status="accepted" if v.accepted else "rejected",
                code=None if v.accepted else str(v.code),
                message=v.message,
                flags=[str(f) for f in v.flags],
            )
        )
    return out


def _changed_meters(
    before: Mapping[str, MeterRecord], after: Mapping[str, MeterRecord]
) -> dict[str, MeterRecord]:
    """The meters whose last slot moved (an accepted reading), with their new state."""
    return {
        m: rec for m, rec in after.items() if m in before and rec.last_slot != before[m].last_slot
    }


class IntakeWriter:
    """The one thread that writes readings; requests wait on a future for their verdicts."""

    def __init__(self, engine: Engine, domain: bytes) -> None:
        """``domain`` is the contract's EIP-712 domain separator, which every reading signs."""
        self.engine = engine
        self.domain = domain
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
        """Check ``signed`` and store the accepted ones in one transaction; a verdict each
        (in input order). Raises :class:`StaleCache` (having stored nothing) if another
        writer moved one of the meters."""
        meters = {r.reading.meter for r in signed}
        with Session(self.engine) as session, session.begin():
            self._load_meters(session, meters - self._meters.keys())
            state = self._meter_state(session, meters)
            result = classify(signed, self.domain, state, now_slot=now_slot)
            triage = _triage(signed, result.verdicts, state)
            verdicts = triage.verdicts + self._judge_repeats(session, triage.repeats)
            if triage.rows:
                session.execute(insert(IntakeReading), triage.rows)
            changed = _changed_meters(state, result.meters)
            self._advance_meters(session, state, changed)
        for meter, rec in changed.items():
            self._meters[meter] = replace(rec, active=True)
        verdicts.sort(key=lambda v: v.index)
        return verdicts

    def _load_meters(self, session: Session, missing: set[str]) -> None:
        """Cache the stored state of the ``missing`` meters (unknown meters stay absent)."""
        if not missing:
            return
        for h in session.exec(select(ApiHousehold).where(col(ApiHousehold.meter).in_(missing))):
            self._meters[h.meter] = MeterRecord(
                h.id, h.meter_last_slot, h.meter_import_Wh, h.meter_export_Wh
            )

    def _meter_state(self, session: Session, meters: set[str]) -> dict[str, MeterRecord]:
        """The known ``meters``' cached state, with whether their household is active now
        (the operator deactivates through the chain, so the mirror says, not the cache)."""
        inactive = set(
            session.exec(select(HouseholdRecord.id).where(col(HouseholdRecord.active).is_(False)))
        )
        return {
            m: replace(self._meters[m], active=self._meters[m].household not in inactive)
            for m in meters
            if m in self._meters
        }

    def _judge_repeats(
        self, session: Session, repeats: list[tuple[Verdict, SignedReading]]
    ) -> list[ReadingVerdict]:
        """Answer readings for an older or equal slot: a retry of a stored reading is a
        duplicate, a different one a conflict, and one never stored keeps its rejection."""
        if not repeats:
            return []
        stored = {
            (x.meter, x.slot): x
            for x in session.exec(
                select(IntakeReading).where(
                    col(IntakeReading.meter).in_({r.reading.meter for _, r in repeats}),
                    col(IntakeReading.slot).in_({r.reading.slot for _, r in repeats}),
                )
            )
        }
        verdicts: list[ReadingVerdict] = []
        for v, r in repeats:
            key = (r.reading.meter, r.reading.slot)
            held = stored.get(key)
            if held is not None:
                verdicts.append(_verdict(v.index, _same(held, r), *key))
            else:
                verdicts.append(
                    ReadingVerdict(
                        index=v.index, status="rejected", code=str(v.code), message=v.message
                    )
                )
        return verdicts

    def _advance_meters(
        self,
        session: Session,
        before: Mapping[str, MeterRecord],
        changed: Mapping[str, MeterRecord],
    ) -> None:
        """Store the ``changed`` meters' new state, each only if the database still holds
        the state this cache started from; otherwise roll back and raise :class:`StaleCache`."""
        for meter, rec in changed.items():
            was = before[meter]
            done = session.execute(
                update(ApiHousehold)
                .where(
                    col(ApiHousehold.id) == was.household,
                    # A rotated-away meter no longer matches: its cached state is stale.
                    col(ApiHousehold.meter) == meter,
                    col(ApiHousehold.meter_last_slot) == was.last_slot,
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

    def forget(self, meter: str) -> None:
        """Drop a meter's cached state (after a rotation); the next reading reloads it."""
        self._meters.pop(meter, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
