"""A city's markets side by side: what the city view shows of each neighbourhood over a span
of slots, read from each market's database (never the chain).

For each market: its households; the energy its meters measured, what was traded locally and
what went to and came from the grid; its self-sufficiency (when the load is known: a
simulation or PV meters give it) and the local share of its surplus, defined as
``voisin simulate``'s report defines them (:mod:`meter_sim.report`); the prices paid locally;
its latest kept audit (:func:`api.web.audit.kept_view`); and its feeder's power flows as the
keeper kept them (lowest and highest voltage, highest loading, findings).
:func:`city_totals` sums the markets and computes the ratios again from the sums.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from api.models import KeptFeederSlot
from api.web.audit import kept_view
from ledger.audit.feeder import MAX_LOADING_PERCENT, V_MAX_PU, V_MIN_PU
from ledger.mirror.models import (
    FillRecord,
    HouseholdRecord,
    NeighbourhoodSlotRecord,
    ReadingRecord,
    SlotOutcomeRecord,
)

#: Slots the city view covers by default: the last day before the current slot.
DEFAULT_SPAN_SLOTS = 96
#: The longest span one request may sum (92 days of 15-minute slots).
MAX_SPAN_SLOTS = 92 * 96


def _ratio(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class Energy:
    """A market's energy over the span (Wh) and what the ratios are computed from."""

    import_Wh: int
    export_Wh: int
    local_Wh: int
    #: The neighbourhood's load, where known for every settled slot of the span.
    load_Wh: int | None

    @property
    def grid_import_Wh(self) -> int:
        return max(self.import_Wh - self.local_Wh, 0)

    @property
    def grid_export_Wh(self) -> int:
        return max(self.export_Wh - self.local_Wh, 0)

    @property
    def self_sufficiency(self) -> float | None:
        """(load - grid import) / load; None without a load figure."""
        if not self.load_Wh:
            return None
        return _ratio(max(self.load_Wh - self.grid_import_Wh, 0), self.load_Wh)

    @property
    def local_share_of_surplus(self) -> float | None:
        """local / (local + grid export): the share of the surplus sold in the neighbourhood."""
        return _ratio(self.local_Wh, self.local_Wh + self.grid_export_Wh)


