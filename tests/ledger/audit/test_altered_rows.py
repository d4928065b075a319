"""The audit over a database whose rows were altered in ways a careless check would miss or
choke on: a row spelled otherwise beside the real one, a value no check can read. Each is
reported as a finding (or, for the evidence window it cannot place, a clear error), never a
clean report, never a traceback. And money sent to the escrow outside any forward does not fail
a ledger that is whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from ledger.audit import ERROR, WARNING, AuditError, run_audit
from ledger.audit.inputs import EVIDENCE_FROM_KEY
from ledger.mirror.models import (
    BalanceRecord,
    ChainEvent,
    HouseholdRecord,
    IndexerState,
    OrderRecord,
    ReadingRecord,
    SignedReadingRecord,
    SlotDigestRecord,
    TopUpRecord,
)
from ledger.types import Forward
from tests.ledger.audit.conftest import SLOT, Market


def _trade(market: Market) -> None:
    sellers, buyers = market.homes[:2], market.homes[2:]
    for slot in (SLOT, SLOT + 1):
        market.meter_slot(
            slot, {h.id: (0, 1_000) for h in sellers} | {h.id: (800, 0) for h in buyers}
        )
        market.worker.settle_slot(slot)
    assert market.audit().ok


def test_a_balance_row_spelled_otherwise_does_not_hide_an_altered_one(market: Market) -> None:
    _trade(market)
    buyer = market.homes[2].account.address
    with Session(market.engine) as s, s.begin():
        row = s.get(BalanceRecord, buyer)
        assert row is not None
        real = row.balance_ueur
        row.balance_ueur = real + 5_000_000
        s.add(row)
        s.add(BalanceRecord(account=buyer.lower(), balance_ueur=real))
    report = market.audit()
    assert not report.ok
    assert any(f.check == "integrity" and "balance" in f.message for f in report.findings)


def test_an_event_row_of_this_contract_spelled_otherwise_is_checked(market: Market) -> None:
    _trade(market)
    with Session(market.engine) as s, s.begin():
        e = s.exec(select(ChainEvent).where(ChainEvent.name == "HouseholdRegistered")).first()
        assert e is not None
        s.add(
            ChainEvent(
                contract=e.contract.lower(),
                block_number=e.block_number + 1_000,
                log_index=0,
                tx_hash=e.tx_hash,
                name="HouseholdDeactivated",
                args_json='{"household": 1}',
            )
        )
    report = market.audit()
    assert not report.ok and any(f.check == "integrity" for f in report.findings)


def _first(model: type, **values: str) -> Callable[[Session], None]:
    def alter(s: Session) -> None:
        row = s.exec(select(model)).first()
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        s.add(row)

    return alter


def _extra_event(args_json: str) -> Callable[[Session], None]:
    def alter(s: Session) -> None:
        e = s.exec(select(ChainEvent)).first()
        assert e is not None
        s.add(
            ChainEvent(
                contract=e.contract,
                block_number=10**6,
                log_index=0,
                tx_hash="0x1",
                name="ReadingCommitted",
                args_json=args_json,
            )
        )

    return alter


@pytest.mark.parametrize(
    "alter",
    [
        _first(SlotDigestRecord, prev_digest="0xnothex"),
        _first(ReadingRecord, meter="garbage"),
        _first(HouseholdRecord, account="garbage"),
        _first(BalanceRecord, account="garbage"),
        _first(SignedReadingRecord, r="garbage"),
        _first(SignedReadingRecord, meter="garbage"),
        _extra_event('{"slot": "abc"}'),
        _extra_event("{oops"),
    ],
    ids=[
        "link",
        "reading meter",
        "household",
        "balance",
        "signature",
        "signed meter",
        "event slot",
        "event json",
    ],
)
def test_a_value_no_check_can_read_is_a_finding_not_a_crash(
    market: Market, alter: Callable[[Session], None]
) -> None:
    _trade(market)
    with Session(market.engine) as s, s.begin():
        alter(s)
    report = run_audit(market.client, market.engine, market.deployment.block_number)
    assert not report.ok
    assert all(f.severity in (ERROR, WARNING) for f in report.findings)


@pytest.mark.parametrize("window", ["abc", str(10**12), "²"])
def test_an_evidence_window_that_is_no_slot_is_a_clear_error(market: Market, window: str) -> None:
    _trade(market)
    with Session(market.engine) as s, s.begin():
        s.add(IndexerState(key=EVIDENCE_FROM_KEY, value=window))
    with pytest.raises(AuditError, match="not a slot number"):
        run_audit(market.client, market.engine, market.deployment.block_number)


def test_money_sent_to_the_escrow_outside_any_forward_does_not_fail_the_audit(
    market: Market,
) -> None:
    s0, s1, b0, b1 = market.homes
    market.worker.clear_forwards(SLOT, [Forward(s0.id, b0.id, 500, 100_000)])
    market.meter_slot(SLOT, {s0.id: (0, 1_000), s1.id: (0, 400), b0.id: (800, 0), b1.id: (800, 0)})
    market.worker.settle_slot(SLOT)
    assert market.audit().ok
    market.client.transfer(b1.account, market.client.address, 1_000)
    assert market.audit().ok


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda o, t: setattr(o, "price_limit_ueur_per_kWh", 1), id="order-price"),
        pytest.param(lambda o, t: setattr(o, "open", not o.open), id="order-closed"),
        pytest.param(lambda o, t: setattr(o, "household", o.household + 1), id="order-owner"),
        pytest.param(lambda o, t: setattr(t, "tx_hash", "0x" + "ab" * 32), id="topup-tx"),
    ],
)
def test_an_order_or_a_top_up_row_altered_in_the_database_is_found(
    market: Market, alter: Callable[[OrderRecord, TopUpRecord], None]
) -> None:
    _trade(market)
    with Session(market.engine) as s, s.begin():
        order = s.exec(select(OrderRecord)).first()
        topup = s.exec(select(TopUpRecord)).first()
        assert order is not None and topup is not None
        alter(order, topup)
        s.add(order)
        s.add(topup)
    report = market.audit()
    assert not report.ok
    tables = {f.evidence.get("table") for f in report.findings if f.check == "integrity"}
    assert tables & {"order", "topup"}, report.findings
