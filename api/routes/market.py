"""The market: ``GET /market/tariffs`` and ``GET /market/slots/{slot}`` (anyone), and
``POST /market/slots/{slot}/settle`` (operator)."""

from __future__ import annotations

from fastapi import APIRouter, Path
from sqlmodel import Session

from api.auth import Operator
from api.deps import Svc, problems
from api.errors import ApiError, not_found
from api.recovery import refuse_while_restoring
from api.schemas import MAX_SLOT, TariffsOut
from api.services import slot_now
from ledger.mirror.models import SlotOutcome, SlotOutcomeRecord

router = APIRouter(tags=["market"])
SlotPath = Path(ge=1, le=MAX_SLOT)


def _out(r: SlotOutcomeRecord) -> SlotOutcome:
    return SlotOutcome.model_validate(r, from_attributes=True)


@router.get(
    "/market/tariffs",
    response_model=TariffsOut,
    responses=problems(503),
    summary="The tariffs bounding local prices, and the current slot",
)
def tariffs(services: Svc) -> TariffsOut:
    t = services.tariffs()
    return TariffsOut(
        feed_in_ueur_per_kWh=t.feed_in_ueur_per_kWh,
        retail_ueur_per_kWh=t.retail_ueur_per_kWh,
        grid_fee_ueur_per_kWh=t.grid_fee_ueur_per_kWh,
        current_slot=slot_now(),
    )


@router.get(
    "/market/slots/{slot}",
    response_model=SlotOutcome,
    responses=problems(404, 422),
    summary="A slot's clearing outcome",
)
def slot_outcome(services: Svc, slot: int = SlotPath) -> SlotOutcome:
    with Session(services.engine) as session:
        record = session.get(SlotOutcomeRecord, slot)
    if record is None:
        raise not_found("slot_not_settled", f"slot {slot} has not been cleared yet")
    return _out(record)


@router.post(
    "/market/slots/{slot}/settle",
    response_model=SlotOutcome,
    responses=problems(401, 403, 409, 422, 503),
    summary="Send what is queued, then clear and settle a closed slot (operator)",
)
def settle(_: Operator, services: Svc, slot: int = SlotPath) -> SlotOutcome:
    """Runs one outbox pass (queued readings and orders reach the chain first), then clears and
    settles the slot once. Settling a settled slot returns its recorded outcome."""
    if slot >= slot_now():
        raise ApiError(409, "slot_not_closed", f"slot {slot} has not ended yet (now: {slot_now()})")
    refuse_while_restoring(services.engine, "settling a slot")
    result = services.outbox.run_once()
    if result.chain_down:
        raise ApiError(503, "chain_unavailable", "the chain cannot be reached; try again")
    outcome = services.on_chain(lambda: services.worker.settle_slot(slot))
    with Session(services.engine) as session:
        record = session.get(SlotOutcomeRecord, outcome.slot)
    assert record is not None
    return _out(record)
