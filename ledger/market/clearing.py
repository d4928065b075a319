"""Pure clearing of one slot: match the order book against metered surplus and deficit.

Three mechanisms share one signature, ``(orders, surplus, deficit, tariffs) -> ClearingResult``:

- :func:`pay_as_clear`: a uniform-price double auction that maximises matched volume;
- :func:`midpoint_pay_as_bid`: each matched pair trades at the midpoint of its limits (as in
  Quartierstrom);
- :func:`pay_as_offer`: each matched pair trades at the offer's limit.

Everything is an integer: energy in Wh, prices in micro-euro per kWh. Nothing here does I/O or
touches the chain; the fills are built so that ``Voisin.settleBatch`` accepts them:

- ``offer limit <= price <= bid limit`` and ``feed-in <= price`` and ``price + fee <= retail``;
- a seller never sells more than its surplus (credits) of the slot, a buyer never buys more than
  its deficit (metered import), and no order exceeds its per-slot cap;
- no fill has zero energy, and no household trades with itself.

Order ids live in two spaces, as in the contract: an offer and a bid may share an id.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

from ledger.errors import LedgerError
from ledger.types import Fill, Tariffs

__all__ = [
    "MECHANISMS",
    "ONE_PRICE",
    "BookOrder",
    "ClearingInputError",
    "ClearingResult",
    "Mechanism",
    "Side",
    "midpoint_pay_as_bid",
    "pay_as_clear",
    "pay_as_offer",
]


class ClearingInputError(LedgerError, ValueError):
    """The order book or the metered energy given to a clearing function is malformed."""


class Side(enum.Enum):
    """Which side of the book an order is on."""

    OFFER = "offer"
    BID = "bid"


@dataclass(frozen=True, slots=True)
class BookOrder:
    """One open order for the slot being cleared.

    ``sequence`` is the time priority (e.g. the posting sequence number): lower goes first among
    equal prices. ``max_Wh_per_slot`` of ``None`` means uncapped (the contract stores 0 for it).
    """

    order_id: int
    household_id: int
    side: Side
    price_limit_ueur_per_kWh: int
    max_Wh_per_slot: int | None
    sequence: int

    def __post_init__(self) -> None:
        if self.price_limit_ueur_per_kWh < 0:
            raise ClearingInputError(
                f"order {self.order_id}: price limit must be >= 0, "
                f"got {self.price_limit_ueur_per_kWh}"
            )
        if self.max_Wh_per_slot is not None and self.max_Wh_per_slot <= 0:
            raise ClearingInputError(
                f"order {self.order_id}: max_Wh_per_slot must be None (uncapped) or > 0, "
                f"got {self.max_Wh_per_slot}"
            )


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """The fills of one slot and their totals.

    ``clearing_price_ueur_per_kWh`` is set only by the uniform-price mechanism, and only when
    something matched. The unmatched Wh go to (surplus) or come from (deficit) the grid.
    """

    fills: tuple[Fill, ...]
    clearing_price_ueur_per_kWh: int | None
    matched_Wh: int
    unmatched_surplus_Wh: int
    unmatched_deficit_Wh: int


Mechanism = Callable[
    [Iterable[BookOrder], Mapping[int, int], Mapping[int, int], Tariffs], ClearingResult
]
"""The common signature of the three clearing functions."""


# ───────────────────────────── Preparation ─────────────────────────────


@dataclass(frozen=True, slots=True)
class _Entry:
    """An order that can trade inside the tariff band.

    ``limit`` is the order's limit clamped into the band: an offer never sells below feed-in, a
    bid never pays more than ``retail - fee``. ``cap_Wh`` bounds the order's energy by its own
    cap and by its household's surplus or deficit (always > 0).
    """

    order: BookOrder
    limit: int
    cap_Wh: int

    @property
    def household(self) -> int:
        return self.order.household_id


@dataclass(frozen=True, slots=True)
class _Book:
    offers: tuple[_Entry, ...]  # cheapest first, then earliest, then lowest id
    bids: tuple[_Entry, ...]  # dearest first, then earliest, then lowest id
    surplus: dict[int, int]
    deficit: dict[int, int]


def _check_energy(name: str, energy: Mapping[int, int]) -> dict[int, int]:
    for household, wh in energy.items():
        if isinstance(wh, bool) or not isinstance(wh, int) or wh < 0:
            raise ClearingInputError(
                f"{name} of household {household} must be an integer >= 0 Wh, got {wh!r}"
            )
    return dict(energy)


def _prepare(
    orders: Iterable[BookOrder],
    surplus: Mapping[int, int],
    deficit: Mapping[int, int],
    tariffs: Tariffs,
) -> _Book:
    surplus_Wh = _check_energy("surplus", surplus)
    deficit_Wh = _check_energy("deficit", deficit)
    floor = tariffs.feed_in_ueur_per_kWh
    # The contract checks price + fee <= retail, so a buyer can pay at most retail - fee.
    ceiling = tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh
    seen: set[tuple[Side, int]] = set()
    offers: list[_Entry] = []
    bids: list[_Entry] = []
    for order in orders:
        key = (order.side, order.order_id)
        if key in seen:
            raise ClearingInputError(
                f"{order.side.value} id {order.order_id} appears twice; ids must be unique per side"
            )
        seen.add(key)
        limit = order.price_limit_ueur_per_kWh
        if order.side is Side.OFFER:
            limit, energy_Wh = max(limit, floor), surplus_Wh.get(order.household_id, 0)
        else:
            limit, energy_Wh = min(limit, ceiling), deficit_Wh.get(order.household_id, 0)
        # Outside [floor, ceiling] the order has no price the contract would accept.
        if not floor <= limit <= ceiling:
            continue
        cap_Wh = (
            energy_Wh if order.max_Wh_per_slot is None else min(order.max_Wh_per_slot, energy_Wh)
        )
        if cap_Wh == 0:
            continue
        (offers if order.side is Side.OFFER else bids).append(_Entry(order, limit, cap_Wh))
    offers.sort(key=lambda e: (e.limit, e.order.sequence, e.order.order_id))
    bids.sort(key=lambda e: (-e.limit, e.order.sequence, e.order.order_id))
    return _Book(tuple(offers), tuple(bids), surplus_Wh, deficit_Wh)


def _result(
    book: _Book, fills: list[Fill], clearing_price_ueur_per_kWh: int | None
) -> ClearingResult:
    matched_Wh = sum(f.energy_Wh for f in fills)
    return ClearingResult(
        fills=tuple(fills),
        clearing_price_ueur_per_kWh=clearing_price_ueur_per_kWh if fills else None,
        matched_Wh=matched_Wh,
        unmatched_surplus_Wh=sum(book.surplus.values()) - matched_Wh,
        unmatched_deficit_Wh=sum(book.deficit.values()) - matched_Wh,
    )


# ───────────────────────────── Greedy merit order ─────────────────────────────


def _greedy(
    offers: tuple[_Entry, ...],
    bids: tuple[_Entry, ...],
    surplus: Mapping[int, int],
    deficit: Mapping[int, int],
) -> list[tuple[_Entry, _Entry, int]]:
    """Fill bids in priority order, each from the cheapest compatible offers up.

    Returns ``(offer, bid, energy_Wh)`` triples, at most one per pair, none with zero energy.
    An offer is compatible when its (clamped) limit is at most the bid's and it belongs to
    another household. Surplus and deficit are shared across a household's orders.
    """
    surplus_left = dict(surplus)
    deficit_left = dict(deficit)
    offer_left = [o.cap_Wh for o in offers]
    matches: list[tuple[_Entry, _Entry, int]] = []
    for bid in bids:
        bid_left = bid.cap_Wh
        for i, offer in enumerate(offers):
            want_Wh = min(bid_left, deficit_left[bid.household])
            # Offers are sorted by limit: none further on is cheap enough for this bid.
            if want_Wh == 0 or offer.limit > bid.limit:
                break
            if offer.household == bid.household:
                continue
            energy_Wh = min(want_Wh, offer_left[i], surplus_left[offer.household])
            if energy_Wh == 0:
                continue
            matches.append((offer, bid, energy_Wh))
            offer_left[i] -= energy_Wh
            bid_left -= energy_Wh
            surplus_left[offer.household] -= energy_Wh
            deficit_left[bid.household] -= energy_Wh
    return matches


def pay_as_offer(
    orders: Iterable[BookOrder],
    surplus: Mapping[int, int],
    deficit: Mapping[int, int],
    tariffs: Tariffs,
) -> ClearingResult:
    """Pay-as-offer: bids, dearest first, buy from the cheapest offers up at each offer's limit.

    The price of a fill is the offer's limit clamped up to feed-in (as ``takeOffer`` does).
    ``surplus`` and ``deficit`` map household id to Wh of the slot; missing households have 0.
    """
    book = _prepare(orders, surplus, deficit, tariffs)
    fills = [
        Fill(o.order.order_id, b.order.order_id, energy_Wh, o.limit)
        for o, b, energy_Wh in _greedy(book.offers, book.bids, book.surplus, book.deficit)
    ]
    return _result(book, fills, None)


def midpoint_pay_as_bid(
    orders: Iterable[BookOrder],
    surplus: Mapping[int, int],
    deficit: Mapping[int, int],
    tariffs: Tariffs,
) -> ClearingResult:
    """Midpoint pay-as-bid (Quartierstrom style): each pair trades at the midpoint of its limits.

    The pairs are those of :func:`pay_as_offer`. The price is ``(offer limit + bid limit) // 2``
    of the orders' own limits, then clamped into ``[feed-in, retail - fee]``. The clamped value
    still lies between the two limits, because the pair is only matched when the offer's limit
    clamped up to feed-in is at most the bid's limit clamped down to ``retail - fee``.
    """
    book = _prepare(orders, surplus, deficit, tariffs)
    floor = tariffs.feed_in_ueur_per_kWh
    ceiling = tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh
    fills: list[Fill] = []
    for o, b, energy_Wh in _greedy(book.offers, book.bids, book.surplus, book.deficit):
        mid = (o.order.price_limit_ueur_per_kWh + b.order.price_limit_ueur_per_kWh) // 2
        price = min(max(mid, floor), ceiling)
        fills.append(Fill(o.order.order_id, b.order.order_id, energy_Wh, price))
    return _result(book, fills, None)


# ───────────────────────────── Uniform price ─────────────────────────────


def _volume_at(price: int, book: _Book) -> int:
    """The most Wh that can trade at ``price`` between the orders eligible at it.

    All eligible offers of a household reach the same bids (every other household's), so the
    household can be one node holding ``min(surplus, sum of its offers' caps)``; buyers likewise.
    In that complete bipartite graph minus self-trade edges, the finite cuts are: all sellers
    (``S``), all buyers (``D``), or every seller and buyer but one household ``h`` on both sides
    (``S - s_h + D - d_h``). Max-flow = min-cut gives the formula below.
    """
    sell: dict[int, int] = {}
    buy: dict[int, int] = {}
    for o in book.offers:
        if o.limit <= price:
            sell[o.household] = sell.get(o.household, 0) + o.cap_Wh
    for b in book.bids:
        if b.limit >= price:
            buy[b.household] = buy.get(b.household, 0) + b.cap_Wh
    sell = {h: min(wh, book.surplus[h]) for h, wh in sell.items()}
    buy = {h: min(wh, book.deficit[h]) for h, wh in buy.items()}
    total_sell, total_buy = sum(sell.values()), sum(buy.values())
    volume = min(total_sell, total_buy)
    for h in sell.keys() & buy.keys():
        volume = min(volume, total_sell - sell[h] + total_buy - buy[h])
    return volume


def _max_flow_fills(book: _Book, price: int, target_Wh: int) -> list[Fill]:
    """Fills at ``price`` that move the most energy, seeded by the merit order.

    The greedy merit order gives priority to the best-priced and earliest orders, but a
    self-trade skip can strand volume (e.g. the only unmatched seller is the only unmatched
    buyer). Augmenting paths then reroute fills; they never lower any household's or order's
    traded energy, so whoever the greedy pass served stays served.
    """
    offers = tuple(o for o in book.offers if o.limit <= price)
    bids = tuple(b for b in book.bids if b.limit >= price)
    greedy = _greedy(offers, bids, book.surplus, book.deficit)
    if sum(energy_Wh for _, _, energy_Wh in greedy) == target_Wh:
        # The merit order already moves the most energy (the usual case): no augmenting path
        # exists, and its fills come out in the same (bid, offer) order the flow would give.
        return [Fill(o.order.order_id, b.order.order_id, wh, price) for o, b, wh in greedy]
    sellers = sorted({o.household for o in offers})
    buyers = sorted({b.household for b in bids})
    # Node numbering: source, sink, seller households, offers, bids, buyer households.
    source, sink = 0, 1
    seller_node = {h: 2 + i for i, h in enumerate(sellers)}
    offer_node = [2 + len(sellers) + i for i in range(len(offers))]
    bid_node = [2 + len(sellers) + len(offers) + i for i in range(len(bids))]
    first_buyer = 2 + len(sellers) + len(offers) + len(bids)
    buyer_node = {h: first_buyer + i for i, h in enumerate(buyers)}
    residual: list[dict[int, int]] = [{} for _ in range(first_buyer + len(buyers))]

    def edge(u: int, v: int, capacity: int) -> None:
        residual[u][v] = residual[u].get(v, 0) + capacity
        residual[v].setdefault(u, 0)

    # No pair can carry more than the whole surplus, so that bound stands in for infinity.
    unbounded = sum(book.surplus.values()) + 1
    for h in sellers:
        edge(source, seller_node[h], book.surplus[h])
    for o, node in zip(offers, offer_node, strict=True):
        edge(seller_node[o.household], node, o.cap_Wh)
    # Adjacency in priority order keeps the augmenting search deterministic.
    for b, b_node in zip(bids, bid_node, strict=True):
        for o, o_node in zip(offers, offer_node, strict=True):
            if o.household != b.household:
                edge(o_node, b_node, unbounded)
        edge(b_node, buyer_node[b.household], b.cap_Wh)
    for h in buyers:
        edge(buyer_node[h], sink, book.deficit[h])

    def push(path: list[int], amount: int) -> None:
        for u, v in pairwise(path):
            residual[u][v] -= amount
            residual[v][u] += amount

    o_index = {id(o): i for i, o in enumerate(offers)}
    b_index = {id(b): i for i, b in enumerate(bids)}
    for o, b, energy_Wh in greedy:
        oi, bi = o_index[id(o)], b_index[id(b)]
        path = [
            source,
            seller_node[o.household],
            offer_node[oi],
            bid_node[bi],
            buyer_node[b.household],
            sink,
        ]
        push(path, energy_Wh)

    # Edmonds-Karp from the greedy flow: shortest augmenting paths until none is left.
    while True:
        parent: dict[int, int] = {source: source}
        queue = deque([source])
        while queue and sink not in parent:
            u = queue.popleft()
            for v, capacity in residual[u].items():
                if capacity > 0 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if sink not in parent:
            break
        path = [sink]
        while path[-1] != source:
            path.append(parent[path[-1]])
        path.reverse()
        push(path, min(residual[u][v] for u, v in pairwise(path)))

    fills: list[Fill] = []
    for b, b_node in zip(bids, bid_node, strict=True):
        for o, o_node in zip(offers, offer_node, strict=True):
            # The reverse residual of an offer->bid edge is the energy sent along it.
            energy_Wh = residual[b_node].get(o_node, 0)
            if energy_Wh > 0:
                fills.append(Fill(o.order.order_id, b.order.order_id, energy_Wh, price))
    return fills


def pay_as_clear(
    orders: Iterable[BookOrder],
    surplus: Mapping[int, int],
    deficit: Mapping[int, int],
    tariffs: Tariffs,
) -> ClearingResult:
    """Pay-as-clear: one price for the slot, chosen to maximise the matched Wh.

    Price rule. Let ``V(p)`` be the most Wh that can trade at price ``p`` among the offers whose
    limit (clamped up to feed-in) is ``<= p`` and the bids whose limit (clamped down to
    ``retail - fee``) is ``>= p``, without self-trade. Let ``lo`` and ``hi`` be the lowest and
    highest integer prices where ``V`` is largest; in a plain book these are the limits of the
    marginal matched offer and bid. The price is ``(lo + hi) // 2``. If a self-trade exclusion
    makes that midpoint trade less, the price is the volume-maximising price nearest to it
    (the lower one on a tie). The price always lies in ``[feed-in, retail - fee]``.

    Allocation. At that price, bids (dearest, earliest, lowest id first) are filled from offers
    (cheapest, earliest, lowest id first); if self-trade skips strand volume, fills are rerouted
    until ``V(price)`` Wh trade.
    """
    book = _prepare(orders, surplus, deficit, tariffs)
    # V only changes at order limits, and between two adjacent limits it is at most its value
    # at either end (fewer orders are eligible), so the best prices include limits.
    candidates = sorted({e.limit for e in book.offers} | {e.limit for e in book.bids})
    volumes = {p: _volume_at(p, book) for p in candidates}
    best = max(volumes.values(), default=0)
    if best == 0:
        return _result(book, [], None)
    best_prices = [p for p in candidates if volumes[p] == best]
    mid = (best_prices[0] + best_prices[-1]) // 2
    price = mid
    if _volume_at(mid, book) != best:
        price = min(best_prices, key=lambda p: (abs(p - mid), p))
    return _result(book, _max_flow_fills(book, price, best), price)


#: The mechanisms by the names users choose them with (``--mechanism``).
MECHANISMS: dict[str, Mechanism] = {
    "pay-as-clear": pay_as_clear,
    "midpoint": midpoint_pay_as_bid,
    "pay-as-offer": pay_as_offer,
}
#: The mechanisms that clear a slot at one price (its ``clearing_price_ueur_per_kWh``); the
#: others pay each fill its own and give none.
ONE_PRICE: frozenset[str] = frozenset({"pay-as-clear"})
