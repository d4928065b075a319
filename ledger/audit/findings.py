"""An audit finding: which check, how bad, the slot and household concerned, and the evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ledger.localtime import slot_span_label

__all__ = ["CHECKS", "ERROR", "WARNING", "Finding"]

#: The checks, in report order. ``forwards`` runs (and is reported) only when the chain holds
#: day-ahead events (:func:`ledger.audit.forwards.has_forwards`).
CHECKS = ("provenance", "energy", "money", "integrity", "forwards", "feeder")
ERROR = "error"
"""Something that must not happen: a credit without proof, energy or money not conserved, a
database that disagrees with the chain."""
WARNING = "warning"
"""Worth the operator's attention but not a broken invariant (e.g. a feeder limit exceeded)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One anomaly. ``slot`` and ``household`` are ``None`` when the finding concerns no single
    slot or household (e.g. the money totals). ``evidence`` holds JSON-ready values: the
    numbers compared, the record or event concerned, and what was expected."""

    check: str
    severity: str
    slot: int | None
    household: int | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"unknown check {self.check!r}; checks are {', '.join(CHECKS)}")
        if self.severity not in (ERROR, WARNING):
            raise ValueError(f"severity must be {ERROR!r} or {WARNING!r}, got {self.severity!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "slot": self.slot,
            "household": self.household,
            "message": self.message,
            "evidence": self.evidence,
        }

    def as_text(self, tz: str | None = None) -> str:
        """One line for people and logs: ``check [severity] slot S household H: message``;
        with ``tz`` (an IANA zone), the slot's local time follows its number."""
        where = []
        if self.slot is not None:
            local = f" ({slot_span_label(self.slot, tz)})" if tz else ""
            where.append(f"slot {self.slot}{local}")
        if self.household is not None:
            where.append(f"household {self.household}")
        place = f" {', '.join(where)}" if where else ""
        return f"{self.check} [{self.severity}]{place}: {self.message}"

    def evidence_json(self) -> str:
        return json.dumps(self.evidence, sort_keys=True, default=str)
