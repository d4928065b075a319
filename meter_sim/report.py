"""The report of a simulation run: pure functions over the flows, the fills and the statements.

:func:`build_report` turns what a run produced into the ``report.json`` dict; :func:`audit`
is the minimal conservation check that feeds its ``audit_ok`` and ``audit_findings``.

**Energy terms** (integer Wh, summed over every household and slot of the run). Per household
and slot the simulator's flows satisfy exactly ``pv + import + discharge = load + export +
charge`` (:mod:`meter_sim.flows`); a battery charges only from PV surplus and discharges only
into the household's own load (:mod:`meter_sim.battery`). The metered import of a household is
covered first by its local purchases (fills), the rest comes from the grid; the metered export
goes first to local sales, the rest to the grid (:mod:`ledger.market.statements`). Then:

- ``local_traded_Wh``: the energy of every settled fill (sold by one household, bought by
  another; neither sold nor bought energy can exceed what was metered);
- ``grid_import_Wh = import - local_traded``, ``grid_export_Wh = export - local_traded``;
- ``self_consumed_Wh = load - import``: the load covered on site, by the household's own PV
  directly or through its battery;
- ``battery_charge_Wh`` and ``battery_discharge_Wh``: the PV energy drawn into the batteries and
  the energy they gave back to their households' loads (round-trip losses and any change in the
  stored energy are the difference).

so that, exactly,

- ``load = self_consumed + local_traded + grid_import``, and
- ``pv = self_consumed + local_traded + grid_export + battery_charge - battery_discharge``
  (without batteries the two battery terms are zero).

``self_sufficiency = (load - grid_import) / load`` is the share of the neighbourhood's load met
inside it; ``local_share_of_surplus = local_traded / (local_traded + grid_export)`` is the share
of the exported PV surplus sold to neighbours. Both are floats rounded to 4 decimals (``None``
when the denominator is zero); every Wh, micro-euro and gas figure is an integer.

**Per slot**, :func:`slot_series` gives the same terms summed over the households of each slot,
with the energy-weighted mean fill price of the slot; the plots (:mod:`meter_sim.plots`) and
:func:`report_html` are drawn from it.

**The Quartierstrom comparison.** For the ``quartierstrom`` scenario,
:func:`add_pilot_figures` adds ``pilot_self_sufficiency`` (0.33) and
``pilot_local_share_of_surplus`` (0.82), the figures the pilot published, and
:func:`pilot_comparison` words the comparison. Source: the final report of the Quartierstrom
project, the peer-to-peer local electricity market pilot in Walenstadt, Switzerland (37
households, 27 with PV), run 2019-2020 (ETH Zurich, University of St. Gallen, Wasser- und
Elektrizitaetswerk Walenstadt, with the Swiss Federal Office of Energy). The pilot reported
about 33 % community self-supply over a year and about 82 % of the PV sold locally in one
winter month. They are not like for like with a run: a run covers only its simulated period,
with modelled load and PV (:mod:`meter_sim.load`, :mod:`meter_sim.pv`) and modelled weather,
not the pilot's measured households and weather.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ledger.market.statements import Statement, TradeLine
from meter_sim.flows import Flows
from meter_sim.scenario import SLOTS_PER_DAY

__all__ = [
    "PILOT_LOCAL_SHARE_OF_SURPLUS",
    "PILOT_SELF_SUFFICIENCY",
    "EnergyTotals",
    "Gas",
    "Money",
    "SlotSeries",
    "add_pilot_figures",
    "audit",
    "build_report",
    "energy_totals",
    "pilot_comparison",
    "report_html",
    "slot_series",
]

#: Quartierstrom (Walenstadt, 2019-2020): community self-supply over a year.
PILOT_SELF_SUFFICIENCY = 0.33
#: Quartierstrom: share of the PV sold locally, in one winter month.
PILOT_LOCAL_SHARE_OF_SURPLUS = 0.82


@dataclass(frozen=True, slots=True)
class Gas:
    """Gas of the run's per-slot transactions: reading commits, settlement batches, and the
    seals that anchor each settled slot's digest on chain."""

    readings: int
    settlement: int
    seals: int = 0

    @property
    def total(self) -> int:
        return self.readings + self.settlement + self.seals


@dataclass(frozen=True, slots=True)
class Money:
    """The run's money on chain (micro-euro): what was minted, where it ended up."""

    top_ups_ueur: int
    balances_ueur: int
    """Sum of the households' token balances at the end."""
    fees_ueur: int
    """What the fee recipient received during the run."""
    supply_growth_ueur: int
    """How much the token's total supply grew during the run."""


