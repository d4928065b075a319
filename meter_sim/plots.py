"""The PNG plots of a simulation run's report, drawn with matplotlib (Agg, no display).

:func:`write_plots` writes, into the run's output folder:

- ``energy.png``: the neighbourhood's PV production, load, local trades, grid import and grid
  export per slot;
- ``prices.png``: each slot's clearing price (energy-weighted mean fill price, where the slot
  traded) against the tariff band: feed-in tariff below, retail tariff minus grid fee above;
- ``savings.png``: each household's savings against grid-only supply, in EUR;
- ``pv_destination.png``: where the PV energy went (used on site directly, into batteries, sold
  to neighbours, exported to the grid), as totals and per slot.

:func:`write_report_html` writes them and ``report.html``, a self-contained page that embeds
them (:func:`meter_sim.report.report_html`). :class:`BackgroundPlots` draws them in a child
process instead, while the run's audit goes on in the caller's (``voisin simulate``).

The figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot, no
global state, nothing shown. The data are the pure per-slot series of
:func:`meter_sim.report.slot_series`. matplotlib is imported when the first figure is drawn,
so a process that only hands the drawing to :class:`BackgroundPlots` never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ledger.types import SLOT_SECONDS
from meter_sim.forked import in_forked_child

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ledger.types import Tariffs
    from meter_sim.report import SlotSeries
    from meter_sim.run import RunResult

__all__ = ["PLOTS", "BackgroundPlots", "write_plots", "write_report_html"]

#: The plot files, in report order, with their captions.
PLOTS: tuple[tuple[str, str], ...] = (
    ("energy.png", "Production, consumption, local trades and grid exchange per slot"),
    ("prices.png", "Clearing price per slot against the tariff band"),
    ("savings.png", "Savings per household against grid-only supply"),
    ("pv_destination.png", "Where the PV energy went"),
)


def _figure(width: float = 10.0, height: float = 4.5) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _times(slots: NDArray[np.int64]) -> NDArray[np.datetime64]:
    """Each slot's start time (UTC)."""
    out: NDArray[np.datetime64] = (slots * SLOT_SECONDS).astype("datetime64[s]")
    return out


