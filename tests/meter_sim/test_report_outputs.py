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
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import meter_sim
import meter_sim.plots
import meter_sim.run
from api.cli import main
from ledger.types import Tariffs
from meter_sim import quartierstrom_scenario
from meter_sim.plots import PLOTS, BackgroundPlots, write_plots, write_report_html
from meter_sim.report import (
    SlotSeries,
    add_pilot_figures,
    pilot_comparison,
    report_html,
)
from meter_sim.run import RunResult, run_simulation
from meter_sim.scenario import Scenario

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
    energy = meter_sim.plots._energy

    def energy_noting_the_process(*args: Any) -> None:
        drawn_by.write_text(str(os.getpid()))
        energy(*args)

    monkeypatch.setattr(meter_sim.plots, "_energy", energy_noting_the_process)
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
    energy = meter_sim.plots._energy

    def die_in_the_child(*args: Any) -> None:
        if os.getpid() != parent:
            os._exit(3)
        energy(*args)

    monkeypatch.setattr(meter_sim.plots, "_energy", die_in_the_child)
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
    paths = write_plots(tmp_path / "plots", series(), TARIFFS, [1, 2, 3], [1_500_000, -20_000, 0])
    assert list(paths) == PNGS
    for path in paths.values():
        assert_png(path)
    # A run without a single trade still draws its price plot.
    quiet = series()
    quiet = SlotSeries(**{**quiet.__dict__, "price_ueur_per_kWh": np.full(6, np.nan)})
    assert_png(write_plots(tmp_path / "quiet", quiet, TARIFFS, [1], [0])["prices.png"])
    with pytest.raises(ValueError, match="2 savings for 3 households"):
        write_plots(tmp_path / "bad", series(), TARIFFS, [1, 2, 3], [1, 2])


def report(scenario: str) -> dict[str, object]:
    return {
        "scenario": scenario,
        "households": 37,
        "days": 1,
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
    assert "simulated 1 day(s)" in line and "modelled" in line
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
