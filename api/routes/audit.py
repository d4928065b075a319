"""``GET /audit/report``: the grid operator's audit, the same report as ``voisin audit``.

Operator only. It mirrors the chain's new events, then reads the chain's events and state and
the database (holding the chain lock while it reads, like every chain access of the API; not
while it checks). With a chain other processes reach (the default node process, anvil, any
node) the audit runs in a child process (:mod:`api.audit_process`), so that the server does
not keep the memory it took. It answers the report as JSON: ``ok``, ``findings`` (each with
``check``, ``severity``, ``slot``, ``household``, ``message`` and ``evidence``), a
``summary``, the per-check counts, the per-slot neighbourhood aggregates and, with
``feeder=true``, the feeder's per-slot series (lowest and highest bus voltage in pu, most
loaded line and transformer loading in %).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import Operator
from api.deps import Svc, problems
from api.errors import ApiError
from api.schemas import UINT32

router = APIRouter(prefix="/audit", tags=["audit"])


class FindingOut(BaseModel):
    check: str
    severity: str
    slot: int | None
    household: int | None
    message: str
    evidence: dict[str, Any]


class AuditReportOut(BaseModel):
    ok: bool
    summary: dict[str, Any]
    checks: dict[str, dict[str, Any]]
    findings: list[FindingOut]
    neighbourhood: list[dict[str, Any]]
    feeder: dict[str, Any] | None


@router.get(
    "/report",
    response_model=AuditReportOut,
    responses=problems(401, 403, 422, 503),
    summary="Audit settlements: provenance, energy, money, integrity and (optionally) feeder",
)
def report(
    _: Operator,
    services: Svc,
    from_slot: Annotated[int | None, Query(alias="from", ge=0, le=UINT32)] = None,
    to_slot: Annotated[int | None, Query(alias="to", ge=0, le=UINT32)] = None,
    feeder: bool = False,
) -> AuditReportOut:
    """Findings of the slots ``from``..``to`` (all slots by default); ``feeder=true`` also runs
    the power flow of every slot on the Kerber reference feeder (slower: about a tenth of a
    second per slot)."""
    if from_slot is not None and to_slot is not None and from_slot > to_slot:
        raise ApiError(422, "invalid_input", f"from slot {from_slot} is after to slot {to_slot}")
    run = services.audit(from_slot=from_slot, to_slot=to_slot, feeder=feeder)
    return AuditReportOut.model_validate(run.report)
