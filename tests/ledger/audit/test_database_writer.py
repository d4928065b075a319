"""Someone who can write the operator's database cannot rewrite settled history unnoticed.

Each tamper rewrites one table the audit relies on *consistently*, as a careful attacker would:
it deletes the raw ``chain_event`` rows and the indexer cursor that could contradict it, and
recomputes every digest link the database holds. The audit must still fail, naming the slot and
the household, because what the mirror must hold is derived from the chain itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from ledger.audit.digest import GENESIS_DIGEST, compute_leaves, link_digest
from ledger.chain.backends import open_chain
from ledger.contract.deploy import open_ledger
from ledger.mirror.models import (
    BalanceRecord,
    ChainEvent,
    FillRecord,
    HouseholdRecord,
    IndexerCursor,
    ReadingRecord,
    SlotDigestRecord,
    SlotOutcomeRecord,
    TariffRecord,
    TopUpRecord,
    plain_rows,
)
from meter_sim.run import RunResult
from tests.ledger.audit.conftest import Market, audit_dir, copy_data, db_engine

Where = set[tuple[int | None, int | None]]


def reseal(engine: Engine) -> None:
    """Recompute every digest link from the database as it is now (the attacker's last step)."""
    with Session(engine) as session, session.begin():
        prev = GENESIS_DIGEST
        links = session.exec(select(SlotDigestRecord).order_by(col(SlotDigestRecord.seq))).all()
        for link in links:
            readings = plain_rows(session, ReadingRecord, ReadingRecord.slot == link.slot)
            fills = plain_rows(session, FillRecord, FillRecord.slot == link.slot)
            outcome = session.get(SlotOutcomeRecord, link.slot)
            leaves = compute_leaves(link.slot, link.sealed_block, readings, fills, outcome)
            link.prev_digest = prev
            link.leaves_json = json.dumps(leaves, sort_keys=True)
            link.digest = link_digest(prev, link.slot, link.sealed_block, leaves)
            session.add(link)
            prev = link.digest


def cover_tracks(engine: Engine) -> None:
    """Delete what could contradict a rewrite: the raw events and the indexer cursor."""
    with Session(engine) as session, session.begin():
        session.exec(delete(ChainEvent))  # type: ignore[call-overload]
        session.exec(delete(IndexerCursor))  # type: ignore[call-overload]
    reseal(engine)


def _sold_fill(session: Session) -> FillRecord:
    return session.exec(
        select(FillRecord).where(FillRecord.bid_id != 0).order_by(col(FillRecord.id)).limit(1)
    ).one()


def rewrite_fill(session: Session) -> Where:
    """A sale at a higher price: the seller earned more, the buyer paid more."""
    fill = _sold_fill(session)
    extra = fill.energy_Wh * 10_000 // 1000
    fill.price_ueur_per_kWh += 10_000
    fill.cost_ueur += extra
    session.add(fill)
    for household, delta in ((fill.seller, extra), (fill.buyer, -extra)):
        account = session.get(HouseholdRecord, household)
        assert account is not None
        balance = session.get(BalanceRecord, account.account)
        assert balance is not None
        balance.balance_ueur += delta
        session.add(balance)
    outcome = session.get(SlotOutcomeRecord, fill.slot)
    assert outcome is not None
    outcome.cost_ueur += extra
    session.add(outcome)
    return {(fill.slot, fill.seller)}


def rewrite_reading(session: Session) -> Where:
    """More metered export in one slot (and the register after it, to keep them growing)."""
    row = session.exec(
        select(ReadingRecord).where(ReadingRecord.export_delta_Wh > 0).limit(1)
    ).one()
    row.export_delta_Wh += 400
    row.export_Wh += 400
    session.add(row)
    return {(row.slot, row.household)}


def rewrite_outcome(session: Session) -> Where:
    """A slot that matched less than it did, the rest sent to the grid."""
    outcome = session.exec(
        select(SlotOutcomeRecord).where(SlotOutcomeRecord.matched_Wh > 0).limit(1)
    ).one()
    outcome.matched_Wh -= 1
    outcome.unmatched_surplus_Wh += 1
    outcome.unmatched_deficit_Wh += 1
    session.add(outcome)
    return {(outcome.slot, None)}


def rewrite_outcome_surplus(session: Session) -> Where:
    """More surplus offered than the slot had, sent to the grid: nothing on chain says how
    much surplus was left to trade, so only the slot's sealed digest can tell."""
    outcome = session.exec(
        select(SlotOutcomeRecord).where(SlotOutcomeRecord.surplus_Wh > 0).limit(1)
    ).one()
    outcome.surplus_Wh += 100
    outcome.unmatched_surplus_Wh += 100
    session.add(outcome)
    return {(outcome.slot, None)}


def rewrite_topup(session: Session) -> Where:
    """A larger top-up, with the balance it implies."""
    topup = session.exec(select(TopUpRecord).limit(1)).one()
    topup.amount_ueur += 1_000_000
    session.add(topup)
    balance = session.get(BalanceRecord, topup.account)
    assert balance is not None
    balance.balance_ueur += 1_000_000
    session.add(balance)
    household = session.exec(
        select(HouseholdRecord).where(HouseholdRecord.account == topup.account)
    ).one()
    return {(None, household.id)}


def rewrite_tariffs(session: Session) -> Where:
    """A lower retail tariff, which would shrink every household's savings."""
    tariff = session.exec(select(TariffRecord).limit(1)).one()
    tariff.retail_ueur_per_kWh -= 1
    session.add(tariff)
    return {(None, None)}


def rewrite_household(session: Session) -> Where:
    """Another meter for a household (whose readings would then be someone else's)."""
    household = session.exec(select(HouseholdRecord).limit(1)).one()
    household.meter = "0x" + "11" * 20
    session.add(household)
    return {(None, household.id)}


def rewrite_balance(session: Session) -> Where:
    """A richer household."""
    household = session.exec(select(HouseholdRecord).limit(1)).one()
    balance = session.get(BalanceRecord, household.account)
    assert balance is not None
    balance.balance_ueur += 5_000_000
    session.add(balance)
    return {(None, household.id)}


REWRITES: dict[str, Callable[[Session], Where]] = {
    "fill": rewrite_fill,
    "reading": rewrite_reading,
    "slot_outcome": rewrite_outcome,
    "slot_outcome_surplus": rewrite_outcome_surplus,
    "topup": rewrite_topup,
    "tariff": rewrite_tariffs,
    "household": rewrite_household,
    "balance": rewrite_balance,
}


@pytest.mark.parametrize("table", sorted(REWRITES))
def test_a_consistent_rewrite_of_a_table_with_its_tracks_covered_fails_the_audit(
    clean_day: RunResult, tmp_path: Path, table: str
) -> None:
    data = copy_data(clean_day, tmp_path)
    engine = db_engine(data)
    with Session(engine) as session, session.begin():
        expected = REWRITES[table](session)
    cover_tracks(engine)
    report = audit_dir(data)
    assert not report.ok
    errors = [f for f in report.findings if f.severity == "error"]
    messages = [f.as_text() for f in errors]
    assert any("no indexer cursor" in m for m in messages), messages
    found = {(f.slot, f.household) for f in errors if f.check == "integrity"}
    assert expected <= found, (expected, messages)


def test_a_missing_cursor_alone_is_a_finding(clean_day: RunResult, tmp_path: Path) -> None:
    data = copy_data(clean_day, tmp_path)
    engine = db_engine(data)
    with Session(engine) as session, session.begin():
        session.exec(delete(IndexerCursor))  # type: ignore[call-overload]
    report = audit_dir(data)
    assert [f.as_text() for f in report.findings] == [
        f.as_text() for f in report.findings if "no indexer cursor" in f.message
    ]
    assert len(report.findings) == 1 and report.findings[0].severity == "error"


def test_a_lowered_cursor_is_named_and_no_event_is_called_foreign(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data = copy_data(clean_day, tmp_path)
    engine = db_engine(data)
    with Session(engine) as session, session.begin():
        cursor = session.exec(select(IndexerCursor)).one()
        cursor.last_block -= 1
        session.add(cursor)
        lowered = cursor.last_block
    report = audit_dir(data)
    messages = [f.message for f in report.findings]
    assert not report.ok
    assert any(f"the indexer cursor (block {lowered}) is behind" in m for m in messages), messages
    assert not any("that the chain does not have" in m for m in messages), messages


def test_a_mirror_that_lags_the_head_is_a_finding_within_any_slot_range(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data = copy_data(clean_day, tmp_path)
    with open_chain("embedded", data) as chain:
        client, _ = open_ledger(chain)
        client.top_up(chain.operator, chain.operator.address, 1_000)
    first = int(clean_day.report["first_slot"])
    report = audit_dir(data, from_slot=first, to_slot=first)
    lag = [f for f in report.findings if "not mirrored yet" in f.message]
    assert len(lag) == 1 and lag[0].severity == "warning", [f.as_text() for f in report.findings]
    assert not report.ok
    assert not [f for f in report.findings if f.severity == "error"]


def test_a_resealed_digest_chain_differs_from_the_heads_sealed_on_chain(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data = copy_data(clean_day, tmp_path)
    engine = db_engine(data)
    with Session(engine) as session, session.begin():
        (slot, _), *_ = rewrite_outcome_surplus(session)
    reseal(engine)
    report = audit_dir(data)
    anchored = [f for f in report.findings if "differs from the head sealed on chain" in f.message]
    assert anchored and min(f.slot for f in anchored if f.slot is not None) == slot
    assert all(f.severity == "error" for f in anchored)


def test_resealing_an_untouched_database_changes_nothing(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data = copy_data(clean_day, tmp_path)
    reseal(db_engine(data))
    assert audit_dir(data).findings == []


def test_rotated_accounts_and_meters_and_a_deactivation_audit_clean(market: Market) -> None:
    """The household rows the audit expects follow every event that changes them."""
    buyer, seller = market.homes[2], market.homes[0]
    new_account = Account.create()
    market.client.rotate_account(market.chain.operator, buyer.id, new_account.address)
    new_meter = Account.create()
    market.client.rotate_meter(market.chain.operator, seller.id, new_meter.address, 0, 0)
    market.client.deactivate_household(market.chain.operator, market.homes[3].id)
    report = market.audit()
    assert report.findings == [], [f.as_text() for f in report.findings]
