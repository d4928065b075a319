"""The report outputs of ``voisin simulate`` besides report.json: the four PNG plots, the
self-contained report.html, the per-slot series behind them, and the Quartierstrom comparison."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from numpy.typing import NDArray

import meter_sim
import meter_sim.plots
import meter_sim.run
from api.cli import main
from ledger.chain.backends import open_chain
from ledger.contract.deploy import open_ledger
from ledger.localtime import day_span
from ledger.types import Tariffs
from meter_sim import quartierstrom_scenario
from meter_sim.plots import (
    BUYER_STYLE,
    PLOTS,
    SELLER_STYLE,
    BackgroundPlots,
    energy_figure,
    prices_figure,
    pv_destination_figure,
    savings_figure,
    write_plots,
    write_report_html,
)
from meter_sim.report import (
    HOUSEHOLD_FIELDS,
    SlotSeries,
    _eur,
    add_pilot_figures,
    duration_text,
    eur_exact,
    period_label,
    period_local,
    pilot_comparison,
    report_html,
    report_title,
)
from meter_sim.run import RunResult, run_simulation
from meter_sim.scenario import Scenario

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNGS = [name for name, _ in PLOTS]
#: Six households, eight slots from 11:30 local time on a June day: PV surplus to trade.
SIX = ["--households", "6", "--start", "2026-06-21", "--seed", "3"]
SIX += ["--first-slot", "46", "--slots", "8"]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path.name
    assert len(data) > 5_000, f"{path.name} is only {len(data)} bytes"


def embedded_pngs(page: str) -> list[bytes]:
    return [
        base64.b64decode(b64) for b64 in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]


@pytest.fixture(scope="module")
def six(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, RunResult]:
    """``voisin simulate`` on six households and eight slots: its output folder, what it
    printed, and the run's result (caught on its way from run_simulation to the command)."""
    out = tmp_path_factory.mktemp("six") / "out"
    results: list[RunResult] = []

    def run_and_keep(*args: Any, **kwargs: Any) -> RunResult:
        results.append(run_simulation(*args, **kwargs))
        return results[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(meter_sim.run, "run_simulation", run_and_keep)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["simulate", *SIX, "--out", str(out)]) == 0
    (result,) = results
    return out, printed.getvalue(), result


def test_simulate_writes_four_valid_pngs_and_a_self_contained_page(
    six: tuple[Path, str, RunResult],
) -> None:
    out, printed, _ = six
    page_path = out / "report.html"
    assert f"page with the plots: {page_path.resolve()}" in printed
    assert "Quartierstrom" not in printed
    for name in PNGS:
        assert_png(out / name)
    report = json.loads((out / "report.json").read_text())
    assert report["local_traded_Wh"] > 0, "the window should trade"
    assert "pilot_self_sufficiency" not in report
    assert "pilot_local_share_of_surplus" not in report

    page = page_path.read_text(encoding="utf-8")
    # Self-contained: the four plots inline, nothing fetched from elsewhere.
    assert embedded_pngs(page) == [(out / name).read_bytes() for name in PNGS]
    assert not re.search(r'(src|href)="(?!data:)', page)
    # The key figures, as the summary shows them.
    assert f"{report['pv_energy_Wh'] / 1000:,.1f} kWh" in page
    assert f"{report['local_traded_Wh'] / 1000:,.1f} kWh" in page
    assert f"{100 * report['self_sufficiency']:.1f} %" in page
    assert f"{report['community_savings_ueur'] / 1e6:,.2f} EUR" in page
    assert "Quartierstrom" not in page
    assert page.index("<table>") < page.index("data:image/png")


