"""Decoding the contract's event logs straight from the ABI, with ``eth_abi``.

web3's ``ContractEvent.process_log`` builds and validates a new event object per log, which
made decoding the largest cost of indexing a busy slot (about 1.7 ms per log here). The
decoders here are built once per ABI and give the same arguments: addresses checksummed,
``bytes32`` as bytes, integers and booleans as Python values, in the ABI's order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.errors import UnsupportedEvent

__all__ = ["EventDecoder", "UnsupportedEvent", "checksum_address", "event_decoders"]


@functools.lru_cache(maxsize=65_536)
def checksum_address(address: str | bytes) -> str:
    """``to_checksum_address``, remembered: it hashes the address each time, and a
    neighbourhood's few hundred addresses recur in every slot's logs."""
    return to_checksum_address(address)


def _static(type_: str) -> bool:
    return not (type_ in ("string", "bytes") or type_.endswith("]"))


# A word that a one-word decoder below cannot vouch for: eth_abi then decodes (or refuses) it.
_NOT_CANONICAL: Final = object()
_ZERO_12: Final = bytes(12)


def _uint_word(bits: int) -> Callable[[bytes], Any]:
    def decode(word: bytes) -> Any:
        value = int.from_bytes(word, "big")
        return _NOT_CANONICAL if value >> bits else value

    return decode


def _int_word(bits: int) -> Callable[[bytes], Any]:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def decode(word: bytes) -> Any:
        value = int.from_bytes(word, "big", signed=True)
        return value if low <= value < high else _NOT_CANONICAL

    return decode


def _bytes_word(size: int) -> Callable[[bytes], Any]:
    padding = bytes(32 - size)

    def decode(word: bytes) -> Any:
        return word[:size] if word[size:] == padding else _NOT_CANONICAL

    return decode


def _address_word(word: bytes) -> Any:
    if word[:12] != _ZERO_12:
        return _NOT_CANONICAL
    return checksum_address("0x" + word[12:].hex())


def _bool_word(word: bytes) -> Any:
    value = int.from_bytes(word, "big")
    return _NOT_CANONICAL if value > 1 else value == 1


def _word_decoder(type_: str) -> Callable[[bytes], Any] | None:
    """A decoder of one ABI word of ``type_`` giving eth_abi's value (an address checksummed),
    or None for a type that is not a single word."""
    match = re.fullmatch(r"(u?int|bytes)([0-9]*)", type_)
    if type_ == "address":
        return _address_word
    if type_ == "bool":
        return _bool_word
    if match is None:
        return None
    kind, size = match.group(1), int(match.group(2) or 256)
    if kind == "bytes":
        return _bytes_word(size) if match.group(2) and 1 <= size <= 32 else None
    if size % 8 or not 8 <= size <= 256:
        return None
    return _uint_word(size) if kind == "uint" else _int_word(size)


@dataclass(frozen=True, slots=True)
class EventDecoder:
    """One event: its name, its inputs in ABI order, which are indexed, and their types."""

    name: str
    topic: bytes
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]
    # One decoder per input when every input is a single ABI word, else None.
    words: tuple[Callable[[bytes], Any], ...] | None = None

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
        words = tuple(_word_decoder(t) for t in types)
        return cls(
            str(item["name"]),
            keccak(text=signature),
            tuple(str(i["name"]) for i in inputs),
            types,
            indexed,
            None if None in words else cast(tuple[Callable[[bytes], Any], ...], words),
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """The event's arguments from a log's ``topics`` (the first is the signature's) and
        ``data``. Raises ``ValueError`` when they do not fit the event.

        An event whose inputs are all single words (every Voisin event) is read word by word:
        eth_abi's ``decode`` cost about 40 us per call, one call per topic and one for the
        data, for every log the indexer and the audit read. A log whose words are not exactly
        what eth_abi would accept (length, padding) goes through eth_abi, which decodes or
        refuses it as before.
        """
        if self.words is not None:
            args = self._decode_words(topics, data)
            if args is not None:
                return args
        return self._decode_abi(topics, data)

    def _decode_words(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any] | None:
        assert self.words is not None
        args: dict[str, Any] = {}
        topic_index = 1
        offset = 0
        for name, ix, word_decoder in zip(self.names, self.indexed, self.words, strict=True):
            if ix:
                if topic_index >= len(topics):
                    return None
                word = bytes(topics[topic_index])
                topic_index += 1
            else:
                word = data[offset : offset + 32]
                offset += 32
            if len(word) != 32:
                return None
            value = word_decoder(word)
            if value is _NOT_CANONICAL:
                return None
            args[name] = value
        if topic_index != len(topics) or offset != len(data):
            return None
        return args

    def _decode_abi(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
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
