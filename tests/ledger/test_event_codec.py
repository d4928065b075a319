"""The ABI event codec decodes every Voisin event exactly as web3's own decoder does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hexbytes import HexBytes

from ledger import Chain, open_chain
from ledger.client import _plain
from ledger.event_codec import EventDecoder, UnsupportedEvent, event_decoders
from tests.ledger.test_indexer import _trade
from tests.world import new_world


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
