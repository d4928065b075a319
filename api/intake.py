"""Durable intake of signed readings, with group commit.

Every request's readings go through one writer thread: it takes what is waiting (from many
concurrent requests), checks it in arrival order against the meters' state as the contract
will (:func:`ledger.readings.intake.classify`), stores the accepted readings and the meters'
new state in **one** database transaction (one fsync), then answers every waiting request.
Under load this turns one fsync per request into one per group, and serialising the checks
keeps each meter's state exact without locks in the database.

One request's bad reading never costs another request anything. If the group's transaction
fails (the database refused one row: a unique violation, a value it cannot hold, any error on
one item), nothing of it is kept, and each request is stored again on its own; a request that
fails alone again is stored reading by reading, each in a savepoint, so that its good readings
are kept and each reading the database refused is answered ``rejected`` with the code
``not_stored`` (:func:`_not_stored`). A refused reading does not move its meter's state: the
meter's next reading is checked against its last stored one, and the refused one may be sent
again. Only a failure of the whole database (it cannot be reached, or cannot commit) fails a
request, and only that request.

The writer needs only the database and the contract's EIP-712 domain: it never touches the
chain (the outbox, :mod:`api.outbox`, sends what it stored).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, text, update
from sqlmodel import Session, col, select

from api.models import ApiHousehold, IntakeReading
from api.schemas import ReadingVerdict
from api.sqlite_pragmas import begin_writing
from ledger.mirror.models import HouseholdRecord
from ledger.readings.eip712 import SignedReading
from ledger.readings.intake import Code, MeterRecord, Verdict, classify

log = logging.getLogger("voisin.intake")

#: Most requests folded into one transaction.
MAX_GROUP = 256

#: A (meter address, slot) pair: what the contract and the intake table count once.
Key = tuple[str, int]

#: The verdict code of a reading the database refused to store (:func:`_not_stored`).
NOT_STORED = "not_stored"

#: A request waiting for its verdicts: its readings, the slot in progress, its answer.
Request = tuple[list[SignedReading], int, "Future[list[ReadingVerdict]]"]


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


def _not_stored(i: int, meter: str, slot: int, exc: BaseException) -> ReadingVerdict:
    """The verdict of a reading the database refused to store (the error's details go to the
    log, not to the client, who is not authenticated)."""
    return ReadingVerdict(
        index=i,
        status="rejected",
        code=NOT_STORED,
        message=(
            f"the reading of meter {meter} for slot {slot} could not be stored (the database "
            f"refused it: {type(exc).__name__}); nothing of it was kept and the other readings "
            "were not affected. Send it again; if it is refused again, tell the operator"
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
        self._queue: queue.Queue[Request] = queue.Queue()
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
            try:
                self._write(group)
            except Exception as exc:  # a bug, not the database: keep the one writer alive
                log.exception("intake writer failed on a group of %d requests", len(group))
                self._meters.clear()
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)

    def _write(self, group: list[Request]) -> None:
        """Store ``group`` in one transaction; if that fails, each request on its own."""
        everything = [r for signed, _, _ in group for r in signed]
        now_slot = min(now for _, now, _ in group)
        try:
            verdicts = self._retrying(lambda: self.store(everything, now_slot))
        except Exception as exc:
            self._meters.clear()  # whatever happened, reload from the database next time
            if len(group) == 1:
                self._alone(group[0], tried=True)
                return
            log.warning(
                "intake group of %d requests failed (%s: %s); storing each on its own",
                len(group),
                type(exc).__name__,
                exc,
            )
            for request in group:
                self._alone(request)
            return
        at = 0
        for signed, _, future in group:
            mine = verdicts[at : at + len(signed)]
            future.set_result([v.model_copy(update={"index": v.index - at}) for v in mine])
            at += len(signed)

    def _alone(self, request: Request, *, tried: bool = False) -> None:
        """Store one request in its own transaction, else reading by reading; answer it.
        ``tried``: its own transaction already failed (it was a group of one)."""
        signed, now_slot, future = request
        try:
            verdicts = None if tried else self._whole(signed, now_slot)
            if verdicts is None:
                verdicts = self.store_each(signed, now_slot)
        except Exception as exc:  # the database as a whole failed: this request only
            self._meters.clear()
            log.warning("intake transaction failed: %s", exc)
            future.set_exception(exc)
            return
        future.set_result(verdicts)

    def _whole(self, signed: list[SignedReading], now_slot: int) -> list[ReadingVerdict] | None:
        """One request's readings in one transaction, or None if that failed."""
        try:
            return self._retrying(lambda: self.store(signed, now_slot))
        except Exception as exc:
            self._meters.clear()
            log.warning(
                "intake request of %d readings failed (%s: %s); storing each on its own",
                len(signed),
                type(exc).__name__,
                exc,
            )
            return None

    @staticmethod
    def _retrying(attempt: Callable[[], list[ReadingVerdict]]) -> list[ReadingVerdict]:
        """Run ``attempt`` again (up to three times in all) while the cache proves stale."""
        for tries in range(3):
            try:
                return attempt()
            except StaleCache:
                if tries == 2:
                    raise
        raise AssertionError("unreachable")

    def store(self, signed: list[SignedReading], now_slot: int) -> list[ReadingVerdict]:
        """Check ``signed`` and store the accepted ones in one transaction; a verdict each
        (in input order). Raises :class:`StaleCache` (having stored nothing) if another
        writer moved one of the meters, and the database's error if it refused any row."""
        with Session(self.engine) as session, session.begin():
            verdicts, changed = self._store_in(session, signed, now_slot)
        self._remember(changed)
        return verdicts

    def store_each(self, signed: list[SignedReading], now_slot: int) -> list[ReadingVerdict]:
        """Store ``signed`` one reading at a time, each in a savepoint of one transaction, in
        the order :func:`classify` takes them (by slot, then input order). A reading the
        database refuses is answered :func:`_not_stored` and leaves its meter's state as it
        was; the others are stored. Raises only if the database as a whole fails."""
        verdicts: list[ReadingVerdict | None] = [None] * len(signed)
        order = sorted(range(len(signed)), key=lambda i: (signed[i].reading.slot, i))
        try:
            with Session(self.engine) as session, session.begin():
                begin_writing(session)  # so that the savepoints nest inside it
                for i in order:
                    verdicts[i] = self._store_one(session, signed[i], i, now_slot)
        except Exception:
            self._meters.clear()  # _store_one cached states this transaction never committed
            raise
        return [v for v in verdicts if v is not None]

    def _store_one(
        self, session: Session, one: SignedReading, i: int, now_slot: int
    ) -> ReadingVerdict:
        """One reading in a savepoint of ``session``'s transaction (see :meth:`store_each`)."""
        meter, slot = one.reading.meter, one.reading.slot
        for tries in range(3):
            try:
                with session.begin_nested():
                    (verdict,), changed = self._store_in(session, [one], now_slot)
            except StaleCache:
                if tries < 2:
                    continue
                return _not_stored(i, meter, slot, StaleCache(meter))
            except Exception as exc:
                log.warning("reading of meter %s for slot %s not stored: %s", meter, slot, exc)
                self._meters.pop(meter, None)
                # The savepoint is rolled back; if the connection itself is gone this raises,
                # and the whole request fails rather than answer "not stored" for everything.
                session.execute(text("SELECT 1"))
                return _not_stored(i, meter, slot, exc)
            # Within the transaction, the next reading of this meter follows this one.
            self._remember(changed)
            return verdict.model_copy(update={"index": i})
        raise AssertionError("unreachable")

    def _store_in(
        self, session: Session, signed: list[SignedReading], now_slot: int
    ) -> tuple[list[ReadingVerdict], dict[str, MeterRecord]]:
        """Check ``signed``, insert the accepted ones and move their meters' state, in
        ``session``'s transaction: the verdicts (input order) and the meters it moved."""
        meters = {r.reading.meter for r in signed}
        self._load_meters(session, meters - self._meters.keys())
        state = self._meter_state(session, meters)
        result = classify(signed, self.domain, state, now_slot=now_slot)
        triage = _triage(signed, result.verdicts, state)
        verdicts = triage.verdicts + self._judge_repeats(session, triage.repeats)
        if triage.rows:
            session.execute(insert(IntakeReading), triage.rows)
        changed = _changed_meters(state, result.meters)
        self._advance_meters(session, state, changed)
        verdicts.sort(key=lambda v: v.index)
        return verdicts, changed

    def _remember(self, changed: Mapping[str, MeterRecord]) -> None:
        for meter, rec in changed.items():
            self._meters[meter] = replace(rec, active=True)

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
        the state this cache started from; otherwise raise :class:`StaleCache`."""
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
                # The caller's transaction (or savepoint) rolls back as this propagates.
                self._meters.pop(meter, None)
                raise StaleCache(meter)

    def forget(self, meter: str) -> None:
        """Drop a meter's cached state (after a rotation); the next reading reloads it."""
        self._meters.pop(meter, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
