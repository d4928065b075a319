"""The direct encoder of static-struct arrays writes exactly what eth_abi writes, and leaves to
eth_abi every value it is not sure of."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Chain
from ledger.contract import abi_static
from ledger.errors import InvalidArgument
from tests.world import new_world

READING = "(address,uint32,uint64,uint64,uint8,bytes32,bytes32)[]"
FILL = "(uint32,uint32,uint64,uint64)[]"

_address = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
_reading = st.tuples(
    st.one_of(_address, _address.map(str.lower)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 255),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)
_fill = st.tuples(*(st.integers(0, 2**32 - 1),) * 2, *(st.integers(0, 2**64 - 1),) * 2)


@settings(max_examples=200, deadline=None)
@given(readings=st.lists(_reading, max_size=12))
def test_readings_encode_as_eth_abi_does(readings: list[tuple[Any, ...]]) -> None:
    assert abi_static.encode([READING], [readings]) == abi_encode([READING], [readings])


@settings(max_examples=200, deadline=None)
@given(
    slot=st.integers(0, 2**32 - 1),
    batch=st.integers(0, 2**32 - 1),
    fills=st.lists(_fill, max_size=12),
    flag=st.booleans(),
)
def test_scalars_before_an_array_encode_as_eth_abi_does(
    slot: int, batch: int, fills: list[tuple[int, ...]], flag: bool
) -> None:
    types = ["uint32", "uint32", FILL, "bool"]
    args = [slot, batch, fills, flag]
    assert abi_static.encode(types, args) == abi_encode(types, args)


GOOD = ("0x" + "ab" * 20, 1, 2, 3, 27, b"\x01" * 32, b"\x02" * 32)


@pytest.mark.parametrize(
    ("position", "value"),
    [
        (0, "0x" + "aB" * 20),  # mixed case with a wrong checksum
        (0, b"\x01" * 20),  # bytes: eth_abi's to judge
        (0, "0x" + "ab" * 19),  # too short
        (1, 2**32),  # out of range
        (1, -1),
        (1, True),  # a bool is not an integer
        (2, 1.0),
        (5, b"\x01" * 31),  # eth_abi pads a short bytes32
    ],
)
def test_a_value_it_is_not_sure_of_is_left_to_eth_abi(position: int, value: Any) -> None:
    reading = list(GOOD)
    reading[position] = value
    assert abi_static.encode([READING], [[tuple(reading)]]) is None


@pytest.mark.parametrize("types", [["string"], ["uint32[]"], ["(uint32,string)[]"], ["int64"]])
def test_other_types_are_left_to_eth_abi(types: list[str]) -> None:
    assert abi_static.encode(types, [None]) is None


def test_the_client_still_names_a_value_that_does_not_fit(embedded_chain: Chain) -> None:
    client = new_world(embedded_chain).client
    reading = list(GOOD)
    reading[1] = 2**32
    with pytest.raises(InvalidArgument, match="commitReadings"):
        client.calldata("commitReadings", [tuple(reading)])
    ok = client.calldata("commitReadings", [GOOD])
    assert ok[4:] == abi_encode([READING], [[GOOD]])


def test_a_checksummed_address_is_encoded() -> None:
    address = Account.create().address
    reading = (address, *GOOD[1:])
    assert abi_static.encode([READING], [[reading]]) == abi_encode([READING], [[reading]])
