"""The operator page's audit and feeder sections, read from what :mod:`api.keeper` kept after
settlement: the latest audit run (its status, first findings, when it ran and the slot it
covers) and each settled slot's power flow. The page computes neither: it only reads.

The downloads rebuild the kept report (:func:`kept_report`) with the kept power flows as its
feeder check, and write it as ``GET /audit/report?feeder=true`` would have answered when the
audit ran, through :mod:`ledger.audit.render`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from api.keeper import kept_mapping
from api.models import KeptAudit, KeptFeederSlot
from api.web import views
from ledger.audit.energy import SlotAggregate
from ledger.audit.feeder import MAX_LOADING_PERCENT, V_MAX_PU, V_MIN_PU, FeederResult
from ledger.audit.findings import CHECKS, Finding
from ledger.audit.forwards import ForwardSummary
from ledger.audit.report import AuditReport
from ledger.mirror.models import ReadingRecord, SlotOutcomeRecord

#: What a kept audit can say on the page.
OK, FAILED, EMPTY, PENDING, UNAVAILABLE = "ok", "failed", "empty", "pending", "unavailable"
#: The report's counts, apart from its other summary fields (see ``AuditReport.as_dict``).
_COUNTS = ("slots", "households", "readings", "fills", "sealed_slots")


@dataclass(frozen=True, slots=True)
class AuditView:
    """The audit as the page shows it.

    ``state``: ``ok`` (no finding), ``failed`` (findings), ``empty`` (nothing to audit yet: no
    reading, fill nor settled slot), ``pending`` (the ledger has slots but no audit has run
    yet) or ``unavailable`` (no run succeeded; ``problem`` says why). ``finished_s`` is when
    the shown run ended, ``last_slot`` the last settled slot it covered; ``behind`` is true when
    a newer slot was settled since (its audit is on its way). ``problem`` is also set when the
    newest run failed after an older one succeeded (the older one is shown)."""

    state: str
    finished_s: int | None = None
    last_slot: int | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    total_findings: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    behind: bool = False


def kept_view(engine: Engine) -> AuditView:
    """The latest kept audit run as the page shows it (reads neither the chain nor the report)."""
    columns = (
        col(KeptAudit.id),
        col(KeptAudit.finished_s),
        col(KeptAudit.last_slot),
        col(KeptAudit.ok),
        col(KeptAudit.findings),
        col(KeptAudit.problem),
        col(KeptAudit.summary_json),
        col(KeptAudit.findings_json),
    )
    with Session(engine) as session:
        newest = session.execute(sa_select(*columns).order_by(col(KeptAudit.id).desc())).first()
        good = session.execute(
            sa_select(*columns)
            .where(col(KeptAudit.problem).is_(None))
            .order_by(col(KeptAudit.id).desc())
        ).first()
        settled = session.exec(
            select(func.max(SlotOutcomeRecord.slot)).where(SlotOutcomeRecord.status == "settled")
        ).one()
        metered = session.exec(select(ReadingRecord.id).limit(1)).first() is not None
    problem = newest.problem if newest is not None and newest.problem is not None else None
    if good is None:
        if not metered and settled is None:
            return AuditView(EMPTY, problem=problem)
        return AuditView(UNAVAILABLE if problem else PENDING, problem=problem)
    kept = json.loads(good.summary_json)
    summary: dict[str, Any] = kept.get("summary", {})
    shown = json.loads(good.findings_json)
    empty = not any(summary.get(k) for k in ("slots", "readings", "fills")) and settled is None
    state = (EMPTY if empty else OK) if good.ok else FAILED
    return AuditView(
        state,
        finished_s=good.finished_s,
        last_slot=good.last_slot,
        findings=[f for f in shown if isinstance(f, dict)],
        total_findings=good.findings,
        summary=summary,
        checks=kept.get("checks", {}),
        problem=problem,
        behind=settled is not None and (good.last_slot is None or settled > good.last_slot),
    )


@dataclass(frozen=True, slots=True)
class FeederRow:
    """One settled slot's kept power flow (pu and %; ``None`` where it did not converge).
    ``loading_percent`` is the highest of the lines' and the transformer's."""

    slot: int
    v_min_pu: float | None
    v_max_pu: float | None
    line_percent: float | None = None
    trafo_percent: float | None = None
    findings: int = 0

    @property
    def loading_percent(self) -> float | None:
        known = [v for v in (self.line_percent, self.trafo_percent) if v is not None]
        return max(known) if known else None


def feeder_rows(engine: Engine, first: int, last: int) -> list[FeederRow]:
    """The kept power flows of the slots ``first``..``last``, in slot order."""
    with Session(engine) as session:
        rows = session.execute(
            sa_select(
                col(KeptFeederSlot.slot),
                col(KeptFeederSlot.vm_min_pu),
                col(KeptFeederSlot.vm_max_pu),
                col(KeptFeederSlot.max_line_loading_percent),
                col(KeptFeederSlot.trafo_loading_percent),
                col(KeptFeederSlot.findings),
            )
            .where(col(KeptFeederSlot.slot) >= first, col(KeptFeederSlot.slot) <= last)
            .order_by(col(KeptFeederSlot.slot))
        ).all()
    return [FeederRow(*row) for row in rows]


def voltage_band() -> tuple[float, float]:
    """The allowed voltage band (pu): EN 50160's 0.90 to 1.10, as the feeder check applies it."""
    return V_MIN_PU, V_MAX_PU