def test_slot_series_of_a_run_adds_up_to_its_report(six: tuple[Path, str, RunResult]) -> None:
    result = six[2]
    r, s = result.report, result.series
    assert s.slots.tolist() == list(range(r["first_slot"], r["first_slot"] + 8))
    for field, values in (
        ("pv_energy_Wh", s.pv_Wh),
        ("load_energy_Wh", s.load_Wh),
        ("self_consumed_Wh", s.self_consumed_Wh),
        ("local_traded_Wh", s.local_traded_Wh),
        ("grid_import_Wh", s.grid_import_Wh),
        ("grid_export_Wh", s.grid_export_Wh),
        ("battery_charge_Wh", s.charge_Wh),
        ("battery_discharge_Wh", s.discharge_Wh),
    ):
        assert int(values.sum()) == r[field], field
    assert (s.load_Wh == s.self_consumed_Wh + s.local_traded_Wh + s.grid_import_Wh).all()
    destinations = s.pv_self_consumed_Wh + s.charge_Wh + s.local_traded_Wh + s.grid_export_Wh
    assert (destinations == s.pv_Wh).all()
    assert (s.pv_self_consumed_Wh >= 0).all() and (s.grid_export_Wh >= 0).all()
    traded = s.local_traded_Wh > 0
    assert traded.any()
    assert np.isnan(s.price_ueur_per_kWh[~traded]).all()
    low, high = result.tariffs.feed_in_ueur_per_kWh, result.tariffs.retail_ueur_per_kWh
    assert ((s.price_ueur_per_kWh[traded] >= low) & (s.price_ueur_per_kWh[traded] <= high)).all()
    mean = (s.price_ueur_per_kWh[traded] * s.local_traded_Wh[traded]).sum() / r["local_traded_Wh"]
    assert int(mean) == r["mean_clearing_price_ueur_per_kWh"]
    assert sum(result.savings_ueur) == r["community_savings_ueur"]
    assert len(result.savings_ueur) == len(result.household_ids) == 6
    assert "pilot_self_sufficiency" not in r


def series(slots: int = 6) -> SlotSeries:
    """A small neighbourhood whose terms balance in every slot, trading in every other slot."""
    t = np.arange(slots, dtype=np.int64)
    pv = 2000 + 300 * t
    load = np.full(slots, 1800, dtype=np.int64)
    charge = np.full(slots, 100, dtype=np.int64)
    discharge = np.full(slots, 40, dtype=np.int64)
    self_consumed = np.full(slots, 1200, dtype=np.int64)
    local = np.where(t % 2 == 0, 400, 0).astype(np.int64)
    grid_import = load - self_consumed - local
    grid_export = pv - self_consumed - local - charge + discharge
    price = np.where(t % 2 == 0, 150_000.0 + t, np.nan)
    return SlotSeries(
        slots=2_000_000 + t,
        pv_Wh=pv,
        load_Wh=load,
        self_consumed_Wh=self_consumed,
        local_traded_Wh=local,
        grid_import_Wh=grid_import,
        grid_export_Wh=grid_export,
        charge_Wh=charge,
        discharge_Wh=discharge,
        price_ueur_per_kWh=price,
    )


#: The roles of the synthetic households 1, 2, 3: one seller (with PV), two buyers.
ROLES = [True, False, False]

TARIFFS = Tariffs(
    feed_in_ueur_per_kWh=80_000, retail_ueur_per_kWh=300_000, grid_fee_ueur_per_kWh=50_000
)


def _audited_copy(result: RunResult) -> RunResult:
    """``result`` with a report of its own (the tests below change its audit fields)."""
    return replace(result, report=dict(result.report))


