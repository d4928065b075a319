"""EIP-712 readings: the digest, signing and recovery the meters and the contract share."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from ledger.readings.eip712 import (
    InvalidReading,
    Reading,
    SignedReading,
    domain_separator,
    reading_digest,
    recover_signer,
    sign_reading,
    typed_data,
)

CHAIN_ID = 31337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_digest_matches_eth_accounts_typed_data_encoder() -> None:
    meter = Account.create()
    reading = Reading(meter.address, 1_995_000, 12_345, 678)
    ours = reading_digest(reading, domain_separator(CHAIN_ID, CONTRACT))
    message = encode_typed_data(full_message=typed_data(reading, CHAIN_ID, CONTRACT))
    signed = Account.sign_message(message, meter.key)
    assert ours == bytes(signed.message_hash)


def test_signature_recovers_to_the_meter_and_matches_eth_account() -> None:
    meter = Account.create()
    domain = domain_separator(CHAIN_ID, CONTRACT)
    reading = Reading(meter.address, 7, 1, 2)
    signed = sign_reading(meter.key, reading, domain)
    assert recover_signer(signed, domain) == meter.address
    reference = Account.sign_message(
        encode_typed_data(full_message=typed_data(reading, CHAIN_ID, CONTRACT)), meter.key
    )
    assert signed.signature == bytes(reference.signature)


def test_tampered_value_or_other_domain_recovers_someone_else() -> None:
    meter = Account.create()
    domain = domain_separator(CHAIN_ID, CONTRACT)
    signed = sign_reading(meter.key, Reading(meter.address, 7, 1, 2), domain)
    tampered = SignedReading(Reading(meter.address, 7, 1, 3), signed.v, signed.r, signed.s)
    assert recover_signer(tampered, domain) != meter.address
    assert recover_signer(signed, domain_separator(CHAIN_ID + 1, CONTRACT)) != meter.address


def test_high_s_copy_of_a_signature_is_refused() -> None:
    meter = Account.create()
    domain = domain_separator(CHAIN_ID, CONTRACT)
    signed = sign_reading(meter.key, Reading(meter.address, 7, 1, 2), domain)
    high = (N - int.from_bytes(signed.s, "big")).to_bytes(32, "big")
    with pytest.raises(InvalidReading, match="malleable"):
        recover_signer(SignedReading(signed.reading, 55 - signed.v, signed.r, high), domain)
    with pytest.raises(InvalidReading, match="v in"):
        recover_signer(SignedReading(signed.reading, 29, signed.r, signed.s), domain)


def test_signatures_outside_the_curve_are_refused_as_eth_keys_refuses_them() -> None:
    """Zero or too large r or s, and an r that is no point's x, recover to no key; eth-keys
    (which the recovery no longer goes through) refuses the same signatures."""
    from eth_keys import keys  # type: ignore[attr-defined]

    meter = Account.create()
    domain = domain_separator(CHAIN_ID, CONTRACT)
    signed = sign_reading(meter.key, Reading(meter.address, 7, 1, 2), domain)
    no_point = (5).to_bytes(32, "big")  # x = 5 is not on secp256k1 (x^3 + 7 is no square)
    for r, s in [
        (bytes(32), signed.s),
        (signed.r, bytes(32)),
        (N.to_bytes(32, "big"), signed.s),
        ((N + 1).to_bytes(32, "big"), signed.s),
        (no_point, signed.s),
    ]:
        bad = SignedReading(signed.reading, signed.v, r, s)
        with pytest.raises(InvalidReading):
            recover_signer(bad, domain)
        with pytest.raises(Exception):  # noqa: B017  (eth-keys raises several types)
            keys.Signature(
                vrs=(signed.v - 27, int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            ).recover_public_key_from_msg_hash(reading_digest(signed.reading, domain))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("slot", -1, "between 0 and"),
        ("slot", 2**32, "between 0 and"),
        ("import_Wh", 2**64, "between 0 and"),
        ("export_Wh", -5, "between 0 and"),
        ("export_Wh", 1.5, "must be an integer"),
        ("import_Wh", True, "must be an integer"),
        ("slot", "12", "must be an integer"),
        ("meter", "0x1234", "20-byte hex address"),
        ("meter", None, "20-byte hex address"),
        ("meter", ["0x1234"], "20-byte hex address"),
    ],
)
def test_reading_fields_are_validated(field: str, value: object, message: str) -> None:
    values: dict[str, object] = {
        "meter": Account.create().address,
        "slot": 1,
        "import_Wh": 0,
        "export_Wh": 0,
    }
    values[field] = value
    with pytest.raises(InvalidReading, match=message):
        Reading(**values)  # type: ignore[arg-type]


def test_meter_address_is_checksummed() -> None:
    meter = Account.create().address
    assert Reading(meter.lower(), 1, 0, 0).meter == meter


def test_remembered_recoveries_answer_as_a_fresh_recovery_for_every_input() -> None:
    """The recovery is remembered by all four inputs: the same inputs answer from memory with
    the fresh answer; changing any one of them recovers anew (and gives another address)."""
    from eth_keys import keys  # type: ignore[attr-defined]

    from ledger.readings.eip712 import _recover, recover_address

    meter = Account.create()
    domain = domain_separator(CHAIN_ID, CONTRACT)
    signed = sign_reading(meter.key, Reading(meter.address, 7, 1, 2), domain)
    digest = reading_digest(signed.reading, domain)
    first = recover_address(digest, signed.v, signed.r, signed.s)
    hits = _recover.cache_info().hits
    # bytearrays (as calldata may come) are keyed as bytes.
    again = recover_address(bytearray(digest), signed.v, bytearray(signed.r), signed.s)
    assert first == again == bytes.fromhex(meter.address[2:])
    assert _recover.cache_info().hits == hits + 1
    other_digest = reading_digest(Reading(meter.address, 8, 1, 2), domain)
    variants = [
        (other_digest, signed.v, signed.r, signed.s),
        (digest, 55 - signed.v, signed.r, signed.s),
        (digest, signed.v, signed.r, (int.from_bytes(signed.s, "big") - 1).to_bytes(32, "big")),
    ]
    for d, v, r, s in variants:
        expected = keys.Signature(vrs=(v - 27, int.from_bytes(r, "big"), int.from_bytes(s, "big")))
        answer = recover_address(d, v, r, s)
        assert answer == expected.recover_public_key_from_msg_hash(d).to_canonical_address()
        assert answer != first