def loading_limit() -> float:
    """The highest loading allowed for a line or the transformer (%)."""
    return MAX_LOADING_PERCENT


def live_stamp(engine: Engine, contract: str, operator: bool) -> str:
    """What ``/ui/live`` answers, and what a page is rendered with: a short value that changes
    whenever the signed-in page may show something new (the operator's page also shows what
    the keeper kept). A page is given the stamp read *before* its data, so that its first poll
    sees any change made while it was rendered or on its way."""
    stamp = views.stamp(engine, contract)
    return f"{stamp}.{kept_stamp(engine)}" if operator else stamp


def kept_stamp(engine: Engine) -> str:
    """Changes whenever the keeper kept a new audit run or a new power flow."""
    with Session(engine) as session:
        run = session.exec(select(func.max(KeptAudit.id))).one()
        flows = session.exec(select(func.max(KeptFeederSlot.computed_s))).one()
        count = session.exec(select(func.count()).select_from(KeptFeederSlot)).one()
    return f"{run or 0}.{flows or 0}.{count}"


# ───────────────────────────── Downloads ─────────────────────────────


def report_from_dict(answer: dict[str, Any]) -> AuditReport:
    """An :class:`AuditReport` from its :meth:`~AuditReport.as_dict` (the kept JSON), so that
    :mod:`ledger.audit.render` writes it. The feeder part, if any, is left out: the kept
    power flows are added by :func:`kept_report`."""
    summary = dict(answer["summary"])
    counts = {k: summary.pop(k) for k in _COUNTS if k in summary}
    summary.pop("findings", None)
    findings = [
        Finding(f["check"], f["severity"], f["slot"], f["household"], f["message"], f["evidence"])
        for f in answer["findings"]
    ]
    aggregates = [
        SlotAggregate(
            slot=a["slot"],
            households_metered=a["households_metered"],
            metered_import_Wh=a["metered_import_Wh"],
            metered_export_Wh=a["metered_export_Wh"],
            local_traded_Wh=a["local_traded_Wh"],
            grid_import_Wh=a["grid_import_Wh"],
            grid_export_Wh=a["grid_export_Wh"],
            clearing_price_ueur_per_kWh=a["clearing_price_ueur_per_kWh"],
            pv_Wh=a["pv_Wh"],
            load_Wh=a["load_Wh"],
            self_consumed_Wh=a["self_consumed_Wh"],
            battery_charge_Wh=None,
            battery_discharge_Wh=None,
        )
        for a in answer["neighbourhood"]
    ]
    ran = tuple(name for name, c in answer["checks"].items() if c.get("ran") and name != "feeder")
    forwards = answer.get("forwards")
    return AuditReport(
        findings,
        ran,
        summary,
        aggregates,
        None,
        counts,
        forwards=None if forwards is None else ForwardSummary(**forwards),
    )


def _with_feeder(report: AuditReport, engine: Engine, last_slot: int | None) -> AuditReport:
    """``report`` with the kept power flows of the slots up to ``last_slot`` as its feeder
    check (findings included), as ``GET /audit/report?feeder=true`` reports it."""
    if last_slot is None:
        return report
    with Session(engine) as session:
        rows = session.exec(
            select(KeptFeederSlot)
            .where(col(KeptFeederSlot.slot) <= last_slot)
            .order_by(col(KeptFeederSlot.slot))
        ).all()
    if not rows:
        return report
    network, mapping = kept_mapping(engine)
    feeder = FeederResult(network, mapping)
    for row in rows:
        feeder.slots.append(row.slot)
        feeder.vm_min_pu.append(row.vm_min_pu)
        feeder.vm_max_pu.append(row.vm_max_pu)
        feeder.max_line_loading_percent.append(row.max_line_loading_percent)
        feeder.trafo_loading_percent.append(row.trafo_loading_percent)
        for f in json.loads(row.findings_json):
            feeder.findings.append(
                Finding(
                    f["check"],
                    f["severity"],
                    f["slot"],
                    f["household"],
                    f["message"],
                    f["evidence"],
                )
            )
    findings = [*report.findings, *feeder.findings]
    findings.sort(key=lambda f: (CHECKS.index(f.check), f.slot or -1, f.household or -1))
    return AuditReport(
        findings,
        (*report.checks_run, "feeder"),
        report.meta,
        report.neighbourhood,
        feeder,
        report.counts,
    )


@dataclass(frozen=True, slots=True)
class KeptReport:
    """The latest successful kept audit, whole, with the kept power flows, and when it ran."""

    report: AuditReport
    finished_s: int


def kept_report(engine: Engine) -> KeptReport | None:
    """The latest successful kept audit with its feeder check; None before the first."""
    with Session(engine) as session:
        row = session.exec(
            select(KeptAudit.finished_s, KeptAudit.last_slot, KeptAudit.report_json)
            .where(col(KeptAudit.problem).is_(None), col(KeptAudit.report_json).is_not(None))
            .order_by(col(KeptAudit.id).desc())
        ).first()
    if row is None:
        return None
    finished_s, last_slot, text = row
    report = report_from_dict(json.loads(text or "{}"))
    return KeptReport(_with_feeder(report, engine, last_slot), finished_s)
