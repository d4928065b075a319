"""Statements with a day-ahead market: forward deliveries and shortfalls next to the real-time
fills, and the reservations held in escrow, checked by hand."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.market.statements import (
    ForwardLine,
    MeteredSlot,
    TradeLine,
    build_statement,
    is_forward_delivery,
)
from ledger.types import Tariffs

T = Tariffs(feed_in_ueur_per_kWh=40_000, retail_ueur_per_kWh=250_000, grid_fee_ueur_per_kWh=30_000)

#: Household 1 bought 600 Wh day-ahead from 2 (delivered whole) and 300 Wh from 3 (100 Wh
#: delivered: 3 exported less), 150 Wh in the real-time market from 4; its position for slot
#: 11 is still open. Household 2 sold 600 Wh day-ahead and 50 Wh in real time.
FORWARDS = [
    ForwardLine(1, 10, seller=2, buyer=1, energy_Wh=600, price_ueur_per_kWh=100_000,
                reserved_ueur=78_000, delivered_Wh=600, shortfall_Wh=0, cost_ueur=60_000,
                fee_ueur=18_000, refund_ueur=0),
    ForwardLine(2, 10, seller=3, buyer=1, energy_Wh=300, price_ueur_per_kWh=90_000,
                reserved_ueur=36_000, delivered_Wh=100, shortfall_Wh=200, cost_ueur=9_000,
                fee_ueur=3_000, refund_ueur=24_000),
    ForwardLine(3, 11, seller=2, buyer=1, energy_Wh=200, price_ueur_per_kWh=100_000,
                reserved_ueur=26_000),
    ForwardLine(4, 10, seller=2, buyer=5, energy_Wh=100, price_ueur_per_kWh=100_000,
                reserved_ueur=13_000),
]  # fmt: skip
TRADES = [
    TradeLine(10, 2, 1, 600, 100_000, 60_000, 18_000, day_ahead=True),
    TradeLine(10, 3, 1, 100, 90_000, 9_000, 3_000, day_ahead=True),
    TradeLine(10, 4, 1, 150, 120_000, 18_000, 4_500),
    TradeLine(10, 2, 6, 50, 120_000, 6_000, 1_500),
]
METERED = {
    1: [MeteredSlot(10, import_Wh=1_000, export_Wh=0, tariffs=T)],
    2: [MeteredSlot(10, import_Wh=0, export_Wh=700, tariffs=T)],
}


def test_a_buyer_sees_both_stages_its_shortfall_and_its_escrow() -> None:
    st_ = build_statement(1, 10, 11, METERED[1], TRADES, {10}, FORWARDS)
    (line,) = st_.lines
    assert (line.bought_Wh, line.day_ahead_bought_Wh, line.realtime_bought_Wh) == (850, 700, 150)
    assert line.day_ahead_short_bought_Wh == 200
    assert (line.day_ahead_paid_ueur, line.day_ahead_fees_ueur) == (69_000, 21_000)
    # The totals still count every local trade: 69,000 + 18,000 paid, 21,000 + 4,500 in fees.
    assert (line.paid_local_ueur, line.fees_ueur) == (87_000, 25_500)
    # 150 Wh came from the grid, at 250,000.
    assert (line.grid_import_Wh, line.grid_import_cost_ueur) == (150, 37_500)
    assert line.net_cost_ueur == 87_000 + 25_500 + 37_500
    # Position 3 (slot 11, not metered yet) holds 26,000 in escrow; it is no cost.
    assert (st_.open_forwards, st_.escrow_reserved_ueur) == (1, 26_000)
    assert [p.forward_id for p in st_.forwards] == [1, 2, 3]
    assert st_.day_ahead_short_bought_Wh == 200 and st_.realtime_bought_Wh == 150
    assert st_.net_cost_ueur == line.net_cost_ueur


def test_a_seller_sees_its_day_ahead_sales_apart_and_no_escrow() -> None:
    st_ = build_statement(2, 10, 11, METERED[2], TRADES, {10}, FORWARDS)
    (line,) = st_.lines
    assert (line.sold_Wh, line.day_ahead_sold_Wh, line.realtime_sold_Wh) == (650, 600, 50)
    assert (line.earned_local_ueur, line.day_ahead_earned_ueur) == (66_000, 60_000)
    assert line.grid_export_Wh == 50
    # The open positions it sells (3 and 4) reserve its buyers' money, not its own.
    assert (st_.open_forwards, st_.escrow_reserved_ueur) == (0, 0)
    assert [p.forward_id for p in st_.forwards] == [1, 3, 4]


def test_a_period_leaves_out_other_slots_positions() -> None:
    st_ = build_statement(1, 10, 10, METERED[1], TRADES, {10}, FORWARDS)
    assert [p.forward_id for p in st_.forwards] == [1, 2]
    assert (st_.open_forwards, st_.escrow_reserved_ueur) == (0, 0)


def test_without_forwards_the_new_fields_are_zero_and_the_others_unchanged() -> None:
    realtime = [t for t in TRADES if not t.day_ahead]
    plain = build_statement(1, 10, 11, METERED[1], realtime, {10})
    d = plain.as_dict()
    assert d["forwards"] == [] and d["escrow_reserved_ueur"] == d["open_forwards"] == 0
    assert plain.realtime_bought_Wh == plain.bought_Wh == 150
    (line,) = d["lines"]
    assert isinstance(line, dict)
    assert {k: v for k, v in line.items() if k.startswith("day_ahead_")} == {
        "day_ahead_bought_Wh": 0,
        "day_ahead_sold_Wh": 0,
        "day_ahead_paid_ueur": 0,
        "day_ahead_fees_ueur": 0,
        "day_ahead_earned_ueur": 0,
        "day_ahead_short_bought_Wh": 0,
        "day_ahead_short_sold_Wh": 0,
    }
    assert (line["paid_local_ueur"], line["grid_import_Wh"]) == (18_000, 850)


def test_the_statement_as_json_lists_the_positions() -> None:
    d = build_statement(1, 10, 11, METERED[1], TRADES, {10}, FORWARDS).as_dict()
    assert d["forwards"][2] == {
        "forward_id": 3,
        "slot": 11,
        "seller": 2,
        "buyer": 1,
        "energy_Wh": 200,
        "price_ueur_per_kWh": 100_000,
        "reserved_ueur": 26_000,
        "delivered_Wh": None,
        "shortfall_Wh": None,
        "cost_ueur": None,
        "fee_ueur": None,
        "refund_ueur": None,
    }


def test_only_offer_and_bid_id_zero_is_a_forward_delivery() -> None:
    assert is_forward_delivery(0, 0)
    assert not is_forward_delivery(7, 0)  # a direct take
    assert not is_forward_delivery(7, 3)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 5_000),
    st.lists(st.tuples(st.integers(1, 800), st.booleans()), max_size=6),
    st.booleans(),
)
def test_both_stages_and_the_grid_add_up_to_the_meter(
    import_Wh: int, fills: list[tuple[int, bool]], settled: bool
) -> None:
    trades, total = [], 0
    for energy, day_ahead in fills:
        if total + energy > import_Wh:
            break
        total += energy
        trades.append(TradeLine(10, 2, 1, energy, 100_000, energy * 100, energy * 30, day_ahead))
    metered = [MeteredSlot(10, import_Wh, 0, T)]
    (line,) = build_statement(1, 10, 10, metered, trades, {10} if settled else set()).lines
    assert line.day_ahead_bought_Wh + line.realtime_bought_Wh == line.bought_Wh == total
    rest = line.grid_import_Wh + line.pending_import_Wh
    assert line.bought_Wh + rest == import_Wh
    assert line.day_ahead_paid_ueur == sum(t.cost_ueur for t in trades if t.day_ahead)
