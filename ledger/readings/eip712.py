"""EIP-712 typed data for meter readings, shared by the meters and the ledger.

A reading is a meter's cumulative registers at the end of a slot:
``Reading(address meter,uint32 slot,uint64 importWh,uint64 exportWh)`` in the domain
``EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)``. Carrying the chain id
and the contract address in the domain stops a reading from being replayed on another chain or
another deployment. The contract accepts low-s signatures only (eth-keys produces those).

The digest is computed directly (abi-encode + keccak) because meters sign one reading per slot
each, and eth-account's generic typed-data encoder is several times slower; a test checks that
both give the same digest, and that the contract's ``readingDigest`` agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coincurve import PublicKey
from eth_abi.abi import encode as abi_encode
from eth_keys.datatypes import PrivateKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.contract.event_codec import checksum_address
from ledger.errors import LedgerError

DOMAIN_NAME = "Voisin"
DOMAIN_VERSION = "1"
READING_TYPE = "Reading(address meter,uint32 slot,uint64 importWh,uint64 exportWh)"
READING_TYPEHASH = keccak(text=READING_TYPE)
_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
#: secp256k1n / 2: the contract refuses signatures with a higher s (malleable copies).
_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
# secp256k1's group order.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class InvalidReading(LedgerError, ValueError):
    """A reading's fields are out of range or of the wrong type."""


@dataclass(frozen=True, slots=True)
class Reading:
    """A meter's cumulative registers (Wh) at the end of ``slot`` (unix seconds // 900)."""

    meter: str
    slot: int
    import_Wh: int
    export_Wh: int

    def __post_init__(self) -> None:
        _check_uint("slot", self.slot, UINT32_MAX)
        _check_uint("import_Wh", self.import_Wh, UINT64_MAX)
        _check_uint("export_Wh", self.export_Wh, UINT64_MAX)
        try:
            # Remembered: a neighbourhood's meters recur in every slot.
            object.__setattr__(self, "meter", checksum_address(self.meter))
        except (ValueError, TypeError) as exc:
            raise InvalidReading(
                f"meter must be a 20-byte hex address, got {self.meter!r}"
            ) from exc


@dataclass(frozen=True, slots=True)
class SignedReading:
    """A reading with its meter's signature split as the contract takes it."""

    reading: Reading
    v: int
    r: bytes
    s: bytes

    def as_contract_tuple(self) -> tuple[str, int, int, int, int, bytes, bytes]:
        """The ``IVoisin.Reading`` struct as web3 encodes it."""
        rd = self.reading
        return (rd.meter, rd.slot, rd.import_Wh, rd.export_Wh, self.v, self.r, self.s)

    @property
    def signature(self) -> bytes:
        """The 65-byte signature r || s || v."""
        return self.r + self.s + bytes([self.v])


def _check_uint(name: str, value: Any, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidReading(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise InvalidReading(f"{name} must be between 0 and {maximum}, got {value}")


def domain_separator(chain_id: int, contract: str) -> bytes:
    """The EIP-712 domain separator of a Voisin deployment."""
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                _DOMAIN_TYPEHASH,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain_id,
                to_checksum_address(contract),
            ],
        )
    )


def reading_digest(reading: Reading, domain: bytes) -> bytes:
    """The 32-byte digest a meter signs for ``reading`` under ``domain``."""
    # abi.encode of static words, packed by hand (a Reading's fields were range-checked when
    # it was built): eth_abi's encoder took about 110 of the 570 us of a signed reading
    # (BENCHMARKS.md, meter simulator).
    struct_hash = keccak(
        READING_TYPEHASH
        + bytes(12)
        + bytes.fromhex(reading.meter[2:])
        + reading.slot.to_bytes(32, "big")
        + reading.import_Wh.to_bytes(32, "big")
        + reading.export_Wh.to_bytes(32, "big")
    )
    return keccak(b"\x19\x01" + domain + struct_hash)


def typed_data(reading: Reading, chain_id: int, contract: str) -> dict[str, Any]:
    """The reading as a full EIP-712 message (for wallets and eth-account)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Reading": [
                {"name": "meter", "type": "address"},
                {"name": "slot", "type": "uint32"},
                {"name": "importWh", "type": "uint64"},
                {"name": "exportWh", "type": "uint64"},
            ],
        },
        "primaryType": "Reading",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(contract),
        },
        "message": {
            "meter": reading.meter,
            "slot": reading.slot,
            "importWh": reading.import_Wh,
            "exportWh": reading.export_Wh,
        },
    }


def sign_reading(private_key: bytes | PrivateKey, reading: Reading, domain: bytes) -> SignedReading:
    """Sign ``reading`` with a meter's private key (32 bytes, or an eth-keys key: building one
    derives the public key, so a meter signing many readings keeps its own)."""
    key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(private_key)
    signature = key.sign_msg_hash(reading_digest(reading, domain))
    return SignedReading(
        reading=reading,
        v=signature.v + 27,
        r=signature.r.to_bytes(32, "big"),
        s=signature.s.to_bytes(32, "big"),
    )


def recover_signer(signed: SignedReading, domain: bytes) -> str:
    """The address that signed ``signed`` under ``domain`` (checksummed).

    Raises :class:`InvalidReading` for a malformed or malleable (high-s) signature, the same
    signatures the contract refuses.
    """
    if signed.v not in (27, 28) or len(signed.r) != 32 or len(signed.s) != 32:
        raise InvalidReading("signature must have v in {27, 28} and 32-byte r and s")
    s_value = int.from_bytes(signed.s, "big")
    if s_value > _HALF_N:
        raise InvalidReading("signature s is in the upper half of the curve order (malleable)")
    if not (0 < int.from_bytes(signed.r, "big") < _N and s_value > 0):
        raise InvalidReading("signature r and s must lie in [1, n - 1]")
    try:
        address = recover_address(
            reading_digest(signed.reading, domain), signed.v, signed.r, signed.s
        )
    except Exception as exc:  # coincurve raises ValueError or its own errors for bad points
        raise InvalidReading(f"signature does not recover to any key: {exc}") from exc
    return checksum_address("0x" + address.hex())


#: How many recoveries :func:`recover_address` remembers (about 220 bytes each, measured with
#: tracemalloc over 4,000 recoveries: some 29 MB when full).
RECOVERIES_REMEMBERED = 1 << 17


def recover_address(digest: bytes, v: int, r: bytes, s: bytes) -> bytes:
    """The 20-byte address whose key signed ``digest`` as (``v``, ``r``, ``s``), v 27 or 28.

    libsecp256k1 through coincurve, without eth-keys' key and signature objects: half the
    time per signature. The intake and the audit recover every reading with it, and so does
    the embedded chain's ecrecover precompile (``ledger.chain.pyevm_speedups.evm_fast``). The
    caller checks the
    ranges its rules ask for; a signature that recovers no key raises (coincurve's error).

    A recovery is a pure function of its four inputs, and one process often recovers the same
    signature three times: at the intake, in the precompile when the reading is committed, and
    in the audit. The last :data:`RECOVERIES_REMEMBERED` answers are kept, keyed by all four
    inputs (failures are not kept).
    """
    return _recover(bytes(digest), v, bytes(r), bytes(s))


@lru_cache(maxsize=RECOVERIES_REMEMBERED)
def _recover(digest: bytes, v: int, r: bytes, s: bytes) -> bytes:
    public = PublicKey.from_signature_and_message(r + s + bytes((v - 27,)), digest, hasher=None)
    return keccak(public.format(compressed=False)[1:])[-20:]