def market_figures(engine: Engine, first: int, last: int) -> dict[str, Any]:
    """One market's figures over the slots ``first``..``last`` (JSON-ready)."""
    span = (col(ReadingRecord.slot) >= first) & (col(ReadingRecord.slot) <= last)
    with Session(engine) as session:
        # The households of the market now: a deactivated or erased one trades no more.
        households = session.execute(
            select(func.count())
            .select_from(HouseholdRecord)
            .where(col(HouseholdRecord.active).is_(True))
        ).scalar_one()
        imported, exported = session.execute(
            select(
                func.coalesce(func.sum(ReadingRecord.import_delta_Wh), 0),
                func.coalesce(func.sum(ReadingRecord.export_delta_Wh), 0),
            ).where(span)
        ).one()
        local, paid, fees, fills = session.execute(
            select(
                func.coalesce(func.sum(FillRecord.energy_Wh), 0),
                func.coalesce(func.sum(FillRecord.cost_ueur), 0),
                func.coalesce(func.sum(FillRecord.fee_ueur), 0),
                func.count(col(FillRecord.id)),
            ).where((col(FillRecord.slot) >= first) & (col(FillRecord.slot) <= last))
        ).one()
        settled = session.execute(
            select(
                func.count(),
                func.max(SlotOutcomeRecord.slot),
                func.min(SlotOutcomeRecord.clearing_price_ueur_per_kWh),
                func.max(SlotOutcomeRecord.clearing_price_ueur_per_kWh),
            ).where(
                (col(SlotOutcomeRecord.status) == "settled")
                & (col(SlotOutcomeRecord.slot) >= first)
                & (col(SlotOutcomeRecord.slot) <= last)
            )
        ).one()
        loads = session.execute(
            select(func.count(), func.coalesce(func.sum(NeighbourhoodSlotRecord.load_Wh), 0)).where(
                (col(NeighbourhoodSlotRecord.slot) >= first)
                & (col(NeighbourhoodSlotRecord.slot) <= last)
            )
        ).one()
        feeder = session.execute(
            select(
                func.count(),
                func.min(KeptFeederSlot.vm_min_pu),
                func.max(KeptFeederSlot.vm_max_pu),
                func.max(KeptFeederSlot.max_line_loading_percent),
                func.max(KeptFeederSlot.trafo_loading_percent),
                func.coalesce(func.sum(KeptFeederSlot.findings), 0),
            ).where((col(KeptFeederSlot.slot) >= first) & (col(KeptFeederSlot.slot) <= last))
        ).one()
    slots_settled, last_settled, low_price, high_price = settled
    load_slots, load_sum = loads
    energy = Energy(
        int(imported),
        int(exported),
        int(local),
        # A load known for only some slots would understate it: then none is said.
        int(load_sum) if load_slots and load_slots >= slots_settled else None,
    )
    audit = kept_view(engine)
    return {
        "households": int(households),
        "slots_settled": int(slots_settled),
        "last_settled_slot": last_settled,
        **_energy_fields(energy),
        "fills": int(fills),
        "local_paid_ueur": int(paid),
        "fees_ueur": int(fees),
        "average_local_price_ueur_per_kWh": (int(paid) * 1000 // int(local)) if local else None,
        "clearing_price_low_ueur_per_kWh": low_price,
        "clearing_price_high_ueur_per_kWh": high_price,
        "audit": {
            "state": audit.state,
            "findings": audit.total_findings,
            "finished_s": audit.finished_s,
            "last_slot": audit.last_slot,
            "behind": audit.behind,
            "problem": audit.problem,
        },
        "feeder": _feeder(*feeder),
    }


def _energy_fields(energy: Energy) -> dict[str, Any]:
    return {
        **asdict(energy),
        "grid_import_Wh": energy.grid_import_Wh,
        "grid_export_Wh": energy.grid_export_Wh,
        "self_sufficiency": energy.self_sufficiency,
        "local_share_of_surplus": energy.local_share_of_surplus,
    }


def _feeder(
    slots: int,
    v_min: float | None,
    v_max: float | None,
    line: float | None,
    trafo: float | None,
    findings: int,
) -> dict[str, Any]:
    """The feeder's power flows over the span: ``state`` is ``none`` (not computed yet),
    ``ok`` (within the limits) or ``over`` (a voltage or a loading beyond them)."""
    if not slots:
        return {"state": "none", "slots": 0}
    over = (
        (v_min is not None and v_min < V_MIN_PU)
        or (v_max is not None and v_max > V_MAX_PU)
        or any(v is not None and v > MAX_LOADING_PERCENT for v in (line, trafo))
        or int(findings) > 0
    )
    return {
        "state": "over" if over else "ok",
        "slots": int(slots),
        "vm_min_pu": v_min,
        "vm_max_pu": v_max,
        "max_line_loading_percent": line,
        "trafo_loading_percent": trafo,
        "findings": int(findings),
    }


def city_totals(markets: list[dict[str, Any]]) -> dict[str, Any]:
    """The city's sums over its markets, with the ratios computed from the sums."""

    def total(key: str) -> int:
        return sum(int(m[key]) for m in markets)

    loads = [m["load_Wh"] for m in markets]
    energy = Energy(
        total("import_Wh"),
        total("export_Wh"),
        total("local_Wh"),
        sum(loads) if loads and all(v is not None for v in loads) else None,
    )
    local, paid = energy.local_Wh, total("local_paid_ueur")
    states = [m["audit"]["state"] for m in markets]
    return {
        "households": total("households"),
        "slots_settled": total("slots_settled"),
        **_energy_fields(energy),
        "fills": total("fills"),
        "local_paid_ueur": paid,
        "fees_ueur": total("fees_ueur"),
        "average_local_price_ueur_per_kWh": paid * 1000 // local if local else None,
        "audits_failed": states.count("failed"),
        "audits_ok": states.count("ok") + states.count("empty"),
        "feeders_over": sum(1 for m in markets if m["feeder"]["state"] == "over"),
    }
