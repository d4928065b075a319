"""A city of neighbourhoods: several markets on one chain, and the city's report across them.

Each neighbourhood is a market of its own: its own households, its own contract deployment on
the shared chain (so a trade never crosses neighbourhoods: an order, a reading or a fill of one
contract means nothing to another), its own mirror database, its own settlement and audit.
``voisin simulate --neighbourhoods K`` runs them one after the other on one chain and writes
each one's report in its own folder; :func:`city_report` then sums them into the city's.

The neighbourhoods differ by seed: :func:`city_scenarios` draws each one's share of PV
households and the share of those with a battery, and each has its own households and keys
(the scenario's name enters every key's derivation, :func:`meter_sim.scenario.derive_key`);
:func:`city_networks` draws each one's feeder among the Kerber networks that fit it.

**The city's report** has the fields of a neighbourhood's report, as the city's totals:

- counts, energy, money, gas and disk are summed over the neighbourhoods;
- ``self_sufficiency``, ``local_share_of_surplus`` and the gas ratios are computed again from
  those sums, as for one neighbourhood; ``mean_clearing_price_ueur_per_kWh`` is the mean of
  the neighbourhoods' prices weighted by the energy each traded locally;
- ``monthly`` sums each month's terms and computes its ratios again; ``household_figures``
  lists every household of the city, each with its ``neighbourhood``; ``agents`` sums the
  strategies' counts; ``clearing_price_spread_ueur_per_kWh`` gives the lowest and highest
  price of any neighbourhood (its ``std`` is null: a spread across markets that never trade
  with each other is not one market's);
- ``audit_ok`` holds when every neighbourhood's audit does, and ``audit_findings`` lists each
  finding prefixed with its neighbourhood's name;
- ``contract`` and ``forecast`` are null: each neighbourhood has its own (in its entry).

``neighbourhoods`` lists each neighbourhood's own report, with its ``name``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ledger.audit.feeder import HOUSE_CONNECTIONS, NETWORKS
from meter_sim.report import MONTHLY_TERMS
from meter_sim.scenario import Scenario, default_scenario

__all__ = [
    "BATTERY_SHARE_RANGE",
    "PROSUMER_SHARE_RANGE",
    "city_networks",
    "city_report",
    "city_scenarios",
    "neighbourhood_name",
    "scenario_summary",
]

#: The range each neighbourhood's share of PV households is drawn from (uniform).
PROSUMER_SHARE_RANGE = (0.2, 0.6)
#: The range each neighbourhood's share of PV households with a battery is drawn from.
BATTERY_SHARE_RANGE = (0.0, 0.5)

#: Fields summed over the neighbourhoods.
_SUMMED = (
    "households", "prosumers", "readings", "fills", "pv_energy_Wh", "load_energy_Wh",
    "self_consumed_Wh", "local_traded_Wh", "grid_import_Wh", "grid_export_Wh",
    "battery_charge_Wh", "battery_discharge_Wh", "community_savings_ueur", "fees_ueur",
    "local_traded_ueur", "grid_import_cost_ueur", "grid_export_revenue_ueur", "gas_used",
    "gas_readings", "gas_settlement", "gas_seals", "disk_bytes",
)  # fmt: skip
#: Fields every neighbourhood has alike (the period and how it was run): the first one's.
_SHARED = (
    "days", "slots", "first_slot", "period_local", "mechanism", "market", "chain",
)  # fmt: skip


def neighbourhood_name(index: int) -> str:
    """The name of the city's neighbourhood ``index`` (from 0): ``n01``, ``n02``, ..."""
    return f"n{index + 1:02d}"


def city_scenarios(
    neighbourhoods: int, households: int, days: int, start: date, seed: int
) -> list[Scenario]:
    """``neighbourhoods`` default streets of ``households`` each, seeded: each one's PV share
    and battery share drawn from :data:`PROSUMER_SHARE_RANGE` and :data:`BATTERY_SHARE_RANGE`,
    its households from its own name and the seed."""
    if neighbourhoods < 1:
        raise ValueError(f"a city has at least one neighbourhood, not {neighbourhoods}")
    rng = random.Random(f"city/{seed}")
    out = []
    for k in range(neighbourhoods):
        prosumer_share = round(rng.uniform(*PROSUMER_SHARE_RANGE), 2)
        battery_share = round(rng.uniform(*BATTERY_SHARE_RANGE), 2)
        out.append(
            default_scenario(
                households,
                days,
                start,
                seed,
                prosumer_share=prosumer_share,
                battery_share=battery_share,
                name=neighbourhood_name(k),
            )
        )
    return out


