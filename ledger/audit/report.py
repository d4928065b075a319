"""The audit report: run the checks over what :func:`ledger.audit.inputs.collect` read, keep
the findings of the slots asked for, and shape the result for JSON, CSV, HTML and open data.

``ok`` is true when there is no finding at all. Findings that concern no single slot (money
totals, a balance) are always kept; the others only when their slot lies in
``[from_slot, to_slot]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ledger.audit.contributors import SlotContributors, slot_contributors
from ledger.audit.energy import SlotAggregate, check_energy, neighbourhood
from ledger.audit.feeder import DEFAULT_NETWORK, FeederResult, run_feeder
from ledger.audit.findings import CHECKS, ERROR, Finding
from ledger.audit.forwards import ForwardSummary, check_forwards, forward_summary, has_forwards
from ledger.audit.inputs import AuditError, AuditInputs, collect
from ledger.audit.integrity import check_integrity
from ledger.audit.money import check_money
from ledger.audit.provenance import check_provenance
from ledger.contract.client import VoisinClient
from ledger.types import SLOT_SECONDS

__all__ = ["AuditError", "AuditReport", "audit_inputs", "run_audit"]


@dataclass
class AuditReport:
    """What the audit found. See :meth:`as_dict` for the JSON shape."""

    findings: list[Finding]
    checks_run: tuple[str, ...]
    meta: dict[str, Any]
    neighbourhood: list[SlotAggregate]
    feeder: FeederResult | None = None
    counts: dict[str, int] = field(default_factory=dict)
    contributors: dict[int, SlotContributors] = field(default_factory=dict)
    """Per slot of the whole history (not only the range audited), the households behind its
    figures: what the open-data export's suppression rules decide on. Not in :meth:`as_dict`."""
    forwards: ForwardSummary | None = None
    """The day-ahead book's figures; ``None`` (and no ``forwards`` key in :meth:`as_dict`)
    when the chain holds no day-ahead event."""

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        """``{"ok", "findings": [{check, severity, slot, household, message, evidence}],
        "summary", "checks", "neighbourhood", "feeder"}`` (``feeder`` is ``None`` when the
        feeder check did not run; its per-slot series otherwise), and ``"forwards"`` (the
        day-ahead book's figures) only when the chain holds forwards: ``checks`` then lists
        the ``forwards`` check too."""
        per_check: dict[str, int] = defaultdict(int)
        for f in self.findings:
            per_check[f.check] += 1
        out: dict[str, Any] = {
            "ok": self.ok,
            "summary": {**self.meta, **self.counts, "findings": len(self.findings)},
            "checks": {
                name: {"ran": name in self.checks_run, "findings": per_check.get(name, 0)}
                for name in CHECKS
                if name != "forwards" or name in self.checks_run or per_check.get(name)
            },
            "findings": [f.as_dict() for f in self.findings],
            "neighbourhood": [_aggregate(a) for a in self.neighbourhood],
            "feeder": None if self.feeder is None else self.feeder.as_dict(),
        }
        if self.forwards is not None:
            out["forwards"] = self.forwards.as_dict()
        return out


def _aggregate(a: SlotAggregate) -> dict[str, Any]:
    return {
        "slot": a.slot,
        "households_metered": a.households_metered,
        "pv_Wh": a.pv_Wh,
        "load_Wh": a.load_Wh,
        "self_consumed_Wh": a.self_consumed_Wh,
        "metered_import_Wh": a.metered_import_Wh,
        "metered_export_Wh": a.metered_export_Wh,
        "local_traded_Wh": a.local_traded_Wh,
        "grid_import_Wh": a.grid_import_Wh,
        "grid_export_Wh": a.grid_export_Wh,
        "clearing_price_ueur_per_kWh": a.clearing_price_ueur_per_kWh,
    }


def _in(slot: int | None, lo: int | None, hi: int | None) -> bool:
    return slot is None or ((lo is None or slot >= lo) and (hi is None or slot <= hi))


def _checked(
    check: str, run: Callable[[AuditInputs], list[Finding]], inputs: AuditInputs
) -> list[Finding]:
    """``run``'s findings; if a row of the database holds a value the check cannot read (an
    address, a hash, a number, JSON: a row altered or damaged), one error saying so, rather
    than no report at all."""
    try:
        return run(inputs)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        return [
            Finding(
                check,
                ERROR,
                None,
                None,
                f"the {check} check could not read the database ({type(exc).__name__}: "
                f"{exc}): a row was altered or damaged, or the check itself failed; its other "
                "findings are unknown until it runs through",
                {"error": type(exc).__name__, "detail": str(exc)},
            )
        ]


