"""The PNG plots of a simulation run's report, drawn with matplotlib (Agg, no display).

:func:`write_plots` writes, into the run's output folder:

- ``energy.png``: the neighbourhood's PV production, load, local trades, grid import and grid
  export per slot;
- ``prices.png``: each slot's clearing price (energy-weighted mean fill price, where the slot
  traded) against the tariff band: feed-in tariff below, retail tariff minus grid fee above;
- ``savings.png``: each household's savings against grid-only supply, in EUR, households with
  PV (sellers) hatched and coloured apart from the others (buyers), each bar labelled with its
  value and a zero drawn as a short thick line on the axis;
- ``pv_destination.png``: where the PV energy went (used on site directly, into batteries, sold
  to neighbours, exported to the grid), as totals and per slot.

Beside them, not embedded in the page, ``forecast.png``: the neighbourhood's forecast against
what was metered, when the report has a ``forecast`` entry (drawn by
:func:`meter_sim.forecast.write_forecast_plot`).

Time axes are in the neighbourhood's local clock time (the scenario's zone): the slots become
aware datetimes (:func:`ledger.localtime.slot_start`) and the axis' locator and formatter
carry the zone. Legends sit below the plots, outside the data. Each figure has a builder
(:func:`energy_figure`, :func:`prices_figure`, :func:`savings_figure`,
:func:`pv_destination_figure`) that returns it undrawn.

:func:`write_report_html` writes them and ``report.html``, a self-contained page that embeds
them (:func:`meter_sim.report.report_html`). :class:`BackgroundPlots` draws them in a child
process instead, while the run's audit goes on in the caller's (``voisin simulate``).

The figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot, no
global state, nothing shown. The data are the pure per-slot series of
:func:`meter_sim.report.slot_series`. matplotlib is imported when the first figure is drawn,
so a process that only hands the drawing to :class:`BackgroundPlots` never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ledger.localtime import DEFAULT_ZONE, slot_start, zone
from meter_sim.forked import in_forked_child

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ledger.types import Tariffs
    from meter_sim.report import SlotSeries
    from meter_sim.run import RunResult

__all__ = [
    "BUYER_STYLE",
    "PLOTS",
    "SELLER_STYLE",
    "BackgroundPlots",
    "energy_figure",
    "prices_figure",
    "pv_destination_figure",
    "savings_figure",
    "write_plots",
    "write_report_html",
]

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


def _times(slots: NDArray[np.int64], tz: str) -> NDArray[np.float64]:
    """Each slot's start as matplotlib's date number, from its aware local datetime in ``tz``
    (the number is the instant; the axis' formatter shows it in the zone)."""
    from matplotlib.dates import date2num

    out: NDArray[np.float64] = np.asarray(
        date2num([slot_start(int(s), tz) for s in slots]),  # type: ignore[no-untyped-call]
        dtype=np.float64,
    )
    return out


def _zone_names(slots: NDArray[np.int64], tz: str) -> str:
    """The zone's abbreviations over the slots, in order (``CEST``, or ``CEST/CET`` across a
    clock change)."""
    names: list[str] = []
    for s in (int(slots[0]), int(slots[-1]) + 1) if len(slots) else ():
        name = slot_start(s, tz).tzname() or tz
        if name not in names:
            names.append(name)
    return "/".join(names)


def _local_time_axis(ax: Axes, slots: NDArray[np.int64], tz: str) -> None:
    """Ticks and labels of a time x axis in ``tz``'s local clock time (matplotlib converts
    the aware datetimes to its own UTC numbers; the locator and formatter bring them back)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(tz=zone(tz))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone(tz)))  # type: ignore[no-untyped-call]
    ax.set_xlabel(f"local time, {tz} ({_zone_names(slots, tz)})")


def _legend_below(fig: Figure, ax: Axes, ncols: int) -> None:
    """The axes' legend under the plot, outside the data area (it never hides a curve)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize="small")


def _kWh(values: NDArray[np.int64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = values.astype(np.float64) / 1000
    return out


def _steps(slots: NDArray[np.int64], tz: str) -> NDArray[np.float64]:
    """The slots' starts and the last slot's end: a step drawn ``where="post"`` over these
    shows every slot over its whole 15 minutes, the last one included."""
    return _times(np.append(slots, slots[-1] + 1) if len(slots) else slots, tz)


def _held(values: NDArray[np.int64]) -> NDArray[np.float64]:
    """A slot series in kWh with its last value repeated (to go with :func:`_steps`)."""
    kwh = _kWh(values)
    out: NDArray[np.float64] = np.append(kwh, kwh[-1:]) if len(kwh) else kwh
    return out


def energy_figure(series: SlotSeries, tz: str) -> Figure:
    """The neighbourhood's energy per slot, on a local time axis, legend below the plot."""
    fig = _figure(10.0, 5.0)
    ax = fig.add_subplot()
    t = _steps(series.slots, tz)
    for values, label, colour in (
        (series.pv_Wh, "PV production", "#f2a900"),
        (series.load_Wh, "consumption", "#1f4e79"),
        (series.local_traded_Wh, "traded locally", "#2e8b57"),
        (series.grid_import_Wh, "grid import", "#b22222"),
        (series.grid_export_Wh, "grid export", "#8a8a8a"),
    ):
        ax.step(t, _held(values), where="post", label=label, color=colour)
    _local_time_axis(ax, series.slots, tz)
    ax.set_ylabel("kWh per 15-min slot")
    ax.set_title("Neighbourhood energy per slot")
    ax.grid(alpha=0.3)
    _legend_below(fig, ax, 5)
    return fig


def prices_figure(series: SlotSeries, tariffs: Tariffs, tz: str) -> Figure:
    """Each slot's clearing price inside the tariff band, on a local time axis."""
    fig = _figure(10.0, 5.0)
    ax = fig.add_subplot()
    t = _times(series.slots, tz)
    low = tariffs.feed_in_ueur_per_kWh / 1e6
    high = (tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh) / 1e6
    ax.axhspan(low, high, color="#2e8b57", alpha=0.1, label="local price band")
    ax.axhline(low, color="#8a8a8a", linestyle="--", label=f"feed-in tariff {low:.4f}")
    ax.axhline(high, color="#b22222", linestyle="--", label=f"retail - grid fee {high:.4f}")
    price = series.price_ueur_per_kWh / 1e6
    ax.plot(t, price, marker="o", linestyle="-", color="#1f4e79", label="clearing price")
    if not np.isfinite(price).any():
        ax.text(0.5, 0.5, "no local trade", transform=ax.transAxes, ha="center")
    _local_time_axis(ax, series.slots, tz)
    ax.set_ylabel("EUR per kWh")
    ax.set_title("Clearing price per slot (energy-weighted mean of the fills)")
    ax.grid(alpha=0.3)
    _legend_below(fig, ax, 4)
    return fig


#: The savings chart's two groups: colour, hatching and legend label.
SELLER_STYLE = ("#f2a900", "//", "with PV (sells)")
BUYER_STYLE = ("#1f4e79", "", "without PV (buys)")


def _eur_label(eur: float) -> str:
    """A bar's value: cents, or four decimals under a cent so that it never reads as zero."""
    return f"{eur:.4f}" if eur != 0 and abs(eur) < 0.01 else f"{eur:.2f}"


def savings_figure(
    household_ids: Sequence[int], savings_ueur: Sequence[int], sellers: Sequence[bool]
) -> Figure:
    """Each household's savings against grid-only supply, in EUR: households with PV (the
    sellers) hatched in one colour, the others (buyers) plain in another, with a legend;
    every bar labelled with its value, and a zero drawn as a short thick line on the axis
    (a bar of height zero would not show)."""
    n = len(household_ids)
    if not len(savings_ueur) == len(sellers) == n:
        raise ValueError(f"{len(savings_ueur)} savings and {len(sellers)} roles for {n} households")
    fig = _figure(max(6.0, 0.3 * n + 2), 5.0)
    ax = fig.add_subplot()
    eur = np.asarray(savings_ueur, dtype=np.float64) / 1e6
    x = np.arange(n, dtype=np.float64)
    many = n > 40
    # A bar this short would not show: it gets a mark on the axis too.
    tiny = 0.01 * float(np.abs(eur).max()) if n else 0.0
    for selling, (colour, hatch, label) in ((True, SELLER_STYLE), (False, BUYER_STYLE)):
        mine = np.array([bool(s) == selling for s in sellers], dtype=bool)
        if not mine.any():
            continue
        bars = ax.bar(x[mine], eur[mine], color=colour, hatch=hatch, edgecolor="white", label=label)
        zero = mine & (np.abs(eur) <= tiny)
        if zero.any():
            # A zero (or too small to see) saving: a visible mark on the axis, in the group's
            # colour, under its labelled value.
            ax.hlines(
                np.zeros(int(zero.sum())),
                x[zero] - 0.4,
                x[zero] + 0.4,
                colors=colour,
                linewidth=4,
                zorder=3,
            )
        ax.bar_label(
            bars,
            labels=[_eur_label(v) for v in eur[mine]],
            padding=2,
            fontsize=6 if many else "small",
            rotation=90 if many else 0,
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [str(h) for h in household_ids])
    ax.set_xlabel("household")
    ax.set_ylabel("EUR")
    ax.set_title(f"Savings against grid-only supply (total {eur.sum():.2f} EUR)")
    if many:
        ax.tick_params(axis="x", labelsize="x-small", rotation=90)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    _legend_below(fig, ax, 2)
    return fig


def pv_destination_figure(series: SlotSeries, tz: str) -> Figure:
    """Where the PV energy went: the total as a stacked bar, and per slot on a local time axis."""
    parts = (
        (series.pv_self_consumed_Wh, "used on site", "#f2a900"),
        (series.charge_Wh, "into batteries", "#6a3d9a"),
        (series.local_traded_Wh, "sold locally", "#2e8b57"),
        (series.grid_export_Wh, "exported to the grid", "#8a8a8a"),
    )
    fig = _figure(11.0, 5.0)
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
        _steps(series.slots, tz),
        *[_held(values) for values, _, _ in parts],
        labels=[label for _, label, _ in parts],
        colors=[colour for _, _, colour in parts],
        step="post",
    )
    _local_time_axis(slot_ax, series.slots, tz)
    slot_ax.set_ylabel("kWh per 15-min slot")
    slot_ax.set_title("Where the PV energy went, per slot")
    slot_ax.grid(alpha=0.3)
    _legend_below(fig, slot_ax, 4)
    return fig


def write_plots(
    out: Path,
    series: SlotSeries,
    tariffs: Tariffs,
    household_ids: Sequence[int],
    savings_ueur: Sequence[int],
    sellers: Sequence[bool],
    tz: str = DEFAULT_ZONE,
    forecast: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the four PNGs (:data:`PLOTS`) into ``out``; returns file name -> path, in order.

    ``sellers[h]`` says whether ``household_ids[h]`` has PV (the savings chart tells them
    apart); the time axes are in ``tz``'s local time.
    """
    if len(household_ids) != len(savings_ueur):
        raise ValueError(f"{len(savings_ueur)} savings for {len(household_ids)} households")
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name, _ in PLOTS}
    energy_figure(series, tz).savefig(paths["energy.png"], format="png")
    prices_figure(series, tariffs, tz).savefig(paths["prices.png"], format="png")
    savings_figure(household_ids, savings_ueur, sellers).savefig(paths["savings.png"], format="png")
    pv_destination_figure(series, tz).savefig(paths["pv_destination.png"], format="png")
    from meter_sim.forecast import write_forecast_plot  # the forecasts' imports come with it

    write_forecast_plot(out, forecast, tz)
    return paths


def write_report_html(out: Path, result: RunResult) -> Path:
    """Write the run's plots and ``report.html`` (plots embedded) into ``out``; returns its path."""
    paths = write_plots(
        out,
        result.series,
        result.tariffs,
        result.household_ids,
        result.savings_ueur,
        result.prosumer,
        result.tz,
        result.report.get("forecast"),
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
            result.prosumer,
            result.tz,
            result.report.get("forecast"),
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