def city_networks(neighbourhoods: int, households: int, seed: int) -> list[str]:
    """Each neighbourhood's feeder, seeded: one of the Kerber networks with a house connection
    for each of its ``households`` (the largest ones when none has that many), so that a
    street of 30 may be a village's or a suburb's and one of 100 a suburb's."""
    fitting = [n for n in NETWORKS if HOUSE_CONNECTIONS[n] >= households]
    if not fitting:
        most = max(HOUSE_CONNECTIONS.values())
        fitting = [n for n in NETWORKS if HOUSE_CONNECTIONS[n] >= most * 0.9]
    rng = random.Random(f"city/{seed}/feeders")
    return [rng.choice(fitting) for _ in range(neighbourhoods)]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _monthly(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    months: dict[str, dict[str, Any]] = {}
    for report in reports:
        for m in report["monthly"]:
            into = months.setdefault(
                m["month"],
                {
                    "month": m["month"],
                    "first_slot": m["first_slot"],
                    "slots": m["slots"],
                    "whole_month": m["whole_month"],
                    **{name: 0 for name, _ in MONTHLY_TERMS},
                },
            )
            for name, _ in MONTHLY_TERMS:
                into[name] += m[name]
    out = []
    for m in months.values():
        load, traded = m["load_energy_Wh"], m["local_traded_Wh"]
        m["self_sufficiency"] = _ratio(load - m["grid_import_Wh"], load)
        m["local_share_of_surplus"] = _ratio(traded, traded + m["grid_export_Wh"])
        out.append(m)
    return out


def city_report(
    reports: Sequence[Mapping[str, Any]], names: Sequence[str], *, wall_s: float, peak_rss: int
) -> dict[str, Any]:
    """The city's report from its neighbourhoods' ``reports`` (named ``names``, in order);
    ``wall_s`` and ``peak_rss`` are the whole run's (see the module docstring)."""
    if not reports or len(reports) != len(names):
        raise ValueError(f"{len(reports)} reports for {len(names)} neighbourhoods")
    first = reports[0]
    for report, name in zip(reports, names, strict=True):
        for field in _SHARED:
            if report[field] != first[field]:
                raise ValueError(
                    f"neighbourhood {name} has {field} {report[field]!r}, not "
                    f"{first[field]!r} as {names[0]}"
                )
    total = {field: sum(int(r[field]) for r in reports) for field in _SUMMED}
    load, traded = total["load_energy_Wh"], total["local_traded_Wh"]
    readings, fills = total["readings"], total["fills"]
    priced = [(r["mean_clearing_price_ueur_per_kWh"], r["local_traded_Wh"]) for r in reports]
    priced = [(p, wh) for p, wh in priced if p is not None and wh]
    price = sum(p * wh for p, wh in priced) // sum(wh for _, wh in priced) if priced else None
    spreads = [r["clearing_price_spread_ueur_per_kWh"] for r in reports]
    spreads = [s for s in spreads if s.get("slots")]
    agents: dict[str, int] = {}
    for r in reports:
        for strategy, count in r["agents"].items():
            agents[strategy] = agents.get(strategy, 0) + int(count)
    return {
        **{field: first[field] for field in _SHARED if field != "chain"},
        **total,
        "self_sufficiency": _ratio(load - total["grid_import_Wh"], load),
        "local_share_of_surplus": _ratio(traded, traded + total["grid_export_Wh"]),
        "mean_clearing_price_ueur_per_kWh": price,
        "gas_per_household_slot": total["gas_used"] // readings if readings else None,
        "gas_per_reading": total["gas_readings"] // readings if readings else None,
        "gas_per_settled_fill": total["gas_settlement"] // fills if fills else None,
        "audit_ok": all(r["audit_ok"] for r in reports),
        "audit_findings": [
            f"{name}: {finding}"
            for r, name in zip(reports, names, strict=True)
            for finding in r["audit_findings"]
        ],
        "wall_s": round(wall_s, 2),
        "household_figures": [
            {"neighbourhood": name, **h}
            for r, name in zip(reports, names, strict=True)
            for h in r["household_figures"]
        ],
        "monthly": _monthly(reports),
        "scenario": "city",
        "chain": first["chain"],
        "contract": None,
        "agents": agents,
        "clearing_price_spread_ueur_per_kWh": {
            "slots": sum(s["slots"] for s in spreads),
            "min": min((s["min"] for s in spreads), default=None),
            "max": max((s["max"] for s in spreads), default=None),
            "std": None,
        },
        "forecast": None,
        "peak_rss_bytes": peak_rss,
        "neighbourhoods": [
            {"name": name, **dict(r)} for r, name in zip(reports, names, strict=True)
        ],
    }


def scenario_summary(scenario: Scenario) -> dict[str, Any]:
    """What makes a city's neighbourhood differ: its households, PV and batteries."""
    return {
        "name": scenario.name,
        "households": len(scenario.households),
        "prosumers": sum(1 for h in scenario.households if h.prosumer),
        "batteries": sum(1 for h in scenario.households if h.battery is not None),
    }
