"""ABI encoding of the arguments of Voisin's batch functions, without eth_abi's per-value walk.

``commitReadings`` and ``settleBatch`` carry arrays of static structs (seven and four words
each). eth_abi validates and encodes every value through a chain of encoder objects, about
60 microseconds per reading, which was a sizeable share of a simulated slot on a fast node.
The layout of these arguments is simple (a head of words and offsets, then each array's
length and its elements word by word), so :func:`encode` writes it directly.

It covers unsigned integers, ``address``, ``bool``, ``bytes32`` and dynamic arrays of tuples
of those. It returns ``None`` for any other type, and for any value it is not sure to encode
as eth_abi would (out of range, of another Python type, an address not in one case or its
checksum), so that the caller falls back on eth_abi, which then encodes it or says what is
wrong. The output is byte for byte eth_abi's (``tests/ledger/contract/test_abi_static.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from eth_utils.address import is_checksum_address

__all__ = ["encode"]

_UINT = re.compile(r"uint(\d+)")
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_WORD = 32


class _Unsure(Exception):
    """A value this encoder leaves to eth_abi."""


@lru_cache(maxsize=64)
def _scalar_bits(abi_type: str) -> int | None:
    """The width in bits of a supported scalar type (160 for an address, 256 for bytes32,
    1 for bool), or None."""
    if abi_type == "address":
        return 160
    if abi_type == "bytes32":
        return 256
    if abi_type == "bool":
        return 1
    match = _UINT.fullmatch(abi_type)
    if match is None:
        return None
    bits = int(match.group(1))
    return bits if 8 <= bits <= 256 and bits % 8 == 0 else None


@lru_cache(maxsize=64)
def _tuple_array(abi_type: str) -> tuple[str, ...] | None:
    """The member types of ``(T1,...,Tn)[]`` when every Ti is a supported scalar, else None."""
    if not (abi_type.startswith("(") and abi_type.endswith(")[]")):
        return None
    members = tuple(abi_type[1:-3].split(","))
    if not members or any(_scalar_bits(m) is None for m in members):
        return None
    return members


@lru_cache(maxsize=1 << 14)
def _checksummed(address: str) -> bool:
    """Whether a mixed-case address carries its checksum (a hash each: the same meters and
    accounts come back every slot)."""
    return bool(is_checksum_address(address))


def _word(abi_type: str, value: Any) -> bytes:
    if abi_type == "address":
        if not (isinstance(value, str) and _HEX_ADDRESS.fullmatch(value)):
            raise _Unsure
        digits = value[2:]
        if digits != digits.lower() and digits != digits.upper() and not _checksummed(value):
            raise _Unsure
        return bytes(12) + bytes.fromhex(digits)
    if abi_type == "bytes32":
        if not (isinstance(value, bytes | bytearray) and len(value) == _WORD):
            raise _Unsure
        return bytes(value)
    if abi_type == "bool":
        if not isinstance(value, bool):
            raise _Unsure
        return int(value).to_bytes(_WORD, "big")
    bits = _scalar_bits(abi_type)
    if bits is None or isinstance(value, bool) or not isinstance(value, int):
        raise _Unsure
    if not 0 <= value < 1 << bits:
        raise _Unsure
    return value.to_bytes(_WORD, "big")


def encode(types: Sequence[str], args: Sequence[Any]) -> bytes | None:
    """``args`` ABI-encoded as ``types``, or ``None`` to leave them to eth_abi."""
    if len(types) != len(args):
        return None
    heads: list[bytes] = []
    tails: list[bytes] = []
    tail_at = _WORD * len(types)
    try:
        for abi_type, value in zip(types, args, strict=True):
            members = _tuple_array(abi_type)
            if members is None:
                if _scalar_bits(abi_type) is None:
                    return None
                heads.append(_word(abi_type, value))
                continue
            if not isinstance(value, list | tuple):
                return None
            parts = [len(value).to_bytes(_WORD, "big")]
            for item in value:
                if not isinstance(item, list | tuple) or len(item) != len(members):
                    return None
                parts.extend(_word(t, v) for t, v in zip(members, item, strict=True))
            tail = b"".join(parts)
            heads.append(tail_at.to_bytes(_WORD, "big"))
            tails.append(tail)
            tail_at += len(tail)
    except _Unsure:
        return None
    return b"".join(heads) + b"".join(tails)
