"""``POST /readings``: signed meter readings, one or a batch. The signature is the credential.

Each reading is checked as the contract will check it (:func:`ledger.intake.classify`): the
meter is registered, the EIP-712 signature recovers to it, the slot has ended, follows the
meter's last accepted slot and the registers do not decrease. Accepted readings are written
to the database before the answer (202) and committed on chain by the outbox.

Retrying is idempotent: a reading identical to one already accepted is answered as a
``duplicate`` (202). A *different* reading for an accepted (meter, slot) is a ``conflict``.
The answer is 202 if anything was accepted or already held, else 409 if something conflicted,
else 422.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Svc, problems
from api.schemas import ReadingsAccepted, ReadingsIn
from api.services import slot_now
from ledger.intake import reading_from_json

router = APIRouter(tags=["readings"])


@router.post(
    "/readings",
    status_code=202,
    response_model=ReadingsAccepted,
    responses={**problems(409, 422, 503), 202: {"description": "Accepted (stored durably)"}},
    summary="Submit signed meter readings (no token: the meter's signature is the credential)",
)
def post_readings(body: ReadingsIn, services: Svc) -> JSONResponse:
    # The schema already checked every field; the wire parser checksums the meters.
    signed = [reading_from_json(r.model_dump()) for r in body.readings]
    done = services.intake.submit(signed, slot_now())
    counts = {
        s: sum(1 for r in done if r.status == s)
        for s in ("accepted", "duplicate", "rejected", "conflict")
    }
    answer = ReadingsAccepted(
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"] + counts["conflict"],
        flags=sorted({f for r in done for f in r.flags}),
        results=done,
    )
    if counts["accepted"] or counts["duplicate"]:
        return JSONResponse(answer.model_dump(), 202)
    first = next(r for r in done if r.status in ("conflict", "rejected"))
    conflict = counts["conflict"] > 0
    return JSONResponse(
        {
            "code": "conflicting_reading" if conflict else first.code,
            "message": first.message,
            "details": answer.model_dump(),
        },
        409 if conflict else 422,
    )
