"""Readings for slots ahead of the chain's clock: refused with ``FutureReading``, changing
nothing, so that no signed reading can park a meter's last slot in the future and lock its
household out, not even across a meter rotation. One suite, subclassed per backend.

The contract accepts a slot up to ``block.timestamp // 900 + MAX_SLOTS_AHEAD`` (1). Tests learn
that bound from the contract itself (the ``maxSlot`` of a refusal, or ``max_reading_slot``)
rather than from the wall clock: the embedded chain's blocks carry the time their parent was
mined (+1 s per block when mined faster than that), and a node's clock is its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from eth_account import Account
from web3.types import RPCEndpoint

from ledger import Chain, errors
from ledger.chain.backends import open_chain
from ledger.types import Forward, ForwardPosition
from tests.world import SLOT, Member, World, new_world

#: The contract's MAX_SLOTS_AHEAD.
MAX_SLOTS_AHEAD = 1
SLOT_SECONDS = 900
LAST_UINT32 = 2**32 - 1

#: Moves the chain's clock to the start of its next slot: the latest block is mined there.
AdvanceClock = Callable[[], None]


def _chain_slot(w: World) -> int:
    """The slot of the chain's latest block (its clock, not the wall clock)."""
    return int(w.chain.w3.eth.get_block("latest")["timestamp"]) // SLOT_SECONDS


def _refused_far_ahead(w: World, member: Member) -> int:
    """Send a reading for a slot 10,000 slots ahead; return the maxSlot its refusal names."""
    ahead = _chain_slot(w) + 10_000
    with pytest.raises(errors.FutureReading) as err:
        w.client.commit_readings(w.operator, [w.sign(member, ahead, 10**9, 10**9)])
    return int(err.value.values["maxSlot"])


