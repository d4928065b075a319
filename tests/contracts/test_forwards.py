"""Day-ahead forward positions on chain: clearing reserves the buyer's funds in the contract's
escrow, settling delivers against the slot's metered energy as a fill and refunds the rest.
Every path and typed error, on the embedded chain and on a real anvil node."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from ledger import Chain, errors
from ledger.types import Fill, Forward, ForwardPosition, TxResult
from tests.world import SLOT, Member, World, new_world

FEE = 30_000  # the default tariffs' grid fee, micro-euro per kWh
PRICE = 100_000


@dataclass
class Pair:
    seller: Member
    buyer: Member


def _positions(result: TxResult) -> list[ForwardPosition]:
    return [
        ForwardPosition(
            e.args["forwardId"],
            e.args["slot"],
            e.args["seller"],
            e.args["buyer"],
            e.args["energyWh"],
            e.args["priceUeurPerKWh"],
            e.args["reservedUeur"],
        )
        for e in result.named("ForwardCleared")
    ]


def _reserved(energy_Wh: int, price: int = PRICE) -> int:
    return energy_Wh * price // 1000 + energy_Wh * FEE // 1000


class ForwardSuite:
    @pytest.fixture
    def chain(self) -> Chain:
        raise NotImplementedError

    @pytest.fixture
    def w(self, chain: Chain) -> World:
        return new_world(chain)

    @pytest.fixture
    def p(self, w: World) -> Pair:
        seller = w.household(prosumer=True)
        buyer = w.household(prosumer=False, topup_ueur=10_000_000)
        return Pair(seller, buyer)

    def _clear(self, w: World, p: Pair, energy_Wh: int, slot: int = SLOT) -> ForwardPosition:
        result = w.client.clear_forwards(
            w.operator, slot, 0, [Forward(p.seller.id, p.buyer.id, energy_Wh, PRICE)]
        )
        (position,) = _positions(result)
        return position

    def test_clearing_reserves_the_buyers_cost_and_fee_in_escrow(self, w: World, p: Pair) -> None:
        c = w.client
        result = c.clear_forwards(
            w.operator,
            SLOT,
            0,
            [
                Forward(p.seller.id, p.buyer.id, 2_000, PRICE),
                Forward(p.seller.id, p.buyer.id, 500, PRICE),
            ],
        )
        positions = _positions(result)
        assert [q.forward_id for q in positions] == [1, 2]
        assert [q.reserved_ueur for q in positions] == [_reserved(2_000), _reserved(500)]
        escrow = _reserved(2_000) + _reserved(500)
        transfers = result.named("Transfer")
        assert [(t.args["from"], t.args["to"]) for t in transfers] == [
            (p.buyer.account.address, c.address)
        ] * 2
        assert c.balance_of(c.address) == escrow
        assert c.balance_of(p.buyer.account.address) == 10_000_000 - escrow
        assert c.forward_count() == 2
        assert c.forward_batch_cleared(SLOT, 0)
        assert not c.forward_batch_cleared(SLOT, 1)

    def test_settling_delivers_as_a_fill_and_refunds_the_rest(self, w: World, p: Pair) -> None:
        c = w.client
        position = self._clear(w, p, 2_000)
        w.meter(p.seller, SLOT, export_Wh=1_500)  # produced less than it sold ahead
        w.meter(p.buyer, SLOT, import_Wh=4_000)
        result = c.settle_forwards(w.operator, SLOT, [position])
        (fill,) = result.named("FillSettled")
        assert (fill.args["offerId"], fill.args["bidId"]) == (0, 0)
        assert fill.args["energyWh"] == 1_500
        cost, fee = 1_500 * PRICE // 1000, 1_500 * FEE // 1000
        assert (fill.args["costUeur"], fill.args["feeUeur"]) == (cost, fee)
        (settled,) = result.named("ForwardSettled")
        assert settled.args["deliveredWh"] == 1_500
        assert settled.args["shortfallWh"] == 500
        assert settled.args["refundUeur"] == position.reserved_ueur - cost - fee
        assert c.balance_of(c.address) == 0
        assert c.balance_of(p.buyer.account.address) == 10_000_000 - cost - fee
        assert c.balance_of(p.seller.account.address) == cost
        assert c.balance_of(w.operator.address) == fee  # the fee recipient
        energy = c.slot_energy(p.seller.id, SLOT)
        assert energy.sold_Wh == 1_500
        assert c.slot_energy(p.buyer.id, SLOT).bought_Wh == 1_500

    def test_the_real_time_market_trades_only_what_forwards_left(self, w: World, p: Pair) -> None:
        c = w.client
        position = self._clear(w, p, 1_000)
        w.meter(p.seller, SLOT, export_Wh=3_000)
        w.meter(p.buyer, SLOT, import_Wh=1_800)
        c.settle_forwards(w.operator, SLOT, [position])
        offer = c.post_offer(p.seller.account, 80_000, SLOT)
        bid = c.post_bid(p.buyer.account, 150_000, SLOT)
        with pytest.raises(errors.InsufficientDeficit) as refused:
            c.settle_batch(w.operator, SLOT, 0, [Fill(offer, bid, 900, 100_000)])
        assert refused.value.values["haveWh"] == 800
        c.settle_batch(w.operator, SLOT, 0, [Fill(offer, bid, 800, 100_000)])
        assert c.slot_energy(p.seller.id, SLOT).sold_Wh == 1_800

    def test_a_position_settles_once_and_only_with_its_own_fields(self, w: World, p: Pair) -> None:
        c = w.client
        position = self._clear(w, p, 1_000)
        w.meter(p.seller, SLOT, export_Wh=3_000)
        w.meter(p.buyer, SLOT, import_Wh=3_000)
        forged = ForwardPosition(
            position.forward_id, SLOT, position.seller, position.buyer, 1_000, PRICE,
            position.reserved_ueur + 1,
        )  # fmt: skip
        with pytest.raises(errors.UnknownForward):
            c.settle_forwards(w.operator, SLOT, [forged])
        with pytest.raises(errors.UnknownForward):
            c.settle_forwards(w.operator, SLOT, [ForwardPosition(99, SLOT, 1, 2, 1, PRICE, 0)])
        elsewhere = ForwardPosition(
            position.forward_id, SLOT + 1, position.seller, position.buyer, 1_000, PRICE,
            position.reserved_ueur,
        )  # fmt: skip
        with pytest.raises(errors.UnknownForward):
            c.settle_forwards(w.operator, SLOT + 1, [elsewhere])
        c.settle_forwards(w.operator, SLOT, [position])
        with pytest.raises(errors.ForwardAlreadySettled):
            c.settle_forwards(w.operator, SLOT, [position])
        assert c.balance_of(c.address) == 0

    def test_a_position_waits_for_both_meters(self, w: World, p: Pair) -> None:
        c = w.client
        position = self._clear(w, p, 1_000)
        w.meter(p.seller, SLOT, export_Wh=3_000)
        with pytest.raises(errors.ForwardNotDue) as early:
            c.settle_forwards(w.operator, SLOT, [position])
        assert early.value.values["household"] == p.buyer.id
        assert c.balance_of(c.address) == position.reserved_ueur

    def test_clearing_comes_before_the_slot_is_metered(self, w: World, p: Pair) -> None:
        w.meter(p.buyer, SLOT, import_Wh=1_000)
        with pytest.raises(errors.ForwardTooLate) as late:
            self._clear(w, p, 1_000)
        assert late.value.values["household"] == p.buyer.id
        self._clear(w, p, 1_000, slot=SLOT + 1)  # the next slot is still open

    def test_clearing_refuses_bad_positions_whole(self, w: World, p: Pair) -> None:
        c = w.client
        good = Forward(p.seller.id, p.buyer.id, 1_000, PRICE)
        cases: list[tuple[list[Forward], type[errors.ContractError]]] = [
            ([], errors.EmptyBatch),
            ([good, Forward(p.seller.id, p.buyer.id, 0, PRICE)], errors.ZeroEnergy),
            ([good, Forward(p.buyer.id, p.buyer.id, 10, PRICE)], errors.SelfTrade),
            ([good, Forward(p.seller.id, p.buyer.id, 10, 10)], errors.PriceOutsideTariffs),
            ([good, Forward(p.seller.id, p.buyer.id, 10, 230_000)], errors.PriceOutsideTariffs),
            ([good, Forward(p.seller.id, 99, 10, PRICE)], errors.UnknownHousehold),
            ([good, Forward(p.seller.id, p.buyer.id, 10**9, PRICE)], errors.InsufficientFunds),
        ]
        for forwards, error in cases:
            with pytest.raises(error):
                c.clear_forwards(w.operator, SLOT, 0, forwards)
        assert c.forward_count() == 0
        assert c.balance_of(c.address) == 0
        c.clear_forwards(w.operator, SLOT, 0, [good])
        with pytest.raises(errors.ForwardBatchAlreadyCleared):
            c.clear_forwards(w.operator, SLOT, 0, [good])
        assert c.forward_count() == 1

    def test_only_the_settler_clears_and_settles(self, w: World, p: Pair) -> None:
        with pytest.raises(errors.Unauthorized):
            w.client.clear_forwards(
                p.buyer.account, SLOT, 0, [Forward(p.seller.id, p.buyer.id, 10, PRICE)]
            )
        position = self._clear(w, p, 10)
        w.meter(p.seller, SLOT, export_Wh=10)
        w.meter(p.buyer, SLOT, import_Wh=10)
        with pytest.raises(errors.Unauthorized):
            w.client.settle_forwards(p.seller.account, SLOT, [position])

    def test_a_deactivated_party_voids_the_position(self, w: World, p: Pair) -> None:
        c = w.client
        position = self._clear(w, p, 1_000)
        c.deactivate_household(w.operator, p.seller.id)
        result = c.settle_forwards(w.operator, SLOT, [position])  # no reading needed
        assert result.named("FillSettled") == []
        (settled,) = result.named("ForwardSettled")
        assert (settled.args["deliveredWh"], settled.args["refundUeur"]) == (
            0,
            position.reserved_ueur,
        )
        assert c.balance_of(p.buyer.account.address) == 10_000_000

    def test_a_position_whose_cost_rounds_down_is_delivered_in_full(
        self, w: World, p: Pair
    ) -> None:
        """999 Wh at 40,001 ueur/kWh: the reservation (39,960 + 29,970) pays for exactly the
        whole position, which must not fall a Wh short to rounding."""
        result = w.client.clear_forwards(
            w.operator, SLOT, 0, [Forward(p.seller.id, p.buyer.id, 999, 40_001)]
        )
        (position,) = _positions(result)
        assert position.reserved_ueur == 39_960 + 29_970
        w.meter(p.seller, SLOT, export_Wh=2_000)
        w.meter(p.buyer, SLOT, import_Wh=2_000)
        (settled,) = w.client.settle_forwards(w.operator, SLOT, [position]).named("ForwardSettled")
        assert (settled.args["deliveredWh"], settled.args["shortfallWh"]) == (999, 0)
        assert settled.args["refundUeur"] == 0

    def test_a_raised_grid_fee_delivers_no_more_than_was_reserved(self, w: World, p: Pair) -> None:
        c = w.client
        position = self._clear(w, p, 1_000)
        tariffs = c.tariffs()
        c.set_tariffs(
            w.operator,
            type(tariffs)(tariffs.feed_in_ueur_per_kWh, tariffs.retail_ueur_per_kWh, 60_000),
        )
        w.meter(p.seller, SLOT, export_Wh=3_000)
        w.meter(p.buyer, SLOT, import_Wh=3_000)
        (settled,) = c.settle_forwards(w.operator, SLOT, [position]).named("ForwardSettled")
        delivered = settled.args["deliveredWh"]
        assert delivered == position.reserved_ueur * 1000 // (PRICE + 60_000)
        assert settled.args["costUeur"] + settled.args["feeUeur"] <= position.reserved_ueur
        assert settled.args["refundUeur"] >= 0

    def test_a_refused_position_late_in_a_batch_is_named_and_changes_nothing(
        self, w: World, p: Pair
    ) -> None:
        """The fifth position of a batch fails one check after another; each time the error
        names it, and the four before it, which passed, are undone with it."""
        c = w.client
        idle = w.household(prosumer=True)
        c.deactivate_household(w.operator, idle.id)
        metered = w.household(prosumer=True)
        w.meter(metered, SLOT, export_Wh=10)
        good = [Forward(p.seller.id, p.buyer.id, 1_000, PRICE)] * 4
        # Four positions take 4 x 130,000 of the buyer's 10,000,000; 73,000 Wh more is short.
        seller, buyer, e = p.seller.id, p.buyer.id, errors
        left = 10_000_000 - 4 * _reserved(1_000)
        cases: list[tuple[Forward, type[errors.ContractError], str, int]] = [
            (Forward(seller, buyer, 0, PRICE), e.ZeroEnergy, "fill", 4),
            (Forward(seller, seller, 10, PRICE), e.SelfTrade, "household", seller),
            (Forward(seller, buyer, 10, 10), e.PriceOutsideTariffs, "price", 10),
            (Forward(99, buyer, 10, PRICE), e.UnknownHousehold, "household", 99),
            (Forward(idle.id, buyer, 10, PRICE), e.HouseholdInactive, "household", idle.id),
            (Forward(seller, idle.id, 10, PRICE), e.HouseholdInactive, "household", idle.id),
            (Forward(metered.id, buyer, 10, PRICE), e.ForwardTooLate, "household", metered.id),
            (Forward(seller, buyer, 73_000, PRICE), e.InsufficientFunds, "haveUeur", left),
        ]
        for bad, error, field, value in cases:
            with pytest.raises(error) as refused:
                c.clear_forwards(w.operator, SLOT, 0, [*good, bad])
            assert refused.value.values[field] == value, error
            if "fill" in refused.value.values or "index" in refused.value.values:
                assert refused.value.values.get("fill", refused.value.values.get("index")) == 4
        assert c.forward_count() == 0
        assert not c.forward_batch_cleared(SLOT, 0)
        assert c.balance_of(c.address) == 0
        assert c.balance_of(p.buyer.account.address) == 10_000_000
        # The same batch without the refused position clears, ids from 1.
        positions = _positions(c.clear_forwards(w.operator, SLOT, 0, good))
        assert [q.forward_id for q in positions] == [1, 2, 3, 4]

    def test_a_batch_settles_each_position_against_what_the_ones_before_it_left(
        self, w: World, p: Pair
    ) -> None:
        """Three positions of one pair in one batch, 1,000 Wh each, against 2,500 Wh metered:
        the first two deliver in full, the third the 500 Wh left; a fourth position whose buyer's
        ring has moved on (a reading four slots later overwrote the slot) delivers nothing."""
        c = w.client
        other = w.household(prosumer=False, topup_ueur=1_000_000)
        batch = [Forward(p.seller.id, p.buyer.id, 1_000, PRICE)] * 3 + [
            Forward(p.seller.id, other.id, 200, PRICE)
        ]
        positions = _positions(c.clear_forwards(w.operator, SLOT, 0, batch))
        escrow = 3 * _reserved(1_000) + _reserved(200)
        assert c.balance_of(c.address) == escrow
        w.meter(p.seller, SLOT, export_Wh=2_500)
        w.meter(p.buyer, SLOT, import_Wh=5_000)
        w.meter(other, SLOT, import_Wh=300)
        w.meter(other, SLOT + 4, import_Wh=300)  # the same ring word: SLOT is gone for it
        result = c.settle_forwards(w.operator, SLOT, positions)
        settled = result.named("ForwardSettled")
        assert [e.args["deliveredWh"] for e in settled] == [1_000, 1_000, 500, 0]
        assert [e.args["shortfallWh"] for e in settled] == [0, 0, 500, 200]
        fills = result.named("FillSettled")
        assert [f.args["energyWh"] for f in fills] == [1_000, 1_000, 500]
        refunds = [e.args["refundUeur"] for e in settled]
        assert refunds == [0, 0, _reserved(500), _reserved(200)]
        transfers = result.named("Transfer")
        assert [(t.args["from"], t.args["value"]) for t in transfers] == [
            (c.address, q.reserved_ueur) for q in positions
        ]
        cost, fee = 2_500 * PRICE // 1000, 2_500 * FEE // 1000
        assert c.balance_of(c.address) == 0
        assert c.balance_of(p.seller.account.address) == cost
        assert c.balance_of(p.buyer.account.address) == 10_000_000 - cost - fee
        assert c.balance_of(other.account.address) == 1_000_000
        assert c.balance_of(w.operator.address) == fee
        assert c.slot_energy(p.seller.id, SLOT).sold_Wh == 2_500
        assert c.slot_energy(p.buyer.id, SLOT).bought_Wh == 2_500

    def test_a_position_not_due_late_in_a_batch_holds_the_whole_batch(
        self, w: World, p: Pair
    ) -> None:
        c = w.client
        late = w.household(prosumer=False, topup_ueur=1_000_000)
        batch = [Forward(p.seller.id, p.buyer.id, 100, PRICE)] * 3 + [
            Forward(p.seller.id, late.id, 100, PRICE)
        ]
        positions = _positions(c.clear_forwards(w.operator, SLOT, 0, batch))
        w.meter(p.seller, SLOT, export_Wh=1_000)
        w.meter(p.buyer, SLOT, import_Wh=1_000)
        with pytest.raises(errors.ForwardNotDue) as early:
            c.settle_forwards(w.operator, SLOT, positions)
        assert early.value.values["forwardId"] == positions[3].forward_id
        assert early.value.values["household"] == late.id
        assert c.slot_energy(p.seller.id, SLOT).sold_Wh == 0
        assert c.balance_of(c.address) == 3 * _reserved(100) + _reserved(100)
        # The three that are due settle; the fourth once its buyer's meter has read the slot.
        c.settle_forwards(w.operator, SLOT, positions[:3])
        with pytest.raises(errors.ForwardAlreadySettled):
            c.settle_forwards(w.operator, SLOT, positions)
        w.meter(late, SLOT, import_Wh=100)
        (last,) = c.settle_forwards(w.operator, SLOT, positions[3:]).named("ForwardSettled")
        assert last.args["deliveredWh"] == 100
        assert c.balance_of(c.address) == 0

    def test_each_settled_position_is_marked_on_its_own(self, w: World, p: Pair) -> None:
        """Open positions are kept two to a word (ids 2k and 2k + 1), and a word may hold
        positions of two batches: each position settles once, in any order, whatever its
        partner's state; a settled one is refused as settled, an id never cleared as unknown."""
        c = w.client
        one = Forward(p.seller.id, p.buyer.id, 1, PRICE)
        positions = [
            q
            for batch in range(3)
            for q in _positions(c.clear_forwards(w.operator, SLOT, batch, [one] * 3))
        ]
        assert [q.forward_id for q in positions] == list(range(1, 10))
        w.meter(p.seller, SLOT, export_Wh=1_000)
        w.meter(p.buyer, SLOT, import_Wh=1_000)
        by_id = {q.forward_id: q for q in positions}
        # 6 and 7 share a word across batches 1 and 2; 2 and 3 share one within batch 0.
        for forward_id in (7, 2, 3, 1):
            c.settle_forwards(w.operator, SLOT, [by_id[forward_id]])
        for forward_id in (7, 2, 3, 1):
            with pytest.raises(errors.ForwardAlreadySettled) as again:
                c.settle_forwards(w.operator, SLOT, [by_id[forward_id]])
            assert again.value.values["forwardId"] == forward_id
        # A settled partner changes nothing of its open one's fields.
        forged = dataclasses.replace(by_id[6], energy_Wh=2)
        with pytest.raises(errors.UnknownForward):
            c.settle_forwards(w.operator, SLOT, [forged])
        # Id 10 shares its word with nothing cleared yet; it is unknown, not settled.
        beyond = dataclasses.replace(by_id[9], forward_id=10)
        with pytest.raises(errors.UnknownForward) as unknown:
            c.settle_forwards(w.operator, SLOT, [beyond])
        assert unknown.value.values["forwardId"] == 10
        rest = [q for q in positions if q.forward_id not in (1, 2, 3, 7)]
        settled = c.settle_forwards(w.operator, SLOT, rest).named("ForwardSettled")
        assert [e.args["forwardId"] for e in settled] == [4, 5, 6, 8, 9]
        assert all(e.args["deliveredWh"] == 1 for e in settled)
        with pytest.raises(errors.ForwardAlreadySettled):
            c.settle_forwards(w.operator, SLOT, [by_id[9]])
        assert c.balance_of(c.address) == 0


class TestOnEmbeddedChain(ForwardSuite):
    @pytest.fixture
    def chain(self, embedded_chain: Chain) -> Chain:
        return embedded_chain


@pytest.mark.anvil
class TestOnAnvil(ForwardSuite):
    @pytest.fixture
    def chain(self, anvil_chain: Chain) -> Chain:
        return anvil_chain
