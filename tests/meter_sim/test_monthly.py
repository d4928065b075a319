"""The report's month-by-month figures: local calendar months of the scenario's zone, their
terms adding up to the run's, and the Quartierstrom pilot's year and winter month beside a
``quartierstrom`` run's."""

from __future__ import annotations

from typing import Any

import numpy as np

from ledger.localtime import month_span
from meter_sim.report import (
    MONTHLY_TERMS,
    SlotSeries,
    add_pilot_figures,
    monthly_figures,
    pilot_comparison,
    report_html,
    winter_month,
)

TZ = "Europe/Zurich"


def series(first: int, n: int) -> SlotSeries:
    """A neighbourhood's series of ``n`` slots from ``first`` whose terms balance: PV and load
    vary slot to slot, a tenth of the load is traded locally where there is surplus."""
    t = np.arange(n, dtype=np.int64)
    pv = (t % 96) * 10
    load = np.full(n, 300, dtype=np.int64)
    self_consumed = np.minimum(pv, load)
    traded = np.where(pv > load, 30, 0).astype(np.int64)
    traded = np.minimum(traded, load - self_consumed)
    zero = np.zeros(n, dtype=np.int64)
    return SlotSeries(
        slots=np.arange(first, first + n, dtype=np.int64),
        pv_Wh=pv,
        load_Wh=load,
        self_consumed_Wh=self_consumed,
        local_traded_Wh=traded,
        grid_import_Wh=load - self_consumed - traded,
        grid_export_Wh=pv - self_consumed - traded,
        charge_Wh=zero,
        discharge_Wh=zero,
        price_ueur_per_kWh=np.full(n, np.nan),
    )


def test_two_days_across_a_month_end_are_two_local_months() -> None:
    # 31 October and 1 November 2019, local days (CET, after the clocks went back).
    october = month_span(2019, 10, TZ)
    first = october[1] - 95
    months = monthly_figures(series(first, 192), TZ)
    assert [m["month"] for m in months] == ["2019-10", "2019-11"]
    assert [(m["first_slot"], m["slots"], m["whole_month"]) for m in months] == [
        (first, 96, False),
        (october[1] + 1, 96, False),
    ]
    whole = series(first, 192)
    for name, attr in MONTHLY_TERMS:
        assert sum(m[name] for m in months) == int(getattr(whole, attr).sum())
    for m in months:
        assert type(m["pv_energy_Wh"]) is int
        load, grid_import = m["load_energy_Wh"], m["grid_import_Wh"]
        assert load == m["self_consumed_Wh"] + m["local_traded_Wh"] + grid_import
        assert m["self_sufficiency"] == round((load - grid_import) / load, 4)


def test_a_whole_month_and_the_days_of_a_clock_change_are_counted_from_local_midnights() -> None:
    lo, hi = month_span(2019, 10, TZ)  # 31 days, one of them 25 hours long: 2,980 slots
    months = monthly_figures(series(lo - 10, hi - lo + 21), TZ)
    assert [(m["month"], m["slots"], m["whole_month"]) for m in months] == [
        ("2019-09", 10, False),
        ("2019-10", 31 * 96 + 4, True),
        ("2019-11", 10, False),
    ]


def test_the_darkest_winter_month_stands_beside_the_pilots() -> None:
    def month(name: str, pv: int, whole: bool = True) -> dict[str, Any]:
        return {"month": name, "pv_energy_Wh": pv, "whole_month": whole}

    assert winter_month([month("2019-06", 10), month("2019-11", 1)]) is None
    picked = winter_month(
        [
            month("2019-12", 50),
            month("2020-01", 40),
            month("2020-02", 60),
            month("2020-02", 1, False),
        ]
    )
    assert picked is not None and picked["month"] == "2020-01"


def test_a_quartierstrom_report_sets_its_months_beside_the_pilot() -> None:
    lo, _ = month_span(2019, 12, TZ)
    months = monthly_figures(series(lo - 96, 2 * 96), TZ)  # 30 November and 1 December
    report: dict[str, Any] = {
        "scenario": "quartierstrom",
        "self_sufficiency": 0.5,
        "local_share_of_surplus": 0.1,
        "slots": 192,
        "first_slot": lo - 96,
        "period_local": {"tz": TZ},
        "monthly": months,
        "pv_energy_Wh": 1, "load_energy_Wh": 1, "self_consumed_Wh": 1, "local_traded_Wh": 1,
        "grid_import_Wh": 1, "grid_export_Wh": 1,
    }  # fmt: skip
    add_pilot_figures(report)
    assert report["winter_month"] == "2019-12"
    line = pilot_comparison(report)
    december = months[1]["local_share_of_surplus"]
    assert line is not None
    assert f"{100 * december:.1f} % here in 2019-12 (the run's darkest winter month, part" in line
    page = report_html(report, {})
    assert "<h2>Month by month</h2>" in page and "Europe/Zurich" in page
    assert "2019-11 (1 day)" in page and "2019-12 (1 day) *" in page
    assert "<th>Quartierstrom pilot</th>" in page and "82.0 % (one winter month)" in page
    # Another scenario: the months without the pilot; one month: no table.
    report["scenario"] = "default"
    for key in ("pilot_self_sufficiency", "pilot_local_share_of_surplus", "winter_month"):
        del report[key]
    page = report_html(report, {})
    assert "Month by month" in page and "Quartierstrom" not in page
    report["monthly"] = months[:1]
    assert "Month by month" not in report_html(report, {})