class FutureReadingSuite:
    """Backend-independent tests; subclasses provide ``chain`` and ``advance_clock``."""

    @pytest.fixture
    def chain(self) -> Chain:
        raise NotImplementedError

    @pytest.fixture
    def advance_clock(self, chain: Chain) -> AdvanceClock:
        raise NotImplementedError

    @pytest.fixture
    def w(self, chain: Chain) -> World:
        return new_world(chain)

    def test_max_reading_slot_is_the_chains_slot_plus_the_skew(self, w: World) -> None:
        before = _chain_slot(w)
        top = w.client.max_reading_slot()
        assert before + MAX_SLOTS_AHEAD <= top <= _chain_slot(w) + MAX_SLOTS_AHEAD + 1

    def test_a_reading_far_ahead_is_refused_with_its_values_and_changes_nothing(
        self, w: World
    ) -> None:
        member = w.household()
        w.meter(member, SLOT, import_Wh=40, export_Wh=100)
        before = w.client.meter_state(member.meter.address)
        for slot in (LAST_UINT32, _chain_slot(w) + 10_000):
            # Alone (the assembly path must refuse it too), and after a good reading of the
            # same batch, which goes with it.
            for batch in (
                [w.sign(member, slot, 500, 900)],
                [w.sign(member, SLOT + 1, 50, 120), w.sign(member, slot, 500, 900)],
            ):
                with pytest.raises(errors.FutureReading) as err:
                    w.client.commit_readings(w.account(), batch)
                values = err.value.values
                assert values == {
                    "index": len(batch) - 1,
                    "meter": member.meter.address,
                    "slot": slot,
                    "maxSlot": values["maxSlot"],
                }
                assert 0 <= values["maxSlot"] - MAX_SLOTS_AHEAD - _chain_slot(w) <= 1
            assert w.client.meter_state(member.meter.address) == before
            assert w.client.slot_energy(member.id, slot).export_Wh == 0
            assert w.client.slot_energy(member.id, SLOT + 1).export_Wh == 0

    def test_a_far_reading_is_refused_when_sent_without_a_dry_run(self, w: World) -> None:
        member = w.household()
        w.meter(member, SLOT, export_Wh=100)
        before = w.client.meter_state(member.meter.address)
        with pytest.raises(errors.FutureReading) as err:
            w.client.commit_readings(
                w.operator, [w.sign(member, LAST_UINT32, 0, 900)], check_first=False
            )
        assert err.value.values["slot"] == LAST_UINT32
        assert w.client.meter_state(member.meter.address) == before

    def test_a_reading_within_the_skew_is_accepted_and_one_beyond_it_refused(
        self, w: World
    ) -> None:
        member = w.household()
        top = _refused_far_ahead(w, member)
        # The chain's clock does not go back, so the bound the refusal named still holds.
        with pytest.raises(errors.FutureReading) as err:
            w.client.commit_readings(w.operator, [w.sign(member, top + 1, 0, 10)])
        assert err.value.values["maxSlot"] == top
        result = w.client.commit_readings(w.operator, [w.sign(member, top, 0, 10)])
        assert [e.args["slot"] for e in result.named("ReadingCommitted")] == [top]
        assert w.client.credits_of(member.id, top) == 10

    def test_after_refused_future_readings_the_meters_next_real_reading_is_accepted(
        self, w: World
    ) -> None:
        member = w.household()
        w.meter(member, SLOT, import_Wh=30, export_Wh=100)
        for slot in (LAST_UINT32, _chain_slot(w) + 10_000):
            with pytest.raises(errors.FutureReading):
                w.client.commit_readings(w.operator, [w.sign(member, slot, 10**6, 10**6)])
        result = w.client.commit_readings(w.operator, [w.sign(member, SLOT + 1, 35, 160)])
        # The deltas count from the last committed registers, not from the refused ones.
        assert result.named("ReadingCommitted")[0].args == {
            "household": member.id,
            "meter": member.meter.address,
            "slot": SLOT + 1,
            "importWh": 35,
            "exportWh": 160,
            "importDeltaWh": 5,
            "exportDeltaWh": 60,
        }

    def test_rotation_after_refused_future_readings_leaves_the_household_able_to_report(
        self, w: World
    ) -> None:
        member = w.household()
        w.meter(member, SLOT, export_Wh=100)
        for slot in (LAST_UINT32, _chain_slot(w) + 10_000):
            with pytest.raises(errors.FutureReading):
                w.client.commit_readings(w.operator, [w.sign(member, slot, 0, 10**6)])
        new = Account.create()
        w.client.rotate_meter(w.operator, member.id, new.address, 0, 0)
        assert w.client.meter_state(new.address).last_slot == SLOT
        member.meter, member.import_Wh, member.export_Wh = new, 0, 0
        w.meter(member, SLOT + 1, export_Wh=40)
        assert w.client.slot_energy(member.id, SLOT + 1).export_Wh == 40

    def test_the_most_a_signed_reading_ahead_can_hold_up_is_until_the_clock_reaches_it(
        self, w: World, advance_clock: AdvanceClock
    ) -> None:
        member = w.household()
        w.meter(member, SLOT, export_Wh=100)
        # Start at the beginning of a slot of the chain's clock, so that it stays in that slot.
        advance_clock()
        top = _refused_far_ahead(w, member)
        # A stolen (or fast) meter key commits the furthest reading the chain accepts...
        w.meter(member, top, export_Wh=5)
        # ... and the operator rotates the meter: the new key starts after that slot.
        new = Account.create()
        w.client.rotate_meter(w.operator, member.id, new.address, 0, 0)
        assert w.client.meter_state(new.address).last_slot == top
        member.meter, member.import_Wh, member.export_Wh = new, 0, 0
        with pytest.raises(errors.DuplicateReading):
            w.client.commit_readings(w.operator, [w.sign(member, top, 0, 1)])
        # The next slot waits only for the clock (FutureReading, not StaleReading)...
        with pytest.raises(errors.FutureReading) as err:
            w.client.commit_readings(w.operator, [w.sign(member, top + 1, 0, 1)])
        assert err.value.values["maxSlot"] == top
        # ... and is accepted once the chain's clock is one slot on.
        advance_clock()
        w.meter(member, top + 1, export_Wh=7)
        assert w.client.slot_energy(member.id, top + 1).export_Wh == 7

    def test_a_forward_cleared_beyond_the_clock_settles_once_its_slot_is_metered(
        self, w: World, advance_clock: AdvanceClock
    ) -> None:
        # Clearing a slot no meter can have read yet skips the meters (a day-ahead market's
        # case); the position then settles as any other once the clock reaches the slot.
        seller = w.household(prosumer=True)
        buyer = w.household(prosumer=False, topup_ueur=10_000_000)
        top = _refused_far_ahead(w, seller)
        w.meter(seller, top, export_Wh=5)
        w.meter(buyer, top, import_Wh=5)
        ahead = top + 1
        cleared = w.client.clear_forwards(
            w.operator, ahead, 0, [Forward(seller.id, buyer.id, 1_000, 100_000)]
        )
        (event,) = cleared.named("ForwardCleared")
        position = ForwardPosition(
            event.args["forwardId"], ahead, seller.id, buyer.id, 1_000, 100_000,
            event.args["reservedUeur"],
        )  # fmt: skip
        with pytest.raises(errors.FutureReading):
            w.client.commit_readings(w.operator, [w.sign(seller, ahead, 0, 10**6)])
        advance_clock()
        w.meter(seller, ahead, export_Wh=1_500)
        w.meter(buyer, ahead, import_Wh=1_200)
        settled = w.client.settle_forwards(w.operator, ahead, [position])
        (done,) = settled.named("ForwardSettled")
        assert (done.args["deliveredWh"], done.args["shortfallWh"]) == (1_000, 0)
        assert w.client.balance_of(w.client.address) == 0

    def test_a_deactivated_households_reading_is_refused_as_inactive_whatever_its_slot(
        self, w: World
    ) -> None:
        # The contract checks in the intake's order: inactive household before a future slot.
        member = w.household()
        w.client.deactivate_household(w.operator, member.id)
        with pytest.raises(errors.HouseholdInactive):
            w.client.commit_readings(w.operator, [w.sign(member, LAST_UINT32, 0, 1)])


