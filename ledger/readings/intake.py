"""Reading intake: decide which signed readings the contract would accept, before sending them.

``commitReadings`` reverts a whole batch on one bad reading, so whoever commits readings (the
API, the simulator's in-process delivery) first runs them through :func:`classify`: pure logic
over the readings, the contract's EIP-712 domain and the known meters' state, with no chain or
database access. It mirrors the contract's checks, in the contract's order, and adds two of its
own that the contract cannot make (it has no trustworthy clock for them):

==================== ================================================ =========================
code                 rejected when                                    contract error
==================== ================================================ =========================
malformed            a field is missing, of the wrong type or range   (ABI encoding fails)
unknown_meter        the meter is not registered (or retired)         ``UnknownMeter``
bad_signature        the signature does not recover to the reading's  ``InvalidSignature``
                     meter (tampered value, wrong key, high s, bad v)
inactive_household   the meter's household is deactivated             ``HouseholdInactive``
future_slot          the slot is beyond now + a tolerance (a meter    ``FutureReading`` (more
                     whose clock runs ahead)                          than one slot past the
                                                                      chain's clock)
duplicate            the slot is the meter's last committed slot      ``DuplicateReading``
stale_slot           the slot is older than the last committed slot   ``StaleReading``
                     (a replayed or very late reading)
register_decreased   either register is below the committed one       ``RegisterDecreased``
energy_too_large     a register moved by 2^56 Wh or more in one       ``EnergyTooLarge``
                     reading (a faulty or forged meter)
==================== ================================================ =========================

Readings are processed in slot order (per meter that is what the contract requires), and the
meters' state is updated as each reading is accepted, so a batch holding several slots of one
meter is accepted whole, and a second copy of a reading in the same batch is a duplicate. An
accepted reading may carry flags: ``gap`` (slots were skipped since the meter's last reading:
their energy is booked in this slot) and ``late`` (the slot ended well before ``now_slot``).

The JSON wire form of a reading (the API's ``POST /readings`` body items) is
``{"meter": "0x..", "slot": int, "import_Wh": int, "export_Wh": int, "v": int,
"r": "0x" + 64 hex, "s": "0x" + 64 hex}``: :func:`reading_to_json` and
:func:`reading_from_json`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.readings.eip712 import InvalidReading, Reading, SignedReading, recover_signer
from ledger.types import MAX_SLOT_ENERGY_WH


class Code(StrEnum):
    """Why a reading is rejected (machine-readable; the API returns it as ``code``)."""

    MALFORMED = "malformed"
    UNKNOWN_METER = "unknown_meter"
    BAD_SIGNATURE = "bad_signature"
    INACTIVE_HOUSEHOLD = "inactive_household"
    FUTURE_SLOT = "future_slot"
    DUPLICATE = "duplicate"
    STALE_SLOT = "stale_slot"
    REGISTER_DECREASED = "register_decreased"
    ENERGY_TOO_LARGE = "energy_too_large"


class Flag(StrEnum):
    """Something worth noting about an accepted reading."""

    GAP = "gap"
    LATE = "late"


class MalformedReading(InvalidReading):
    """A wire-form reading is missing a field or has one of the wrong type or range."""


@dataclass(frozen=True, slots=True)
class MeterRecord:
    """What the ledger knows about a registered meter (the contract's ``MeterState``).

    ``last_slot`` is 0 before the first reading; ``import_Wh`` and ``export_Wh`` are the last
    committed registers (the registration baselines before the first reading).
    """

    household: int
    last_slot: int
    import_Wh: int
    export_Wh: int
    active: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision on one reading; ``index`` is its position in the input."""

    index: int
    reading: SignedReading | None
    accepted: bool
    code: Code | None = None
    message: str = ""
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """Every reading's verdict (input order), the accepted readings in an order the contract
    takes, and the meters' state after them."""

    verdicts: list[Verdict]
    accepted: list[SignedReading]
    meters: dict[str, MeterRecord]

    @property
    def rejected(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.accepted]


def classify(
    readings: Sequence[SignedReading | Mapping[str, Any]],
    domain: bytes,
    meters: Mapping[str, MeterRecord],
    *,
    now_slot: int | None = None,
    future_tolerance_slots: int = 1,
    late_after_slots: int = 0,
    check_signatures: bool = True,
) -> IntakeResult:
    """Classify ``readings`` against the known ``meters`` (address -> record).

    ``now_slot`` is the slot in progress (``unix_seconds // 900``); the reading of slot ``s``
    is due when ``s`` ends, at the start of ``s + 1``. A reading is ``future_slot`` if ``s >
    now_slot - 1 + future_tolerance_slots`` (with the default tolerance, the slot in progress is
    allowed, for meters a few seconds fast) and flagged ``late`` if it arrives more than
    ``late_after_slots`` slots after it was due. Without ``now_slot`` neither check is made.
    The input ``meters`` is not modified.

    ``check_signatures=False`` skips recovering each signer, for readings signed in this
    process tree with the meters' own keys (the simulator's): every other check is made, and
    the contract still checks every signature (a bad one would revert the batch).
    """
    state: dict[str, MeterRecord] = {_checksum(k): v for k, v in meters.items()}
    verdicts: list[Verdict | None] = [None] * len(readings)
    parsed: list[tuple[int, SignedReading]] = []
    for i, item in enumerate(readings):
        if isinstance(item, SignedReading):
            parsed.append((i, item))
            continue
        try:
            parsed.append((i, reading_from_json(item)))
        except InvalidReading as exc:
            verdicts[i] = Verdict(i, None, False, Code.MALFORMED, str(exc))
    parsed.sort(key=lambda p: (p[1].reading.slot, p[0]))
    accepted: list[SignedReading] = []
    for i, signed in parsed:
        verdict = _check(
            i, signed, domain, state, now_slot, future_tolerance_slots, check_signatures
        )
        if verdict.accepted:
            rd = signed.reading
            record = state[rd.meter]
            flags: list[Flag] = []
            if record.last_slot != 0 and rd.slot > record.last_slot + 1:
                flags.append(Flag.GAP)
            if now_slot is not None and now_slot - 1 - rd.slot > late_after_slots:
                flags.append(Flag.LATE)
            verdict = replace(verdict, flags=tuple(flags))
            state[rd.meter] = replace(
                record, last_slot=rd.slot, import_Wh=rd.import_Wh, export_Wh=rd.export_Wh
            )
            accepted.append(signed)
        verdicts[i] = verdict
    done = [v for v in verdicts if v is not None]
    return IntakeResult(done, accepted, state)


def _check(
    i: int,
    signed: SignedReading,
    domain: bytes,
    state: Mapping[str, MeterRecord],
    now_slot: int | None,
    tolerance: int,
    check_signature: bool = True,
) -> Verdict:
    rd = signed.reading
    record = state.get(rd.meter)
    if record is None or record.household == 0:
        return _no(i, signed, Code.UNKNOWN_METER, f"meter {rd.meter} is not registered")
    try:
        signer = recover_signer(signed, domain) if check_signature else rd.meter
    except InvalidReading as exc:
        return _no(i, signed, Code.BAD_SIGNATURE, f"signature of meter {rd.meter}: {exc}")
    if signer != rd.meter:
        return _no(
            i,
            signed,
            Code.BAD_SIGNATURE,
            f"reading of meter {rd.meter} for slot {rd.slot} is signed by {signer}: the "
            "signature must be the meter's own over exactly these values",
        )
    if not record.active:
        return _no(
            i,
            signed,
            Code.INACTIVE_HOUSEHOLD,
            f"household {record.household} of meter {rd.meter} is deactivated",
        )
    if now_slot is not None and rd.slot > now_slot - 1 + tolerance:
        return _no(
            i,
            signed,
            Code.FUTURE_SLOT,
            f"slot {rd.slot} of meter {rd.meter} has not ended yet (now is slot {now_slot}; "
            f"at most slot {now_slot - 1 + tolerance} is allowed): the meter's clock is ahead",
        )
    if rd.slot == record.last_slot:
        return _no(
            i,
            signed,
            Code.DUPLICATE,
            f"meter {rd.meter} already has a reading for slot {rd.slot}; each slot counts once",
        )
    if rd.slot < record.last_slot:
        return _no(
            i,
            signed,
            Code.STALE_SLOT,
            f"slot {rd.slot} of meter {rd.meter} is older than its last committed slot "
            f"{record.last_slot}: readings must come in increasing slot order",
        )
    if rd.import_Wh < record.import_Wh or rd.export_Wh < record.export_Wh:
        return _no(
            i,
            signed,
            Code.REGISTER_DECREASED,
            f"meter {rd.meter} slot {rd.slot}: registers import {rd.import_Wh} Wh, export "
            f"{rd.export_Wh} Wh are below the committed {record.import_Wh} Wh, "
            f"{record.export_Wh} Wh; registers may never decrease",
        )
    if max(rd.import_Wh - record.import_Wh, rd.export_Wh - record.export_Wh) > MAX_SLOT_ENERGY_WH:
        return _no(
            i,
            signed,
            Code.ENERGY_TOO_LARGE,
            f"meter {rd.meter} slot {rd.slot}: import {rd.import_Wh - record.import_Wh} Wh, "
            f"export {rd.export_Wh - record.export_Wh} Wh since the last reading; one reading "
            f"may meter at most {MAX_SLOT_ENERGY_WH} Wh each way",
        )
    return Verdict(i, signed, True)


@lru_cache(maxsize=1 << 14)
def _checksum(address: str) -> str:
    """``address`` checksummed (a hash each: the same meters come back every slot)."""
    return str(to_checksum_address(address))


def _no(i: int, signed: SignedReading, code: Code, message: str) -> Verdict:
    return Verdict(i, signed, False, code, message)


# ───────────────────────────── Wire form ─────────────────────────────

_FIELDS = ("meter", "slot", "import_Wh", "export_Wh", "v", "r", "s")
_WORD = re.compile(r"0x[0-9a-fA-F]{64}")


def reading_to_json(signed: SignedReading) -> dict[str, Any]:
    """The JSON wire form of a signed reading."""
    rd = signed.reading
    return {
        "meter": rd.meter,
        "slot": rd.slot,
        "import_Wh": rd.import_Wh,
        "export_Wh": rd.export_Wh,
        "v": signed.v,
        "r": "0x" + signed.r.hex(),
        "s": "0x" + signed.s.hex(),
    }


def reading_from_json(obj: Mapping[str, Any]) -> SignedReading:
    """Parse the JSON wire form; :class:`MalformedReading` says which field is wrong."""
    if not isinstance(obj, Mapping):
        raise MalformedReading(f"a reading must be a JSON object, got {type(obj).__name__}")
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise MalformedReading(f"reading is missing {', '.join(missing)}; needs {_FIELDS}")
    v = obj["v"]
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255:
        raise MalformedReading(f"v must be an integer 27 or 28, got {v!r}")
    words = {}
    for name in ("r", "s"):
        value = obj[name]
        if not isinstance(value, str) or not _WORD.fullmatch(value):
            raise MalformedReading(f"{name} must be '0x' and 64 hex digits, got {value!r}")
        words[name] = bytes.fromhex(value[2:])
    if not isinstance(obj["meter"], str):
        raise MalformedReading(f"meter must be a hex address string, got {obj['meter']!r}")
    try:
        reading = Reading(obj["meter"], obj["slot"], obj["import_Wh"], obj["export_Wh"])
    except InvalidReading as exc:
        raise MalformedReading(str(exc)) from exc
    return SignedReading(reading, v, words["r"], words["s"])