def test_background_plots_draw_in_a_child_the_same_plots_and_page_as_here(
    six: tuple[Path, str, RunResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plots are drawn by another process, byte for byte as this one draws them, and the
    page carries the report as it is when written (audit findings added after the start)."""
    result = _audited_copy(six[2])
    drawn_by = tmp_path / "drawn_by"
    energy = meter_sim.plots.energy_figure

    def energy_noting_the_process(*args: Any) -> Any:
        drawn_by.write_text(str(os.getpid()))
        return energy(*args)

    monkeypatch.setattr(meter_sim.plots, "energy_figure", energy_noting_the_process)
    plots = BackgroundPlots(tmp_path / "child")
    plots.start(result)
    result.report["audit_ok"] = False
    result.report["audit_findings"] = ["found after the plots were started"]
    page = plots.write_report_html(result)
    assert int(drawn_by.read_text()) != os.getpid()
    here = write_report_html(tmp_path / "here", result)
    for name in PNGS:
        assert (tmp_path / "child" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
    assert page.read_text(encoding="utf-8") == here.read_text(encoding="utf-8")
    assert "found after the plots were started" in page.read_text(encoding="utf-8")


def test_background_plots_are_drawn_here_if_the_child_dies_or_never_started(
    six: tuple[Path, str, RunResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _audited_copy(six[2])
    parent = os.getpid()
    energy = meter_sim.plots.energy_figure

    def die_in_the_child(*args: Any) -> Any:
        if os.getpid() != parent:
            os._exit(3)
        return energy(*args)

    monkeypatch.setattr(meter_sim.plots, "energy_figure", die_in_the_child)
    plots = BackgroundPlots(tmp_path / "died")
    plots.start(result)
    with pytest.raises(RuntimeError, match="already being drawn"):
        plots.start(result)
    page = plots.write_report_html(result)
    assert embedded_pngs(page.read_text(encoding="utf-8")) == [
        (tmp_path / "died" / name).read_bytes() for name in PNGS
    ]
    page = BackgroundPlots(tmp_path / "unstarted").write_report_html(result)
    for name in PNGS:
        assert_png(tmp_path / "unstarted" / name)


def test_write_plots_from_a_synthetic_series(tmp_path: Path) -> None:
    paths = write_plots(
        tmp_path / "plots", series(), TARIFFS, [1, 2, 3], [1_500_000, -20_000, 0], ROLES
    )
    assert list(paths) == PNGS
    for path in paths.values():
        assert_png(path)
    # A run without a single trade still draws its price plot.
    quiet = series()
    quiet = SlotSeries(**{**quiet.__dict__, "price_ueur_per_kWh": np.full(6, np.nan)})
    assert_png(write_plots(tmp_path / "quiet", quiet, TARIFFS, [1], [0], [False])["prices.png"])
    with pytest.raises(ValueError, match="2 savings for 3 households"):
        write_plots(tmp_path / "bad", series(), TARIFFS, [1, 2, 3], [1, 2], ROLES)
    with pytest.raises(ValueError, match="3 savings and 2 roles for 3 households"):
        write_plots(tmp_path / "bad", series(), TARIFFS, [1, 2, 3], [1, 2, 3], [True, False])


def report(scenario: str) -> dict[str, object]:
    return {
        "scenario": scenario,
        "households": 37,
        "days": 1,
        "slots": 96,
        "pv_energy_Wh": 123_456,
        "self_sufficiency": 0.4123,
        "local_share_of_surplus": 0.2,
        "community_savings_ueur": 2_340_000,
        "mean_clearing_price_ueur_per_kWh": 150_000,
        "audit_ok": False,
        "audit_findings": ["money: <b>bad</b> & worse"],
    }


def test_pilot_figures_only_for_the_quartierstrom_scenario() -> None:
    other = report("default")
    add_pilot_figures(other)
    assert "pilot_self_sufficiency" not in other
    assert pilot_comparison(other) is None
    assert "Quartierstrom" not in report_html(other, {})

    qs = report("quartierstrom")
    add_pilot_figures(qs)
    assert qs["pilot_self_sufficiency"] == 0.33
    assert qs["pilot_local_share_of_surplus"] == 0.82
    line = pilot_comparison(qs)
    assert line is not None
    assert "41.2 % here vs 33.0 % community self-supply over a year" in line
    assert "20.0 % here vs 82.0 % of PV sold locally in one winter month" in line
    assert "simulated 1 day with" in line and "modelled" in line
    assert "33.0 % community self-supply over a year" in report_html(qs, {})


def test_report_html_escapes_text_and_embeds_each_image() -> None:
    r = report("<script>alert(1)</script>")
    page = report_html(r, {"a <caption>": PNG_MAGIC + b"one", "second": PNG_MAGIC + b"two"})
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "money: &lt;b&gt;bad&lt;/b&gt; &amp; worse" in page
    assert "a &lt;caption&gt;" in page
    assert embedded_pngs(page) == [PNG_MAGIC + b"one", PNG_MAGIC + b"two"]
    assert "123.5 kWh" in page and "2.34 EUR" in page and "0.1500 EUR/kWh" in page
    assert "FAILED" in page


def test_quartierstrom_run_prints_and_reports_the_pilot_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pilot's neighbourhood cut to its first six households, to keep the test short.
    def small_quartierstrom(*args: Any, **kwargs: Any) -> Scenario:
        full = quartierstrom_scenario(*args, **kwargs)
        return replace(full, households=full.households[:6])

    monkeypatch.setattr(meter_sim, "quartierstrom_scenario", small_quartierstrom)
    out = tmp_path / "qs"
    argv = ["simulate", "--scenario", "quartierstrom", "--first-slot", "46", "--slots", "4"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    r = json.loads((out / "report.json").read_text())
    assert (r["pilot_self_sufficiency"], r["pilot_local_share_of_surplus"]) == (0.33, 0.82)
    expected = pilot_comparison(r)
    assert expected is not None and expected in printed
    assert f"{100 * r['self_sufficiency']:.1f} % here vs 33.0 %" in expected
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "82.0 % of PV sold locally in one winter month" in page
    assert len(embedded_pngs(page)) == 4
    assert r["households"] == 6 and r["scenario"] == "quartierstrom"
    # The scenario's own zone: Walenstadt is in Switzerland.
    assert r["period_local"] == {
        "start": "2019-06-03T11:30:00+02:00",
        "end": "2019-06-03T12:30:00+02:00",
        "tz": "Europe/Zurich",
    }
    assert "Voisin simulation report: quartierstrom, 2019-06-03 11:30-12:30 CEST" in page


# ── what the report tells people: period, money, households, readable plots ──


def page_text(page: str) -> str:
    """The page without its embedded images."""
    return re.sub(r'src="data:image/png;base64,[^"]+"', "", page)


def test_the_page_shows_the_local_period_and_a_readable_duration(
    six: tuple[Path, str, RunResult],
) -> None:
    out, _, result = six
    report = json.loads((out / "report.json").read_text())
    # 11:30-13:30 on 21 June in Lyon, summer time; the UTC slot numbers stay as they were.
    assert report["period_local"] == {
        "start": "2026-06-21T11:30:00+02:00",
        "end": "2026-06-21T13:30:00+02:00",
        "tz": "Europe/Paris",
    }
    assert report["first_slot"] == result.flows.first_slot and report["slots"] == 8
    assert report["days"] == pytest.approx(8 / 96)
    page = page_text((out / "report.html").read_text(encoding="utf-8"))
    title = "Voisin simulation report: default, 2026-06-21 11:30-13:30 CEST"
    assert f"<title>{title}</title>" in page and f"<h1>{title}</h1>" in page
    assert "<th>duration</th><td>2 hours (8 slots of 15 min)</td>" in page
    assert "<th>period (local time)</th><td>2026-06-21 11:30-13:30 CEST</td>" in page
    assert "0.0833" not in page and "<th>days</th>" not in page


def test_the_page_shows_the_money_traded_and_the_fees(six: tuple[Path, str, RunResult]) -> None:
    out, _, result = six
    report = json.loads((out / "report.json").read_text())
    with open_chain("embedded", result.data_dir) as chain:
        client, deployment = open_ledger(chain)
        events = client.events(deployment.block_number, int(chain.w3.eth.block_number))
    fills = [e.args for e in events if e.name == "FillSettled"]
    assert fills
    assert report["local_traded_ueur"] == sum(f["costUeur"] for f in fills) > 0
    assert report["fees_ueur"] == sum(f["feeUeur"] for f in fills) > 0
    page = page_text((out / "report.html").read_text(encoding="utf-8"))
    for key, label in (
        ("local_traded_ueur", "money traded locally (paid by buyers to sellers)"),
        ("fees_ueur", "grid fees on local trades (paid by buyers)"),
        ("grid_import_cost_ueur", "grid import cost (retail tariff)"),
        ("grid_export_revenue_ueur", "grid export revenue (feed-in tariff)"),
        ("community_savings_ueur", "community savings against grid-only supply"),
    ):
        assert f"<th>{label}</th><td>{_eur(report[key])}</td>" in page, key
    # An amount under a cent is never shown as nothing.
    assert _eur(3_000) == "0.003000 EUR" and _eur(0) == "0.00 EUR"
    assert _eur(2_340_000) == "2.34 EUR" and eur_exact(-1_234_567_891) == "-1,234.567891"


def test_report_json_has_each_households_figures_summing_to_the_totals(
    six: tuple[Path, str, RunResult],
) -> None:
    out, _, result = six
    report = json.loads((out / "report.json").read_text())
    rows = report["household_figures"]
    assert report["households"] == len(rows) == 6
    assert [h["household"] for h in rows] == list(result.household_ids)
    # Households with PV are those whose panels produced (a June noon in Lyon).
    producing = [bool(result.flows.pv_Wh[h].sum() > 0) for h in range(6)]
    assert [h["prosumer"] for h in rows] == list(result.prosumer) == producing
    assert sum(result.prosumer) == report["prosumers"]
    assert all(set(h) == {"household", "prosumer", *HOUSEHOLD_FIELDS} for h in rows)

    def total(name: str) -> int:
        return sum(h[name] for h in rows)

    # Exactly the neighbourhood's figures, Wh for Wh and micro-euro for micro-euro.
    assert total("bought_Wh") == total("sold_Wh") == report["local_traded_Wh"] > 0
    assert total("grid_import_Wh") == report["grid_import_Wh"]
    assert total("grid_export_Wh") == report["grid_export_Wh"]
    assert total("import_Wh") == report["load_energy_Wh"] - report["self_consumed_Wh"]
    assert total("import_Wh") == int(result.flows.import_Wh.sum())
    assert total("export_Wh") == int(result.flows.export_Wh.sum())
    assert total("paid_local_ueur") == total("earned_local_ueur") == report["local_traded_ueur"]
    assert total("fees_ueur") == report["fees_ueur"]
    assert total("grid_import_cost_ueur") == report["grid_import_cost_ueur"]
    assert total("grid_export_revenue_ueur") == report["grid_export_revenue_ueur"]
    assert total("savings_ueur") == report["community_savings_ueur"]
    assert [h["savings_ueur"] for h in rows] == list(result.savings_ueur)
    for h in rows:
        assert h["import_Wh"] == h["bought_Wh"] + h["grid_import_Wh"]
        assert h["export_Wh"] == h["sold_Wh"] + h["grid_export_Wh"]
        assert h["net_cost_ueur"] == (
            h["paid_local_ueur"] + h["fees_ueur"] + h["grid_import_cost_ueur"]
            - h["earned_local_ueur"] - h["grid_export_revenue_ueur"]
        )  # fmt: skip
        assert h["savings_ueur"] == h["grid_only_cost_ueur"] - h["net_cost_ueur"]
        if not h["prosumer"]:
            assert h["export_Wh"] == h["sold_Wh"] == h["earned_local_ueur"] == 0
    # The page's table: one row per household, and totals that are the columns' sums as shown.
    page = page_text((out / "report.html").read_text(encoding="utf-8"))
    table = page[page.index('<table class="households">') :]
    table = table[: table.index("</table>")]
    body = re.findall(r"<tr><th>(\d+)</th><td>(with PV|no PV)</td>(.*?)</tr>", table)
    assert [(int(hid), pv == "with PV") for hid, pv, _ in body] == [
        (h["household"], h["prosumer"]) for h in rows
    ]
    totals = re.search(r'<tr class="total"><th>total</th><td></td>(.*?)</tr>', table)
    assert totals is not None
    cells = [re.findall(r'<td class="num">([^<]*)</td>', cells) for _, _, cells in body]
    shown_totals = re.findall(r'<td class="num">([^<]*)</td>', totals.group(1))
    assert len(shown_totals) == len(cells[0]) == 11
    for column, shown in enumerate(shown_totals):
        as_units = [int(row[column].replace(",", "").replace(".", "")) for row in cells]
        assert sum(as_units) == int(shown.replace(",", "").replace(".", "")), column
    assert eur_exact(report["community_savings_ueur"]) == shown_totals[-1]
    assert eur_exact(report["fees_ueur"]) == shown_totals[5]


def drawn(fig: Figure) -> Figure:
    fig.canvas.draw()
    return fig


def tick_times(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels() if re.fullmatch(r"\d\d:\d\d", t.get_text())]


def test_time_axes_are_in_the_neighbourhoods_local_time(six: tuple[Path, str, RunResult]) -> None:
    # Slots 2,000,000..2,000,005 start at 08:00 UTC on 15 January 2027: 09:00 in Paris
    # (CET), 03:00 in New York (EST).
    for tz, first, last, label in (
        ("Europe/Paris", "09:00", "10:30", "local time, Europe/Paris (CET)"),
        ("America/New_York", "03:00", "04:30", "local time, America/New_York (EST)"),
    ):
        for fig in (
            energy_figure(series(), tz),
            prices_figure(series(), TARIFFS, tz),
            pv_destination_figure(series(), tz),
        ):
            ax = drawn(fig).axes[-1]
            times = tick_times(ax)
            assert times and first in times, (tz, times)
            assert all(first <= t <= last for t in times), (tz, times)
            assert ax.get_xlabel() == label
    # The run in Lyon: 11:30 to 13:30 summer time (09:30 to 11:30 UTC).
    result = six[2]
    assert result.tz == "Europe/Paris"
    ax = drawn(energy_figure(result.series, result.tz)).axes[0]
    times = tick_times(ax)
    assert "12:00" in times and all("11:30" <= t <= "13:30" for t in times), times
    assert ax.get_xlabel() == "local time, Europe/Paris (CEST)"


def test_the_energy_legend_sits_below_the_plot_and_every_step_shows() -> None:
    s = series()
    fig = drawn(energy_figure(s, "Europe/Paris"))
    (ax,) = fig.axes
    assert ax.get_legend() is None
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "PV production", "consumption", "traded locally", "grid import", "grid export",
    ]  # fmt: skip
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    # Wholly under the axes: it hides no curve (the first PV step included).
    assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0
    # The last slot is drawn over its whole 15 minutes, as the first.
    pv = ax.get_lines()[0]
    x, y = (np.asarray(v) for v in pv.get_data())
    assert len(x) == len(s.slots) + 1
    assert y[-1] == y[-2] == s.pv_Wh[-1] / 1000
    for fig in (prices_figure(s, TARIFFS, "Europe/Paris"), pv_destination_figure(s, "UTC")):
        drawn(fig)
        assert len(fig.legends) == 1 and all(a.get_legend() is None for a in fig.axes)


def _pixels_near(fig: Figure, ax: Axes, x: float, y: float) -> NDArray[np.uint8]:
    """The RGB pixels within 2 px of the data point (x, y) of the drawn figure."""
    canvas = fig.canvas
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[attr-defined]
    px, py = ax.transData.transform((x, y))
    row = rgba.shape[0] - round(float(py))
    col = round(float(px))
    block: NDArray[np.uint8] = rgba[row - 2 : row + 3, col - 2 : col + 3, :3]
    return block


def test_the_savings_chart_tells_sellers_from_buyers_and_shows_a_zero() -> None:
    from matplotlib.colors import to_rgb

    fig = drawn(savings_figure([1, 2, 3], [1_500_000, -20_000, 0], ROLES))
    (ax,) = fig.axes
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [SELLER_STYLE[2], BUYER_STYLE[2]]
    from matplotlib.patches import Rectangle

    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    hatches = {round(p.get_x() + p.get_width() / 2): p.get_hatch() or None for p in bars}
    assert hatches == {0: SELLER_STYLE[1], 1: None, 2: None}
    # Every bar's value is written on it, the zero one included.
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["1.50", "-0.02", "0.00"]
    # The zero saving (household 3, a buyer) is a visible line on the axis, in the buyers'
    # colour; without it that spot would be the black axis line or white.
    buyer = np.array(to_rgb(BUYER_STYLE[0])) * 255
    near = _pixels_near(fig, ax, 2.0, 0.0).reshape(-1, 3).astype(float)
    assert (np.abs(near - buyer).max(axis=1) < 30).sum() >= 5
    # A saving too small to see (0.3 c) gets the mark too, and its value in full.
    fig = drawn(savings_figure([1, 2], [1_500_000, 3_000], [True, True]))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["1.50", "0.0030"]
    seller = np.array(to_rgb(SELLER_STYLE[0])) * 255
    near = _pixels_near(fig, ax, 1.0, 0.0).reshape(-1, 3).astype(float)
    assert (np.abs(near - seller).max(axis=1) < 30).sum() >= 5


def test_durations_and_local_periods_read_as_people_say_them() -> None:
    assert [duration_text(n) for n in (1, 7, 8, 16, 96, 240, 193)] == [
        "15 minutes",
        "1 hour 45 minutes",
        "2 hours",
        "4 hours",
        "1 day",
        "2 days 12 hours",
        "2 days 15 minutes",
    ]
    tz = "Europe/Paris"
    # The days clocks change: 92 and 100 slots, still one local day each.
    spring = day_span(date(2026, 3, 29), tz)
    autumn = day_span(date(2026, 10, 25), tz)
    assert spring[1] - spring[0] + 1 == 92 and autumn[1] - autumn[0] + 1 == 100
    assert period_label(spring[0], 92, tz) == "2026-03-29 00:00-24:00 CET/CEST"
    assert period_label(autumn[0], 100, tz) == "2026-10-25 00:00-24:00 CEST/CET"
    assert period_local(autumn[0], 100, tz) == {
        "start": "2026-10-25T00:00:00+02:00",
        "end": "2026-10-26T00:00:00+01:00",
        "tz": tz,
    }
    assert period_label(autumn[0] + 46, 8, tz) == "2026-10-25 10:30-12:30 CET"
    assert period_label(spring[0], 96 * 2, tz) == "2026-03-29 00:00 CET to 2026-03-31 01:00 CEST"
    # A report dict without its period has a title without one.
    assert report_title({"scenario": "x"}) == "Voisin simulation report: x"
