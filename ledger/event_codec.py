"""Decoding the contract's event logs straight from the ABI, with ``eth_abi``.

web3's ``ContractEvent.process_log`` builds and validates a new event object per log, which
made decoding the largest cost of indexing a busy slot (about 1.7 ms per log here). The
decoders here are built once per ABI and give the same arguments: addresses checksummed,
``bytes32`` as bytes, integers and booleans as Python values, in the ABI's order.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

__all__ = ["EventDecoder", "UnsupportedEvent", "checksum_address", "event_decoders"]


@functools.lru_cache(maxsize=65_536)
def checksum_address(address: str | bytes) -> str:
    """``to_checksum_address``, remembered: it hashes the address each time, and a
    neighbourhood's few hundred addresses recur in every slot's logs."""
    return to_checksum_address(address)


class UnsupportedEvent(ValueError):
    """An event this codec cannot decode (an anonymous event, or a dynamic indexed input)."""


def _static(type_: str) -> bool:
    return not (type_ in ("string", "bytes") or type_.endswith("]"))


@dataclass(frozen=True, slots=True)
class EventDecoder:
    """One event: its name, its inputs in ABI order, which are indexed, and their types."""

    name: str
    topic: bytes
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]

    @classmethod
    def from_abi(cls, item: Mapping[str, Any]) -> EventDecoder:
        if item.get("anonymous"):
            raise UnsupportedEvent(f"event {item['name']} is anonymous")
        inputs = item["inputs"]
        types = tuple(str(i["type"]) for i in inputs)
        indexed = tuple(bool(i["indexed"]) for i in inputs)
        for i, t, ix in zip(inputs, types, indexed, strict=True):
            if t.startswith("tuple"):
                raise UnsupportedEvent(f"event {item['name']}: struct input {i['name']}")
            if ix and not _static(t):
                raise UnsupportedEvent(
                    f"event {item['name']}: indexed input {i['name']} has dynamic type {t}"
                )
        signature = f"{item['name']}({','.join(types)})"
        return cls(
            str(item["name"]),
            keccak(text=signature),
            tuple(str(i["name"]) for i in inputs),
            types,
            indexed,
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """The event's arguments from a log's ``topics`` (the first is the signature's) and
        ``data``. Raises ``ValueError`` when they do not fit the event."""
        indexed_types = [t for t, ix in zip(self.types, self.indexed, strict=True) if ix]
        if len(topics) != len(indexed_types) + 1:
            raise ValueError(
                f"{self.name}: {len(topics)} topics for {len(indexed_types)} indexed inputs"
            )
        data_types = [t for t, ix in zip(self.types, self.indexed, strict=True) if not ix]
        try:
            from_topics = iter(
                [
                    abi_decode([t], bytes(topic))[0]
                    for t, topic in zip(indexed_types, topics[1:], strict=True)
                ]
            )
            from_data = iter(abi_decode(data_types, data))
        except DecodingError as exc:
            raise ValueError(f"{self.name}: the log does not decode: {exc}") from exc
        args: dict[str, Any] = {}
        for name, type_, ix in zip(self.names, self.types, self.indexed, strict=True):
            value = next(from_topics) if ix else next(from_data)
            args[name] = checksum_address(value) if type_ == "address" else value
        return args


def event_decoders(abi: Sequence[Mapping[str, Any]]) -> dict[bytes, EventDecoder]:
    """The ABI's events by topic (the keccak of their signature)."""
    decoders = (EventDecoder.from_abi(item) for item in abi if item["type"] == "event")
    return {d.topic: d for d in decoders}
