"""A Hypothesis state machine that trades at random on a fresh Voisin deployment and holds the
chain to a pure-Python model of the ledger after every step.

A fixed cast of four households (two prosumers, two consumers) meets over six slots, so that
actions collide often and a household's oldest slots leave the contract's ring of
``KEPT_SLOTS`` kept slots (nothing is left of them to trade). The machine drives batches of
signed meter readings (rises, zero deltas,
decreased registers, forged signatures, stale and repeated slots), offers and bids (limits in and
around the tariff band, optional per-slot caps, slot ranges), cancellations by the owner, a
neighbour or the operator, settlement batches of random fills (too much energy, prices outside
the limits or the tariffs, unfunded buyers, closed orders, repeated batch numbers), direct takes
(partial fills limited by credits, import, caps or funds), top-ups (zero, near and past the
supply cap) and transfers, and the day-ahead forward book: batches of forward positions cleared
for slots their parties have not metered (zero energy, self trades, prices outside the tariffs,
unknown households, parties already metered, unfunded buyers and repeated batch numbers among
them), readings of a forward's slot by its parties, and settlements of due positions (with
positions not yet due, already settled or given back with a field changed). For every action
the model predicts whether the contract accepts it and, if not, the exact typed error and its
values; a refused action must change nothing, which the invariants check since the model stays
as it was.

After every step the chain's views must show that:

- credits minted = metered export: each kept (household, slot)'s import and export equal the
  deltas of the readings the model committed, and a slot no longer kept shows zeros (a slot
  is kept until a later slot that takes its word of the household's ring is metered);
- no fill oversells: sold <= export and bought <= import for every (household, slot), and both
  equal the model's fill totals, forward deliveries included (they are fills with offer and
  bid id 0, drawing on the same metered energy as the real-time market);
- money is conserved: the balances of the households, the fee recipient and the escrow (the
  contract's own balance) sum to the total supply, which is the sum of top-ups; the fee
  recipient holds exactly the fees of the FillSettled events, and each fill costs
  energy * price // 1000 plus energy * fee // 1000;
- the escrow holds exactly the reservations of the open forward positions, each
  energy * price // 1000 + energy * fee // 1000 at clearing, and every settled position has
  delivered + shortfall = energy and cost + fee + refund = reserved;
- every balance equals the model's, which never goes negative.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger import Chain, errors, open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import DEFAULT_TARIFFS
from ledger.errors import TAKE
from ledger.readings.eip712 import Reading, SignedReading
from ledger.types import (
    KEPT_SLOTS,
    OPEN_END,
    Fill,
    Forward,
    ForwardPosition,
    SlotEnergy,
    TxResult,
)
from tests.world import SLOT, Member, World, new_world

FEED_IN = DEFAULT_TARIFFS.feed_in_ueur_per_kWh
RETAIL = DEFAULT_TARIFFS.retail_ueur_per_kWh
FEE = DEFAULT_TARIFFS.grid_fee_ueur_per_kWh
#: The highest price a buyer can pay before the fee: price + fee <= retail.
MAX_LOCAL = RETAIL - FEE
MAX_SUPPLY = 2**80 - 1
SLOTS = tuple(SLOT + k for k in range(6))
#: Member indexes; household ids are index + 1 on a fresh deployment.
PROSUMERS = (0, 1)
CONSUMERS = (2, 3)
CAST = len(PROSUMERS) + len(CONSUMERS)

T = TypeVar("T")
R = TypeVar("R")

# Fewer steps than one would like: each view costs ~8 ms on the in-memory chain and the
# invariants read 18 of them after every mined block. 8 x 25 steps run in about 40 s on two
# idle cores; raise both for a longer campaign (60 x 40 takes about 5 minutes).
SETTINGS = settings(
    max_examples=8,
    stateful_step_count=25,
    deadline=None,
    # A failing run shrinks for up to Hypothesis's five minutes; skip the slower explain phase.
    phases=[phase for phase in Phase if phase is not Phase.explain],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# ───────────────────────────── The model ─────────────────────────────


class Refusal(Exception):
    """The model's prediction that the contract refuses an action with ``error(**values)``."""

    def __init__(self, error: type[errors.ContractError], **values: Any) -> None:
        super().__init__(f"{error.__name__}({values})")
        self.error = error
        self.values = values


@dataclass
class Order:
    owner: int
    limit: int
    cap: int
    first: int
    last: int
    open: bool = True

    def covers(self, slot: int) -> bool:
        return self.first <= slot <= self.last


@dataclass(frozen=True)
class Sale:
    """A fill the model expects the contract to settle (its FillSettled event)."""

    slot: int
    seller: int
    buyer: int
    offer_id: int
    bid_id: int
    energy: int
    price: int

    @property
    def cost(self) -> int:
        return self.energy * self.price // 1000

    @property
    def fee(self) -> int:
        return self.energy * FEE // 1000

    def event_args(self) -> dict[str, int]:
        return {
            "slot": self.slot,
            "seller": self.seller + 1,
            "buyer": self.buyer + 1,
            "offerId": self.offer_id,
            "bidId": self.bid_id,
            "energyWh": self.energy,
            "priceUeurPerKWh": self.price,
            "costUeur": self.cost,
            "feeUeur": self.fee,
        }


@dataclass(frozen=True)
class Metered:
    """A committed reading's deltas: what it minted for (member, slot)."""

    member: int
    slot: int
    import_Wh: int
    export_Wh: int


@dataclass
class Position:
    """A cleared forward position (its ForwardCleared event) and, once settled, its outcome
    (its ForwardSettled event)."""

    forward_id: int
    slot: int
    seller: int
    buyer: int
    energy: int
    price: int
    reserved: int
    delivered: int = 0
    shortfall: int = 0
    cost: int = 0
    fee: int = 0
    refund: int = 0
    open: bool = True

    def as_contract(self) -> ForwardPosition:
        """The fields settleForwards must be given back."""
        return ForwardPosition(
            self.forward_id,
            self.slot,
            self.seller + 1,
            self.buyer + 1,
            self.energy,
            self.price,
            self.reserved,
        )

    def cleared_args(self) -> dict[str, int]:
        return {
            "forwardId": self.forward_id,
            "slot": self.slot,
            "seller": self.seller + 1,
            "buyer": self.buyer + 1,
            "energyWh": self.energy,
            "priceUeurPerKWh": self.price,
            "reservedUeur": self.reserved,
        }

    def settled_args(self) -> dict[str, int]:
        return {
            "forwardId": self.forward_id,
            "slot": self.slot,
            "seller": self.seller + 1,
            "buyer": self.buyer + 1,
            "deliveredWh": self.delivered,
            "shortfallWh": self.shortfall,
            "costUeur": self.cost,
            "feeUeur": self.fee,
            "refundUeur": self.refund,
        }


def _reservation(energy: int, price: int) -> int:
    """What clearing a forward moves from its buyer into escrow: its cost and grid fee."""
    return energy * price // 1000 + energy * FEE // 1000


