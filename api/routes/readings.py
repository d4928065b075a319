"""``POST /readings``: signed meter readings, one or a batch. The signature is the credential.

Each reading is checked as the contract will check it (:func:`ledger.readings.intake.classify`): the
meter is registered, the EIP-712 signature recovers to it, the slot has ended, follows the
meter's last accepted slot and the registers do not decrease. Accepted readings are written
to the database before the answer (202) and committed on chain by the outbox.

Retrying is idempotent: a reading identical to one already accepted is answered as a
``duplicate`` (202). A *different* reading for an accepted (meter, slot) is a ``conflict``.
The answer is 202 if anything was accepted or already held, else 409 if something conflicted,
else 422.
"""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Svc, problems
from api.ratelimit import check_meters
from api.schemas import ReadingsAccepted, ReadingsIn, ReadingVerdict
from api.services import Services, slot_now
from ledger.readings.eip712 import SignedReading
from ledger.readings.intake import reading_from_json

router = APIRouter(tags=["readings"])

#: Verdicts not charged to the meter's bucket: the meter did not sign the reading (a
#: forgery), or it is a copy of a reading already held or committed, which anyone can send
#: again (a committed reading is public in its transaction's call data). A reading older than
#: the meter's last slot is not charged either: once the intake no longer holds the reading
#: it copies, a replay looks just like it.
_NOT_CHARGED = frozenset({"bad_signature", "unknown_meter", "malformed", "duplicate", "stale_slot"})


def _where_registered(
    done: list[ReadingVerdict], signed: list[SignedReading], services: Services
) -> list[ReadingVerdict]:
    """In a city, each unknown meter's refusal names the market it is registered in, if any
    (one query per market for the whole request)."""
    unknown = {signed[v.index].reading.meter for v in done if v.code == "unknown_meter"}
    markets = services.meters_elsewhere(unknown)
    if not markets:
        return done

    def named(verdict: ReadingVerdict) -> ReadingVerdict:
        meter = signed[verdict.index].reading.meter
        market = markets.get(meter) if verdict.code == "unknown_meter" else None
        if market is None:
            return verdict
        message = (
            f"meter {meter} is not registered in this market but in market {market!r}: post "
            f"its readings to /markets/{market}/v1/readings, signed for that market's contract"
        )
        return verdict.model_copy(update={"message": message})

    return [named(v) for v in done]


@router.post(
    "/readings",
    status_code=202,
    response_model=ReadingsAccepted,
    responses={**problems(409, 422, 429, 503), 202: {"description": "Accepted (stored durably)"}},
    summary="Submit signed meter readings (no token: the meter's signature is the credential)",
)
def post_readings(body: ReadingsIn, services: Svc) -> JSONResponse:
    """Each reading is EIP-712 signed by its meter's key in the domain
    `EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)`, whose `chainId` and
    `verifyingContract` are `chain.chain_id` and `chain.contract` of `GET /health`.

    202 with a verdict per reading if any was accepted or already held; else 409
    `conflicting_reading` if one differs from a reading already accepted for its (meter, slot),
    else 422 with the first refusal's code; both with the verdicts in `details`."""
    # The schema already checked every field; the wire parser checksums the meters.
    signed = [reading_from_json(r.model_dump()) for r in body.readings]
    per_meter = Counter(r.reading.meter for r in signed)
    check_meters(services.meter_limiter, per_meter.items())
    done = services.intake.submit(signed, slot_now())
    if services.city is not None:
        done = _where_registered(done, signed, services)
    for verdict, n in Counter(v.code or v.status for v in done).items():  # voisin_readings_total
        services.metrics.readings.labels(verdict).inc(n)
    # Charged after the intake, only for readings only the meter could have sent: neither a
    # forgery nor a replay (see api/ratelimit.py).
    signed_by_meter = Counter(
        signed[v.index].reading.meter
        for v in done
        if v.status != "duplicate" and v.code not in _NOT_CHARGED
    )
    for meter, n in signed_by_meter.items():
        services.meter_limiter.charge(meter, n)
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