def _kWh(values: NDArray[np.int64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = values.astype(np.float64) / 1000
    return out


def _energy(series: SlotSeries, path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    t = _times(series.slots)
    for values, label, colour in (
        (series.pv_Wh, "PV production", "#f2a900"),
        (series.load_Wh, "consumption", "#1f4e79"),
        (series.local_traded_Wh, "traded locally", "#2e8b57"),
        (series.grid_import_Wh, "grid import", "#b22222"),
        (series.grid_export_Wh, "grid export", "#8a8a8a"),
    ):
        ax.step(t, _kWh(values), where="post", label=label, color=colour)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("kWh per 15-min slot")
    ax.set_title("Neighbourhood energy per slot")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.savefig(path, format="png")


def _prices(series: SlotSeries, tariffs: Tariffs, path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    t = _times(series.slots)
    low = tariffs.feed_in_ueur_per_kWh / 1e6
    high = (tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh) / 1e6
    ax.axhspan(low, high, color="#2e8b57", alpha=0.1, label="local price band")
    ax.axhline(low, color="#8a8a8a", linestyle="--", label=f"feed-in tariff {low:.4f}")
    ax.axhline(high, color="#b22222", linestyle="--", label=f"retail - grid fee {high:.4f}")
    price = series.price_ueur_per_kWh / 1e6
    ax.plot(t, price, marker="o", linestyle="-", color="#1f4e79", label="clearing price")
    if not np.isfinite(price).any():
        ax.text(0.5, 0.5, "no local trade", transform=ax.transAxes, ha="center")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("EUR per kWh")
    ax.set_title("Clearing price per slot (energy-weighted mean of the fills)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.savefig(path, format="png")


def _savings(household_ids: Sequence[int], savings_ueur: Sequence[int], path: Path) -> None:
    fig = _figure(max(6.0, 0.25 * len(household_ids) + 2), 4.5)
    ax = fig.add_subplot()
    eur = np.asarray(savings_ueur, dtype=np.float64) / 1e6
    colours = ["#2e8b57" if v >= 0 else "#b22222" for v in eur]
    ax.bar([str(h) for h in household_ids], eur, color=colours)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("household")
    ax.set_ylabel("EUR")
    ax.set_title(f"Savings against grid-only supply (total {eur.sum():.2f} EUR)")
    if len(household_ids) > 40:
        ax.tick_params(axis="x", labelsize="x-small", rotation=90)
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, format="png")


def _pv_destination(series: SlotSeries, path: Path) -> None:
    parts = (
        (series.pv_self_consumed_Wh, "used on site", "#f2a900"),
        (series.charge_Wh, "into batteries", "#6a3d9a"),
        (series.local_traded_Wh, "sold locally", "#2e8b57"),
        (series.grid_export_Wh, "exported to the grid", "#8a8a8a"),
    )
    fig = _figure(11.0, 4.5)
    total_ax, slot_ax = fig.subplots(1, 2, width_ratios=[1, 3])
    pv = int(series.pv_Wh.sum())
    bottom = 0.0
    for values, label, colour in parts:
        kwh = float(values.sum()) / 1000
        total_ax.bar(["PV"], [kwh], bottom=bottom, color=colour, label=label)
        if pv and kwh > 0:
            share = 100 * float(values.sum()) / pv
            total_ax.text(0, bottom + kwh / 2, f"{share:.0f} %", ha="center", va="center")
        bottom += kwh
    total_ax.set_ylabel("kWh")
    total_ax.set_title(f"PV total {pv / 1000:.1f} kWh")
    slot_ax.stackplot(
        _times(series.slots),
        *[_kWh(values) for values, _, _ in parts],
        labels=[label for _, label, _ in parts],
        colors=[colour for _, _, colour in parts],
        step="post",
    )
    slot_ax.set_xlabel("time (UTC)")
    slot_ax.set_ylabel("kWh per 15-min slot")
    slot_ax.set_title("Where the PV energy went, per slot")
    slot_ax.legend(loc="upper left", fontsize="small")
    slot_ax.grid(alpha=0.3)
    for label in slot_ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    fig.savefig(path, format="png")


def write_plots(
    out: Path,
    series: SlotSeries,
    tariffs: Tariffs,
    household_ids: Sequence[int],
    savings_ueur: Sequence[int],
) -> dict[str, Path]:
    """Write the four PNGs (:data:`PLOTS`) into ``out``; returns file name -> path, in order."""
    if len(household_ids) != len(savings_ueur):
        raise ValueError(f"{len(savings_ueur)} savings for {len(household_ids)} households")
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name, _ in PLOTS}
    _energy(series, paths["energy.png"])
    _prices(series, tariffs, paths["prices.png"])
    _savings(household_ids, savings_ueur, paths["savings.png"])
    _pv_destination(series, paths["pv_destination.png"])
    return paths


def write_report_html(out: Path, result: RunResult) -> Path:
    """Write the run's plots and ``report.html`` (plots embedded) into ``out``; returns its path."""
    paths = write_plots(
        out, result.series, result.tariffs, result.household_ids, result.savings_ueur
    )
    return _write_page(out, result, paths)


def _write_page(out: Path, result: RunResult, paths: dict[str, Path]) -> Path:
    from meter_sim.report import report_html  # the ledger's imports come with it

    captions = dict(PLOTS)
    images = {captions[name]: path.read_bytes() for name, path in paths.items()}
    page = out / "report.html"
    page.write_text(report_html(result.report, images), encoding="utf-8")
    return page


class BackgroundPlots:
    """A run's plots drawn in a child process while the caller goes on, then its page.

    ``voisin simulate`` passes :meth:`start` as the run's ``before_audit``: the four PNGs are
    drawn on the second core while the audit runs in the main process, and
    :meth:`write_report_html` then waits for them and writes ``report.html`` with the audited
    report. The child is forked (:func:`meter_sim.forked.in_forked_child`), so it needs no
    imports but matplotlib's. If it was never started, or died, the plots are drawn in this
    process instead.
    """

    def __init__(self, out: Path) -> None:
        self._out = out
        self._job: Future[dict[str, Path]] | None = None

    def start(self, result: RunResult) -> None:
        """Start drawing ``result``'s plots into the output folder."""
        if self._job is not None:
            raise RuntimeError("the plots of this run are already being drawn")
        self._job = in_forked_child(
            write_plots,
            self._out,
            result.series,
            result.tariffs,
            result.household_ids,
            result.savings_ueur,
        )

    def write_report_html(self, result: RunResult) -> Path:
        """Wait for the plots, then write ``report.html`` (with ``result``'s report as it is
        now, audit included); returns its path."""
        if self._job is not None:
            try:
                return _write_page(self._out, result, self._job.result())
            except BrokenProcessPool:
                pass  # the child died: draw here
        return write_report_html(self._out, result)