@dataclass(frozen=True, slots=True)
class EnergyTotals:
    """Neighbourhood totals in Wh (see the module docstring for the definitions)."""

    load: int
    pv: int
    imported: int
    exported: int
    charge: int
    discharge: int
    local_traded: int

    @property
    def self_consumed(self) -> int:
        return self.load - self.imported

    @property
    def grid_import(self) -> int:
        return self.imported - self.local_traded

    @property
    def grid_export(self) -> int:
        return self.exported - self.local_traded


def energy_totals(flows: Flows, fills: Sequence[TradeLine]) -> EnergyTotals:
    """The neighbourhood's totals over the run from its flows and its settled fills."""
    return EnergyTotals(
        load=int(flows.load_Wh.sum()),
        pv=int(flows.pv_Wh.sum()),
        imported=int(flows.import_Wh.sum()),
        exported=int(flows.export_Wh.sum()),
        charge=int(flows.charge_Wh.sum()),
        discharge=int(flows.discharge_Wh.sum()),
        local_traded=sum(f.energy_Wh for f in fills),
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def audit(
    flows: Flows,
    household_ids: Sequence[int],
    fills: Sequence[TradeLine],
    statements: Sequence[Statement],
    money: Money,
    readings: int,
) -> list[str]:
    """Minimal conservation checks of a run; returns one finding per failure (empty: all hold).

    ``household_ids[h]`` is the ledger id of the household in row ``h`` of ``flows`` and
    ``statements[h]`` its statement over the run. Checks: the flows balance in every household
    and slot; every (meter, slot) has one committed reading; energy sold == bought == the fills'
    energy; each statement's metered import and export equal the meter's flows, and local plus
    grid equals metered in every slot; money: balances + fees == top-ups == supply growth.
    """
    findings: list[str] = []
    n_h, n_t = flows.shape
    bad = int(np.count_nonzero(flows.balance_error_Wh()))
    if bad:
        findings.append(f"energy: the flows do not balance in {bad} household-slots")
    if readings != n_h * n_t:
        findings.append(f"readings: {readings} committed, expected {n_h * n_t} ({n_h} x {n_t})")
    traded = sum(f.energy_Wh for f in fills)
    sold = sum(s.sold_Wh for s in statements)
    bought = sum(s.bought_Wh for s in statements)
    if not sold == bought == traded:
        findings.append(
            f"energy: sold {sold} Wh, bought {bought} Wh, fills carry {traded} Wh (must be equal)"
        )
    if len(statements) != n_h or len(household_ids) != n_h:
        findings.append(f"statements: {len(statements)} for {n_h} households")
    for h, (hid, s) in enumerate(zip(household_ids, statements, strict=False)):
        metered_import = int(flows.import_Wh[h].sum())
        metered_export = int(flows.export_Wh[h].sum())
        if s.household != hid:
            findings.append(f"household {hid}: statement is for household {s.household}")
        if (s.import_Wh, s.export_Wh) != (metered_import, metered_export):
            findings.append(
                f"household {hid}: statement shows import {s.import_Wh} Wh, export "
                f"{s.export_Wh} Wh; the meter measured {metered_import} Wh, {metered_export} Wh"
            )
        if len(s.lines) != n_t:
            findings.append(f"household {hid}: {len(s.lines)} metered slots, expected {n_t}")
        for line in s.lines:
            if (
                line.bought_Wh + line.grid_import_Wh != line.import_Wh
                or line.sold_Wh + line.grid_export_Wh != line.export_Wh
            ):
                findings.append(f"household {hid}, slot {line.slot}: local + grid != metered")
    if money.balances_ueur + money.fees_ueur != money.top_ups_ueur:
        findings.append(
            f"money: balances {money.balances_ueur} + fees {money.fees_ueur} != top-ups "
            f"{money.top_ups_ueur} ueur"
        )
    if money.supply_growth_ueur != money.top_ups_ueur:
        findings.append(
            f"money: total supply grew by {money.supply_growth_ueur} ueur, top-ups were "
            f"{money.top_ups_ueur} ueur"
        )
    return findings


def build_report(
    flows: Flows,
    household_ids: Sequence[int],
    prosumers: int,
    fills: Sequence[TradeLine],
    statements: Sequence[Statement],
    money: Money,
    gas: Gas,
    readings: int,
    wall_s: float,
) -> dict[str, Any]:
    """The ``report.json`` dict of a run (its fields are listed in the module docstring).

    ``fills`` are the run's settled fills (batch fills and direct takes), ``readings`` the
    number of readings committed on chain, ``wall_s`` the run's wall time.
    """
    n_h, n_t = flows.shape
    e = energy_totals(flows, fills)
    findings = audit(flows, household_ids, fills, statements, money, readings)
    days: int | float = n_t // SLOTS_PER_DAY if n_t % SLOTS_PER_DAY == 0 else n_t / SLOTS_PER_DAY
    price: int | None = None
    if e.local_traded:
        price = sum(f.energy_Wh * f.price_ueur_per_kWh for f in fills) // e.local_traded
    return {
        "households": n_h,
        "prosumers": prosumers,
        "days": days,
        "slots": n_t,
        "first_slot": flows.first_slot,
        "readings": readings,
        "fills": len(fills),
        "pv_energy_Wh": e.pv,
        "load_energy_Wh": e.load,
        "self_consumed_Wh": e.self_consumed,
        "local_traded_Wh": e.local_traded,
        "grid_import_Wh": e.grid_import,
        "grid_export_Wh": e.grid_export,
        "battery_charge_Wh": e.charge,
        "battery_discharge_Wh": e.discharge,
        "self_sufficiency": _ratio(e.load - e.grid_import, e.load),
        "local_share_of_surplus": _ratio(e.local_traded, e.local_traded + e.grid_export),
        "community_savings_ueur": sum(s.savings_ueur for s in statements),
        "fees_ueur": money.fees_ueur,
        "mean_clearing_price_ueur_per_kWh": price,
        "gas_used": gas.total,
        "gas_readings": gas.readings,
        "gas_settlement": gas.settlement,
        "gas_seals": gas.seals,
        "gas_per_fill": gas.settlement // len(fills) if fills else None,
        "audit_ok": not findings,
        "audit_findings": findings,
        "wall_s": round(wall_s, 2),
    }


@dataclass(frozen=True)
class SlotSeries:
    """The neighbourhood's energy terms per slot (int64 Wh arrays, one entry per slot).

    The terms are those of the module docstring, summed over the households of each slot, so
    ``load = self_consumed + local_traded + grid_import`` and ``pv = self_consumed +
    local_traded + grid_export + charge - discharge`` hold in every slot.
    ``price_ueur_per_kWh`` is the energy-weighted mean price of the slot's fills (NaN where
    the slot did not trade).
    """

    slots: NDArray[np.int64]
    pv_Wh: NDArray[np.int64]
    load_Wh: NDArray[np.int64]
    self_consumed_Wh: NDArray[np.int64]
    local_traded_Wh: NDArray[np.int64]
    grid_import_Wh: NDArray[np.int64]
    grid_export_Wh: NDArray[np.int64]
    charge_Wh: NDArray[np.int64]
    discharge_Wh: NDArray[np.int64]
    price_ueur_per_kWh: NDArray[np.float64]

    @property
    def pv_self_consumed_Wh(self) -> NDArray[np.int64]:
        """PV used on site directly (not through a battery): ``self_consumed - discharge``."""
        out: NDArray[np.int64] = self.self_consumed_Wh - self.discharge_Wh
        return out


def slot_series(flows: Flows, fills: Sequence[TradeLine]) -> SlotSeries:
    """The run's per-slot neighbourhood series from its flows and its settled fills."""
    n_t = flows.shape[1]
    traded = np.zeros(n_t, dtype=np.int64)
    value = np.zeros(n_t, dtype=np.float64)
    for f in fills:
        t = f.slot - flows.first_slot
        if not 0 <= t < n_t:
            raise ValueError(f"fill of slot {f.slot} is outside the run's slots")
        traded[t] += f.energy_Wh
        value[t] += f.energy_Wh * f.price_ueur_per_kWh
    price = np.full(n_t, np.nan)
    np.divide(value, traded, out=price, where=traded > 0)
    load = flows.load_Wh.sum(axis=0)
    imported = flows.import_Wh.sum(axis=0)
    exported = flows.export_Wh.sum(axis=0)
    return SlotSeries(
        slots=flows.slots,
        pv_Wh=flows.pv_Wh.sum(axis=0),
        load_Wh=load,
        self_consumed_Wh=load - imported,
        local_traded_Wh=traded,
        grid_import_Wh=imported - traded,
        grid_export_Wh=exported - traded,
        charge_Wh=flows.charge_Wh.sum(axis=0),
        discharge_Wh=flows.discharge_Wh.sum(axis=0),
        price_ueur_per_kWh=price,
    )


def add_pilot_figures(report: dict[str, Any]) -> None:
    """Add the Quartierstrom pilot's published figures to a ``quartierstrom`` run's report.

    Does nothing for any other scenario (``report["scenario"]``).
    """
    if report.get("scenario") == "quartierstrom":
        report["pilot_self_sufficiency"] = PILOT_SELF_SUFFICIENCY
        report["pilot_local_share_of_surplus"] = PILOT_LOCAL_SHARE_OF_SURPLUS


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def pilot_comparison(report: Mapping[str, Any]) -> str | None:
    """One line comparing the run with the Quartierstrom pilot (``None`` without the figures)."""
    if "pilot_self_sufficiency" not in report:
        return None
    return (
        f"Quartierstrom pilot: self-sufficiency {_pct(report['self_sufficiency'])} here vs "
        f"{_pct(report['pilot_self_sufficiency'])} community self-supply over a year; local "
        f"share of the surplus {_pct(report['local_share_of_surplus'])} here vs "
        f"{_pct(report['pilot_local_share_of_surplus'])} of PV sold locally in one winter month. "
        f"This run covers only its simulated {report.get('days')} day(s) with modelled load and "
        "weather, not the pilot's measured year and month."
    )


#: The report.json fields shown in the HTML summary, with their labels and units.
_SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("scenario", "scenario", ""),
    ("mechanism", "clearing mechanism", ""),
    ("households", "households", ""),
    ("prosumers", "of which with PV", ""),
    ("days", "days", ""),
    ("slots", "slots (15 min)", ""),
    ("readings", "signed readings", ""),
    ("fills", "fills", ""),
    ("pv_energy_Wh", "PV production", "kWh"),
    ("load_energy_Wh", "consumption", "kWh"),
    ("self_consumed_Wh", "self-consumed", "kWh"),
    ("local_traded_Wh", "traded locally", "kWh"),
    ("grid_import_Wh", "grid import", "kWh"),
    ("grid_export_Wh", "grid export", "kWh"),
    ("battery_charge_Wh", "battery charge", "kWh"),
    ("battery_discharge_Wh", "battery discharge", "kWh"),
    ("self_sufficiency", "self-sufficiency", "%"),
    ("local_share_of_surplus", "local share of the surplus", "%"),
    ("community_savings_ueur", "community savings", "EUR"),
    ("mean_clearing_price_ueur_per_kWh", "mean clearing price", "EUR/kWh"),
    ("gas_used", "gas used", ""),
    ("gas_per_fill", "settlement gas per fill", ""),
    ("audit_ok", "audit", ""),
    ("wall_s", "wall time", "s"),
)


