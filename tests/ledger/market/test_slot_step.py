"""The commit-then-settle step (:func:`ledger.market.slot_step.commit_and_settle`): evidence
first, each reading committed once in batches, the slot settled once, and nothing sent again
for a settled slot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from ledger import Chain, errors, open_chain
from ledger.market.agent_orders import AgentHousehold, post_default_orders
from ledger.market.agents import AgentSettings
from ledger.market.settlement import SettlementWorker
from ledger.market.slot_step import commit_and_settle
from ledger.mirror.engine import make_engine
from ledger.mirror.models import SlotOutcomeRecord
from ledger.readings.eip712 import SignedReading
from ledger.readings.evidence import ConflictingReading, load_signed_readings
from ledger.types import Event
from tests.world import SLOT, Member, World, new_world

#: Per-slot (import Wh, export Wh) of the four households: two sell, two buy.
METERED = ((0, 600), (0, 300), (400, 0), (350, 0))


@dataclass
class Street:
    world: World
    engine: Engine
    members: list[Member]
    worker: SettlementWorker
    start_block: int

    def readings(self, slot: int) -> list[SignedReading]:
        """One signed reading per household for ``slot``, its registers grown by METERED."""
        signed = []
        for m, (imp, exp) in zip(self.members, METERED, strict=True):
            m.import_Wh += imp
            m.export_Wh += exp
            signed.append(self.world.sign(m, slot, m.import_Wh, m.export_Wh))
        return signed

    def events(self, name: str) -> list[Event]:
        head = int(self.world.chain.w3.eth.block_number)
        return [e for e in self.world.client.events(self.start_block, head) if e.name == name]

    @property
    def head(self) -> int:
        return int(self.world.chain.w3.eth.block_number)


@pytest.fixture
def memory_chain() -> Iterator[Chain]:
    with open_chain("memory") as chain:
        yield chain


@pytest.fixture
def street(memory_chain: Chain, tmp_path: Path) -> Street:
    world = new_world(memory_chain)
    start_block = int(memory_chain.w3.eth.block_number)
    engine = make_engine(f"sqlite:///{tmp_path / 'street.db'}")
    members = [world.household(prosumer=exp > 0, topup_ueur=1_000_000) for _, exp in METERED]
    agents = {
        m.id: AgentHousehold(m.account, exp > 0, AgentSettings())
        for m, (_, exp) in zip(members, METERED, strict=True)
    }
    post_default_orders(world.client, engine, agents, SLOT, start_block=start_block)
    worker = SettlementWorker(world.client, engine, world.operator, start_block=start_block)
    return Street(world, engine, members, worker, start_block)


def test_a_step_stores_the_evidence_commits_each_reading_once_and_settles_the_slot(
    street: Street,
) -> None:
    w = street.world
    signed = street.readings(SLOT)

    step = commit_and_settle(
        w.client, w.operator, signed, worker=street.worker, settle=[SLOT], batch_size=3
    )

    # Four readings in batches of at most three: two transactions, each reading in one.
    assert step.committed == 4
    assert [len(tx.named("ReadingCommitted")) for tx in step.transactions] == [3, 1]
    committed = street.events("ReadingCommitted")
    assert sorted((e.args["meter"], e.args["slot"]) for e in committed) == sorted(
        (s.reading.meter, SLOT) for s in signed
    )
    # Stored as evidence, as signed.
    stored = load_signed_readings(street.engine)
    assert {(r.meter, r.slot, r.import_Wh, r.export_Wh) for r in stored} == {
        (s.reading.meter, SLOT, s.reading.import_Wh, s.reading.export_Wh) for s in signed
    }
    # The slot settled once: 600 + 300 Wh offered against 400 + 350 Wh wanted.
    (outcome,) = step.outcomes
    assert (outcome.slot, outcome.matched_Wh) == (SLOT, 750)
    assert step.already_settled == ()
    assert (step.fills, step.matched_Wh) == (outcome.fills, 750)
    fills = street.events("FillSettled")
    assert sum(int(e.args["energyWh"]) for e in fills) == 750
    assert len(street.events("BatchSettled")) == outcome.batches == 1
    assert step.readings_gas == sum(tx.gas_used for tx in step.transactions) > 0
    assert step.gas_used == step.readings_gas + outcome.gas_used
    with Session(street.engine) as session:
        record = session.get(SlotOutcomeRecord, SLOT)
        assert record is not None and record.status == "settled"


def test_a_second_step_for_a_settled_slot_sends_nothing_and_reports_nothing(
    street: Street,
) -> None:
    w = street.world
    commit_and_settle(
        w.client, w.operator, street.readings(SLOT), worker=street.worker, settle=[SLOT]
    )
    head = street.head

    again = commit_and_settle(w.client, w.operator, [], worker=street.worker, settle=[SLOT])

    assert street.head == head
    assert (again.committed, again.transactions, again.outcomes) == (0, (), ())
    assert again.already_settled == (SLOT,)
    assert (again.gas_used, again.fills, again.matched_Wh) == (0, 0, 0)
    assert len(street.events("BatchSettled")) == 1


def test_a_reading_sent_again_is_refused_and_counts_once(street: Street) -> None:
    w = street.world
    signed = street.readings(SLOT)
    commit_and_settle(w.client, w.operator, signed, worker=street.worker, settle=[SLOT])

    with pytest.raises(errors.DuplicateReading):
        commit_and_settle(
            w.client, w.operator, signed[:1], worker=street.worker, settle=[SLOT], check_first=True
        )

    assert len(street.events("ReadingCommitted")) == 4
    assert len(load_signed_readings(street.engine)) == 4


def test_readings_commit_before_the_slot_is_settled_in_a_later_step(street: Street) -> None:
    """The outbox's pattern (and the demo's): commit now, settle in a later step."""
    w = street.world
    committed = commit_and_settle(w.client, w.operator, street.readings(SLOT), worker=street.worker)
    assert committed.committed == 4 and committed.outcomes == ()
    assert street.worker.outcome(SLOT) is None

    settled = commit_and_settle(w.client, w.operator, [], worker=street.worker, settle=[SLOT])

    assert settled.transactions == ()
    assert [o.matched_Wh for o in settled.outcomes] == [750]


def test_a_conflicting_stored_reading_stops_the_step_before_anything_is_sent(
    street: Street,
) -> None:
    w = street.world
    signed = street.readings(SLOT)
    commit_and_settle(w.client, w.operator, signed, worker=street.worker, settle=[SLOT])
    other = w.sign(street.members[0], SLOT, 0, street.members[0].export_Wh + 1)
    head = street.head

    with pytest.raises(ConflictingReading):
        commit_and_settle(w.client, w.operator, [other], worker=street.worker)

    assert street.head == head


def test_without_a_worker_the_step_only_commits(street: Street) -> None:
    w = street.world
    step = commit_and_settle(w.client, w.operator, street.readings(SLOT), batch_size=4)

    assert [len(tx.named("ReadingCommitted")) for tx in step.transactions] == [4]
    assert load_signed_readings(street.engine) == []
    assert street.worker.outcome(SLOT) is None


def test_settling_without_a_worker_or_with_empty_batches_is_refused(street: Street) -> None:
    w = street.world
    head = street.head
    with pytest.raises(ValueError, match="needs a settlement worker"):
        commit_and_settle(w.client, w.operator, [], settle=[SLOT])
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        commit_and_settle(w.client, w.operator, street.readings(SLOT), batch_size=0)
    assert street.head == head
