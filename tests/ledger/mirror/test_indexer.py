"""The event indexer mirrors the contract's events, resumes from its cursor, never duplicates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger import Chain, Fill, Tariffs, open_chain
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import IndexerError, index
from ledger.mirror.models import (
    BalanceRecord,
    ChainEvent,
    FillRecord,
    ForwardRecord,
    HouseholdRecord,
    IndexerCursor,
    OrderRecord,
    ReadingRecord,
    TariffRecord,
    TopUpRecord,
)
from ledger.types import Forward, ForwardPosition
from tests.world import SLOT, Member, World, new_world


@pytest.fixture
def chain() -> Iterator[Chain]:
    with open_chain("memory") as chain:
        yield chain


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'mirror.db'}")


def _trade(w: World) -> tuple[Member, Member]:
    seller = w.household()
    buyer = w.household(prosumer=False, topup_ueur=1_000_000)
    w.meter(seller, SLOT, export_Wh=500)
    w.meter(buyer, SLOT, import_Wh=800)
    offer = w.client.post_offer(seller.account, 90_000, SLOT)
    bid = w.client.post_bid(buyer.account, 120_000, SLOT)
    w.client.settle_batch(w.operator, SLOT, 0, [Fill(offer, bid, 300, 100_000)])
    w.client.take_offer(buyer.account, offer, SLOT, 100)
    w.client.cancel_bid(buyer.account, bid)
    return seller, buyer


def test_index_mirrors_every_event_and_projection(chain: Chain, engine: Engine) -> None:
    w = new_world(chain)
    _trade(w)
    result = index(w.client, engine)
    chain_events = w.client.events(0, int(chain.w3.eth.block_number))
    assert result.events == len(chain_events)
    with Session(engine) as s:
        stored = s.exec(select(ChainEvent).order_by(ChainEvent.block_number, ChainEvent.log_index))
        assert [(e.name, json.loads(e.args_json)) for e in stored] == [
            (e.name, json.loads(json.dumps(e.args, sort_keys=True, default=str)))
            for e in chain_events
        ]
        assert len(s.exec(select(HouseholdRecord)).all()) == 2
        readings = s.exec(select(ReadingRecord).order_by(ReadingRecord.household)).all()
        assert [(r.export_delta_Wh, r.import_delta_Wh) for r in readings] == [(500, 0), (0, 800)]
        fills = s.exec(select(FillRecord).order_by(FillRecord.log_index)).all()
        assert sorted(f.energy_Wh for f in fills) == [100, 300]
        assert {f.bid_id for f in fills} == {0, 1}
        assert sum(f.cost_ueur for f in fills) == 300 * 100 + 100 * 90
        orders = {(o.side, o.order_id): o.open for o in s.exec(select(OrderRecord))}
        assert orders == {("offer", 1): True, ("bid", 1): False}
        assert s.exec(select(TopUpRecord)).one().amount_ueur == 1_000_000


def test_index_projects_balances_and_tariffs_exactly_as_the_chain_holds_them(
    chain: Chain, engine: Engine
) -> None:
    w = new_world(chain)
    _, buyer = _trade(w)
    # An ERC-20 transfer moves money outside settlement; the projection follows it too.
    w.client.transfer(buyer.account, w.operator.address, 12_345)
    w.client.set_tariffs(w.operator, Tariffs(50_000, 260_000, 30_000))
    index(w.client, engine)
    with Session(engine) as s:
        balances = {b.account: b.balance_ueur for b in s.exec(select(BalanceRecord))}
        tariffs = s.exec(select(TariffRecord).order_by(TariffRecord.block_number)).all()
    accounts = {w.client.household(h).account for h in (1, 2)} | {w.client.fee_recipient()}
    assert balances.keys() >= accounts
    for account in accounts:
        assert balances[account] == w.client.balance_of(account), account
    assert sum(balances.values()) == w.client.total_supply() == 1_000_000
    assert [(t.feed_in_ueur_per_kWh, t.retail_ueur_per_kWh) for t in tariffs][-1] == (
        50_000,
        260_000,
    )
    assert len(tariffs) == 2


def test_index_again_adds_only_new_events(chain: Chain, engine: Engine) -> None:
    w = new_world(chain)
    w.household()
    first = index(w.client, engine)
    again = index(w.client, engine)
    assert again.events == 0 and again.from_block == first.to_block + 1
    w.household()
    third = index(w.client, engine)
    assert third.events == 1
    with Session(engine) as s:
        assert len(s.exec(select(HouseholdRecord)).all()) == 2
        cursor = s.get(IndexerCursor, w.client.address)
        assert cursor is not None and cursor.last_block == int(chain.w3.eth.block_number)


def _forward_rows(engine: Engine) -> list[dict[str, object]]:
    with Session(engine) as s:
        rows = s.exec(select(ForwardRecord).order_by(ForwardRecord.forward_id)).all()
        return [r.model_dump() for r in rows]


def test_forward_positions_mirror_alike_in_one_chunk_or_as_they_happen(
    chain: Chain, tmp_path: Path
) -> None:
    """A position cleared and settled within one chunk (a mirror built late) and one settled
    after its clearing was mirrored give the same row; a position still open has no settled
    columns."""
    w = new_world(chain)
    seller = w.household()
    buyer = w.household(prosumer=False, topup_ueur=1_000_000)
    live = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    late = make_engine(f"sqlite:///{tmp_path / 'late.db'}")
    cleared = w.client.clear_forwards(
        w.operator, SLOT, 0, [Forward(seller.id, buyer.id, 400, 100_000)] * 2
    )
    w.client.clear_forwards(w.operator, SLOT + 1, 0, [Forward(seller.id, buyer.id, 50, 90_000)])
    index(w.client, live)
    w.meter(seller, SLOT, export_Wh=600)
    w.meter(buyer, SLOT, import_Wh=1_000)
    positions = [
        ForwardPosition(
            e.args["forwardId"], SLOT, seller.id, buyer.id, 400, 100_000, e.args["reservedUeur"]
        )
        for e in cleared.named("ForwardCleared")
    ]
    w.client.settle_forwards(w.operator, SLOT, positions)
    index(w.client, live)
    index(w.client, late)
    rows = _forward_rows(live)
    assert rows == _forward_rows(late)
    assert [(r["forward_id"], r["delivered_Wh"], r["shortfall_Wh"]) for r in rows] == [
        (1, 400, 0),
        (2, 200, 200),
        (3, None, None),
    ]
    assert rows[2]["settled_block"] is None and rows[2]["settled_tx"] is None
    assert all(r["settled_tx"] for r in rows[:2])


def test_index_refuses_a_mirror_of_another_chain(chain: Chain, engine: Engine) -> None:
    w = new_world(chain)
    index(w.client, engine)
    with Session(engine) as s:
        cursor = s.get(IndexerCursor, w.client.address)
        assert cursor is not None
        cursor.chain_id += 1
        s.add(cursor)
        s.commit()
    with pytest.raises(IndexerError, match="chain"):
        index(w.client, engine)


def test_index_reports_progress_per_chunk(
    chain: Chain, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ledger.mirror.indexer

    monkeypatch.setattr(ledger.mirror.indexer, "CHUNK_BLOCKS", 2)
    w = new_world(chain)
    w.household()
    w.household()
    seen: list[tuple[int, int]] = []
    result = index(w.client, engine, progress=lambda done, head: seen.append((done, head)))
    head = int(chain.w3.eth.block_number)
    assert seen[-1] == (head, head) and len(seen) == (head + 2) // 2
    assert result.events == len(w.client.events(0, head))


def test_a_chunk_of_fills_loads_its_households_and_balances_ahead(
    chain: Chain, engine: Engine
) -> None:
    from sqlalchemy import event

    w = new_world(chain)
    sellers = [w.household() for _ in range(6)]
    buyers = [w.household(prosumer=False, topup_ueur=1_000_000) for _ in range(6)]
    index(w.client, engine)  # households and balances now in the mirror
    fills = []
    for seller, buyer in zip(sellers, buyers, strict=True):
        w.meter(seller, SLOT, export_Wh=500)
        w.meter(buyer, SLOT, import_Wh=800)
        offer = w.client.post_offer(seller.account, 90_000, SLOT)
        bid = w.client.post_bid(buyer.account, 120_000, SLOT)
        fills.append(Fill(offer, bid, 300, 100_000))
    w.client.settle_batch(w.operator, SLOT, 0, fills)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(engine, "before_cursor_execute", record)
    try:
        index(w.client, engine)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # Twelve households and thirteen balances (with the fee recipient's) change, loaded by
    # two statements rather than one query each.
    selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert len([sql for sql in selects if "FROM household" in sql]) == 1
    assert len([sql for sql in selects if "FROM balance" in sql]) == 1
    with Session(engine) as s:
        balances = {b.account: b.balance_ueur for b in s.exec(select(BalanceRecord))}
    for member in [*sellers, *buyers]:
        address = member.account.address
        assert balances[address] == w.client.balance_of(address)
    assert balances[w.client.fee_recipient()] == w.client.balance_of(w.client.fee_recipient())
