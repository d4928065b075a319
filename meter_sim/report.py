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

**Money** (integer micro-euro). ``local_traded_ueur`` is what buyers paid sellers for the
fills (each fill's ``cost``, the integer the contract moved); ``fees_ueur`` what the fee
recipient received (each fill's grid ``fee``, paid by its buyer); ``grid_import_cost_ueur`` and
``grid_export_revenue_ueur`` price the grid residuals at retail and feed-in
(:mod:`ledger.market.statements`); ``community_savings_ueur`` is the sum of the households'
savings against grid-only supply.

**Gas** (integer gas units, the run's per-slot transactions only: set-up is not counted).
``gas_used = gas_readings + gas_settlement + gas_seals``: the reading commits, the settlement
batches and the seal that anchors each settled slot's digest. Per unit, each an integer
division and ``None`` when its denominator is zero: ``gas_per_household_slot = gas_used //
readings`` (one reading per household and slot: what a neighbourhood pays per household and
quarter hour, all in), ``gas_per_reading = gas_readings // readings`` and
``gas_per_settled_fill = gas_settlement // fills``.

**Resources.** ``wall_s`` is the run's wall time (a resumed run's: the resuming process's),
``disk_bytes`` the size of the run's data dir at the end (chain, database, records) and
``peak_rss_bytes`` the peak resident memory of the run's process plus that of its largest
child that has ended (the signing process), an upper bound of what the run held at once.
:mod:`meter_sim.run` adds these three after the audit. ``voisin simulate`` adds
``peak_anon_bytes``, the largest anonymous resident memory of its own process while it ran
(:mod:`meter_sim.memory`): the resident set less the pages of mapped files, such as the
embedded chain's store, which the kernel reclaims when it needs the memory.

**Per household**, ``household_figures`` lists, in the order of the run's household ids, each
household's statement totals (:func:`household_figures`): ``household``, ``prosumer``,
``import_Wh``, ``export_Wh``, ``bought_Wh``, ``sold_Wh``, ``grid_import_Wh``,
``grid_export_Wh``, ``paid_local_ueur``, ``earned_local_ueur``, ``fees_ueur``,
``grid_import_cost_ueur``, ``grid_export_revenue_ueur``, ``grid_only_cost_ueur``,
``net_cost_ueur`` and ``savings_ueur``. They are the statements the run builds
(:func:`ledger.market.data.load_statements`), so they sum exactly to the neighbourhood's
figures: ``sum(bought_Wh) == sum(sold_Wh) == local_traded_Wh``, ``sum(grid_import_Wh) ==
grid_import_Wh``, ``sum(paid_local_ueur) == sum(earned_local_ueur) == local_traded_ueur``,
``sum(fees_ueur) == fees_ueur``, ``sum(savings_ueur) == community_savings_ueur``, and so on.
(``households`` stays the number of households.)

**Time.** ``first_slot`` and ``slots`` are UTC slot numbers (``unix_seconds // 900``);
``period_local`` gives the same period for people: ``start`` (the first slot's start) and
``end`` (the last slot's end) in ISO 8601 with the local offset, and ``tz``, the scenario's
IANA zone. :func:`period_label` and :func:`duration_text` word them for the page.

**Per slot**, :func:`slot_series` gives the same terms summed over the households of each slot,
with the energy-weighted mean fill price of the slot; the plots (:mod:`meter_sim.plots`) and
:func:`report_html` are drawn from it.

**Agents.** :func:`add_agents_figures` adds ``agents`` (how many households followed each
pricing strategy, by name: ``default`` for today's default standing orders, else those of
:mod:`ledger.market.strategies`) and ``clearing_price_spread_ueur_per_kWh``: ``slots``, the
settled slots with a local trade, and over them the ``min``, ``max`` and population standard
deviation ``std`` of the slot's energy-weighted mean fill price (``None`` without a trade).

**Markets.** ``market`` names the run's market (``real-time`` or ``day-ahead``). A day-ahead
run's report also has ``day_ahead`` (:func:`meter_sim.day_ahead.day_ahead_figures`: its forward
positions, the energy cleared ahead, delivered and short, the deviations traded in real time,
and the forward gas, which ``gas_used`` includes); :func:`report_html` shows it as a table.
The deliveries are fills like the others, so every other field compares across markets.

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

from ledger.localtime import DEFAULT_ZONE, local_date, month_span, slot_iso, span_label
from ledger.market.statements import Statement, TradeLine
from meter_sim.flows import Flows
from meter_sim.scenario import SLOTS_PER_DAY

__all__ = [
    "HOUSEHOLD_FIELDS",
    "MONTHLY_TERMS",
    "PILOT_LOCAL_SHARE_OF_SURPLUS",
    "PILOT_SELF_SUFFICIENCY",
    "RUN_RESOURCES",
    "EnergyTotals",
    "Gas",
    "Money",
    "SlotSeries",
    "add_agents_figures",
    "add_pilot_figures",
    "audit",
    "build_report",
    "duration_text",
    "energy_totals",
    "eur_exact",
    "household_figures",
    "mib",
    "monthly_figures",
    "period_label",
    "period_local",
    "pilot_comparison",
    "report_html",
    "report_title",
    "slot_series",
    "winter_month",
]

#: The fields that tell what a run cost on this machine, not what it found: two runs of the
#: same scenario and seed (or a run and its resumed twin) differ only in these.
RUN_RESOURCES = frozenset({"wall_s", "disk_bytes", "peak_rss_bytes", "peak_anon_bytes"})

#: Quartierstrom (Walenstadt, 2019-2020): community self-supply over a year.
PILOT_SELF_SUFFICIENCY = 0.33
#: Quartierstrom: share of the PV sold locally, in one winter month.
PILOT_LOCAL_SHARE_OF_SURPLUS = 0.82


@dataclass(frozen=True, slots=True)
class Gas:
    """Gas of the run's per-slot transactions: reading commits, settlement batches, the seals
    that anchor each settled slot's digest on chain, and (in the day-ahead market) the
    transactions that clear forward positions ahead of their slots and settle them."""

    readings: int
    settlement: int
    seals: int = 0
    forwards: int = 0

    @property
    def total(self) -> int:
        return self.readings + self.settlement + self.seals + self.forwards


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


#: The statement totals each entry of ``household_figures`` carries, in this order.
HOUSEHOLD_FIELDS: tuple[str, ...] = (
    "import_Wh",
    "export_Wh",
    "bought_Wh",
    "sold_Wh",
    "grid_import_Wh",
    "grid_export_Wh",
    "paid_local_ueur",
    "earned_local_ueur",
    "fees_ueur",
    "grid_import_cost_ueur",
    "grid_export_revenue_ueur",
    "grid_only_cost_ueur",
    "net_cost_ueur",
    "savings_ueur",
)


def household_figures(
    statements: Sequence[Statement], prosumer: Sequence[bool]
) -> list[dict[str, Any]]:
    """One entry per statement: its household id, whether it has PV, and its totals
    (:data:`HOUSEHOLD_FIELDS`), read from the statement as it is (nothing recomputed)."""
    if len(statements) != len(prosumer):
        raise ValueError(f"{len(prosumer)} prosumer flags for {len(statements)} statements")
    return [
        {
            "household": s.household,
            "prosumer": bool(p),
            **{name: int(getattr(s, name)) for name in HOUSEHOLD_FIELDS},
        }
        for s, p in zip(statements, prosumer, strict=True)
    ]


def period_local(first_slot: int, slots: int, tz: str) -> dict[str, str]:
    """``{"start", "end", "tz"}``: the period's first instant and its end (the last slot's
    end), ISO 8601 with the local offset of ``tz``."""
    return {
        "start": slot_iso(first_slot, tz),
        "end": slot_iso(first_slot + slots, tz),
        "tz": tz,
    }


def period_label(first_slot: int, slots: int, tz: str) -> str:
    """The run's ``slots`` from ``first_slot`` as people read them, in local time
    (:func:`ledger.localtime.span_label`)."""
    return span_label(first_slot, first_slot + slots - 1, tz)


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def duration_text(slots: int) -> str:
    """``slots`` 15-minute slots as a duration: ``15 minutes``, ``4 hours``, ``1 hour 45
    minutes``, ``1 day``, ``2 days 12 hours``."""
    if slots < 0:
        raise ValueError(f"a negative number of slots: {slots}")
    days, rest = divmod(slots * 15, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        _count(n, unit) for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n
    ]
    return " ".join(parts) or "0 minutes"


def build_report(
    flows: Flows,
    household_ids: Sequence[int],
    prosumer: Sequence[bool],
    fills: Sequence[TradeLine],
    statements: Sequence[Statement],
    money: Money,
    gas: Gas,
    readings: int,
    wall_s: float,
    *,
    tz: str = DEFAULT_ZONE,
) -> dict[str, Any]:
    """The ``report.json`` dict of a run (its fields are listed in the module docstring).

    ``prosumer[h]`` says whether the household in row ``h`` (``household_ids[h]``,
    ``statements[h]``) has PV. ``fills`` are the run's settled fills (batch fills and direct
    takes), ``readings`` the number of readings committed on chain, ``wall_s`` the run's wall
    time and ``tz`` the neighbourhood's IANA time zone (``period_local``).
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
        "prosumers": sum(1 for p in prosumer if p),
        "days": days,
        "slots": n_t,
        "first_slot": flows.first_slot,
        "period_local": period_local(flows.first_slot, n_t, tz),
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
        "local_traded_ueur": sum(f.cost_ueur for f in fills),
        "grid_import_cost_ueur": sum(s.grid_import_cost_ueur for s in statements),
        "grid_export_revenue_ueur": sum(s.grid_export_revenue_ueur for s in statements),
        "mean_clearing_price_ueur_per_kWh": price,
        "gas_used": gas.total,
        "gas_readings": gas.readings,
        "gas_settlement": gas.settlement,
        "gas_seals": gas.seals,
        "gas_per_household_slot": gas.total // readings if readings else None,
        "gas_per_reading": gas.readings // readings if readings else None,
        "gas_per_settled_fill": gas.settlement // len(fills) if fills else None,
        "audit_ok": not findings,
        "audit_findings": findings,
        "wall_s": round(wall_s, 2),
        "household_figures": household_figures(statements, prosumer),
        "monthly": monthly_figures(slot_series(flows, fills), tz),
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


#: The energy terms of each ``monthly`` entry, from the slot series of the same name.
MONTHLY_TERMS: tuple[tuple[str, str], ...] = (
    ("pv_energy_Wh", "pv_Wh"),
    ("load_energy_Wh", "load_Wh"),
    ("self_consumed_Wh", "self_consumed_Wh"),
    ("local_traded_Wh", "local_traded_Wh"),
    ("grid_import_Wh", "grid_import_Wh"),
    ("grid_export_Wh", "grid_export_Wh"),
    ("battery_charge_Wh", "charge_Wh"),
    ("battery_discharge_Wh", "discharge_Wh"),
)


def monthly_figures(series: SlotSeries, tz: str) -> list[dict[str, Any]]:
    """The run's energy terms per local calendar month of ``tz`` (in order; the first and
    last may be part of a month): ``month`` (``YYYY-MM``), ``first_slot`` and ``slots`` (the
    run's slots in it), ``whole_month`` (whether the run covers all of it), the terms of
    :data:`MONTHLY_TERMS` (integer Wh, summing over the months to the run's totals), and
    ``self_sufficiency`` and ``local_share_of_surplus`` as the run's own are defined."""
    slots = series.slots
    if len(slots) == 0:
        return []
    first, last = int(slots[0]), int(slots[-1])
    day = local_date(first, tz)
    year, month = day.year, day.month
    out: list[dict[str, Any]] = []
    while True:
        lo, hi = month_span(year, month, tz)
        if lo > last:
            break
        a, b = max(lo, first) - first, min(hi, last) - first + 1
        terms = {name: int(getattr(series, attr)[a:b].sum()) for name, attr in MONTHLY_TERMS}
        load, traded = terms["load_energy_Wh"], terms["local_traded_Wh"]
        out.append(
            {
                "month": f"{year:04d}-{month:02d}",
                "first_slot": first + a,
                "slots": b - a,
                "whole_month": lo >= first and hi <= last,
                **terms,
                "self_sufficiency": _ratio(load - terms["grid_import_Wh"], load),
                "local_share_of_surplus": _ratio(traded, traded + terms["grid_export_Wh"]),
            }
        )
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


#: The winter months, one of which the pilot's 82 % was measured in.
WINTER_MONTHS = ("12", "01", "02")


def winter_month(monthly: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The run's month to set beside the pilot's winter month: its darkest December, January
    or February (least PV; whole months first), or ``None`` if the run has none with PV."""
    winter = [m for m in monthly if m["month"][5:] in WINTER_MONTHS and m["pv_energy_Wh"] > 0]
    if not winter:
        return None
    return min(winter, key=lambda m: (not m["whole_month"], m["pv_energy_Wh"]))


def add_agents_figures(
    report: dict[str, Any], agents: Mapping[str, int], fills: Sequence[TradeLine]
) -> None:
    """Add ``agents`` and ``clearing_price_spread_ueur_per_kWh`` (module docstring)."""
    energy: dict[int, int] = {}
    value: dict[int, int] = {}
    for f in fills:
        energy[f.slot] = energy.get(f.slot, 0) + f.energy_Wh
        value[f.slot] = value.get(f.slot, 0) + f.energy_Wh * f.price_ueur_per_kWh
    prices = [value[slot] // energy[slot] for slot in sorted(energy) if energy[slot]]
    report["agents"] = dict(sorted(agents.items()))
    report["clearing_price_spread_ueur_per_kWh"] = {
        "slots": len(prices),
        "min": min(prices) if prices else None,
        "max": max(prices) if prices else None,
        "std": round(float(np.std(prices)), 1) if prices else None,
    }


def add_pilot_figures(report: dict[str, Any]) -> None:
    """Add the Quartierstrom pilot's published figures to a ``quartierstrom`` run's report.

    Does nothing for any other scenario (``report["scenario"]``).
    """
    if report.get("scenario") == "quartierstrom":
        report["pilot_self_sufficiency"] = PILOT_SELF_SUFFICIENCY
        report["pilot_local_share_of_surplus"] = PILOT_LOCAL_SHARE_OF_SURPLUS
        month = winter_month(report.get("monthly", []))
        report["winter_month"] = None if month is None else month["month"]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _duration(report: Mapping[str, Any]) -> str:
    """The run's duration, from its slots (or, lacking them, its days)."""
    if isinstance(report.get("slots"), int):
        return duration_text(report["slots"])
    return f"{report.get('days')} day(s)"


def pilot_comparison(report: Mapping[str, Any]) -> str | None:
    """One line comparing the run with the Quartierstrom pilot (``None`` without the figures)."""
    if "pilot_self_sufficiency" not in report:
        return None
    winter = next(
        (m for m in report.get("monthly", []) if m["month"] == report.get("winter_month")), None
    )
    if winter is None:
        share = f"local share of the surplus {_pct(report['local_share_of_surplus'])} here"
    else:
        part = "" if winter["whole_month"] else ", part of it"
        share = (
            f"local share of the surplus {_pct(winter['local_share_of_surplus'])} here in "
            f"{winter['month']} (the run's darkest winter month{part})"
        )
    return (
        f"Quartierstrom pilot: self-sufficiency {_pct(report['self_sufficiency'])} here vs "
        f"{_pct(report['pilot_self_sufficiency'])} community self-supply over a year; {share} "
        f"vs {_pct(report['pilot_local_share_of_surplus'])} of PV sold locally in one winter "
        f"month. This run covers its simulated {_duration(report)} with modelled load and "
        "weather, not the pilot's measured year and month."
    )


#: The columns of the monthly table: field, header, kind.
_MONTHLY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("pv_energy_Wh", "PV", "kWh"),
    ("load_energy_Wh", "consumption", "kWh"),
    ("self_consumed_Wh", "self-consumed", "kWh"),
    ("local_traded_Wh", "traded locally", "kWh"),
    ("grid_import_Wh", "grid import", "kWh"),
    ("grid_export_Wh", "grid export", "kWh"),
    ("self_sufficiency", "self-sufficiency", "%"),
    ("local_share_of_surplus", "local share of the surplus", "%"),
)


def _monthly_table(report: Mapping[str, Any]) -> str:
    """The month-by-month table (local calendar months), with the pilot's figures beside a
    ``quartierstrom`` run's; empty for a run within one month."""
    monthly = report.get("monthly", [])
    if len(monthly) < 2:
        return ""
    e = html.escape
    tz = report.get("period_local", {}).get("tz", DEFAULT_ZONE)
    pilot = "pilot_self_sufficiency" in report
    head = "".join(f'<th class="num">{e(label)}</th>' for _, label, _ in _MONTHLY_COLUMNS)

    def cell(value: Any, kind: str) -> str:
        shown = _pct(value) if kind == "%" else f"{value / 1000:,.1f}"
        return f'<td class="num">{e(shown)}</td>'

    rows = []
    for m in monthly:
        label = m["month"] + ("" if m["whole_month"] else f" ({duration_text(m['slots'])})")
        mark = " *" if pilot and m["month"] == report.get("winter_month") else ""
        rows.append(
            f"<tr><th>{e(label + mark)}</th>"
            + "".join(cell(m[name], kind) for name, _, kind in _MONTHLY_COLUMNS)
            + "</tr>"
        )
    whole = "".join(cell(report[name], kind) for name, _, kind in _MONTHLY_COLUMNS)
    rows.append(f'<tr class="total"><th>run</th>{whole}</tr>')
    if pilot:
        blanks = '<td class="num"></td>' * (len(_MONTHLY_COLUMNS) - 2)
        rows.append(
            f"<tr><th>Quartierstrom pilot</th>{blanks}"
            f'<td class="num">{e(_pct(report["pilot_self_sufficiency"]))} (year)</td>'
            f'<td class="num">{e(_pct(report["pilot_local_share_of_surplus"]))} '
            "(one winter month)</td></tr>"
        )
    note = (
        " * marks the run's darkest winter month, set beside the pilot's winter month."
        if pilot and report.get("winter_month")
        else ""
    )
    body = "\n".join(rows)
    return f"""<h2>Month by month</h2>
<p>Local calendar months ({e(tz)}); energy in kWh. A month the run covers only in part
shows how much of it.{e(note)}</p>
<div class="scroll">
<table class="households">
<tr><th>month</th>{head}</tr>
{body}
</table>
</div>"""


#: The report.json fields shown in the HTML summary, with their labels and units, by section.
_SUMMARY: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Run",
        (
            ("scenario", "scenario", ""),
            ("mechanism", "clearing mechanism", ""),
            ("market", "market", ""),
            ("households", "households", ""),
            ("prosumers", "of which with PV", ""),
            ("period_local", "period (local time)", "period"),
            ("slots", "duration", "duration"),
            ("readings", "signed readings", ""),
            ("fills", "fills (local trades)", ""),
        ),
    ),
    (
        "Energy",
        (
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
        ),
    ),
    (
        "Money",
        (
            ("local_traded_ueur", "money traded locally (paid by buyers to sellers)", "EUR"),
            ("fees_ueur", "grid fees on local trades (paid by buyers)", "EUR"),
            ("mean_clearing_price_ueur_per_kWh", "mean clearing price", "EUR/kWh"),
            ("grid_import_cost_ueur", "grid import cost (retail tariff)", "EUR"),
            ("grid_export_revenue_ueur", "grid export revenue (feed-in tariff)", "EUR"),
            ("community_savings_ueur", "community savings against grid-only supply", "EUR"),
        ),
    ),
    (
        "Ledger",
        (
            ("gas_used", "gas used", ""),
            ("gas_per_household_slot", "gas per household-slot (all of it)", ""),
            ("gas_per_reading", "reading-commit gas per reading", ""),
            ("gas_per_settled_fill", "settlement gas per settled fill", ""),
            ("audit_ok", "audit", ""),
            ("wall_s", "wall time", "s"),
            ("disk_bytes", "data dir on disk (chain and database)", "bytes"),
            ("peak_rss_bytes", "peak memory (resident, with the signing process)", "bytes"),
        ),
    ),
)


def mib(n: int) -> str:
    """Bytes in MiB, one decimal: ``12.3 MiB``."""
    return f"{n / 2**20:,.1f} MiB"


def eur_exact(ueur: int) -> str:
    """Micro-euro as euros with all six decimals, exactly (no float): ``-0.003000``."""
    sign = "-" if ueur < 0 else ""
    whole, frac = divmod(abs(int(ueur)), 1_000_000)
    return f"{sign}{whole:,}.{frac:06d}"


def _eur(ueur: int) -> str:
    """Micro-euro as euros with two decimals; an amount under a cent (but not zero) exactly,
    so that it never reads as nothing."""
    if ueur != 0 and abs(ueur) < 10_000:
        return f"{eur_exact(ueur)} EUR"
    return f"{ueur / 1e6:,.2f} EUR"


def _shown(value: Any, unit: str, report: Mapping[str, Any]) -> str:
    if unit == "period":
        return period_label(report["first_slot"], report["slots"], value["tz"])
    if unit == "duration":
        return f"{duration_text(value)} ({value} slots of 15 min)"
    if value is None:
        return "n/a"
    if unit == "kWh":
        return f"{value / 1000:,.1f} kWh"
    if unit == "%":
        return _pct(value)
    if unit == "EUR":
        return _eur(value)
    if unit == "EUR/kWh":
        return f"{value / 1e6:.4f} EUR/kWh"
    if unit == "s":
        return f"{value} s"
    if unit == "bytes":
        return mib(value)
    if isinstance(value, bool):
        return "ok" if value else "FAILED"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _kwh_exact(wh: int) -> str:
    """Wh as kWh with three decimals: exact."""
    sign = "-" if wh < 0 else ""
    whole, frac = divmod(abs(int(wh)), 1000)
    return f"{sign}{whole:,}.{frac:03d}"


#: The columns of the per-household table: field, header, kind (Wh or micro-euro).
_HOUSEHOLD_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("import_Wh", "imported", "kWh"),
    ("export_Wh", "exported", "kWh"),
    ("bought_Wh", "bought locally", "kWh"),
    ("sold_Wh", "sold locally", "kWh"),
    ("paid_local_ueur", "paid to neighbours", "EUR"),
    ("fees_ueur", "grid fees", "EUR"),
    ("earned_local_ueur", "earned from neighbours", "EUR"),
    ("grid_import_cost_ueur", "grid import cost", "EUR"),
    ("grid_export_revenue_ueur", "grid export revenue", "EUR"),
    ("net_cost_ueur", "net cost", "EUR"),
    ("savings_ueur", "savings", "EUR"),
)


def _household_table(figures: Sequence[Mapping[str, Any]]) -> str:
    """The per-household table with a totals row; exact values (kWh to the Wh, EUR to the
    micro-euro), so that the rows add up to the totals as shown."""
    if not figures:
        return ""
    e = html.escape

    def cell(value: int, kind: str) -> str:
        return f'<td class="num">{e(_kwh_exact(value) if kind == "kWh" else eur_exact(value))}</td>'

    head = "".join(
        f'<th class="num">{e(label)}<br><small>{e(kind)}</small></th>'
        for _, label, kind in _HOUSEHOLD_COLUMNS
    )
    rows = "\n".join(
        f"<tr><th>{e(str(h['household']))}</th><td>{'with PV' if h['prosumer'] else 'no PV'}</td>"
        + "".join(cell(h[name], kind) for name, _, kind in _HOUSEHOLD_COLUMNS)
        + "</tr>"
        for h in figures
    )
    totals = "".join(
        cell(sum(h[name] for h in figures), kind) for name, _, kind in _HOUSEHOLD_COLUMNS
    )
    return f"""<h2>Per household</h2>
<p>Each household's statement over the period. Amounts are exact: kWh to the watt-hour and
euros to the micro-euro, so each column adds up to its total.</p>
<div class="scroll">
<table class="households">
<tr><th>household</th><th>PV</th>{head}</tr>
{rows}
<tr class="total"><th>total</th><td></td>{totals}</tr>
</table>
</div>"""


#: The ``day_ahead`` fields shown in the HTML page, with their labels and units.
_DAY_AHEAD: tuple[tuple[str, str, str], ...] = (
    ("positions", "forward positions cleared ahead", ""),
    ("cleared_Wh", "energy cleared ahead", "kWh"),
    ("delivered_Wh", "delivered (as far as metered energy allowed)", "kWh"),
    ("shortfall_Wh", "shortfall (not delivered)", "kWh"),
    ("delivered_share", "delivered share of the positions", "%"),
    ("real_time_Wh", "deviations traded in the real-time market", "kWh"),
    ("reserved_ueur", "buyers' funds reserved at clearing", "EUR"),
    ("refund_ueur", "reservations given back at settlement", "EUR"),
    ("gas_clearing", "gas of clearing the positions ahead", ""),
    ("gas_settling", "gas of settling the positions", ""),
    ("gas_per_position", "gas per position (clearing and settling)", ""),
)


def _day_ahead_table(report: Mapping[str, Any]) -> str:
    """The day-ahead market's figures (``report["day_ahead"]``), if the run had one."""
    figures = report.get("day_ahead")
    if not isinstance(figures, Mapping):
        return ""
    e = html.escape
    rows = "\n".join(
        f"<tr><th>{e(label)}</th><td>{e(_shown(figures[key], unit, report))}</td></tr>"
        for key, label, unit in _DAY_AHEAD
        if key in figures
    )
    return f"""<h2>Day-ahead market</h2>
<p>Each day's slots were cleared ahead from the households' forecasts into forward positions;
each position was then delivered as far as the metered energy allowed, and the deviations
were traded in the real-time market, the rest with the grid.</p>
<table>
{rows}
</table>"""


def report_title(report: Mapping[str, Any]) -> str:
    """``Voisin simulation report: <scenario>, <local period>`` (the period when known)."""
    title = f"Voisin simulation report: {report.get('scenario', 'run')}"
    local = report.get("period_local")
    if isinstance(local, Mapping) and "first_slot" in report and "slots" in report:
        title += f", {period_label(report['first_slot'], report['slots'], local['tz'])}"
    return title


def report_html(report: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """A self-contained HTML page: the report's summary, the per-household table, then each
    PNG embedded as a data URI.

    ``images`` maps a caption to PNG bytes, in display order. Every interpolated text is escaped.
    """
    e = html.escape
    sections = []
    for heading, fields in _SUMMARY:
        rows = "\n".join(
            f"<tr><th>{e(label)}</th><td>{e(_shown(report[key], unit, report))}</td></tr>"
            for key, label, unit in fields
            if key in report
        )
        if rows:
            sections.append(f"<h2>{e(heading)}</h2>\n<table>\n{rows}\n</table>")
    day_ahead = _day_ahead_table(report)
    summary = "\n".join([*sections, day_ahead] if day_ahead else sections)
    notes = [f"<li>{e(str(f))}</li>" for f in report.get("audit_findings", [])]
    findings = f"<h2>Audit findings</h2><ul>{''.join(notes)}</ul>" if notes else ""
    comparison = pilot_comparison(report)
    pilot = f'<p class="pilot">{e(comparison)}</p>' if comparison else ""
    households = _household_table(report.get("household_figures", []))
    monthly = _monthly_table(report)
    figures = "\n".join(
        f'<figure><img alt="{e(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{e(caption)}</figcaption></figure>'
        for caption, png in images.items()
    )
    title = report_title(report)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 0.2rem 1rem 0.2rem 0; border-bottom: 1px solid #ddd; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.scroll {{ overflow-x: auto; }}
.households th, .households td {{ padding-right: 0.6rem; white-space: nowrap; }}
.total th, .total td {{ font-weight: bold; border-top: 2px solid #888; }}
img {{ max-width: 100%; }}
.pilot {{ background: #f4f4f4; padding: 0.6rem; }}
</style>
</head>
<body>
<h1>{e(title)}</h1>
{summary}
{findings}
{pilot}
{monthly}
{households}
{figures}
</body>
</html>
"""