def audit_inputs(
    inputs: AuditInputs,
    *,
    from_slot: int | None = None,
    to_slot: int | None = None,
    feeder: bool = False,
    network: str = DEFAULT_NETWORK,
    mapping: Mapping[int, int] | None = None,
) -> AuditReport:
    """Run every check over ``inputs`` (the feeder's power flows only with ``feeder``)."""
    if from_slot is not None and to_slot is not None and from_slot > to_slot:
        raise AuditError(f"--from slot {from_slot} is after --to slot {to_slot}")
    for name, value in (("from", from_slot), ("to", to_slot)):
        if value is not None and not 0 <= value < 2**32:
            raise AuditError(f"the {name} slot must be between 0 and {2**32 - 1}, got {value}")
    findings: list[Finding] = []
    findings += _checked("provenance", check_provenance, inputs)
    findings += _checked("energy", check_energy, inputs)
    findings += _checked("money", check_money, inputs)
    findings += _checked("integrity", check_integrity, inputs)
    checks: tuple[str, ...] = ("provenance", "energy", "money", "integrity")
    forwards: ForwardSummary | None = None
    if has_forwards(inputs):
        findings += _checked("forwards", check_forwards, inputs)
        checks += ("forwards",)
        forwards = forward_summary(inputs, from_slot, to_slot)
    aggregates = [a for a in neighbourhood(inputs) if _in(a.slot, from_slot, to_slot)]
    feeder_result: FeederResult | None = None
    households = sorted(r.household for r in inputs.registrations)
    if feeder:
        metered: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
        for e in inputs.named("ReadingCommitted"):
            slot = int(e.args["slot"])
            if _in(slot, from_slot, to_slot):
                metered[slot][int(e.args["household"])] = (
                    int(e.args["importDeltaWh"]),
                    int(e.args["exportDeltaWh"]),
                )
        feeder_result = run_feeder(metered, sorted(set(households)), network, mapping)
        findings += feeder_result.findings
        checks += ("feeder",)
    kept = [f for f in findings if _in(f.slot, from_slot, to_slot)]
    kept.sort(key=lambda f: (CHECKS.index(f.check), f.slot or -1, f.household or -1))
    slots = [a.slot for a in aggregates]
    digest_head = inputs.db_digests[-1].digest if inputs.db_digests else None
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain_id": inputs.chain_id,
        "contract": inputs.contract,
        "head_block": inputs.head_block,
        "mirror_block": inputs.mirror_block,
        "from_slot": from_slot,
        "to_slot": to_slot,
        "first_slot": slots[0] if slots else None,
        "last_slot": slots[-1] if slots else None,
        "digest_head": digest_head,
    }
    if inputs.evidence_from_slot is not None:
        # Signed readings were purged past their retention: say where provenance starts.
        window = inputs.evidence_from_slot
        meta["evidence_from_slot"] = window
        meta["provenance_window"] = (
            f"signed readings are kept from slot {window} "
            f"({datetime.fromtimestamp(window * SLOT_SECONDS, UTC).isoformat()}) on: provenance "
            "checks their signatures from that slot; those of earlier sealed slots were purged "
            "past their retention, and their credits rest on the contract's own signature "
            "check and the slots' seals"
        )
    counts = {
        "slots": len(slots),
        "households": len(set(households)),
        "readings": sum(
            1 for e in inputs.named("ReadingCommitted") if _in(e.args["slot"], from_slot, to_slot)
        ),
        "fills": sum(
            1 for e in inputs.named("FillSettled") if _in(e.args["slot"], from_slot, to_slot)
        ),
        "sealed_slots": len(inputs.db_digests),
    }
    return AuditReport(
        kept, checks, meta, aggregates, feeder_result, counts, slot_contributors(inputs), forwards
    )


def run_audit(
    client: VoisinClient,
    engine: Engine,
    deployment_block: int,
    *,
    from_slot: int | None = None,
    to_slot: int | None = None,
    feeder: bool = False,
    network: str = DEFAULT_NETWORK,
    mapping: Mapping[int, int] | None = None,
) -> AuditReport:
    """Read the chain and the database, then run :func:`audit_inputs`."""
    inputs = collect(client, engine, deployment_block)
    return audit_inputs(
        inputs,
        from_slot=from_slot,
        to_slot=to_slot,
        feeder=feeder,
        network=network,
        mapping=mapping,
    )


def finding_lines(findings: Sequence[Finding]) -> list[str]:
    return [f.as_text() for f in findings]
