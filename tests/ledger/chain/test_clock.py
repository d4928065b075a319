"""The embedded chain's clock follows the wall clock, however long it sat idle.

py-evm stamps a pending block when its parent is mined; the embedded chain restamps it while it
holds no transaction, so that the contract's clock (``block.timestamp``, which bounds the slot a
reading may name) is never as old as the last block.
"""

from __future__ import annotations

import time

import pytest

from ledger import Chain, errors
from ledger.chain.backends import open_chain
from tests.world import Member, World, new_world

SLOT_SECONDS = 900


@pytest.fixture
def idle_world() -> tuple[World, Member]:
    chain: Chain = open_chain("memory")
    w = new_world(chain)
    member = w.household()
    return w, member


def _pretend_idle(monkeypatch: pytest.MonkeyPatch, seconds: int) -> int:
    """Move the wall clock ``seconds`` ahead of the last mined block; returns the new now."""
    later = time.time() + seconds
    monkeypatch.setattr(time, "time", lambda: later)
    return int(later)


@pytest.mark.parametrize("check_first", [True, False])
def test_a_reading_of_the_slot_just_ended_is_accepted_after_an_idle_hour(
    idle_world: tuple[World, Member], monkeypatch: pytest.MonkeyPatch, check_first: bool
) -> None:
    w, member = idle_world
    now = _pretend_idle(monkeypatch, 3_600)
    ended = now // SLOT_SECONDS - 1
    reading = w.sign(member, ended, 10, 20)
    result = w.client.commit_readings(w.operator, [reading], check_first=check_first)
    assert [e.args["slot"] for e in result.named("ReadingCommitted")] == [ended]
    block = w.chain.w3.eth.get_block(result.block_number)
    assert int(block["timestamp"]) >= now
    assert w.client.max_reading_slot() >= ended + 1


def test_a_reading_ahead_of_the_wall_clock_is_still_refused_after_an_idle_hour(
    idle_world: tuple[World, Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    w, member = idle_world
    now = _pretend_idle(monkeypatch, 3_600)
    with pytest.raises(errors.FutureReading):
        w.client.commit_readings(w.operator, [w.sign(member, now // SLOT_SECONDS + 5, 10, 20)])
