"""Statements: local trades, grid residuals and savings, checked by hand."""

from __future__ import annotations

import pytest

from ledger.market.statements import MeteredSlot, StatementError, TradeLine, build_statement
from ledger.types import Tariffs

T = Tariffs(feed_in_ueur_per_kWh=40_000, retail_ueur_per_kWh=250_000, grid_fee_ueur_per_kWh=30_000)


def test_a_two_slot_statement_computed_by_hand() -> None:
    metered = [
        MeteredSlot(10, import_Wh=1000, export_Wh=0, tariffs=T),
        MeteredSlot(11, import_Wh=0, export_Wh=500, tariffs=T),
        MeteredSlot(12, import_Wh=999, export_Wh=0, tariffs=T),  # outside the period
    ]
    trades = [
        # Household 1 buys 600 Wh at 100k: cost 60,000, fee 18,000.
        TradeLine(
            10,
            seller=2,
            buyer=1,
            energy_Wh=600,
            price_ueur_per_kWh=100_000,
            cost_ueur=60_000,
            fee_ueur=18_000,
        ),
        # Household 1 sells 200 Wh at 100k: earns 20,000.
        TradeLine(
            11,
            seller=1,
            buyer=3,
            energy_Wh=200,
            price_ueur_per_kWh=100_000,
            cost_ueur=20_000,
            fee_ueur=6_000,
        ),
        # Not household 1's trade.
        TradeLine(
            11,
            seller=2,
            buyer=3,
            energy_Wh=50,
            price_ueur_per_kWh=100_000,
            cost_ueur=5_000,
            fee_ueur=1_500,
        ),
    ]
    st = build_statement(1, 10, 11, metered, trades, {10, 11})
    first, second = st.lines
    # Slot 10: 400 Wh from the grid at 250k = 100,000; grid only: 1000 Wh = 250,000.
    assert (first.bought_Wh, first.grid_import_Wh, first.grid_import_cost_ueur) == (
        600,
        400,
        100_000,
    )
    assert first.net_cost_ueur == 60_000 + 18_000 + 100_000
    assert first.grid_only_cost_ueur == 250_000
    # The 600 Wh bought would have cost 150,000 from the grid (78,000 paid all in).
    assert first.bought_at_retail_ueur == 150_000
    # Slot 11: 300 Wh to the grid at 40k = 12,000; grid only: 500 Wh earn 20,000.
    assert (second.sold_Wh, second.grid_export_Wh, second.grid_export_revenue_ueur) == (
        200,
        300,
        12_000,
    )
    assert second.net_cost_ueur == -20_000 - 12_000
    assert second.grid_only_cost_ueur == -20_000
    # The 200 Wh sold would have earned 8,000 at feed-in (20,000 earned locally).
    assert second.sold_at_feed_in_ueur == 8_000
    assert (st.import_Wh, st.export_Wh, st.bought_Wh, st.sold_Wh) == (1000, 500, 600, 200)
    assert (st.paid_local_ueur, st.fees_ueur, st.earned_local_ueur) == (60_000, 18_000, 20_000)
    assert st.net_cost_ueur == 146_000
    assert st.grid_only_cost_ueur == 230_000
    assert st.savings_ueur == 84_000
    data = st.as_dict()
    assert data["savings_ueur"] == 84_000 and len(data["lines"]) == 2  # type: ignore[arg-type]
    assert data["lines"][0]["net_cost_ueur"] == 178_000  # type: ignore[index]


def test_grid_residuals_round_down_per_slot_like_fills() -> None:
    tariffs = Tariffs(40_001, 250_001, 0)
    st = build_statement(
        5, 1, 2, [MeteredSlot(1, 3, 0, tariffs), MeteredSlot(2, 0, 3, tariffs)], [], {1, 2}
    )
    # 3 Wh * 250,001 / 1000 = 750.003 -> 750; 3 * 40,001 / 1000 = 120.003 -> 120.
    assert [line.grid_import_cost_ueur for line in st.lines] == [750, 0]
    assert [line.grid_export_revenue_ueur for line in st.lines] == [0, 120]
    assert st.savings_ueur == 0  # no local trade: the bill is the grid-only bill


def test_each_slot_uses_its_own_tariffs() -> None:
    cheap, dear = Tariffs(0, 100_000, 0), Tariffs(0, 300_000, 0)
    st = build_statement(
        1, 1, 2, [MeteredSlot(1, 1000, 0, cheap), MeteredSlot(2, 1000, 0, dear)], [], {1, 2}
    )
    assert st.grid_import_cost_ueur == 400_000


def test_a_period_without_readings_is_an_empty_statement() -> None:
    st = build_statement(1, 100, 200, [], [], set())
    assert st.lines == () and st.net_cost_ueur == st.savings_ueur == 0


@pytest.mark.parametrize(
    ("metered", "trades", "match"),
    [
        ([], [TradeLine(1, 2, 1, 10, 1, 0, 0)], "no metered reading"),
        ([MeteredSlot(1, 5, 0, T)], [TradeLine(1, 2, 1, 10, 1, 0, 0)], "bought 10 Wh of 5"),
        ([MeteredSlot(1, 0, 5, T)], [TradeLine(1, 1, 2, 10, 1, 0, 0)], "sold 10 Wh of 5"),
        ([MeteredSlot(1, 0, 5, T), MeteredSlot(1, 0, 5, T)], [], "metered twice"),
    ],
)
def test_inconsistent_data_is_refused(
    metered: list[MeteredSlot], trades: list[TradeLine], match: str
) -> None:
    with pytest.raises(StatementError, match=match):
        build_statement(1, 1, 1, metered, trades, {1})


def test_a_backwards_period_is_refused() -> None:
    with pytest.raises(StatementError, match="empty"):
        build_statement(1, 5, 4, [], [], set())


def test_a_pending_slot_sends_nothing_to_the_grid_yet() -> None:
    """Before the settlement runs, the energy not yet traded is pending, not grid energy; a
    direct take already settled in the slot stays (its money moved); savings count settled
    slots only."""
    metered = [MeteredSlot(1, 1000, 0, T), MeteredSlot(2, 1000, 0, T)]
    take = TradeLine(2, seller=9, buyer=1, energy_Wh=300, price_ueur_per_kWh=100_000,
                     cost_ueur=30_000, fee_ueur=9_000)  # fmt: skip
    st = build_statement(1, 1, 2, metered, [take], {1})
    settled, pending = st.lines
    assert (settled.status, pending.status) == ("settled", "pending")
    assert (pending.bought_Wh, pending.pending_import_Wh, pending.grid_import_Wh) == (300, 700, 0)
    assert (pending.grid_import_cost_ueur, pending.grid_only_cost_ueur) == (0, 0)
    assert pending.net_cost_ueur == 39_000
    assert (st.grid_import_Wh, st.pending_import_Wh, st.pending_slots) == (1000, 700, 1)
    assert st.grid_import_cost_ueur == 250_000
    # Savings over the settled slot only: grid-only 250,000 against 250,000 paid.
    assert st.savings_ueur == 0
    assert st.net_cost_ueur == 250_000 + 39_000
    assert st.as_dict()["lines"][1]["status"] == "pending"  # type: ignore[index]
    # Once settled, the same slot's rest comes from the grid.
    later = build_statement(1, 1, 2, metered, [take], {1, 2})
    assert later.lines[1].grid_import_Wh == 700 and later.pending_import_Wh == 0
