"""Reading intake: the pure pre-validation that mirrors commitReadings, and its wire form."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Chain, errors
from ledger.readings.eip712 import Reading, SignedReading, domain_separator, sign_reading
from ledger.readings.intake import (
    Code,
    Flag,
    MalformedReading,
    MeterRecord,
    classify,
    reading_from_json,
    reading_to_json,
)
from tests.world import SLOT, new_world

DOMAIN = domain_separator(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
N = 2 * HALF_N + 1
A: LocalAccount = Account.from_key(b"\x0a" * 32)
B: LocalAccount = Account.from_key(b"\x0b" * 32)
STRANGER: LocalAccount = Account.from_key(b"\x0c" * 32)


def sign(meter: LocalAccount, slot: int, import_Wh: int, export_Wh: int) -> SignedReading:
    return sign_reading(meter.key, Reading(meter.address, slot, import_Wh, export_Wh), DOMAIN)


def known() -> dict[str, MeterRecord]:
    """A (household 1) has never read; B (household 2) last read SLOT."""
    return {
        A.address: MeterRecord(1, 0, 1_000, 50),
        B.address: MeterRecord(2, SLOT, 500, 0),
    }


def test_a_batch_of_several_slots_per_meter_is_accepted_in_slot_order() -> None:
    batch = [
        sign(A, SLOT + 2, 1_300, 60),
        sign(B, SLOT + 1, 510, 0),
        sign(A, SLOT + 1, 1_200, 50),
        sign(B, SLOT + 2, 520, 5),
    ]
    result = classify(batch, DOMAIN, known())
    assert [v.accepted for v in result.verdicts] == [True] * 4
    assert [v.index for v in result.verdicts] == [0, 1, 2, 3]
    assert [(s.reading.meter, s.reading.slot) for s in result.accepted] == [
        (B.address, SLOT + 1),
        (A.address, SLOT + 1),
        (A.address, SLOT + 2),
        (B.address, SLOT + 2),
    ]
    assert result.meters[A.address] == MeterRecord(1, SLOT + 2, 1_300, 60)
    assert result.meters[B.address] == MeterRecord(2, SLOT + 2, 520, 5)
    assert all(v.flags == () for v in result.verdicts)


def test_the_input_state_is_left_untouched() -> None:
    state = known()
    classify([sign(A, SLOT + 1, 1_200, 50)], DOMAIN, state)
    assert state == known()


@pytest.mark.parametrize(
    ("reading", "code", "words"),
    [
        (sign(STRANGER, SLOT + 1, 0, 0), Code.UNKNOWN_METER, "not registered"),
        (None, Code.BAD_SIGNATURE, "signed by"),
        (
            sign_reading(STRANGER.key, Reading(A.address, SLOT + 1, 1_200, 50), DOMAIN),
            Code.BAD_SIGNATURE,
            STRANGER.address,
        ),
        (sign(B, SLOT, 500, 0), Code.DUPLICATE, "already has a reading for slot"),
        (sign(B, SLOT - 3, 400, 0), Code.STALE_SLOT, f"older than its last committed slot {SLOT}"),
        (sign(B, SLOT + 1, 499, 0), Code.REGISTER_DECREASED, "may never decrease"),
        (sign(A, SLOT + 1, 1_200, 49), Code.REGISTER_DECREASED, "below the committed"),
        (sign(B, SLOT + 1, 500 + 2**56, 0), Code.ENERGY_TOO_LARGE, f"at most {2**56 - 1} Wh"),
    ],
)
def test_each_rejection_carries_its_code_and_says_what_is_allowed(
    reading: SignedReading | None, code: Code, words: str
) -> None:
    if reading is None:  # a value changed after signing
        good = sign(A, SLOT + 1, 1_200, 50)
        reading = SignedReading(Reading(A.address, SLOT + 1, 1_200, 9_999), good.v, good.r, good.s)
    result = classify([reading], DOMAIN, known())
    (verdict,) = result.verdicts
    assert not verdict.accepted
    assert verdict.code is code
    assert words in verdict.message
    assert result.accepted == []
    assert result.meters == known()


def test_a_high_s_copy_of_a_valid_signature_is_a_bad_signature() -> None:
    good = sign(A, SLOT + 1, 1_200, 50)
    high = (N - int.from_bytes(good.s, "big")).to_bytes(32, "big")
    flipped = SignedReading(good.reading, 55 - good.v, good.r, high)
    (verdict,) = classify([flipped], DOMAIN, known()).verdicts
    assert verdict.code is Code.BAD_SIGNATURE
    assert "malleable" in verdict.message


def test_a_reading_signed_for_another_deployment_is_a_bad_signature() -> None:
    other = domain_separator(31337, "0x" + "22" * 20)
    signed = sign_reading(A.key, Reading(A.address, SLOT + 1, 1_200, 50), other)
    (verdict,) = classify([signed], DOMAIN, known()).verdicts
    assert verdict.code is Code.BAD_SIGNATURE


def test_a_deactivated_households_meter_is_refused_after_its_signature_is_checked() -> None:
    state = known()
    state[A.address] = MeterRecord(1, 0, 1_000, 50, active=False)
    (verdict,) = classify([sign(A, SLOT + 1, 1_200, 50)], DOMAIN, state).verdicts
    assert verdict.code is Code.INACTIVE_HOUSEHOLD
    forged = sign_reading(STRANGER.key, Reading(A.address, SLOT + 1, 1_200, 50), DOMAIN)
    (verdict,) = classify([forged], DOMAIN, state).verdicts
    assert verdict.code is Code.BAD_SIGNATURE


def test_a_retired_meter_counts_as_unknown() -> None:
    state = {A.address: MeterRecord(0, SLOT, 1_000, 50)}
    (verdict,) = classify([sign(A, SLOT + 1, 1_200, 50)], DOMAIN, state).verdicts
    assert verdict.code is Code.UNKNOWN_METER


def test_future_slots_are_refused_beyond_the_tolerance_and_only_with_a_clock() -> None:
    now = SLOT + 10  # slot SLOT + 9 has just ended
    in_progress = sign(B, now, 600, 0)
    ahead = sign(B, now + 1, 600, 0)
    verdicts = classify([in_progress], DOMAIN, known(), now_slot=now).verdicts
    assert verdicts[0].accepted
    (verdict,) = classify([ahead], DOMAIN, known(), now_slot=now).verdicts
    assert verdict.code is Code.FUTURE_SLOT
    assert f"at most slot {now}" in verdict.message
    strict = classify([in_progress], DOMAIN, known(), now_slot=now, future_tolerance_slots=0)
    assert strict.verdicts[0].code is Code.FUTURE_SLOT
    assert classify([ahead], DOMAIN, known()).verdicts[0].accepted


def test_a_second_copy_in_the_same_batch_is_a_duplicate() -> None:
    reading = sign(A, SLOT + 1, 1_200, 50)
    result = classify([reading, reading], DOMAIN, known())
    assert [v.accepted for v in result.verdicts] == [True, False]
    assert result.verdicts[1].code is Code.DUPLICATE
    assert result.accepted == [reading]


def test_a_rejected_reading_does_not_advance_the_meter() -> None:
    good = sign(A, SLOT + 1, 1_200, 50)
    tampered = SignedReading(Reading(A.address, SLOT + 1, 1_200, 70), good.v, good.r, good.s)
    result = classify([tampered, good], DOMAIN, known())
    assert [v.code for v in result.verdicts] == [Code.BAD_SIGNATURE, None]
    assert result.accepted == [good]


def test_skipped_slots_and_late_arrival_are_flagged_on_accepted_readings() -> None:
    result = classify(
        [sign(B, SLOT + 3, 600, 0), sign(B, SLOT + 4, 610, 0)],
        DOMAIN,
        known(),
        now_slot=SLOT + 6,
        late_after_slots=0,
    )
    assert [v.flags for v in result.verdicts] == [(Flag.GAP, Flag.LATE), (Flag.LATE,)]
    first = classify([sign(A, SLOT + 9, 1_000, 50)], DOMAIN, known(), now_slot=SLOT + 10)
    assert first.verdicts[0].flags == ()  # a meter's first reading has no gap to speak of


def test_wire_form_round_trips_and_is_accepted_like_the_object() -> None:
    signed = sign(A, SLOT + 1, 1_200, 50)
    wire = reading_to_json(signed)
    assert wire["r"].startswith("0x") and len(wire["r"]) == 66
    assert reading_from_json(wire) == signed
    result = classify([wire], DOMAIN, known())
    assert result.accepted == [signed]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"slot": None}, "slot must be an integer"),
        ({"slot": -1}, "slot must be between"),
        ({"import_Wh": 2**64}, "import_Wh must be between"),
        ({"export_Wh": "5"}, "export_Wh must be an integer"),
        ({"meter": "0x1234"}, "20-byte hex address"),
        ({"meter": 5}, "meter must be a hex address"),
        ({"v": True}, "v must be an integer"),
        ({"r": "0x12"}, "r must be '0x' and 64 hex digits"),
        ({"s": "zz" * 33}, "s must be '0x' and 64 hex digits"),
    ],
)
def test_malformed_wire_readings_are_rejected_with_the_field_named(
    change: dict[str, Any], words: str
) -> None:
    wire = {**reading_to_json(sign(A, SLOT + 1, 1_200, 50)), **change}
    with pytest.raises(MalformedReading, match=words):
        reading_from_json(wire)
    good = sign(B, SLOT + 1, 600, 0)
    result = classify([wire, good], DOMAIN, known())
    assert result.verdicts[0].code is Code.MALFORMED
    assert words in result.verdicts[0].message
    assert result.accepted == [good]


def test_a_wire_reading_missing_fields_names_them() -> None:
    (verdict,) = classify([{"meter": A.address, "slot": 1}], DOMAIN, known()).verdicts
    assert verdict.code is Code.MALFORMED
    assert "import_Wh, export_Wh, v, r, s" in verdict.message


# ───────────────────────────── Properties ─────────────────────────────

step = st.tuples(
    st.sampled_from([A, B, STRANGER]),
    st.integers(-2, 3),  # slot offset from SLOT
    st.integers(-5, 20),  # import
    st.integers(-5, 20),  # export
    st.sampled_from(["good", "good", "good", "tamper", "wrong_key"]),
)


def _build(spec: tuple[LocalAccount, int, int, int, str]) -> SignedReading:
    meter, offset, imp, exp, how = spec
    reading = Reading(meter.address, SLOT + offset, 1_000 + imp, 50 + exp)
    if how == "wrong_key":
        return sign_reading(STRANGER.key if meter is not STRANGER else A.key, reading, DOMAIN)
    signed = sign_reading(meter.key, reading, DOMAIN)
    if how == "tamper":
        bumped = Reading(reading.meter, reading.slot, reading.import_Wh, reading.export_Wh + 1)
        return SignedReading(bumped, signed.v, signed.r, signed.s)
    return signed


@settings(max_examples=60, deadline=None)
@given(st.lists(step, max_size=12))
def test_accepted_readings_form_a_sequence_the_contract_takes(
    specs: list[tuple[LocalAccount, int, int, int, str]],
) -> None:
    readings = [_build(s) for s in specs]
    result = classify(readings, DOMAIN, known())
    assert len(result.verdicts) == len(readings)
    assert sorted(v.index for v in result.verdicts) == list(range(len(readings)))
    # Replay the accepted list as the contract would: strictly increasing slots, growing
    # registers, the meter's own signature, known meters only.
    state = known()
    for signed in result.accepted:
        rd = signed.reading
        rec = state[rd.meter]
        assert rd.slot > rec.last_slot
        assert rd.import_Wh >= rec.import_Wh and rd.export_Wh >= rec.export_Wh
        state[rd.meter] = MeterRecord(rec.household, rd.slot, rd.import_Wh, rd.export_Wh)
    assert state == result.meters
    for v in result.verdicts:
        if v.accepted:
            continue
        assert v.code is not None and v.message
    # Nothing is accepted twice: re-sending the whole input after it is all refused.
    again = classify(readings, DOMAIN, result.meters)
    assert again.accepted == []


# ───────────────────────────── Against the contract ─────────────────────────────

CONTRACT_ERROR = {
    Code.UNKNOWN_METER: errors.UnknownMeter,
    Code.BAD_SIGNATURE: errors.InvalidSignature,
    Code.INACTIVE_HOUSEHOLD: errors.HouseholdInactive,
    Code.DUPLICATE: errors.DuplicateReading,
    Code.STALE_SLOT: errors.StaleReading,
    Code.REGISTER_DECREASED: errors.RegisterDecreased,
    Code.ENERGY_TOO_LARGE: errors.EnergyTooLarge,
}


def test_classification_matches_what_the_contract_does(embedded_chain: Chain) -> None:
    w = new_world(embedded_chain)
    one, two, three = Account.create(), Account.create(), Account.create()
    for i, meter in enumerate((one, two, three)):
        w.client.register_household(
            w.operator, w.account(funded=False).address, meter.address, prosumer=True,
            import_baseline_Wh=1_000 * (i + 1), export_baseline_Wh=10,
        )  # fmt: skip
    w.client.commit_readings(
        w.operator, [sign_reading(two.key, Reading(two.address, SLOT, 2_100, 10), w.domain)]
    )
    w.client.deactivate_household(w.operator, 3)

    def s(meter: LocalAccount, slot: int, imp: int, exp: int) -> SignedReading:
        return sign_reading(meter.key, Reading(meter.address, slot, imp, exp), w.domain)

    good = s(one, SLOT + 1, 1_100, 20)
    batch = [
        s(one, SLOT + 2, 1_150, 30),
        good,
        SignedReading(Reading(one.address, SLOT + 3, 1_150, 99), good.v, good.r, good.s),
        sign_reading(one.key, Reading(two.address, SLOT + 1, 2_200, 10), w.domain),
        s(two, SLOT, 2_100, 10),
        s(two, SLOT - 1, 2_100, 10),
        s(two, SLOT + 1, 2_000, 10),
        s(two, SLOT + 2, 2_300, 15),
        s(two, SLOT + 3, 2_300, 20 + 2**56),
        s(three, SLOT + 1, 3_100, 10),
        s(STRANGER, SLOT + 1, 0, 0),
    ]
    state = {
        m.address: MeterRecord(st_.household, st_.last_slot, st_.import_Wh, st_.export_Wh, act)
        for m in (one, two, three)
        for st_ in [w.client.meter_state(m.address)]
        for act in [w.client.household(st_.household).active]
    }
    result = classify(batch, w.domain, state)
    codes = [v.code for v in result.verdicts]
    assert codes == [
        None,
        None,
        Code.BAD_SIGNATURE,
        Code.BAD_SIGNATURE,
        Code.DUPLICATE,
        Code.STALE_SLOT,
        Code.REGISTER_DECREASED,
        None,
        Code.ENERGY_TOO_LARGE,
        Code.INACTIVE_HOUSEHOLD,
        Code.UNKNOWN_METER,
    ]
    # Each rejected reading, sent alone against the same chain state, is refused by the
    # contract with the matching error (none of these verdicts depends on another reading).
    for verdict in result.rejected:
        assert verdict.reading is not None and verdict.code is not None
        with pytest.raises(CONTRACT_ERROR[verdict.code]):
            w.client.commit_readings(w.operator, [verdict.reading])
    committed = w.client.commit_readings(w.operator, result.accepted)
    assert len(committed.named("ReadingCommitted")) == 3
    for meter, record in result.meters.items():
        chain_state = w.client.meter_state(meter)
        assert (chain_state.last_slot, chain_state.import_Wh, chain_state.export_Wh) == (
            record.last_slot,
            record.import_Wh,
            record.export_Wh,
        )


def test_without_signature_checks_every_other_check_is_still_made() -> None:
    tampered = sign(A, SLOT + 1, 1_200, 50)
    forged = SignedReading(
        Reading(A.address, SLOT + 1, 1_200, 9_999), tampered.v, tampered.r, tampered.s
    )
    result = classify([forged], DOMAIN, known(), check_signatures=False)
    assert result.verdicts[0].accepted
    assert classify([forged], DOMAIN, known()).verdicts[0].code is Code.BAD_SIGNATURE
    stale = classify([sign(B, SLOT - 3, 400, 0)], DOMAIN, known(), check_signatures=False)
    assert stale.verdicts[0].code is Code.STALE_SLOT
    decreased = classify([sign(B, SLOT + 1, 499, 0)], DOMAIN, known(), check_signatures=False)
    assert decreased.verdicts[0].code is Code.REGISTER_DECREASED
