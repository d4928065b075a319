"""Who is behind each slot's figures: the households in its sums, and those whose share of a
figure is not zero (:func:`slot_contributors`, from the chain's events). The audit report
keeps them (never exported) so that the open-data export (:mod:`ledger.audit.open_data`) can
withhold a figure that would tell one household apart."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ledger.audit.inputs import AuditInputs

__all__ = ["SlotContributors", "slot_contributors"]


@dataclass(frozen=True, slots=True)
class SlotContributors:
    """The households behind one slot's figures (household ids; never exported).

    ``members`` are the households in the slot's sums (metered, or in a fill); the others are
    the households whose share of a figure is not zero: ``importers`` and ``exporters`` of the
    metered totals, ``grid_importers`` and ``grid_exporters`` of the grid's (what they did not
    buy or sell locally). ``pv_recorded`` says whether the slot has a PV total (from the
    simulator): only then are ``prosumers`` behind a figure.
    """

    members: frozenset[int]
    importers: frozenset[int] = frozenset()
    exporters: frozenset[int] = frozenset()
    grid_importers: frozenset[int] = frozenset()
    grid_exporters: frozenset[int] = frozenset()
    sellers: frozenset[int] = frozenset()
    buyers: frozenset[int] = frozenset()
    prosumers: frozenset[int] = frozenset()
    pv_recorded: bool = False


def slot_contributors(inputs: AuditInputs) -> dict[int, SlotContributors]:
    """Per slot, the households behind its figures, from the chain's events."""
    prosumer = {
        int(e.args["household"]): bool(e.args["prosumer"])
        for e in inputs.named("HouseholdRegistered")
    }
    sets: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    # Per (slot, household): what it put on the grid, net of what it traded locally.
    to_grid: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])  # import, export
    for e in inputs.named("ReadingCommitted", "FillSettled"):
        a = e.args
        slot = int(a["slot"])
        per = sets[slot]
        if e.name == "ReadingCommitted":
            household = int(a["household"])
            per["members"].add(household)
            if int(a["importDeltaWh"]) > 0:
                per["importers"].add(household)
            if int(a["exportDeltaWh"]) > 0:
                per["exporters"].add(household)
            if prosumer.get(household):
                per["prosumers"].add(household)
            to_grid[(slot, household)][0] += int(a["importDeltaWh"])
            to_grid[(slot, household)][1] += int(a["exportDeltaWh"])
        elif int(a["energyWh"]) > 0:
            seller, buyer = int(a["seller"]), int(a["buyer"])
            per["members"] |= {seller, buyer}
            per["sellers"].add(seller)
            per["buyers"].add(buyer)
            to_grid[(slot, buyer)][0] -= int(a["energyWh"])
            to_grid[(slot, seller)][1] -= int(a["energyWh"])
    for (slot, household), (imported, exported) in to_grid.items():
        if imported > 0:
            sets[slot]["grid_importers"].add(household)
        if exported > 0:
            sets[slot]["grid_exporters"].add(household)
    pv = {n.slot for n in inputs.neighbourhood}
    return {
        slot: SlotContributors(
            members=frozenset(per["members"]),
            importers=frozenset(per["importers"]),
            exporters=frozenset(per["exporters"]),
            grid_importers=frozenset(per["grid_importers"]),
            grid_exporters=frozenset(per["grid_exporters"]),
            sellers=frozenset(per["sellers"]),
            buyers=frozenset(per["buyers"]),
            prosumers=frozenset(per["prosumers"]),
            pv_recorded=slot in pv,
        )
        for slot, per in sorted(sets.items())
    }
