"""The ABI event codec decodes every Voisin event exactly as web3's own decoder does."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, cast

import pytest
from hexbytes import HexBytes

from ledger import Chain, open_chain
from ledger.contract.client import _plain
from ledger.contract.event_codec import EventDecoder, UnsupportedEvent, event_decoders
from tests.ledger.mirror.test_indexer import _trade
from tests.world import SLOT, new_world


@pytest.fixture
def chain() -> Iterator[Chain]:
    with open_chain("memory") as chain:
        yield chain


def test_every_event_decodes_as_web3_decodes_it(chain: Chain) -> None:
    w = new_world(chain)
    _trade(w)  # the indexer tests' market: a fill, a take, a cancel
    logs = chain.w3.eth.get_logs({"address": w.client.address, "fromBlock": 0, "toBlock": "latest"})
    decoders = event_decoders(w.client.contract.abi)
    names = set()
    for log in logs:
        decoder = decoders[bytes(log["topics"][0])]
        ours = decoder.decode(log["topics"], bytes(log["data"]))
        theirs = getattr(w.client.contract.events, decoder.name)().process_log(log)["args"]
        assert list(ours) == list(theirs), decoder.name
        assert {k: _plain(v) for k, v in ours.items()} == {k: _plain(v) for k, v in theirs.items()}
        names.add(decoder.name)
    # The run covers the events the mirror depends on.
    assert {
        "HouseholdRegistered", "ToppedUp", "Transfer", "ReadingCommitted", "OfferPosted",
        "BidPosted", "FillSettled", "BatchSettled", "BidCancelled", "RoleGranted", "TariffsSet",
    } <= names  # fmt: skip
    # And the client's events are these decodings.
    assert [e.name for e in w.client.decode_logs(logs)] == [
        decoders[bytes(log["topics"][0])].name for log in logs
    ]


def test_a_log_that_does_not_fit_its_event_is_refused(chain: Chain) -> None:
    w = new_world(chain)
    w.household()
    logs = chain.w3.eth.get_logs({"address": w.client.address, "fromBlock": 0, "toBlock": "latest"})
    registered = logs[-1]
    decoder = event_decoders(w.client.contract.abi)[bytes(registered["topics"][0])]
    assert decoder.name == "HouseholdRegistered"
    with pytest.raises(ValueError, match="topics"):
        decoder.decode(list(registered["topics"])[:-1], bytes(registered["data"]))
    with pytest.raises(ValueError, match="HouseholdRegistered"):
        decoder.decode(registered["topics"], bytes(registered["data"])[:5])


def test_events_the_codec_cannot_decode_are_refused_up_front() -> None:
    anonymous = {"type": "event", "name": "A", "anonymous": True, "inputs": []}
    dynamic = {
        "type": "event",
        "name": "D",
        "inputs": [{"name": "s", "type": "string", "indexed": True}],
    }
    for item in (anonymous, dynamic):
        with pytest.raises(UnsupportedEvent):
            EventDecoder.from_abi(item)
    x = {"name": "x", "type": "uint64", "indexed": False}
    plain = EventDecoder.from_abi({"type": "event", "name": "P", "inputs": [x]})
    assert plain.decode([HexBytes(plain.topic)], (7).to_bytes(32, "big")) == {"x": 7}


def _random_word(rng: random.Random, type_: str) -> bytes:
    """A word of ``type_``: usually a value in range, sometimes any 32 bytes."""
    if rng.random() < 0.3:
        return rng.randbytes(32)
    if type_ == "address":
        return bytes(12) + rng.randbytes(20)
    if type_ == "bool":
        return rng.choice((0, 1)).to_bytes(32, "big")
    if type_.startswith("bytes"):
        size = int(type_[5:])
        return rng.randbytes(size) + bytes(32 - size)
    bits = int(type_.lstrip("uint") or 256)
    if type_.startswith("int"):
        return rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1)).to_bytes(32, "big", signed=True)
    return rng.randrange(1 << bits).to_bytes(32, "big")


def test_word_by_word_decoding_agrees_with_eth_abi_on_any_words() -> None:
    """Every Voisin event is read word by word; for words in range and for arbitrary ones,
    short or long data and missing topics, the answer (or the refusal) is eth_abi's."""
    from ledger.contract.compile import load_artifact

    rng = random.Random(3)
    decoders = event_decoders(load_artifact("Voisin")["abi"])
    extra = [
        {"name": n, "type": t, "indexed": False}
        for n, t in (("i", "int64"), ("b", "bytes4"), ("w", "uint256"), ("f", "bool"))
    ]
    signed = EventDecoder.from_abi({"type": "event", "name": "S", "inputs": extra})
    for decoder in [*decoders.values(), signed]:
        assert decoder.words is not None, decoder.name
        for _ in range(300):
            topics = [decoder.topic]
            data = b""
            for type_, ix in zip(decoder.types, decoder.indexed, strict=True):
                word = _random_word(rng, type_)
                if ix:
                    topics.append(word)
                else:
                    data += word
            if rng.random() < 0.05:
                data = data[: rng.randrange(len(data) + 1)] if data else b"\x00"
            if rng.random() < 0.05 and len(topics) > 1:
                topics.pop()
            if rng.random() < 0.05:
                data += bytes(32)
            try:
                theirs: object = decoder._decode_abi(topics, data)
            except ValueError:
                theirs = ValueError
            try:
                ours: object = decoder.decode(topics, data)
            except ValueError:
                ours = ValueError
            assert ours == theirs, (decoder.name, topics, data)
            if isinstance(ours, dict):
                assert [type(v) for v in ours.values()] == [
                    type(v) for v in cast(dict[str, object], theirs).values()
                ]


def test_a_transactions_events_are_decoded_once_when_first_asked_for(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = new_world(chain)
    members = [w.household() for _ in range(3)]
    decoded: list[int] = []
    real = w.client.decode_logs

    def counting(logs: Any) -> Any:
        decoded.append(1)
        return real(logs)

    monkeypatch.setattr(w.client, "decode_logs", counting)
    result = w.client.commit_readings(w.operator, [w.sign(m, SLOT, 10, 0) for m in members])
    assert result.gas_used > 0 and decoded == []  # sending decodes nothing
    committed = result.named("ReadingCommitted")
    assert [e.args["meter"] for e in committed] == [m.meter.address for m in members]
    assert result.events == committed and result.named("FillSettled") == []
    assert decoded == [1]  # and asking again decodes nothing more