def _shown(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "kWh":
        return f"{value / 1000:,.1f} kWh"
    if unit == "%":
        return _pct(value)
    if unit == "EUR":
        return f"{value / 1e6:,.2f} EUR"
    if unit == "EUR/kWh":
        return f"{value / 1e6:.4f} EUR/kWh"
    if unit == "s":
        return f"{value} s"
    if isinstance(value, bool):
        return "ok" if value else "FAILED"
    return str(value)


def report_html(report: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """A self-contained HTML page: the report's summary, then each PNG embedded as a data URI.

    ``images`` maps a caption to PNG bytes, in display order. Every interpolated text is escaped.
    """
    e = html.escape
    rows = "\n".join(
        f"<tr><th>{e(label)}</th><td>{e(_shown(report[key], unit))}</td></tr>"
        for key, label, unit in _SUMMARY
        if key in report
    )
    notes = [f"<li>{e(str(f))}</li>" for f in report.get("audit_findings", [])]
    findings = f"<h2>Audit findings</h2><ul>{''.join(notes)}</ul>" if notes else ""
    comparison = pilot_comparison(report)
    pilot = f'<p class="pilot">{e(comparison)}</p>' if comparison else ""
    figures = "\n".join(
        f'<figure><img alt="{e(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{e(caption)}</figcaption></figure>'
        for caption, png in images.items()
    )
    title = f"Voisin simulation report: {report.get('scenario', 'run')}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 0.2rem 1rem 0.2rem 0; border-bottom: 1px solid #ddd; }}
img {{ max-width: 100%; }}
.pilot {{ background: #f4f4f4; padding: 0.6rem; }}
</style>
</head>
<body>
<h1>{e(title)}</h1>
<table>
{rows}
</table>
{findings}
{pilot}
{figures}
</body>
</html>
"""
