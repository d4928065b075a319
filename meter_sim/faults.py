"""Fault injection: what goes wrong between a meter and the ledger, seeded and off by default.

:func:`envelopes` turns a scenario's genuine signed readings into what actually travels: one
:class:`Envelope` per item sent (or, for a dropped reading, not sent), each saying which fault,
if any, was injected, so tests and reports can check the ledger's response to each.

Per genuine reading, at most one of these replaces or delays it (drawn in this order, each with
its own rate):

- ``dropped``: never sent (the next reading's registers still carry its energy);
- ``tampered``: a register is raised after signing, so the signature no longer matches;
- ``wrong_key``: signed by a key that is not the meter's;
- ``clock_skew``: the meter's clock runs 2 or more slots ahead, so it signs a future slot;
- ``late``: sent 1 to ``max_late_slots`` slots after it was due.

A reading that none of these hit may in addition be sent twice (``duplicate``) or be followed
by a ``replay`` of an older reading of the same meter that was already delivered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from enum import StrEnum

from ledger.readings.eip712 import Reading, SignedReading, sign_reading
from meter_sim.errors import ScenarioError
from meter_sim.scenario import Scenario, derive_key


class Fault(StrEnum):
    DROPPED = "dropped"
    TAMPERED = "tampered"
    WRONG_KEY = "wrong_key"
    CLOCK_SKEW = "clock_skew"
    LATE = "late"
    DUPLICATE = "duplicate"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class FaultRates:
    """The probability of each fault per reading (all 0: no faults)."""

    dropped: float = 0.0
    tampered: float = 0.0
    wrong_key: float = 0.0
    clock_skew: float = 0.0
    late: float = 0.0
    duplicate: float = 0.0
    replay: float = 0.0
    max_late_slots: int = 4
    max_skew_slots: int = 96

    def __post_init__(self) -> None:
        primary = 0.0
        for f in fields(self):
            if f.name.startswith("max_"):
                continue
            rate = getattr(self, f.name)
            if not 0.0 <= rate <= 1.0:
                raise ScenarioError(f"fault rate {f.name} must be in [0, 1], got {rate}")
            if f.name not in ("duplicate", "replay"):
                primary += rate
        if primary > 1.0:
            raise ScenarioError(
                "dropped + tampered + wrong_key + clock_skew + late must be at most 1, "
                f"got {primary}"
            )
        if self.max_late_slots < 1 or self.max_skew_slots < 2:
            raise ScenarioError("max_late_slots must be >= 1 and max_skew_slots >= 2")

    @classmethod
    def uniform(cls, rate: float) -> FaultRates:
        """Every fault at the same rate."""
        return cls(rate, rate, rate, rate, rate, rate, rate)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One item on the way to the ledger.

    ``slot`` is the slot the meter measured (under clock skew the reading names another);
    ``send_slot`` is the slot at whose end it is sent (``slot`` unless late or replayed);
    ``sent`` is False for a dropped reading. ``seq`` orders envelopes of the same send slot.
    """

    signed: SignedReading
    household: int
    slot: int
    send_slot: int
    fault: Fault | None = None
    sent: bool = True
    seq: int = 0


def envelopes(
    scenario: Scenario,
    readings: list[SignedReading],
    domain: bytes,
    rates: FaultRates | None = None,
) -> list[Envelope]:
    """The envelopes carrying ``readings`` (from :func:`meter_sim.sign_readings`), in send
    order (by send slot, then production order)."""
    rates = rates or FaultRates()
    index = {ident.meter: ident.index for ident in scenario.identities}
    rng = random.Random(f"{scenario.name}/{scenario.seed}/faults")
    rogue_key = derive_key(scenario.name, scenario.seed, "rogue", 0)
    # Per meter: genuine readings already sent on time and unaltered (the replay pool).
    delivered: dict[int, list[SignedReading]] = {}
    out: list[Envelope] = []
    primary = [
        (Fault.DROPPED, rates.dropped),
        (Fault.TAMPERED, rates.tampered),
        (Fault.WRONG_KEY, rates.wrong_key),
        (Fault.CLOCK_SKEW, rates.clock_skew),
        (Fault.LATE, rates.late),
    ]

    def emit(env: Envelope) -> None:
        out.append(
            Envelope(
                env.signed, env.household, env.slot, env.send_slot, env.fault, env.sent, len(out)
            )
        )

    for signed in readings:
        rd = signed.reading
        h = index[rd.meter]
        draw = rng.random()
        fault: Fault | None = None
        for kind, rate in primary:
            if draw < rate:
                fault = kind
                break
            draw -= rate
        if fault is Fault.DROPPED:
            emit(Envelope(signed, h, rd.slot, rd.slot, fault, sent=False))
        elif fault is Fault.TAMPERED:
            bumped = Reading(rd.meter, rd.slot, rd.import_Wh, rd.export_Wh + rng.randint(1, 5000))
            forged = SignedReading(bumped, signed.v, signed.r, signed.s)
            emit(Envelope(forged, h, rd.slot, rd.slot, fault))
        elif fault is Fault.WRONG_KEY:
            emit(Envelope(sign_reading(rogue_key, rd, domain), h, rd.slot, rd.slot, fault))
        elif fault is Fault.CLOCK_SKEW:
            ahead = rng.randint(2, rates.max_skew_slots)
            skewed = Reading(rd.meter, rd.slot + ahead, rd.import_Wh, rd.export_Wh)
            key = scenario.identities[h].meter_key
            emit(Envelope(sign_reading(key, skewed, domain), h, rd.slot, rd.slot, fault))
        elif fault is Fault.LATE:
            delay = rng.randint(1, rates.max_late_slots)
            emit(Envelope(signed, h, rd.slot, rd.slot + delay, fault))
        else:
            emit(Envelope(signed, h, rd.slot, rd.slot))
            if rng.random() < rates.duplicate:
                emit(Envelope(signed, h, rd.slot, rd.slot, Fault.DUPLICATE))
            pool = delivered.setdefault(h, [])
            # Replay a reading older than the last one delivered: one the ledger already has.
            if rng.random() < rates.replay and len(pool) >= 2:
                old = pool[rng.randrange(len(pool) - 1)]
                emit(Envelope(old, h, old.reading.slot, rd.slot, Fault.REPLAY))
            pool.append(signed)
    out.sort(key=lambda e: (e.send_slot, e.seq))
    return out
