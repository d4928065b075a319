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
from sqlmodel import Session, col, select

from api.deps import Svc, problems
from api.models import ApiHousehold, IntakeReading
from api.schemas import ReadingIn, ReadingsAccepted, ReadingsIn, ReadingVerdict
from api.services import slot_now
from ledger.eip712 import Reading, SignedReading
from ledger.intake import MeterRecord, classify
from ledger.models import HouseholdRecord

router = APIRouter(tags=["readings"])


def _signed(r: ReadingIn) -> SignedReading:
    return SignedReading(
        Reading(r.meter, r.slot, r.import_Wh, r.export_Wh),
        r.v,
        bytes.fromhex(r.r[2:]),
        bytes.fromhex(r.s[2:]),
    )


def _same(stored: IntakeReading, r: SignedReading) -> bool:
    return (
        stored.import_Wh == r.reading.import_Wh
        and stored.export_Wh == r.reading.export_Wh
        and stored.v == r.v
        and stored.r == "0x" + r.r.hex()
        and stored.s == "0x" + r.s.hex()
    )


@router.post(
    "/readings",
    status_code=202,
    response_model=ReadingsAccepted,
    responses={**problems(409, 422, 503), 202: {"description": "Accepted (stored durably)"}},
    summary="Submit signed meter readings (no token: the meter's signature is the credential)",
)
def post_readings(body: ReadingsIn, services: Svc) -> JSONResponse:
    signed = [_signed(r) for r in body.readings]  # checksums the meter addresses
    results: list[ReadingVerdict | None] = [None] * len(signed)
    with services.intake_lock, Session(services.engine) as session, session.begin():
        meters = {r.reading.meter for r in signed}
        households = {
            h.meter: h
            for h in session.exec(
                select(ApiHousehold).where(col(ApiHousehold.meter).in_(meters)).with_for_update()
            )
        }
        inactive = {
            h.id
            for h in session.exec(
                select(HouseholdRecord).where(
                    col(HouseholdRecord.id).in_([h.id for h in households.values()]),
                    col(HouseholdRecord.active).is_(False),
                )
            )
        }
        stored = {
            (s.meter, s.slot): s
            for s in session.exec(
                select(IntakeReading).where(
                    col(IntakeReading.meter).in_(meters),
                    col(IntakeReading.slot).in_({r.reading.slot for r in signed}),
                )
            )
        }
        fresh: list[int] = []
        first_copy: dict[tuple[str, int], SignedReading] = {}
        for i, r in enumerate(signed):
            key = (r.reading.meter, r.reading.slot)
            held = stored.get(key)
            earlier = first_copy.get(key)
            if held is not None or earlier is not None:
                same = _same(held, r) if held is not None else earlier == r
                results[i] = ReadingVerdict(
                    index=i,
                    status="duplicate" if same else "conflict",
                    code=None if same else "conflicting_reading",
                    message=(
                        "already accepted"
                        if same
                        else f"meter {key[0]} already has a different reading for slot {key[1]}"
                    ),
                )
                continue
            first_copy[key] = r
            fresh.append(i)
        state = {
            meter: MeterRecord(
                household=h.id,
                last_slot=h.meter_last_slot,
                import_Wh=h.meter_import_Wh,
                export_Wh=h.meter_export_Wh,
                active=h.id not in inactive,
            )
            for meter, h in households.items()
        }
        verdicts = classify([signed[i] for i in fresh], services.domain, state, now_slot=slot_now())
        for v in verdicts.verdicts:
            i = fresh[v.index]
            results[i] = ReadingVerdict(
                index=i,
                status="accepted" if v.accepted else "rejected",
                code=None if v.accepted else str(v.code),
                message=v.message,
                flags=[str(f) for f in v.flags],
            )
            if v.accepted:
                rd = signed[i]
                session.add(
                    IntakeReading(
                        household=households[rd.reading.meter].id,
                        meter=rd.reading.meter,
                        slot=rd.reading.slot,
                        import_Wh=rd.reading.import_Wh,
                        export_Wh=rd.reading.export_Wh,
                        v=rd.v,
                        r="0x" + rd.r.hex(),
                        s="0x" + rd.s.hex(),
                        flags=",".join(str(f) for f in v.flags),
                    )
                )
        for meter, record in verdicts.meters.items():
            h = households.get(meter)
            if h is not None and record.last_slot != h.meter_last_slot:
                h.meter_last_slot = record.last_slot
                h.meter_import_Wh = record.import_Wh
                h.meter_export_Wh = record.export_Wh
                session.add(h)
    done = [r for r in results if r is not None]
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
