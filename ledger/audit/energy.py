"""Energy: nothing sold that was not metered, and the neighbourhood balances in every slot.

All from the chain's events. Per slot and household, the Wh sold in fills never exceed the
metered export (``exportDeltaWh``) and the Wh bought never exceed the metered import. Per slot,
the neighbourhood's terms are

- ``local_traded`` = the energy of the slot's fills,
- ``grid_export = export - local_traded`` and ``grid_import = import - local_traded`` (both >= 0),

and, where the simulator recorded the neighbourhood's PV, load and battery flows
(:class:`ledger.mirror.models.NeighbourhoodSlotRecord`), with ``self_consumed = load - import``:

- ``load = self_consumed + local_traded + grid_import``, and
- ``pv = self_consumed + local_traded + grid_export + charge - discharge``.

The first identity holds by definition; the second holds only if the meters' import and export
agree with the PV and load behind them, so a missing or altered reading breaks it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ledger.audit.findings import ERROR, Finding
from ledger.audit.inputs import AuditInputs

__all__ = ["HouseholdSlot", "SlotAggregate", "check_energy", "household_slots", "neighbourhood"]


@dataclass
class HouseholdSlot:
    """One household's metered and traded energy in one slot (Wh), from the chain's events."""

    import_Wh: int = 0
    export_Wh: int = 0
    sold_Wh: int = 0
    bought_Wh: int = 0
    metered: bool = False


@dataclass(frozen=True, slots=True)
class SlotAggregate:
    """The neighbourhood's totals in one slot (Wh; price in micro-euro per kWh).

    ``pv_Wh``, ``load_Wh``, ``self_consumed_Wh`` and the battery terms are ``None`` where no
    simulator recorded them. ``clearing_price_ueur_per_kWh`` is the energy-weighted mean price
    of the slot's fills, rounded down (the uniform price under pay-as-clear), ``None`` if the
    slot did not trade.
    """

    slot: int
    households_metered: int
    metered_import_Wh: int
    metered_export_Wh: int
    local_traded_Wh: int
    grid_import_Wh: int
    grid_export_Wh: int
    clearing_price_ueur_per_kWh: int | None
    pv_Wh: int | None
    load_Wh: int | None
    self_consumed_Wh: int | None
    battery_charge_Wh: int | None
    battery_discharge_Wh: int | None


def household_slots(inputs: AuditInputs) -> dict[tuple[int, int], HouseholdSlot]:
    """(slot, household) -> metered and traded energy, from the chain's events."""
    out: dict[tuple[int, int], HouseholdSlot] = defaultdict(HouseholdSlot)
    for e in inputs.named("ReadingCommitted", "FillSettled"):
        a = e.args
        if e.name == "ReadingCommitted":
            hs = out[(a["slot"], a["household"])]
            hs.import_Wh += int(a["importDeltaWh"])
            hs.export_Wh += int(a["exportDeltaWh"])
            hs.metered = True
        else:
            out[(a["slot"], a["seller"])].sold_Wh += int(a["energyWh"])
            out[(a["slot"], a["buyer"])].bought_Wh += int(a["energyWh"])
    return dict(out)


def neighbourhood(inputs: AuditInputs) -> list[SlotAggregate]:
    """Per-slot neighbourhood totals for every slot with a reading, a fill or simulator flows."""
    per = household_slots(inputs)
    value: dict[int, int] = defaultdict(int)
    traded: dict[int, int] = defaultdict(int)
    for e in inputs.named("FillSettled"):
        traded[e.args["slot"]] += int(e.args["energyWh"])
        value[e.args["slot"]] += int(e.args["energyWh"]) * int(e.args["priceUeurPerKWh"])
    sims = {n.slot: n for n in inputs.neighbourhood}
    by_slot: dict[int, list[HouseholdSlot]] = defaultdict(list)
    for (slot, _), hs in per.items():
        by_slot[slot].append(hs)
    out: list[SlotAggregate] = []
    for slot in sorted(set(by_slot) | set(sims)):
        rows = by_slot.get(slot, [])
        imp = sum(hs.import_Wh for hs in rows)
        exp = sum(hs.export_Wh for hs in rows)
        local = traded.get(slot, 0)
        sim = sims.get(slot)
        out.append(
            SlotAggregate(
                slot=slot,
                households_metered=sum(1 for hs in rows if hs.metered),
                metered_import_Wh=imp,
                metered_export_Wh=exp,
                local_traded_Wh=local,
                grid_import_Wh=imp - local,
                grid_export_Wh=exp - local,
                clearing_price_ueur_per_kWh=value[slot] // local if local else None,
                pv_Wh=None if sim is None else sim.pv_Wh,
                load_Wh=None if sim is None else sim.load_Wh,
                self_consumed_Wh=None if sim is None else sim.load_Wh - imp,
                battery_charge_Wh=None if sim is None else sim.charge_Wh,
                battery_discharge_Wh=None if sim is None else sim.discharge_Wh,
            )
        )
    return out


def check_energy(inputs: AuditInputs) -> list[Finding]:
    findings: list[Finding] = []
    for (slot, household), hs in sorted(household_slots(inputs).items()):
        if hs.sold_Wh > hs.export_Wh:
            findings.append(
                Finding(
                    "energy",
                    ERROR,
                    slot,
                    household,
                    f"sold {hs.sold_Wh} Wh but the meter measured an export of {hs.export_Wh} Wh",
                    {"sold_Wh": hs.sold_Wh, "metered_export_Wh": hs.export_Wh},
                )
            )
        if hs.bought_Wh > hs.import_Wh:
            findings.append(
                Finding(
                    "energy",
                    ERROR,
                    slot,
                    household,
                    f"bought {hs.bought_Wh} Wh but the meter measured an import of "
                    f"{hs.import_Wh} Wh",
                    {"bought_Wh": hs.bought_Wh, "metered_import_Wh": hs.import_Wh},
                )
            )
    for agg in neighbourhood(inputs):
        terms = {
            "metered_import_Wh": agg.metered_import_Wh,
            "metered_export_Wh": agg.metered_export_Wh,
            "local_traded_Wh": agg.local_traded_Wh,
        }
        if agg.grid_import_Wh < 0 or agg.grid_export_Wh < 0:
            findings.append(
                Finding(
                    "energy",
                    ERROR,
                    agg.slot,
                    None,
                    "the neighbourhood traded more than it metered",
                    terms,
                )
            )
        if agg.pv_Wh is None or agg.load_Wh is None or agg.self_consumed_Wh is None:
            continue
        charge, discharge = agg.battery_charge_Wh or 0, agg.battery_discharge_Wh or 0
        pv_terms = agg.self_consumed_Wh + agg.local_traded_Wh + agg.grid_export_Wh
        pv_terms += charge - discharge
        if agg.pv_Wh != pv_terms:
            findings.append(
                Finding(
                    "energy",
                    ERROR,
                    agg.slot,
                    None,
                    f"PV {agg.pv_Wh} Wh != self-consumed + local + grid export + battery "
                    f"({pv_terms} Wh): the meters disagree with the flows behind them",
                    {
                        **terms,
                        "pv_Wh": agg.pv_Wh,
                        "load_Wh": agg.load_Wh,
                        "self_consumed_Wh": agg.self_consumed_Wh,
                        "battery_charge_Wh": charge,
                        "battery_discharge_Wh": discharge,
                    },
                )
            )
    return findings
