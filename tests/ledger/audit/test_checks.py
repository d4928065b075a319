"""The pure checks on inputs the chain would never produce (its contract refuses them): what
the audit says if the chain's history itself were wrong, or the simulator's flows disagreed."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from sqlmodel import Session, select

from ledger.audit import audit_inputs
from ledger.audit.energy import check_energy
from ledger.audit.inputs import AuditInputs, collect
from ledger.audit.money import check_money
from ledger.mirror.models import NeighbourhoodSlotRecord
from ledger.types import Event
from meter_sim.run import RunResult
from tests.ledger.audit.conftest import SLOT, Market, audit_dir, copy_data, db_engine


def traded_inputs(market: Market) -> AuditInputs:
    sellers, buyers = market.homes[:2], market.homes[2:]
    flows = {h.id: (0, 1_000) for h in sellers} | {h.id: (700, 0) for h in buyers}
    market.meter_slot(SLOT, flows)
    market.worker.settle_slot(SLOT)
    inputs = collect(market.client, market.engine, market.deployment.block_number)
    assert audit_inputs(inputs).ok
    return inputs


def replace_event(inputs: AuditInputs, name: str, **changes: int) -> Event:
    """Change the first ``name`` event's arguments in ``inputs``; returns the new event."""
    i = next(k for k, e in enumerate(inputs.events) if e.name == name)
    old = inputs.events[i]
    new = dataclasses.replace(old, args={**old.args, **changes})
    inputs.events[i] = new
    return new


def test_a_fill_beyond_the_metered_export_and_import_is_an_energy_finding(
    market: Market,
) -> None:
    inputs = traded_inputs(market)
    fill = replace_event(inputs, "FillSettled", energyWh=5_000)
    findings = check_energy(inputs)
    sold = next(f for f in findings if f.household == fill.args["seller"])
    assert (sold.check, sold.slot) == ("energy", SLOT)
    assert sold.evidence["sold_Wh"] > sold.evidence["metered_export_Wh"] == 1_000
    bought = next(f for f in findings if f.household == fill.args["buyer"])
    assert bought.evidence["bought_Wh"] > bought.evidence["metered_import_Wh"] == 700
    assert (SLOT, None, "the neighbourhood traded more than it metered") in {
        (f.slot, f.household, f.message) for f in findings
    }


def test_a_mispriced_fill_and_a_wrong_balance_are_money_findings(market: Market) -> None:
    inputs = traded_inputs(market)
    clean = copy.deepcopy(inputs)
    fill = replace_event(inputs, "FillSettled", costUeur=1, priceUeurPerKWh=300_000)
    messages = {(f.slot, f.household, f.message.split(" ")[0]) for f in check_money(inputs)}
    assert (SLOT, fill.args["buyer"], "fill") in messages  # cost != Wh x price / 1000
    assert (SLOT, fill.args["buyer"], "price") in messages  # above retail - grid fee

    account = market.homes[2].account.address
    clean.balances[account] += 5
    findings = check_money(clean)
    assert {(f.slot, f.household) for f in findings} == {(None, market.homes[2].id), (None, None)}
    totals = next(f for f in findings if f.household is None)
    assert totals.evidence["top_ups_ueur"] + 5 == (
        totals.evidence["household_balances_ueur"] + totals.evidence["fees_and_other_holders_ueur"]
    )


def test_pv_that_the_meters_do_not_explain_is_an_energy_finding(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data: Path = copy_data(clean_day, tmp_path)
    with Session(db_engine(data)) as session, session.begin():
        row = session.exec(
            select(NeighbourhoodSlotRecord).where(NeighbourhoodSlotRecord.pv_Wh > 0).limit(1)
        ).one()
        row.pv_Wh += 100
        session.add(row)
        slot = row.slot
    report = audit_dir(data)
    assert [(f.check, f.slot, f.household) for f in report.findings] == [("energy", slot, None)]
    assert report.findings[0].evidence["pv_Wh"] > 0
