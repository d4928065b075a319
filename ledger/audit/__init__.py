"""The grid operator's audit: provenance, energy, money, integrity and feeder checks.

- :mod:`ledger.audit.inputs` reads the chain and the database (the only I/O);
- :mod:`ledger.audit.provenance`, :mod:`~ledger.audit.energy`, :mod:`~ledger.audit.money`
  and :mod:`~ledger.audit.integrity` are pure checks returning :class:`Finding` lists;
- :mod:`ledger.audit.digest` is the tamper-evident digest chain the settlement worker seals;
- :mod:`ledger.audit.feeder` runs the pandapower power flows (imported only when asked for);
- :mod:`ledger.audit.report` runs it all; :mod:`ledger.audit.render` writes JSON, CSV and HTML;
- :mod:`ledger.audit.open_data` writes the open-data package (Frictionless Data Package and
  DCAT-AP) and decides which figures it withholds;
- :mod:`ledger.audit.across` audits across a contract upgrade: the old deployment, the
  carry-over of its state, the new deployment.
"""

from ledger.audit.across import AcrossReport, audit_across
from ledger.audit.findings import CHECKS, ERROR, WARNING, Finding
from ledger.audit.report import AuditError, AuditReport, audit_inputs, run_audit

__all__ = [
    "CHECKS",
    "ERROR",
    "WARNING",
    "AcrossReport",
    "AuditError",
    "AuditReport",
    "Finding",
    "audit_across",
    "audit_inputs",
    "run_audit",
]