@dataclass
class Books:
    """The expected ledger. Each action runs on a copy and raises :class:`Refusal` where the
    contract must refuse it, checking the rules in the contract's order so that the predicted
    error is the one the contract raises first."""

    accounts: tuple[str, ...]
    meters: tuple[str, ...]
    registers: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)] * CAST)
    last_slot: list[int] = field(default_factory=lambda: [0] * CAST)
    metered: list[Metered] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)
    balances: list[int] = field(default_factory=lambda: [0] * CAST)
    minted: int = 0
    offers: dict[int, Order] = field(default_factory=dict)
    bids: dict[int, Order] = field(default_factory=dict)
    #: Wh used per (side, order id, slot), for capped orders only.
    used: dict[tuple[str, int, int], int] = field(default_factory=dict)
    batches: set[tuple[int, int]] = field(default_factory=set)
    #: Forward positions by id (ids run from 1), open and settled.
    forwards: dict[int, Position] = field(default_factory=dict)
    forward_batches: set[tuple[int, int]] = field(default_factory=set)

    # Energy is always recomputed from the logs of readings and sales, never kept as a tally.

    def imported(self, member: int, slot: int) -> int:
        return sum(r.import_Wh for r in self.metered if (r.member, r.slot) == (member, slot))

    def exported(self, member: int, slot: int) -> int:
        return sum(r.export_Wh for r in self.metered if (r.member, r.slot) == (member, slot))

    def sold(self, member: int, slot: int) -> int:
        return sum(s.energy for s in self.sales if (s.seller, s.slot) == (member, slot))

    def bought(self, member: int, slot: int) -> int:
        return sum(s.energy for s in self.sales if (s.buyer, s.slot) == (member, slot))

    def kept(self, member: int, slot: int) -> bool:
        """Whether the contract still keeps ``slot`` of ``member``: no reading has been
        committed for a later slot that takes the same word of the household's ring (``slot``
        plus a multiple of ``KEPT_SLOTS``). A meter that skips slots therefore keeps an old
        slot longer than ``last slot < slot + KEPT_SLOTS``, and drops a slot before it leaves
        its last ``KEPT_SLOTS`` metered slots: metered 0, 1, 3, 5, slot 0 is still kept and
        slot 1 is gone."""
        return not any(
            r.member == member and r.slot > slot and (r.slot - slot) % KEPT_SLOTS == 0
            for r in self.metered
        )

    def credits(self, member: int, slot: int) -> int:
        if not self.kept(member, slot):
            return 0
        return self.exported(member, slot) - self.sold(member, slot)

    def deficit(self, member: int, slot: int) -> int:
        if not self.kept(member, slot):
            return 0
        return self.imported(member, slot) - self.bought(member, slot)

    def cap_left(self, side: str, order_id: int, slot: int) -> int | None:
        """Wh an order may still trade in ``slot``; None for an uncapped order."""
        order = (self.offers if side == "offer" else self.bids)[order_id]
        if not order.cap:
            return None
        return max(0, order.cap - self.used.get((side, order_id, slot), 0))

    def pairs(self, slot: int) -> list[tuple[int, int]]:
        """The (offer id, bid id) pairs that could trade in ``slot``, caps aside."""
        return [
            (offer_id, bid_id)
            for offer_id in _live(self.offers, slot)
            for bid_id in _live(self.bids, slot)
            if self.could_trade(self.offers[offer_id], self.bids[bid_id], slot)
        ]

    def takeable(self, slot: int) -> list[int]:
        """The offers with credits and cap left in ``slot`` that another household has import
        to take."""
        return [
            offer_id
            for offer_id in _live(self.offers, slot)
            if self.credits(seller := self.offers[offer_id].owner, slot)
            and self.cap_left("offer", offer_id, slot) != 0
            and any(self.deficit(m, slot) for m in range(CAST) if m != seller)
        ]

    def could_trade(self, offer: Order, bid: Order, slot: int) -> bool:
        """Whether a fill of 1 Wh between the two could pass, caps aside."""
        low = max(offer.limit, FEED_IN)
        return (
            offer.owner != bid.owner
            and low <= min(bid.limit, MAX_LOCAL)
            and self.credits(offer.owner, slot) > 0
            and self.deficit(bid.owner, slot) > 0
            and self.balances[bid.owner] * 1000 >= low + FEE
        )

    @property
    def fees(self) -> int:
        return sum(s.fee for s in self.sales)

    @property
    def escrow(self) -> int:
        """The contract's own balance: the reservations of the open forward positions."""
        return sum(p.reserved for p in self.forwards.values() if p.open)

    def unmetered(self, member: int, slot: int) -> bool:
        """Whether ``member``'s meter has read neither ``slot`` nor a later one."""
        return self.last_slot[member] == 0 or self.last_slot[member] < slot

    def forward_slots(self) -> list[int]:
        """The slots two households could still trade ahead: neither has metered them."""
        return [s for s in SLOTS if sum(self.unmetered(m, s) for m in range(CAST)) >= 2]

    def due(self, position: Position) -> bool:
        return not self.unmetered(position.seller, position.slot) and not self.unmetered(
            position.buyer, position.slot
        )

    # ── actions ──

    def commit(self, readings: list[tuple[int, int, int, int, bool]]) -> list[Metered]:
        """Readings (member, slot, import register, export register, forged), all or none."""
        new: list[Metered] = []
        for i, (m, slot, imp, exp, forged) in enumerate(readings):
            meter = self.meters[m]
            if forged:
                raise Refusal(errors.InvalidSignature, index=i, meter=meter, slot=slot)
            last = self.last_slot[m]
            if slot == last:
                raise Refusal(errors.DuplicateReading, index=i, meter=meter, slot=slot)
            if slot < last:
                raise Refusal(errors.StaleReading, index=i, meter=meter, slot=slot, lastSlot=last)
            last_imp, last_exp = self.registers[m]
            if imp < last_imp or exp < last_exp:
                raise Refusal(
                    errors.RegisterDecreased,
                    index=i,
                    meter=meter,
                    slot=slot,
                    lastImportWh=last_imp,
                    importWh=imp,
                    lastExportWh=last_exp,
                    exportWh=exp,
                )
            self.registers[m] = (imp, exp)
            self.last_slot[m] = slot
            new.append(Metered(m, slot, imp - last_imp, exp - last_exp))
        self.metered += new
        return new

    def post(self, side: str, member: int, limit: int, cap: int, first: int, last: int) -> int:
        if first > last:
            raise Refusal(errors.InvalidSlotRange, firstSlot=first, lastSlot=last)
        if (side == "offer" and limit > MAX_LOCAL) or (side == "bid" and limit < FEED_IN):
            raise Refusal(
                errors.PriceLimitUnreachable,
                priceLimit=limit,
                feedIn=FEED_IN,
                maxLocalPrice=MAX_LOCAL,
            )
        orders = self.offers if side == "offer" else self.bids
        order_id = len(orders) + 1
        orders[order_id] = Order(member, limit, cap, first, last)
        return order_id

    def cancel(self, side: str, order_id: int, sender: str, by_operator: bool) -> None:
        order = (self.offers if side == "offer" else self.bids).get(order_id)
        if order is None:
            if side == "offer":
                raise Refusal(errors.UnknownOffer, offerId=order_id)
            raise Refusal(errors.UnknownBid, bidId=order_id)
        if not order.open:
            raise Refusal(errors.OrderAlreadyClosed, orderId=order_id)
        if self.accounts[order.owner] != sender and not by_operator:
            raise Refusal(errors.NotOrderOwner, orderId=order_id, account=sender)
        order.open = False

    def settle(self, slot: int, batch: int, fills: list[Fill]) -> list[Sale]:
        if not fills:
            raise Refusal(errors.EmptyBatch)
        if (slot, batch) in self.batches:
            raise Refusal(errors.BatchAlreadySettled, slot=slot, batch=batch)
        self.batches.add((slot, batch))
        sales = []
        for i, f in enumerate(fills):
            offer = self.offers.get(f.offer_id)
            if offer is None:
                raise Refusal(errors.UnknownOffer, offerId=f.offer_id)
            bid = self.bids.get(f.bid_id)
            if bid is None:
                raise Refusal(errors.UnknownBid, bidId=f.bid_id)
            self._check_order(i, f.offer_id, offer, slot)
            self._check_order(i, f.bid_id, bid, slot)
            price = f.price_ueur_per_kWh
            if price < offer.limit:
                raise Refusal(errors.PriceBelowOffer, fill=i, price=price, offerLimit=offer.limit)
            if price > bid.limit:
                raise Refusal(errors.PriceAboveBid, fill=i, price=price, bidLimit=bid.limit)
            if offer.cap:
                self._use_cap("offer", i, f.offer_id, offer.cap, slot, f.energy_Wh)
            if bid.cap:
                self._use_cap("bid", i, f.bid_id, bid.cap, slot, f.energy_Wh)
            sale = Sale(slot, offer.owner, bid.owner, f.offer_id, f.bid_id, f.energy_Wh, price)
            sales.append(self._sell(i, sale))
        return sales

    def take(self, buyer: int, offer_id: int, slot: int, max_energy: int) -> Sale:
        """A direct take: as much as credits, own import, the cap and funds allow."""
        offer = self.offers.get(offer_id)
        if offer is None:
            raise Refusal(errors.UnknownOffer, offerId=offer_id)
        self._check_order(TAKE, offer_id, offer, slot)
        if max_energy == 0:
            raise Refusal(errors.ZeroEnergy, fill=TAKE)
        price = max(offer.limit, FEED_IN)
        energy = min(max_energy, self.credits(offer.owner, slot), self.deficit(buyer, slot))
        if offer.cap:
            energy = min(energy, max(0, offer.cap - self.used.get(("offer", offer_id, slot), 0)))
        energy = min(energy, self.balances[buyer] * 1000 // (price + FEE))
        if energy == 0:
            energy = max_energy  # nothing available: the failing rule names itself
        if offer.cap:
            self._use_cap("offer", TAKE, offer_id, offer.cap, slot, energy)
        return self._sell(TAKE, Sale(slot, offer.owner, buyer, offer_id, 0, energy, price))

    def top_up(self, member: int, amount: int) -> None:
        if amount == 0:
            raise Refusal(errors.ZeroAmount)
        if amount > MAX_SUPPLY - self.minted:
            raise Refusal(errors.SupplyCapExceeded, amount=amount, max=MAX_SUPPLY)
        self.balances[member] += amount
        self.minted += amount

    def transfer(self, sender: int, recipient: int, amount: int) -> None:
        have = self.balances[sender]
        if have < amount:
            raise Refusal(
                errors.InsufficientBalance,
                account=self.accounts[sender],
                balance=have,
                needed=amount,
            )
        self.balances[sender] -= amount
        self.balances[recipient] += amount

    def clear_forwards(self, slot: int, batch: int, forwards: list[Forward]) -> list[Position]:
        """Forwards name households by id (1 to CAST, others unknown): all cleared or none."""
        if not forwards:
            raise Refusal(errors.EmptyBatch)
        if (slot, batch) in self.forward_batches:
            raise Refusal(errors.ForwardBatchAlreadyCleared, slot=slot, batch=batch)
        self.forward_batches.add((slot, batch))
        cleared = []
        for i, f in enumerate(forwards):
            energy, price = f.energy_Wh, f.price_ueur_per_kWh
            if energy == 0:
                raise Refusal(errors.ZeroEnergy, fill=i)
            if f.seller == f.buyer:
                raise Refusal(errors.SelfTrade, fill=i, household=f.seller)
            self._check_price(i, price)
            for household in (f.seller, f.buyer):
                if not 1 <= household <= CAST:
                    raise Refusal(errors.UnknownHousehold, household=household)
            for household in (f.seller, f.buyer):
                if not self.unmetered(household - 1, slot):
                    raise Refusal(
                        errors.ForwardTooLate,
                        index=i,
                        household=household,
                        slot=slot,
                        lastSlot=self.last_slot[household - 1],
                    )
            seller, buyer = f.seller - 1, f.buyer - 1
            reserved = _reservation(energy, price)
            funds = self.balances[buyer]
            if funds < reserved:
                raise Refusal(
                    errors.InsufficientFunds,
                    fill=i,
                    buyer=self.accounts[buyer],
                    haveUeur=funds,
                    wantUeur=reserved,
                )
            self.balances[buyer] -= reserved
            position = Position(
                len(self.forwards) + 1, slot, seller, buyer, energy, price, reserved
            )
            self.forwards[position.forward_id] = position
            cleared.append(position)
        return cleared

    def settle_forwards(
        self, slot: int, given: list[ForwardPosition]
    ) -> list[tuple[Position, Sale | None]]:
        """Each position (all or none) releases its reservation, then delivers what the slot's
        metered energy left to both parties allows, as a fill (offer and bid id 0)."""
        if not given:
            raise Refusal(errors.EmptyBatch)
        settled: list[tuple[Position, Sale | None]] = []
        for i, p in enumerate(given):
            position = self.forwards.get(p.forward_id)
            if position is not None and not position.open:
                raise Refusal(errors.ForwardAlreadySettled, forwardId=p.forward_id)
            if position is None or position.as_contract() != p or p.slot != slot:
                raise Refusal(errors.UnknownForward, forwardId=p.forward_id)
            position.open = False
            self.balances[position.buyer] += position.reserved
            for m in (position.seller, position.buyer):
                if self.unmetered(m, slot):
                    raise Refusal(
                        errors.ForwardNotDue,
                        forwardId=position.forward_id,
                        household=m + 1,
                        slot=slot,
                        lastSlot=self.last_slot[m],
                    )
            delivered = self.deliverable(
                position,
                min(
                    position.energy,
                    self.credits(position.seller, slot),
                    self.deficit(position.buyer, slot),
                ),
            )
            sale = None
            if delivered:
                sale = Sale(slot, position.seller, position.buyer, 0, 0, delivered, position.price)
                try:
                    self._sell(i, sale)
                except Refusal as refusal:  # the model's own rules disagree with themselves
                    raise AssertionError(f"forward delivery refused: {refusal}") from refusal
                position.cost, position.fee = sale.cost, sale.fee
            position.delivered = delivered
            position.shortfall = position.energy - delivered
            position.refund = position.reserved - position.cost - position.fee
            settled.append((position, sale))
        return settled

    @staticmethod
    def deliverable(position: Position, want: int) -> int:
        """What the contract delivers of ``want`` Wh: all of it when the reservation pays for
        it at today's grid fee (always, at the tariffs of the clearing), else what the
        reservation covers at that fee in whole Wh: reserved * 1000 // (price + fee)."""
        if want * position.price // 1000 + want * FEE // 1000 <= position.reserved:
            return want
        return position.reserved * 1000 // (position.price + FEE)

    # ── rules shared by batch fills and takes ──

    @staticmethod
    def _check_order(fill: int, order_id: int, order: Order, slot: int) -> None:
        if not order.open:
            raise Refusal(errors.OrderClosed, fill=fill, orderId=order_id)
        if not order.covers(slot):
            raise Refusal(errors.SlotOutsideOrder, fill=fill, orderId=order_id, slot=slot)

    def _use_cap(self, side: str, fill: int, order_id: int, cap: int, slot: int, want: int) -> None:
        used = self.used.get((side, order_id, slot), 0)
        left = max(0, cap - used)
        if want > left:
            raise Refusal(
                errors.OrderCapExceeded,
                fill=fill,
                orderId=order_id,
                slot=slot,
                leftWh=left,
                wantWh=want,
            )
        self.used[(side, order_id, slot)] = used + want

    @staticmethod
    def _check_price(fill: int, price: int) -> None:
        if price < FEED_IN or price + FEE > RETAIL:
            raise Refusal(
                errors.PriceOutsideTariffs,
                fill=fill,
                price=price,
                feedIn=FEED_IN,
                retail=RETAIL,
                gridFee=FEE,
            )

    def _sell(self, fill: int, sale: Sale) -> Sale:
        """The spec's rules for any fill: energy, tariffs, credits, deficit and funds."""
        if sale.energy == 0:
            raise Refusal(errors.ZeroEnergy, fill=fill)
        if sale.seller == sale.buyer:
            raise Refusal(errors.SelfTrade, fill=fill, household=sale.seller + 1)
        self._check_price(fill, sale.price)
        credits = self.credits(sale.seller, sale.slot)
        if credits < sale.energy:
            raise Refusal(
                errors.InsufficientCredits,
                fill=fill,
                seller=sale.seller + 1,
                slot=sale.slot,
                haveWh=credits,
                wantWh=sale.energy,
            )
        deficit = self.deficit(sale.buyer, sale.slot)
        if deficit < sale.energy:
            raise Refusal(
                errors.InsufficientDeficit,
                fill=fill,
                buyer=sale.buyer + 1,
                slot=sale.slot,
                haveWh=deficit,
                wantWh=sale.energy,
            )
        funds = self.balances[sale.buyer]
        if funds < sale.cost + sale.fee:
            raise Refusal(
                errors.InsufficientFunds,
                fill=fill,
                buyer=self.accounts[sale.buyer],
                haveUeur=funds,
                wantUeur=sale.cost + sale.fee,
            )
        self.balances[sale.buyer] -= sale.cost + sale.fee
        self.balances[sale.seller] += sale.cost
        self.sales.append(sale)
        return sale


# ───────────────────────────── Strategies ─────────────────────────────

#: Mostly a rise, sometimes no change, now and then a fall (a decreased register).
_delta_kind = st.sampled_from(("rise", "rise", "rise", "rise", "zero", "fall"))


def _delta(high: int) -> st.SearchStrategy[int]:
    return _delta_kind.flatmap(
        lambda kind: {
            "rise": st.integers(1, high),
            "zero": st.just(0),
            "fall": st.integers(-200, -1),
        }[kind]
    )


_rarely = st.sampled_from((False,) * 9 + (True,))


def _mostly(likely: st.SearchStrategy[T], otherwise: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``likely`` three times in four, else ``otherwise``: guided choices that still stray."""
    return st.sampled_from((True, True, True, False)).flatmap(
        lambda hit: likely if hit else otherwise
    )


def _mostly_one_of(candidates: list[T], otherwise: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """Mostly one of ``candidates`` (the promising choices), else ``otherwise``."""
    return _mostly(st.sampled_from(candidates), otherwise) if candidates else otherwise


def _sometimes_zero(high: int) -> st.SearchStrategy[int]:
    """1 to ``high``, and zero one time in ten."""
    return _rarely.flatmap(lambda zero: st.just(0) if zero else st.integers(1, high))


def _deltas(member: int) -> st.SearchStrategy[tuple[int, int]]:
    """(import delta, export delta) for the member's profile: prosumers mostly export."""
    prosumer = member in PROSUMERS
    return st.tuples(_delta(800 if prosumer else 4000), _delta(4000 if prosumer else 150))


def _rising_deltas(member: int) -> st.SearchStrategy[tuple[int, int]]:
    """Deltas of a reading that commits: both registers rise."""
    prosumer = member in PROSUMERS
    return st.tuples(
        st.integers(1, 800 if prosumer else 4000), st.integers(1, 4000 if prosumer else 150)
    )


#: Which slot a reading is for, relative to the meter's last one: mostly the next slot.
_SLOT_STEP = {"next": 1, "skip": 2, "same": 0, "earlier": -1}
_slot_step = st.sampled_from(("next", "next", "next", "skip", "same", "earlier"))


def _reading(member: int) -> st.SearchStrategy[tuple[int, str, tuple[int, int], bool]]:
    """(member, slot step, (import delta, export delta), forged)."""
    return st.tuples(st.just(member), _slot_step, _deltas(member), _rarely)


_member = st.integers(0, CAST - 1)
_mostly_prosumers = st.sampled_from(PROSUMERS * 2 + CONSUMERS)
_mostly_consumers = st.sampled_from(CONSUMERS * 2 + PROSUMERS)
_slot = st.sampled_from(SLOTS)
_first_slot = st.sampled_from((SLOT - 1, *SLOTS))
_last_slot = st.sampled_from((*SLOTS, OPEN_END))
_cap = st.one_of(st.just(0), st.integers(1, 3000))
_offer_limit = st.one_of(
    st.integers(FEED_IN - 10_000, MAX_LOCAL + 5_000),
    st.sampled_from((0, FEED_IN, MAX_LOCAL, MAX_LOCAL + 1)),
)
_bid_limit = st.one_of(
    st.integers(FEED_IN - 5_000, RETAIL + 10_000),
    st.sampled_from((FEED_IN - 1, FEED_IN, MAX_LOCAL, RETAIL)),
)


def _live(orders: dict[int, Order], slot: int) -> list[int]:
    return [i for i, o in orders.items() if o.open and o.covers(slot)]


def _order_id(orders: dict[int, Order], slot: int) -> st.SearchStrategy[int]:
    """Mostly an open order covering ``slot``; otherwise any id, unknown ones included."""
    any_id = st.integers(0, len(orders) + 1)
    live = _live(orders, slot)
    return _mostly_one_of(live, any_id)


#: Most households start well funded, some nearly broke (a zero top-up is refused).
_starting_funds = st.one_of(st.integers(500_000, 3_000_000), st.integers(0, 50_000))
#: A top-up: mostly some money; now and then zero, one micro-euro past the supply cap, or all
#: but ten euro of the room under it (balances near 2^80, the width the contract packs them in).
_top_up_kind = st.sampled_from(("some",) * 14 + ("zero", "zero", "past the cap", "near the cap"))
#: Fills in a batch of several, and an empty batch now and then.
_batch_size = st.sampled_from((2, 2, 3, 4, 0))
#: Forward positions in a clearing or settlement batch, and an empty batch now and then.
_forward_batch_size = st.sampled_from((1, 1, 1, 2, 2, 2, 3, 3, 0))
#: What a forward to clear is: mostly valid, otherwise each way to refuse it.
_forward_kind = st.sampled_from(
    ("valid",) * 12
    + ("zero energy", "self trade", "bad price", "too late", "unaffordable", "unknown household")
)
_bad_forward_price = st.sampled_from((0, FEED_IN - 1, MAX_LOCAL + 1, RETAIL))
#: Which position a settlement names: mostly a due one, otherwise any open one of the slot, a
#: settled one, or one with a field changed.
_settle_kind = st.sampled_from(("due",) * 7 + ("open", "settled", "forged"))
_forgery = st.sampled_from(("energy", "price", "reserved", "parties", "id", "slot"))


# ───────────────────────────── The machine ─────────────────────────────


@dataclass(frozen=True)
class ChainState:
    """The views the invariants read, as of one block."""

    block: int
    energy: dict[tuple[int, int], SlotEnergy]
    balances: list[int]
    fees: int
    escrow: int
    forward_count: int
    total_supply: int


@dataclass(frozen=True)
class Cast:
    """Four funded household accounts and their meter keys, reused by every deployment."""

    accounts: tuple[LocalAccount, ...]
    meters: tuple[LocalAccount, ...]


class LedgerMachine(RuleBasedStateMachine):
    """Random trading on one fresh deployment, checked against :class:`Books`."""

    def __init__(self, chain: Chain, cast: Cast) -> None:
        super().__init__()
        self.chain = chain
        self.cast = cast
        self.world: World
        self.members: list[Member] = []
        self.books = Books(
            tuple(a.address for a in cast.accounts), tuple(m.address for m in cast.meters)
        )
        #: Sum of the feeUeur values of every FillSettled event seen.
        self.event_fees = 0
        self._seen: ChainState | None = None

    # ── helpers ──

    def _act(
        self, label: str, predict: Callable[[Books], T], send: Callable[[], R]
    ) -> tuple[T, R] | None:
        """Run ``send`` on chain and hold it to ``predict`` on a copy of the books: the same
        outcome, the same typed error and values. Returns (prediction, result) if accepted."""
        scratch = copy.deepcopy(self.books)
        try:
            expected = predict(scratch)
        except Refusal as refusal:
            event(f"{label}: {refusal.error.__name__}")
            try:
                send()
            except errors.ContractError as exc:
                assert (type(exc), exc.values) == (refusal.error, refusal.values), (
                    f"{label}: the contract raised {exc!r}, the model predicted {refusal}"
                )
            else:
                pytest.fail(f"{label}: the contract accepted what the model refuses: {refusal}")
            return None
        event(f"{label}: accepted")
        try:
            result = send()
        except errors.ContractError as exc:
            pytest.fail(f"{label}: the contract refused what the model accepts: {exc!r}")
        self.books = scratch
        return expected, result

    @property
    def client(self) -> VoisinClient:
        return self.world.client

    def _account(self, member: int) -> LocalAccount:
        return self.cast.accounts[member]

    def _check_fill_events(self, result: TxResult, sales: list[Sale]) -> None:
        fills = [e.args for e in result.named("FillSettled")]
        for args in fills:
            assert args["costUeur"] == args["energyWh"] * args["priceUeurPerKWh"] // 1000
            assert args["feeUeur"] == args["energyWh"] * FEE // 1000
            self.event_fees += args["feeUeur"]
        assert fills == [sale.event_args() for sale in sales]

    def _check_orders(self, refs: set[tuple[str, int]], slot: int) -> None:
        """The chain's open flag and per-slot cap use of the known orders in ``refs``."""
        for side, order_id in sorted(refs):
            order = (self.books.offers if side == "offer" else self.books.bids).get(order_id)
            if order is None:
                continue
            view = self.client.offer if side == "offer" else self.client.bid
            assert view(order_id).open == order.open
            if order.cap:
                used = (self.client.offer_used_Wh if side == "offer" else self.client.bid_used_Wh)(
                    order_id, slot
                )
                assert used == self.books.used.get((side, order_id, slot), 0) <= order.cap

    # ── set-up ──

    @initialize(
        topups=st.lists(_starting_funds, min_size=CAST, max_size=CAST),
        first_slot=st.tuples(*(_deltas(m) for m in range(CAST))),
        offers=st.tuples(*(st.tuples(st.integers(0, MAX_LOCAL), _cap) for _ in PROSUMERS)),
        bids=st.tuples(*(st.tuples(st.integers(FEED_IN, RETAIL), _cap) for _ in CONSUMERS)),
    )
    def open_the_market(
        self,
        topups: list[int],
        first_slot: tuple[tuple[int, int], ...],
        offers: tuple[tuple[int, int], ...],
        bids: tuple[tuple[int, int], ...],
    ) -> None:
        """A fresh deployment, the cast registered and topped up, a first slot metered, and
        standing orders from every household."""
        self.world = new_world(self.chain)
        assert self.client.contract.functions.MAX_SUPPLY().call() == MAX_SUPPLY
        for m in range(CAST):
            account, meter = self.cast.accounts[m], self.cast.meters[m]
            hid = self.client.register_household(
                self.world.operator, account.address, meter.address, prosumer=m in PROSUMERS
            )
            assert hid == m + 1
            self.members.append(Member(hid, account, meter))
        for m, amount in enumerate(topups):
            self._mint(m, amount)
        self._commit([(m, "next", deltas, False) for m, deltas in enumerate(first_slot)])
        # The market opens with a standing offer from each prosumer and a bid from each consumer.
        for m, (limit, cap) in zip(PROSUMERS, offers, strict=True):
            self._post("offer", m, limit, cap, SLOTS[0], OPEN_END)
        for m, (limit, cap) in zip(CONSUMERS, bids, strict=True):
            self._post("bid", m, limit, cap, SLOTS[0], OPEN_END)

    # ── rules ──

    @precondition(lambda self: min(self.books.last_slot) < SLOTS[-1])
    @rule(data=st.data(), size=st.integers(1, 3))
    def commit_signed_readings(self, data: st.DataObject, size: int) -> None:
        """A batch of readings, mostly from meters that have a slot left to meter."""
        room = [m for m in range(CAST) if self.books.last_slot[m] < SLOTS[-1]]
        members = _mostly_one_of(room, _member)
        self._commit([data.draw(members.flatmap(_reading), label="reading") for _ in range(size)])

    @precondition(
        lambda self: any(p.open and not self.books.due(p) for p in self.books.forwards.values())
    )
    @rule(data=st.data())
    def meter_a_forward_slot(self, data: st.DataObject) -> None:
        """A forward's slot arrives: the meters of its parties that have not read it yet read
        it (a reading batch like any other, so that forwards fall due within a short run)."""
        books = self.books
        waiting = [p for p in books.forwards.values() if p.open and not books.due(p)]
        position = data.draw(st.sampled_from(waiting), label="forward")
        parties = [
            m for m in (position.seller, position.buyer) if books.unmetered(m, position.slot)
        ]
        self._commit(
            [
                (m, position.slot, data.draw(_rising_deltas(m), label="deltas"), False)
                for m in parties
            ]
        )

    def _commit(self, batch: list[tuple[int, str | int, tuple[int, int], bool]]) -> None:
        """Readings (member, slot step or slot, deltas, forged)."""
        last = list(self.books.last_slot)
        registers = list(self.books.registers)
        readings = []
        for m, step, (d_import, d_export), forged in batch:
            # Never past the last slot checked: a step beyond it repeats that slot instead.
            if isinstance(step, int):
                slot = step
            else:
                slot = SLOTS[0] if last[m] == 0 else min(last[m] + _SLOT_STEP[step], SLOTS[-1])
            imp = max(0, registers[m][0] + d_import)
            exp = max(0, registers[m][1] + d_export)
            last[m], registers[m] = slot, (imp, exp)
            readings.append((m, slot, imp, exp, forged))
        signed = [self._sign(*r) for r in readings]
        outcome = self._act(
            "readings",
            lambda books: books.commit(readings),
            lambda: self.client.commit_readings(self.world.operator, signed),
        )
        if outcome is None:
            return
        new, result = outcome
        committed = [e.args for e in result.named("ReadingCommitted")]
        assert [
            (a["household"], a["slot"], a["importDeltaWh"], a["exportDeltaWh"]) for a in committed
        ] == [(r.member + 1, r.slot, r.import_Wh, r.export_Wh) for r in new]
        for m in {r.member for r in new}:
            state = self.client.meter_state(self.cast.meters[m].address)
            assert (state.last_slot, (state.import_Wh, state.export_Wh)) == (
                self.books.last_slot[m],
                self.books.registers[m],
            )

    def _sign(self, m: int, slot: int, imp: int, exp: int, forged: bool) -> SignedReading:
        if not forged:
            return self.world.sign(self.members[m], slot, imp, exp)
        # Signed for one more Wh of export than it claims: recovers to another address.
        other = self.world.sign(self.members[m], slot, imp, exp + 1)
        return SignedReading(
            Reading(other.reading.meter, slot, imp, exp), other.v, other.r, other.s
        )

    @rule(
        data=st.data(),
        side=st.sampled_from(("offer", "bid")),
        cap=_cap,
        first=_first_slot,
        last=_last_slot,
    )
    def post_order(self, data: st.DataObject, side: str, cap: int, first: int, last: int) -> None:
        """An offer, mostly from a prosumer, or a bid, mostly from a consumer."""
        offer = side == "offer"
        member = data.draw(_mostly_prosumers if offer else _mostly_consumers, label="member")
        limit = data.draw(_offer_limit if offer else _bid_limit, label="limit")
        self._post(side, member, limit, cap, first, last)

    def _post(self, side: str, member: int, limit: int, cap: int, first: int, last: int) -> None:
        post = self.client.post_offer if side == "offer" else self.client.post_bid
        outcome = self._act(
            side,
            lambda books: books.post(side, member, limit, cap, first, last),
            lambda: post(self._account(member), limit, first, last, cap),
        )
        if outcome is not None:
            assert outcome[0] == outcome[1]

    @precondition(lambda self: self.books.offers or self.books.bids)
    @rule(
        data=st.data(),
        side=st.sampled_from(("offer", "bid")),
        by=st.sampled_from(("owner", "neighbour", "operator")),
    )
    def cancel_order(self, data: st.DataObject, side: str, by: str) -> None:
        orders = self.books.offers if side == "offer" else self.books.bids
        order_id = data.draw(st.integers(0, len(orders) + 1), label="order id")
        owner = orders[order_id].owner if order_id in orders else 0
        sender = {
            "owner": self._account(owner),
            "neighbour": self._account((owner + 1) % CAST),
            "operator": self.world.operator,
        }[by]
        cancel = self.client.cancel_offer if side == "offer" else self.client.cancel_bid
        self._act(
            f"cancel {side}",
            lambda books: books.cancel(side, order_id, sender.address, by == "operator"),
            lambda: cancel(sender, order_id),
        )
        self._check_orders({(side, order_id)}, SLOT)

    # Settling and taking wait for orders that could trade; once the slots are sold out they
    # could only be refused, and the steps are better spent elsewhere.

    @precondition(lambda self: any(self.books.pairs(s) for s in SLOTS))
    @rule(data=st.data())
    def settle_one_fill(self, data: st.DataObject) -> None:
        self._settle(data, 1)

    @precondition(lambda self: any(self.books.pairs(s) for s in SLOTS))
    @rule(data=st.data(), size=_batch_size)
    def settle_a_batch_of_fills(self, data: st.DataObject, size: int) -> None:
        self._settle(data, size)

    def _settle(self, data: st.DataObject, size: int) -> None:
        slot = data.draw(self._trading_slot(self.books.pairs), label="slot")
        # Mostly the next batch number of the slot; now and then one already settled.
        fresh = sum(1 for s, _ in self.books.batches if s == slot)
        repeat = fresh > 0 and data.draw(_rarely, label="repeat a batch number")
        batch = data.draw(st.integers(0, fresh - 1), label="batch") if repeat else fresh
        fills = [self._draw_fill(data, slot) for _ in range(size)]
        outcome = self._act(
            "batch",
            lambda books: books.settle(slot, batch, fills),
            lambda: self.client.settle_batch(self.world.operator, slot, batch, fills),
        )
        if outcome is not None:
            sales, result = outcome
            self._check_fill_events(result, sales)
            settled = result.named("BatchSettled")[0].args
            assert settled == {
                "slot": slot,
                "batch": batch,
                "fills": len(fills),
                "energyWh": sum(f.energy_Wh for f in fills),
            }
        assert self.client.batch_settled(slot, batch) == ((slot, batch) in self.books.batches)
        refs = {("offer", f.offer_id) for f in fills} | {("bid", f.bid_id) for f in fills}
        self._check_orders(refs, slot)

    def _trading_slot(self, open_in: Callable[[int], list[Any]]) -> st.SearchStrategy[int]:
        """Mostly a slot where ``open_in`` finds orders that could trade; otherwise any slot."""
        return _mostly_one_of([s for s in SLOTS if open_in(s)], _slot)

    def _draw_fill(self, data: st.DataObject, slot: int) -> Fill:
        """A fill that is often valid: mostly a pair of orders that could trade in ``slot``, a
        price near both limits and energy near what is left; otherwise any ids."""
        books = self.books
        pairs = books.pairs(slot)
        any_pair = st.tuples(_order_id(books.offers, slot), _order_id(books.bids, slot))
        offer_id, bid_id = data.draw(_mostly_one_of(pairs, any_pair), label="ids")
        offer, bid = books.offers.get(offer_id), books.bids.get(bid_id)
        low, high = FEED_IN, MAX_LOCAL
        if offer is not None and bid is not None:
            low, high = max(offer.limit, FEED_IN), min(bid.limit, MAX_LOCAL)
        low, high = min(low, high), max(low, high)
        price = data.draw(
            _mostly(st.integers(low, high), st.integers(max(0, low - 3000), high + 3000)),
            label="price",
        )
        left = 1000
        if offer is not None and bid is not None:
            left = max(
                0,
                min(
                    books.credits(offer.owner, slot),
                    books.deficit(bid.owner, slot),
                    books.balances[bid.owner] * 1000 // (price + FEE),
                ),
            )
        energy = data.draw(
            _mostly(st.integers(1, max(1, left)), st.integers(0, left + 100)), label="energy"
        )
        return Fill(offer_id, bid_id, energy, price)

    @precondition(lambda self: any(self.books.takeable(s) for s in SLOTS))
    @rule(data=st.data(), max_energy=_sometimes_zero(4000))
    def take_some_of_an_offer(self, data: st.DataObject, max_energy: int) -> None:
        self._take(data, max_energy)

    @precondition(lambda self: any(self.books.takeable(s) for s in SLOTS))
    @rule(data=st.data())
    def take_all_that_an_offer_allows(self, data: st.DataObject) -> None:
        """No limit of its own: credits, import, the cap or funds decide how much."""
        self._take(data, 2**64 - 1)

    def _take(self, data: st.DataObject, max_energy: int) -> None:
        slot = data.draw(self._trading_slot(self.books.takeable), label="slot")
        books = self.books
        hungry = [m for m in range(CAST) if books.deficit(m, slot)]
        buyer = data.draw(_mostly_one_of(hungry, _mostly_consumers), label="buyer")
        stocked = [
            i
            for i in _live(books.offers, slot)
            if books.offers[i].owner != buyer
            and books.credits(books.offers[i].owner, slot)
            and books.cap_left("offer", i, slot) != 0
        ]
        any_id = _order_id(books.offers, slot)
        offer_id = data.draw(_mostly_one_of(stocked, any_id), label="offer id")
        outcome = self._act(
            "take",
            lambda books: books.take(buyer, offer_id, slot, max_energy),
            lambda: self.client.take_offer(self._account(buyer), offer_id, slot, max_energy),
        )
        if outcome is not None:
            sale, result = outcome
            self._check_fill_events(result, [sale])
        self._check_orders({("offer", offer_id)}, slot)

    # Forwards are cleared for slots their parties have not metered yet, and settle once both
    # have; the positions then deliver from the same metered energy as the real-time fills.

    @precondition(lambda self: self.books.forward_slots())
    @rule(data=st.data(), size=_forward_batch_size)
    def clear_forwards(self, data: st.DataObject, size: int) -> None:
        books = self.books
        # Mostly one of the next two slots still open ahead: the readings soon make it due.
        slot = data.draw(_mostly_one_of(books.forward_slots()[:2], _slot), label="slot")
        # Mostly the next batch number of the slot; now and then one already cleared.
        fresh = sum(1 for s, _ in books.forward_batches if s == slot)
        repeat = fresh > 0 and data.draw(_rarely, label="repeat a batch number")
        batch = data.draw(st.integers(0, fresh - 1), label="batch") if repeat else fresh
        forwards = [self._draw_forward(data, slot) for _ in range(size)]
        outcome = self._act(
            "clear forwards",
            lambda books: books.clear_forwards(slot, batch, forwards),
            lambda: self.client.clear_forwards(self.world.operator, slot, batch, forwards),
        )
        if outcome is not None:
            positions, result = outcome
            cleared = [e.args for e in result.named("ForwardCleared")]
            assert cleared == [p.cleared_args() for p in positions]
            for args in cleared:
                assert args["reservedUeur"] == _reservation(
                    args["energyWh"], args["priceUeurPerKWh"]
                )
        known = (slot, batch) in self.books.forward_batches
        assert self.client.forward_batch_cleared(slot, batch) == known

    def _draw_forward(self, data: st.DataObject, slot: int) -> Forward:
        """A position that is mostly valid: a prosumer selling to a consumer, neither having
        metered ``slot``, at a price inside the tariffs, for energy the buyer can pay."""
        books = self.books
        kind = data.draw(_forward_kind, label="forward")
        free = [m for m in range(CAST) if books.unmetered(m, slot)]
        sellers = [m for m in free if m in PROSUMERS] or free
        seller = data.draw(_mostly_one_of(sellers, _member), label="seller")
        buyers = [m for m in free if m != seller]
        buyer = data.draw(_mostly_one_of(buyers, _mostly_consumers), label="buyer")
        price = data.draw(st.integers(FEED_IN, MAX_LOCAL), label="price")
        can_pay = books.balances[buyer] * 1000 // (price + FEE)
        energy = data.draw(st.integers(1, max(1, min(3000, can_pay))), label="energy")
        ids = [seller + 1, buyer + 1]
        if kind == "zero energy":
            energy = 0
        elif kind == "self trade":
            ids[1] = ids[0]
        elif kind == "bad price":
            price = data.draw(_bad_forward_price, label="bad price")
        elif kind == "too late":
            metered = [m for m in range(CAST) if not books.unmetered(m, slot)]
            if metered:
                late = data.draw(st.sampled_from(metered), label="late party")
                side = data.draw(st.integers(0, 1), label="late side")
                ids[side] = late + 1
        elif kind == "unaffordable":
            energy = min(2**64 - 1, can_pay + data.draw(st.integers(1, 50), label="past funds"))
        elif kind == "unknown household":
            side = data.draw(st.integers(0, 1), label="unknown side")
            ids[side] = data.draw(st.sampled_from((0, CAST + 1)), label="unknown id")
        return Forward(ids[0], ids[1], energy, price)

    # Settling waits for a due position (not-due ones are still drawn now and then), and has
    # two rules, as fills have, so that positions settle within a short run.

    @precondition(
        lambda self: any(p.open and self.books.due(p) for p in self.books.forwards.values())
    )
    @rule(data=st.data())
    def settle_one_forward(self, data: st.DataObject) -> None:
        self._settle_forwards(data, 1)

    @precondition(
        lambda self: any(p.open and self.books.due(p) for p in self.books.forwards.values())
    )
    @rule(data=st.data(), size=_forward_batch_size)
    def settle_a_batch_of_forwards(self, data: st.DataObject, size: int) -> None:
        self._settle_forwards(data, size)

    def _settle_forwards(self, data: st.DataObject, size: int) -> None:
        books = self.books
        waiting = [p for p in books.forwards.values() if p.open]
        due_slots = sorted({p.slot for p in waiting if books.due(p)})
        any_slot = st.sampled_from(sorted({p.slot for p in waiting}))
        slot = data.draw(_mostly_one_of(due_slots, any_slot), label="slot")
        given: list[ForwardPosition] = []
        for _ in range(size):
            given.append(self._draw_position(data, slot, {p.forward_id for p in given}))
        outcome = self._act(
            "settle forwards",
            lambda books: books.settle_forwards(slot, given),
            lambda: self.client.settle_forwards(self.world.operator, slot, given),
        )
        if outcome is None:
            return
        settled, result = outcome
        events = [e.args for e in result.named("ForwardSettled")]
        expected = [p.settled_args() for p, _ in settled]
        assert events == expected, f"ForwardSettled {events}, the model predicted {expected}"
        for args in events:
            assert (
                args["deliveredWh"] + args["shortfallWh"]
                == self.books.forwards[args["forwardId"]].energy
            )
        self._check_fill_events(result, [sale for _, sale in settled if sale is not None])
        for position, _ in settled:
            event(f"forward {'delivered' if position.delivered else 'undelivered'}")
            if position.delivered and position.shortfall:
                event("forward partly delivered")

    def _draw_position(self, data: st.DataObject, slot: int, given: set[int]) -> ForwardPosition:
        """A position to settle in ``slot``, mostly a due one not yet ``given`` in the batch."""
        books = self.books
        forwards = list(books.forwards.values())
        pools = {
            "due": [
                p
                for p in forwards
                if p.open and p.slot == slot and books.due(p) and p.forward_id not in given
            ],
            "open": [p for p in forwards if p.open and p.slot == slot],
            "settled": [p for p in forwards if not p.open],
            "forged": forwards,
        }
        kind = data.draw(_settle_kind, label="position")
        pool = pools[kind] or pools["due"] or pools["open"] or forwards
        position = data.draw(st.sampled_from(pool), label="forward id").as_contract()
        if kind == "settled":
            return dataclasses.replace(position, slot=slot)  # refused before its slot matters
        if kind != "forged":
            return position
        # The slot given is always ``slot`` (the client refuses another before sending); a
        # position of another slot passed off as this slot's is the "slot" forgery.
        forgery = data.draw(_forgery, label="forgery")
        changed: dict[str, int] = {
            "energy": {"energy_Wh": position.energy_Wh + 1},
            "price": {"price_ueur_per_kWh": position.price_ueur_per_kWh + 1},
            "reserved": {"reserved_ueur": position.reserved_ueur + 1},
            "parties": {"seller": position.buyer, "buyer": position.seller},
            "id": {"forward_id": len(forwards) + 1},
            "slot": {} if position.slot != slot else {"reserved_ueur": position.reserved_ueur + 2},
        }[forgery]
        return dataclasses.replace(position, slot=slot, **changed)

    @rule(data=st.data(), member=_member, kind=_top_up_kind)
    def top_up(self, data: st.DataObject, member: int, kind: str) -> None:
        room = MAX_SUPPLY - self.books.minted
        amount = {
            "some": lambda: data.draw(st.integers(1, min(2_000_000, max(1, room))), label="amount"),
            "zero": lambda: 0,
            "past the cap": lambda: room + 1,
            "near the cap": lambda: max(0, room - 10_000_000),
        }[kind]()
        self._mint(member, amount)

    def _mint(self, member: int, amount: int) -> None:
        self._act(
            "top-up",
            lambda books: books.top_up(member, amount),
            lambda: self.client.top_up(self.world.operator, self._account(member).address, amount),
        )

    @rule(data=st.data(), sender=_member, recipient=_member)
    def transfer(self, data: st.DataObject, sender: int, recipient: int) -> None:
        amount = data.draw(st.integers(0, self.books.balances[sender] + 1000), label="amount")
        self._act(
            "transfer",
            lambda books: books.transfer(sender, recipient, amount),
            lambda: self.client.transfer(
                self._account(sender), self._account(recipient).address, amount
            ),
        )

    # ── invariants ──

    def _chain_state(self) -> ChainState:
        """What the chain's views show now. A refused action mines no block and so cannot change
        the chain: the views are read again only when the block number moved."""
        block = int(self.chain.w3.eth.block_number)
        if self._seen is None or self._seen.block != block:
            client = self.client
            self._seen = ChainState(
                block=block,
                energy={
                    (m, slot): client.slot_energy(m + 1, slot)
                    for m in range(CAST)
                    for slot in SLOTS
                },
                balances=[client.balance_of(a.address) for a in self.cast.accounts],
                fees=client.balance_of(self.world.operator.address),
                escrow=client.balance_of(client.address),
                forward_count=client.forward_count(),
                total_supply=client.total_supply(),
            )
        return self._seen

    @invariant()
    def energy_is_metered_and_never_oversold(self) -> None:
        books, chain = self.books, self._chain_state()
        for (m, slot), e in chain.energy.items():
            assert e.sold_Wh <= e.export_Wh and e.bought_Wh <= e.import_Wh
            if not books.kept(m, slot):
                assert e == SlotEnergy(0, 0, 0, 0), f"household {m + 1}, slot {slot}"
                if books.exported(m, slot) or books.imported(m, slot):
                    event("a metered slot left the ring")
                continue
            assert (e.import_Wh, e.export_Wh, e.bought_Wh, e.sold_Wh) == (
                books.imported(m, slot),
                books.exported(m, slot),
                books.bought(m, slot),
                books.sold(m, slot),
            ), f"household {m + 1}, slot {slot}"

    @invariant()
    def money_is_conserved_and_balances_match_the_model(self) -> None:
        books, chain = self.books, self._chain_state()
        assert all(b >= 0 for b in books.balances)
        assert chain.balances == books.balances
        assert sum(chain.balances) + chain.fees + chain.escrow == chain.total_supply == books.minted
        assert chain.fees == self.event_fees == books.fees

    @invariant()
    def forwards_are_escrowed_and_settle_whole(self) -> None:
        books, chain = self.books, self._chain_state()
        assert chain.forward_count == len(books.forwards)
        assert (
            chain.escrow
            == books.escrow
            == sum(p.reserved for p in books.forwards.values() if p.open)
        )
        for p in books.forwards.values():
            if p.open:
                continue
            assert p.delivered + p.shortfall == p.energy
            assert p.cost + p.fee + p.refund == p.reserved
        # Forward deliveries and real-time fills share each kept slot's metered energy.
        for m in range(CAST):
            for slot in SLOTS:
                if books.kept(m, slot):
                    assert books.sold(m, slot) <= books.exported(m, slot)
                    assert books.bought(m, slot) <= books.imported(m, slot)


# ───────────────────────────── The test ─────────────────────────────


@pytest.fixture(scope="module")
def memory_chain() -> Iterator[Chain]:
    """One in-memory chain for the module; each example deploys its own contract on it."""
    chain = open_chain("memory")
    yield chain
    chain.close()


@pytest.fixture(scope="module")
def cast(memory_chain: Chain) -> Cast:
    accounts = tuple(Account.create() for _ in range(CAST))
    for account in accounts:
        memory_chain.fund(account.address)
    return Cast(accounts, tuple(Account.create() for _ in range(CAST)))


@pytest.mark.slow
def test_random_trading_keeps_energy_and_money_conserved(memory_chain: Chain, cast: Cast) -> None:
    """Random readings, orders, fills, takes, top-ups and transfers: the contract accepts and
    refuses exactly what the model does, and the ledger invariants hold after every step."""
    _on_a_fresh_stack(
        lambda: run_state_machine_as_test(
            lambda: LedgerMachine(memory_chain, cast), settings=SETTINGS
        )
    )


def _on_a_fresh_stack(run: Callable[[], None]) -> None:
    """Run ``run`` on a new thread and re-raise what it raised.

    CPython 3.11 maps a new frame-stack chunk, and unmaps it on return, each time the call
    depth crosses a chunk boundary. Under pytest's deep stack the chain calls sit right on one,
    and the machine spent as much time in mmap/munmap as in Python; a thread starts shallow.
    """
    raised: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, name="ledger-machine", daemon=True)
    thread.start()
    thread.join()
    if raised:
        raise raised[0]
