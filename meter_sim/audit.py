"""The operator's audit of a finished run: ``ledger.audit`` over the run's slots.

:func:`add_ledger_audit` records the run's per-slot neighbourhood PV, load and battery flows
(which only the simulator knows; the audit's energy balance and open data use them), runs
the ledger audit over the run's slots from the chain and the database, and merges its
findings into the report's ``audit_ok`` and ``audit_findings`` (as one line each, after the
simulator's own conservation findings from :func:`meter_sim.report.audit`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from ledger.audit import run_audit
from ledger.contract.client import VoisinClient
from ledger.readings.evidence import store_neighbourhood_flows
from meter_sim.flows import Flows

__all__ = ["add_ledger_audit"]


def add_ledger_audit(
    report: dict[str, Any],
    client: VoisinClient,
    engine: Engine,
    deployment_block: int,
    flows: Flows,
) -> None:
    """Store the run's neighbourhood flows, audit its slots and merge the findings."""
    store_neighbourhood_flows(
        engine,
        flows.slots.tolist(),
        flows.pv_Wh.sum(axis=0).tolist(),
        flows.load_Wh.sum(axis=0).tolist(),
        flows.charge_Wh.sum(axis=0).tolist(),
        flows.discharge_Wh.sum(axis=0).tolist(),
    )
    first = int(flows.first_slot)
    result = run_audit(
        client, engine, deployment_block, from_slot=first, to_slot=first + flows.shape[1] - 1
    )
    findings = list(report.get("audit_findings", [])) + [f.as_text() for f in result.findings]
    report["audit_findings"] = findings
    report["audit_ok"] = not findings