def _next_slot_start(timestamp: int) -> int:
    return (timestamp // SLOT_SECONDS + 1) * SLOT_SECONDS


def _tester_advance_clock(chain: Chain) -> AdvanceClock:
    """eth-tester's time travel: it mines a block one second before the time it is given."""

    def advance() -> None:
        tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        pending = int(tester.get_block_by_number("pending")["timestamp"])
        tester.time_travel(_next_slot_start(pending) + 1)

    return advance


def _rpc_advance_clock(chain: Chain) -> AdvanceClock:
    """Anvil's clock, moved for good: the node is shared, and every slot the other tests use
    lies in the past."""

    def advance() -> None:
        latest = int(chain.w3.eth.get_block("latest")["timestamp"])
        chain.w3.provider.make_request(
            RPCEndpoint("evm_setNextBlockTimestamp"), [_next_slot_start(latest)]
        )
        chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    return advance


class TestOnEmbeddedChain(FutureReadingSuite):
    @pytest.fixture
    def chain(self, embedded_chain: Chain) -> Chain:
        return embedded_chain

    @pytest.fixture
    def advance_clock(self, chain: Chain) -> AdvanceClock:
        return _tester_advance_clock(chain)


@pytest.mark.anvil
class TestOnAnvil(FutureReadingSuite):
    @pytest.fixture
    def chain(self, anvil_chain: Chain) -> Chain:
        return anvil_chain

    @pytest.fixture
    def advance_clock(self, chain: Chain) -> AdvanceClock:
        return _rpc_advance_clock(chain)


class TestOnEmbeddedNodeProcess(FutureReadingSuite):
    """The embedded chain run as `voisin serve` runs it: a node process over loopback JSON-RPC."""

    @pytest.fixture(scope="class")
    @classmethod
    def node_chain(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
        chain = open_chain("embedded", tmp_path_factory.mktemp("node") / "data", process=True)
        yield chain
        chain.close()

    @pytest.fixture
    def chain(self, node_chain: Chain) -> Chain:
        return node_chain

    @pytest.fixture
    def advance_clock(self, chain: Chain) -> AdvanceClock:
        pytest.skip("the node serves no testing method, so its clock cannot be moved")
