"""Tampers made through the chain itself: a grid fee mis-set for one slot, and credits that a
key other than the meter's tries to mint (the contract refuses; forged evidence is caught)."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlmodel import Session, select

from ledger import errors
from ledger.contract.deploy import DEFAULT_TARIFFS
from ledger.mirror.models import FillRecord, SignedReadingRecord
from ledger.readings.eip712 import Reading, sign_reading
from ledger.types import Tariffs
from tests.ledger.audit.conftest import SLOT, Market


def trade_slots(market: Market, slots: range) -> None:
    """Each slot: both sellers export 1,000 Wh, both buyers import 800 Wh; then settle."""
    sellers, buyers = market.homes[:2], market.homes[2:]
    for slot in slots:
        flows = {h.id: (0, 1_000) for h in sellers} | {h.id: (800, 0) for h in buyers}
        market.meter_slot(slot, flows)
        market.worker.settle_slot(slot)


def test_a_hand_driven_market_audits_clean(market: Market) -> None:
    trade_slots(market, range(SLOT, SLOT + 3))
    report = market.audit()
    assert report.findings == []
    assert report.ok
    summary = report.as_dict()["summary"]
    assert summary["readings"] == 12 and summary["fills"] > 0 and summary["sealed_slots"] == 3


def test_a_grid_fee_mis_set_for_one_slot_is_flagged_on_that_slots_fills(market: Market) -> None:
    op = market.chain.operator
    trade_slots(market, range(SLOT, SLOT + 1))
    bad = SLOT + 1
    # The slot is metered under the normal tariffs, then the fee is mis-set for its settlement.
    market.meter_slot(
        bad, {h.id: (800, 0) if i >= 2 else (0, 1_000) for i, h in enumerate(market.homes)}
    )
    market.client.set_tariffs(
        op,
        Tariffs(DEFAULT_TARIFFS.feed_in_ueur_per_kWh, DEFAULT_TARIFFS.retail_ueur_per_kWh, 45_000),
    )
    market.worker.settle_slot(bad)
    market.client.set_tariffs(op, DEFAULT_TARIFFS)
    trade_slots(market, range(SLOT + 2, SLOT + 3))

    report = market.audit()
    with Session(market.engine) as session:
        bad_fills = session.exec(select(FillRecord).where(FillRecord.slot == bad)).all()
    assert bad_fills
    assert all(f.fee_ueur == f.energy_Wh * 45_000 // 1000 for f in bad_fills)
    fee_findings = [f for f in report.findings if "fee" in f.message]
    assert {(f.check, f.slot, f.household) for f in fee_findings} == {
        ("money", bad, f.buyer) for f in bad_fills
    }
    assert all(f.evidence["slot_grid_fee_ueur_per_kWh"] == 30_000 for f in fee_findings)
    assert all(f.evidence["grid_fee_at_settlement_ueur_per_kWh"] == 45_000 for f in fee_findings)
    # Nothing else is wrong: the money still adds up, the other slots are fine.
    assert all(f.check == "money" and f.slot == bad for f in report.findings)


def test_a_non_meter_key_cannot_mint_credits_and_forged_evidence_is_caught(
    market: Market,
) -> None:
    trade_slots(market, range(SLOT, SLOT + 1))
    seller = market.homes[0]
    intruder = Account.create()
    domain = market.client.domain_separator()
    before = market.client.meter_state(seller.meter.address)
    # 1. A reading in the seller's meter's name, signed by another key: refused.
    forged = sign_reading(
        intruder.key, Reading(seller.meter.address, SLOT + 1, 0, 5_000_000), domain
    )
    with pytest.raises(errors.InvalidSignature) as refused:
        market.client.commit_readings(market.chain.operator, [forged])
    assert refused.value.values["meter"] == seller.meter.address
    assert refused.value.values["slot"] == SLOT + 1
    # 2. A reading from the intruder's own (unregistered) key: refused too.
    own = sign_reading(intruder.key, Reading(intruder.address, SLOT + 1, 0, 5_000_000), domain)
    with pytest.raises(errors.UnknownMeter):
        market.client.commit_readings(market.chain.operator, [own])
    # 3. Sent by the intruder itself (not the operator): the signature check still holds.
    market.chain.fund(intruder.address)
    with pytest.raises(errors.InvalidSignature):
        market.client.commit_readings(intruder, [forged])
    assert market.client.meter_state(seller.meter.address) == before
    assert market.client.credits_of(seller.id, SLOT + 1) == 0
    assert market.audit().ok

    # Had a credit been minted from a reading its meter did not sign, the evidence would say
    # so: replace the stored signature of a committed reading by the intruder's.
    stored_reading = Reading(seller.meter.address, SLOT, seller.import_Wh, seller.export_Wh)
    fake = sign_reading(intruder.key, stored_reading, domain)
    with Session(market.engine) as session, session.begin():
        row = session.exec(
            select(SignedReadingRecord).where(
                SignedReadingRecord.meter == seller.meter.address, SignedReadingRecord.slot == SLOT
            )
        ).one()
        row.v, row.r, row.s = fake.v, "0x" + fake.r.hex(), "0x" + fake.s.hex()
        session.add(row)
    report = market.audit()
    assert [(f.check, f.slot, f.household) for f in report.findings] == [
        ("provenance", SLOT, seller.id)
    ]
    assert report.findings[0].evidence["signer"] == intruder.address
