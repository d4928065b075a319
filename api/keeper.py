"""The keeper: the feeder's power flows and the operator's audit, computed in the background
after settlement and kept in the database, so that the operator's page only reads them.

Running the audit and the feeder on every view of the page made it take seconds with three
households (the audit re-reads the chain's whole history; a power flow costs about a tenth of
a second per slot). The keeper runs beside the outbox, in its own thread, woken when the
outbox settled a slot and every :data:`POLL_S` seconds otherwise. Each pass:

1. **Feeder, incrementally.** Every settled slot without a kept power flow gets one
   (:func:`ledger.audit.feeder.run_feeder` over the slot's committed readings, the
   households placed as the audit places them), newest first, :data:`FEEDER_BATCH` slots per
   pass; a slot whose readings were mirrored after its power flow was kept (a late reading)
   is computed again. One row per slot in ``kept_feeder_slot``.
2. **Audit.** When a slot was settled since the last kept audit, or the last one is older
   than :data:`REFRESH_S` (a top-up or an order moves money between settlements, and a
   database changed behind the ledger's back moves nothing), the same audit as
   ``GET /audit/report`` runs over every slot, without the feeder: mirror, then read the
   chain and the database under the chain's lock, then check without it (in a child process
   when the chain has a URL, :mod:`api.audit_process`: the audit's working set grows with the
   history, and the server would keep the memory of its largest run). Its report is kept
   with the block and the last settled slot it covers, and when it finished
   (``kept_audit``); a run that failed is kept with why. A run starts at least
   :data:`MIN_GAP_S` after the last one ended, and at least twice as long as the last one
   took: the audit never takes more than a third of the keeper's time, however fast slots
   are settled. No audit runs in a restored database until the restore's recovery has taken
   back what the chain did since the backup (it would report those gaps).

``GET /audit/report`` still computes a fresh report on every call; the keeper only spares the
page. What the page shows of the audit is the latest kept run, with its time.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from api.audit_process import AuditRun
from api.chain_gate import ChainGate
from api.models import KeptAudit, KeptFeederSlot, KeptState
from ledger.audit.feeder import DEFAULT_NETWORK
from ledger.mirror.models import HouseholdRecord, ReadingRecord, SlotOutcomeRecord

log = logging.getLogger("voisin.keeper")

#: Seconds between passes when nothing wakes the keeper.
POLL_S = 2.0
#: Settled slots given a power flow per pass (about 0.1 s each), newest first.
FEEDER_BATCH = 96
#: A kept audit older than this (seconds) is run again even if no slot was settled since:
#: top-ups and orders move money between settlements, and the audit is what notices a
#: database changed behind the ledger's back.
REFRESH_S = 900
#: Seconds at least between the end of one audit run and the start of the next.
MIN_GAP_S = 5.0
#: Findings kept for the page (every finding is in the kept report, for the downloads).
FINDINGS_SHOWN = 100
#: Audit runs kept (the newest successful one is always kept too).
KEEP_RUNS = 3


class AuditRunner(Protocol):
    def __call__(
        self, *, started: Callable[[subprocess.Popen[bytes]], None] | None = None
    ) -> AuditRun: ...


_CURSOR = "feeder_reading_id"
_MAPPING = "feeder_mapping"
_NETWORK = "feeder_network"


@dataclass
class KeepResult:
    """What one pass did: the slots whose power flow it kept, and whether it audited."""

    feeder_slots: list[int] = field(default_factory=list)
    audited: bool = False
    problem: str | None = None


def _state(session: Session, key: str) -> str | None:
    row = session.get(KeptState, key)
    return None if row is None else row.value


def _set_state(session: Session, key: str, value: str) -> None:
    row = session.get(KeptState, key) or KeptState(key=key, value=value)
    row.value = value
    session.add(row)


def feeder_slots_due(engine: Engine, limit: int = FEEDER_BATCH) -> tuple[list[int], int]:
    """The settled slots whose power flow is missing or older than a reading of theirs
    (newest first, at most ``limit`` missing ones), and the newest reading id seen."""
    with Session(engine) as session:
        cursor = int(_state(session, _CURSOR) or 0)
        top = int(session.exec(select(func.max(ReadingRecord.id))).one() or 0)
        touched = set(
            session.exec(
                select(ReadingRecord.slot).where(col(ReadingRecord.id) > cursor).distinct()
            )
        )
        kept = set(session.exec(select(KeptFeederSlot.slot)))
        settled = set(
            session.exec(
                select(SlotOutcomeRecord.slot).where(SlotOutcomeRecord.status == "settled")
            )
        )
    stale = sorted(touched & kept, reverse=True)
    missing = sorted(settled - kept, reverse=True)[:limit]
    return stale + missing, top


def compute_feeder(
    engine: Engine, slots: Iterable[int], network: str = DEFAULT_NETWORK
) -> list[KeptFeederSlot]:
    """The power flow of each of ``slots`` from its committed readings (the audit's feeder
    check, slot by slot): every household placed as the audit places them (ascending ids on
    the network's house connections), each slot's import a load and its export a PV
    injection."""
    from ledger.audit.feeder import run_feeder

    wanted = sorted(set(slots))
    if not wanted:
        return []
    with Session(engine) as session:
        households = sorted(session.exec(select(HouseholdRecord.id)))
        rows = session.exec(
            select(
                ReadingRecord.slot,
                ReadingRecord.household,
                ReadingRecord.import_delta_Wh,
                ReadingRecord.export_delta_Wh,
            ).where(col(ReadingRecord.slot).in_(wanted))
        ).all()
    metered: dict[int, dict[int, tuple[int, int]]] = {s: {} for s in wanted}
    for slot, household, imported, exported in rows:
        metered[slot][household] = (imported, exported)
    result = run_feeder(metered, households, network)
    now = int(time.time())
    findings: dict[int, list[dict[str, object]]] = {}
    for f in result.findings:
        if f.slot is not None:
            findings.setdefault(f.slot, []).append(f.as_dict())
    kept = []
    for i, slot in enumerate(result.slots):
        found = findings.get(slot, [])
        kept.append(
            KeptFeederSlot(
                slot=slot,
                network=network,
                households=len(households),
                readings=len(metered[slot]),
                vm_min_pu=result.vm_min_pu[i],
                vm_max_pu=result.vm_max_pu[i],
                max_line_loading_percent=result.max_line_loading_percent[i],
                trafo_loading_percent=result.trafo_loading_percent[i],
                findings=len(found),
                findings_json=json.dumps(found, sort_keys=True, default=str),
                computed_s=now,
            )
        )
    kept_mapping = {str(h): bus for h, bus in sorted(result.mapping.items())}
    with Session(engine) as session, session.begin():
        for row in kept:
            session.merge(row)
        if kept_mapping:
            _set_state(session, _MAPPING, json.dumps(kept_mapping, sort_keys=True))
            _set_state(session, _NETWORK, network)
    return kept


def kept_mapping(engine: Engine) -> tuple[str, dict[int, str]]:
    """The feeder network and the household -> bus placement of the last kept power flow."""
    with Session(engine) as session:
        network = _state(session, _NETWORK) or DEFAULT_NETWORK
        mapping = json.loads(_state(session, _MAPPING) or "{}")
    return network, {int(h): str(bus) for h, bus in mapping.items()}


class Keeper:
    """Keeps the feeder's power flows and the audit for the operator's page (see the module)."""

    def __init__(
        self,
        gate: ChainGate,
        *,
        engine: Engine,
        audit: AuditRunner,
        feeder: Callable[[list[int]], list[int]] | None = None,
        network: str = DEFAULT_NETWORK,
        poll_s: float = POLL_S,
        whole: Callable[[], bool] = lambda: True,
    ) -> None:
        """``audit`` runs the operator's audit over every slot (``Services.audit``: in a
        child process when the chain has a URL); it is told the child, so that :meth:`stop`
        can end it. ``feeder`` computes and keeps the power flows of the slots given, answering
        the slots kept (``FeederWorker.compute``: in a worker process); by default
        :func:`compute_feeder` here. ``whole`` says whether the database holds what the chain
        did: a restored one does not until the restore's recovery has taken it back, and its
        audit would report the gaps the recovery is about to fill, so none is due until then."""
        self.gate = gate
        self.engine = engine
        self.run_audit = audit
        self.run_feeder = feeder or (
            lambda slots: [r.slot for r in compute_feeder(engine, slots, network)]
        )
        self._child: subprocess.Popen[bytes] | None = None
        self.network = network
        self.poll_s = poll_s
        self.whole = whole
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ───────────────────────────── The thread ─────────────────────────────

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="voisin-keeper", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now (a slot was settled)."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()  # an audit in its own process; the next start audits again
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except Exception:  # keep the thread alive; the next pass retries
                log.exception("keeper pass failed")

    # ───────────────────────────── A pass ─────────────────────────────

    def run_once(self, *, force_audit: bool = False) -> KeepResult:
        """One pass: the power flows due, then the audit if due (or ``force_audit``)."""
        with self._lock:
            result = KeepResult()
            due, top = feeder_slots_due(self.engine)
            if due:
                result.feeder_slots = self.run_feeder(due)
            with Session(self.engine) as session, session.begin():
                _set_state(session, _CURSOR, str(top))
            if self._stop.is_set():
                return result
            if force_audit or self.audit_due():
                result.audited = True
                result.problem = self.audit()
            return result

    def catch_up(self) -> KeepResult:
        """Every power flow due and a fresh audit, now (tests, and a server's first start)."""
        while True:
            due, _ = feeder_slots_due(self.engine)
            if not due:
                break
            self.run_once()
        return self.run_once(force_audit=True)

    def audit_due(self, now: float | None = None) -> bool:
        """Whether the audit should run: none kept yet, a slot settled since the last one, or
        the last one older than :data:`REFRESH_S`; never sooner than :data:`MIN_GAP_S`, nor
        than twice its own duration, after the last; and not while the database is not whole
        (a restore's recovery is not done)."""
        if not self.whole():
            return False
        now = time.time() if now is None else now
        with Session(self.engine) as session:
            last = session.exec(
                select(KeptAudit.started_s, KeptAudit.finished_s, KeptAudit.last_slot).order_by(
                    col(KeptAudit.id).desc()
                )
            ).first()
            settled = session.exec(
                select(func.max(SlotOutcomeRecord.slot)).where(
                    SlotOutcomeRecord.status == "settled"
                )
            ).one()
        if last is None:
            return True
        started, finished, covered = last
        if now - finished < max(MIN_GAP_S, 2 * (finished - started)):
            return False
        return settled != covered or now - started >= REFRESH_S

    def audit(self) -> str | None:
        """Run the audit (without the feeder) and keep its report; the problem if it failed."""
        started = int(time.time())

        def started_child(child: subprocess.Popen[bytes]) -> None:
            self._child = child

        try:
            run = self.run_audit(started=started_child)
        except Exception as exc:
            if self._stop.is_set():
                return None
            problem = f"{type(exc).__name__}: {exc}"
            log.warning("the kept audit failed: %s", problem)
            self._keep(KeptAudit(started_s=started, finished_s=int(time.time()), problem=problem))
            return problem
        finally:
            self._child = None
        if self._stop.is_set():
            return None
        answer = run.report
        self._keep(
            KeptAudit(
                started_s=started,
                finished_s=int(time.time()),
                head_block=run.head_block,
                mirror_block=run.mirror_block,
                last_slot=run.last_settled_slot,
                ok=bool(answer["ok"]),
                findings=len(answer["findings"]),
                summary_json=json.dumps(
                    {"summary": answer["summary"], "checks": answer["checks"]}, default=str
                ),
                findings_json=json.dumps(answer["findings"][:FINDINGS_SHOWN], default=str),
                report_json=json.dumps(answer, default=str),
            )
        )
        return None

    def _keep(self, run: KeptAudit) -> None:
        """Store ``run``; drop runs beyond the newest :data:`KEEP_RUNS` and the newest
        successful one."""
        with Session(self.engine) as session, session.begin():
            session.add(run)
            session.flush()
            newest = list(
                session.exec(
                    select(KeptAudit.id).order_by(col(KeptAudit.id).desc()).limit(KEEP_RUNS)
                )
            )
            good = session.exec(
                select(KeptAudit.id)
                .where(col(KeptAudit.problem).is_(None))
                .order_by(col(KeptAudit.id).desc())
            ).first()
            keep = {*newest, *([good] if good is not None else [])}
            session.execute(delete(KeptAudit).where(col(KeptAudit.id).not_in(keep)))
