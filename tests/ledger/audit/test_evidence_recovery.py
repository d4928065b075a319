"""Signed readings the evidence store lacks come back from the chain's ``commitReadings``
transactions (:mod:`ledger.readings.recovery`): provenance holds again, readings purged past
their retention stay purged, and a mirror that points at the wrong transaction stores nothing."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, delete, select

from ledger.audit.inputs import EVIDENCE_FROM_KEY
from ledger.mirror.indexer import index
from ledger.mirror.models import IndexerState, ReadingRecord, SignedReadingRecord
from ledger.readings.recovery import (
    UnrecoverableReading,
    missing_evidence,
    recover_signed_readings,
)
from tests.ledger.audit.conftest import SLOT, Market


def _metered(market: Market, slots: int) -> None:
    for t in range(slots):
        market.meter_slot(SLOT + t, {h.id: (100 + t, 50 * (h.id % 2)) for h in market.homes})
    index(market.client, market.engine, start_block=market.deployment.block_number)


def _signed(market: Market) -> dict[tuple[str, int], tuple[int, str, str, int, int]]:
    with Session(market.engine) as session:
        return {
            (s.meter, s.slot): (s.v, s.r, s.s, s.import_Wh, s.export_Wh)
            for s in session.exec(select(SignedReadingRecord)).all()
        }


def _lose(market: Market, slot: int) -> None:
    """The evidence of ``slot`` lost, as with a database restored from before it."""
    with Session(market.engine) as session:
        session.exec(delete(SignedReadingRecord).where(col(SignedReadingRecord.slot) == slot))  # type: ignore[call-overload]
        session.commit()


def test_lost_signed_readings_come_back_from_the_chain_as_they_were_signed(
    market: Market,
) -> None:
    _metered(market, 2)
    before = _signed(market)
    assert len(before) == 8
    _lose(market, SLOT + 1)
    report = market.audit()
    assert [f.check for f in report.findings] == ["provenance"] * 4
    assert sum(len(keys) for keys in missing_evidence(market.engine).values()) == 4

    assert recover_signed_readings(market.client, market.engine) == 4
    assert _signed(market) == before  # the very signatures the meters made
    assert market.audit().ok
    assert recover_signed_readings(market.client, market.engine) == 0


def test_readings_purged_past_their_retention_are_not_taken_back(market: Market) -> None:
    _metered(market, 2)
    _lose(market, SLOT)
    with Session(market.engine) as session:
        session.add(IndexerState(key=EVIDENCE_FROM_KEY, value=str(SLOT + 1)))
        session.commit()
    assert missing_evidence(market.engine) == {}
    assert recover_signed_readings(market.client, market.engine) == 0
    assert {slot for _, slot in _signed(market)} == {SLOT + 1}


def test_a_mirror_naming_the_wrong_transaction_stores_nothing(market: Market) -> None:
    _metered(market, 2)
    _lose(market, SLOT)
    _lose(market, SLOT + 1)
    with Session(market.engine) as session:
        first = session.exec(
            select(ReadingRecord).where(ReadingRecord.slot == SLOT).order_by(col(ReadingRecord.id))
        ).first()
        other = session.exec(select(ReadingRecord).where(ReadingRecord.slot == SLOT + 1)).first()
        assert first is not None and other is not None
        first.tx_hash = other.tx_hash  # a transaction that does not carry that reading
        session.add(first)
        session.commit()
    with pytest.raises(UnrecoverableReading, match="does not carry the reading"):
        recover_signed_readings(market.client, market.engine)
    assert _signed(market) == {}
