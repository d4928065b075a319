"""The market end to end on the embedded chain: readings, agents' orders, clearing, settlement,
indexing and statements, checked against the chain's own events to the micro-euro and the Wh.

Also: the worker's idempotency, batch splitting, recovery after a crash between sending and
recording, and re-planning when the chain moved under a plan.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger import Chain, Tariffs, open_chain
from ledger.audit.digest import OUTCOME_FIELDS
from ledger.market.agent_orders import AgentHousehold, post_default_orders
from ledger.market.agents import AgentSettings, DailyRamp
from ledger.market.data import MarketDataError, load_statement, load_statements
from ledger.market.settlement import BASE_BATCH_GAS, WORST_FILL_GAS, SettlementWorker, SlotOutcome
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import index
from ledger.mirror.models import (
    OrderRecord,
    ReadingRecord,
    SettlementBatchRecord,
    SlotDigestRecord,
    SlotOutcomeRecord,
)
from ledger.types import KEPT_SLOTS, Event
from tests.world import SLOT, Member, World, new_world

SLOTS = range(SLOT, SLOT + 8)
TOPUP = 2_000_000


@dataclass
class Market:
    world: World
    engine: Engine
    members: list[Member]
    prosumers: set[int]
    agents: dict[int, AgentHousehold]
    start_block: int

    def meter_slot(self, slot: int, deltas: dict[int, tuple[int, int]]) -> None:
        """Commit one reading per member with the given (import, export) deltas, one tx."""
        signed = []
        for m in self.members:
            imp, exp = deltas[m.id]
            m.import_Wh += imp
            m.export_Wh += exp
            signed.append(self.world.sign(m, slot, m.import_Wh, m.export_Wh))
        self.world.client.commit_readings(self.world.operator, signed)

    def worker(self, mechanism: str = "pay-as-clear", **kwargs: object) -> SettlementWorker:
        return SettlementWorker(
            self.world.client,
            self.engine,
            self.world.operator,
            mechanism,
            agents={h: a.settings for h, a in self.agents.items()},
            start_block=self.start_block,
            **kwargs,  # type: ignore[arg-type]
        )

    def events(self, name: str) -> list[Event]:
        head = int(self.world.chain.w3.eth.block_number)
        return [e for e in self.world.client.events(self.start_block, head) if e.name == name]


def _deltas(rng: random.Random, market: Market, t: int) -> dict[int, tuple[int, int]]:
    """Import/export per member: PV households export around midday, everyone imports."""
    out: dict[int, tuple[int, int]] = {}
    for m in market.members:
        if m.id in market.prosumers and 2 <= t <= 6:
            out[m.id] = (rng.choice([0, 0, 40]), rng.randint(200, 900))
        else:
            out[m.id] = (rng.randint(50, 600), 0)
    return out


def new_market(chain: Chain, tmp_path: Path, households: int = 6) -> Market:
    world = new_world(chain)
    start_block = int(chain.w3.eth.block_number)
    engine = make_engine(f"sqlite:///{tmp_path / 'market.db'}")
    members: list[Member] = []
    prosumers: set[int] = set()
    agents: dict[int, AgentHousehold] = {}
    for i in range(households):
        prosumer = i % 2 == 0
        m = world.household(prosumer=prosumer, topup_ueur=TOPUP)
        members.append(m)
        if prosumer:
            prosumers.add(m.id)
        settings = AgentSettings(
            sell_markup_ueur_per_kWh=10_000 * (i + 1), buy_discount_ueur_per_kWh=5_000 * (i + 1)
        )
        if i == 1:
            # One buyer follows a daily ramp instead of a fixed limit.
            settings = AgentSettings(buy_ramp=DailyRamp(60_000, 200_000, 0, 24))
        agents[m.id] = AgentHousehold(m.account, prosumer, settings)
    return Market(world, engine, members, prosumers, agents, start_block)


@pytest.fixture
def memory_chain() -> Iterator[Chain]:
    with open_chain("memory") as chain:
        yield chain


def _energy_by_slot(events: list[Event]) -> dict[tuple[int, int], tuple[int, int]]:
    """(household, slot) -> (import delta, export delta) from ReadingCommitted events."""
    return {
        (int(e.args["household"]), int(e.args["slot"])): (
            int(e.args["importDeltaWh"]),
            int(e.args["exportDeltaWh"]),
        )
        for e in events
    }


@pytest.mark.parametrize("mechanism", ["pay-as-clear", "midpoint", "pay-as-offer"])
def test_eight_slots_settle_and_statements_match_the_chain_to_the_microeuro(
    embedded_chain: Chain, tmp_path: Path, mechanism: str
) -> None:
    _eight_slots(embedded_chain, tmp_path, mechanism)


@pytest.mark.anvil
def test_eight_slots_settle_the_same_way_on_an_anvil_node(
    anvil_chain: Chain, tmp_path: Path
) -> None:
    _eight_slots(anvil_chain, tmp_path, "pay-as-clear")


def _eight_slots(chain: Chain, tmp_path: Path, mechanism: str) -> None:
    market = new_market(chain, tmp_path)
    client = market.world.client
    posted = post_default_orders(
        client, market.engine, market.agents, SLOTS[0], start_block=market.start_block
    )
    # Three prosumers offer, all six bid.
    assert sorted(side for _, side in posted) == ["bid"] * 6 + ["offer"] * 3
    # Posting again adds nothing: every household now has its standing orders.
    assert (
        post_default_orders(
            client, market.engine, market.agents, SLOTS[0], start_block=market.start_block
        )
        == {}
    )
    worker = market.worker(mechanism)
    rng = random.Random(7)
    outcomes: list[SlotOutcome] = []
    for t, slot in enumerate(SLOTS):
        market.meter_slot(slot, _deltas(rng, market, t))
        if t == 4:
            # A direct take before the slot is cleared: the worker clears what is left.
            seller = market.members[0]
            buyer = market.members[3]
            client.take_offer(buyer.account, posted[(seller.id, "offer")], slot, 50)
        outcomes.append(worker.settle_slot(slot))

    assert sum(o.fills for o in outcomes) > 0, "the book was built so that trades happen"
    # Running a slot again settles nothing more and changes no block.
    head = int(chain.w3.eth.block_number)
    assert worker.settle_slot(SLOTS[3]) == outcomes[3]
    assert int(chain.w3.eth.block_number) == head

    index(client, market.engine, start_block=market.start_block)
    tariffs = client.tariffs()
    fills = market.events("FillSettled")
    metered = _energy_by_slot(market.events("ReadingCommitted"))

    # Slot outcomes against the chain: matched energy, fees, unmatched residuals.
    for outcome in outcomes:
        batch = [e for e in fills if e.args["slot"] == outcome.slot and int(e.args["bidId"]) != 0]
        assert outcome.fills == len(batch)
        assert outcome.matched_Wh == sum(int(e.args["energyWh"]) for e in batch)
        assert outcome.fees_ueur == sum(int(e.args["feeUeur"]) for e in batch)
        assert outcome.unmatched_surplus_Wh == outcome.surplus_Wh - outcome.matched_Wh >= 0
        assert outcome.unmatched_deficit_Wh == outcome.deficit_Wh - outcome.matched_Wh >= 0
        if mechanism == "pay-as-clear" and batch:
            assert {int(e.args["priceUeurPerKWh"]) for e in batch} == {
                outcome.clearing_price_ueur_per_kWh
            }

    # Every household's statement against the chain's events and balances.
    paid: dict[int, int] = defaultdict(int)
    fees: dict[int, int] = defaultdict(int)
    earned: dict[int, int] = defaultdict(int)
    bought: dict[tuple[int, int], int] = defaultdict(int)
    sold: dict[tuple[int, int], int] = defaultdict(int)
    for e in fills:
        buyer, seller, slot = int(e.args["buyer"]), int(e.args["seller"]), int(e.args["slot"])
        paid[buyer] += int(e.args["costUeur"])
        fees[buyer] += int(e.args["feeUeur"])
        earned[seller] += int(e.args["costUeur"])
        bought[(buyer, slot)] += int(e.args["energyWh"])
        sold[(seller, slot)] += int(e.args["energyWh"])
    # All the statements read at once (as a run's report reads them), in the order asked.
    ids = [m.id for m in market.members][::-1]
    together = dict(zip(ids, load_statements(market.engine, ids, SLOTS[0], SLOTS[-1]), strict=True))
    with pytest.raises(MarketDataError, match="household 9999 is not registered"):
        load_statements(market.engine, [ids[0], 9_999], SLOTS[0], SLOTS[-1])
    for m in market.members:
        st = load_statement(market.engine, m.id, SLOTS[0], SLOTS[-1])
        assert together[m.id] == st
        assert (st.paid_local_ueur, st.fees_ueur, st.earned_local_ueur) == (
            paid[m.id],
            fees[m.id],
            earned[m.id],
        )
        balance = client.balance_of(m.account.address)
        assert balance == TOPUP - st.paid_local_ueur - st.fees_ueur + st.earned_local_ueur
        grid_only = 0
        for line in st.lines:
            imp, exp = metered[(m.id, line.slot)]
            # Local plus grid equals the metered energy, in every slot.
            assert (line.import_Wh, line.export_Wh) == (imp, exp)
            assert line.bought_Wh == bought[(m.id, line.slot)]
            assert line.sold_Wh == sold[(m.id, line.slot)]
            assert line.bought_Wh + line.grid_import_Wh == imp
            assert line.sold_Wh + line.grid_export_Wh == exp
            retail, feed_in = tariffs.retail_ueur_per_kWh, tariffs.feed_in_ueur_per_kWh
            grid_only += imp * retail // 1000 - exp * feed_in // 1000
        assert len(st.lines) == len(SLOTS)
        assert st.grid_only_cost_ueur == grid_only
        assert st.savings_ueur == grid_only - st.net_cost_ueur
        # Whoever traded locally inside the band did not pay more than the grid would charge.
        assert st.savings_ueur >= 0


def test_a_slot_too_big_for_one_batch_is_split_and_settles_the_same_energy(
    memory_chain: Chain, tmp_path: Path
) -> None:
    market = new_market(memory_chain, tmp_path, households=8)
    post_default_orders(
        market.world.client, market.engine, market.agents, SLOT, start_block=market.start_block
    )
    market.meter_slot(
        SLOT, {m.id: (0, 700) if m.id in market.prosumers else (400, 0) for m in market.members}
    )
    # A budget for two fills per batch.
    worker = market.worker(gas_budget=max_fills_gas(2))
    assert worker.per_batch == 2
    outcome = worker.settle_slot(SLOT)
    assert outcome.fills >= 3 and outcome.batches == -(-outcome.fills // 2)
    settled = market.events("BatchSettled")
    assert [int(e.args["batch"]) for e in settled] == list(range(outcome.batches))
    assert outcome.matched_Wh == 1600  # 4 buyers x 400 Wh, with 2,800 Wh on offer


def max_fills_gas(fills: int) -> int:
    return BASE_BATCH_GAS + WORST_FILL_GAS * fills


def test_a_crash_after_sending_a_batch_never_settles_it_twice(
    memory_chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = new_market(memory_chain, tmp_path, households=8)
    post_default_orders(
        market.world.client, market.engine, market.agents, SLOT, start_block=market.start_block
    )
    market.meter_slot(
        SLOT, {m.id: (0, 700) if m.id in market.prosumers else (400, 0) for m in market.members}
    )
    worker = market.worker(gas_budget=max_fills_gas(1))

    class Crash(Exception):
        pass

    def crash(*args: object) -> None:
        raise Crash

    # The first batch reaches the chain, then the process dies before recording it.
    monkeypatch.setattr(SettlementWorker, "_mark_sent", crash)
    with pytest.raises(Crash):
        worker.settle_slot(SLOT)
    monkeypatch.undo()
    assert len(market.events("BatchSettled")) == 1
    with Session(market.engine) as s:
        record = s.get(SlotOutcomeRecord, SLOT)
        assert record is not None and record.status == "planned"

    outcome = market.worker(gas_budget=max_fills_gas(1)).settle_slot(SLOT)
    settled = market.events("BatchSettled")
    assert sorted(int(e.args["batch"]) for e in settled) == list(range(outcome.batches))
    assert outcome.matched_Wh == sum(int(e.args["energyWh"]) for e in settled) == 1600
    with Session(market.engine) as s:
        batches = s.exec(select(SettlementBatchRecord)).all()
        assert all(b.tx_hash and b.gas_used > 0 for b in batches)


def test_a_take_between_plan_and_send_makes_the_worker_clear_the_rest_again(
    memory_chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = new_market(memory_chain, tmp_path, households=2)
    client = market.world.client
    posted = post_default_orders(
        client, market.engine, market.agents, SLOT, start_block=market.start_block
    )
    seller, buyer = market.members
    market.meter_slot(SLOT, {seller.id: (0, 500), buyer.id: (800, 0)})
    worker = market.worker()
    plan = SettlementWorker._plan

    def plan_then_take(self: SettlementWorker, slot: int, tariffs: Tariffs) -> object:
        record = plan(self, slot, tariffs)
        client.take_offer(buyer.account, posted[(seller.id, "offer")], slot, 300)
        return record

    monkeypatch.setattr(SettlementWorker, "_plan", plan_then_take)
    outcome = worker.settle_slot(SLOT)
    # The plan wanted all 500 Wh; the take got 300 first, the batch settled the other 200.
    assert outcome.surplus_Wh == 500
    assert outcome.matched_Wh == 200 and outcome.unmatched_surplus_Wh == 300
    assert client.slot_energy(seller.id, SLOT).sold_Wh == 500


def test_a_buyer_short_of_funds_is_capped_to_what_it_can_pay(
    memory_chain: Chain, tmp_path: Path
) -> None:
    market = new_market(memory_chain, tmp_path, households=2)
    client = market.world.client
    post_default_orders(client, market.engine, market.agents, SLOT, start_block=market.start_block)
    seller, buyer = market.members
    # Leave the buyer 10,000 ueur: at most 10,000 * 1000 // (price + fee) Wh.
    client.transfer(buyer.account, market.world.operator.address, TOPUP - 10_000)
    market.meter_slot(SLOT, {seller.id: (0, 5_000), buyer.id: (5_000, 0)})
    outcome = market.worker().settle_slot(SLOT)
    assert 0 < outcome.matched_Wh < 5_000
    assert client.balance_of(buyer.account.address) >= 0
    assert outcome.cost_ueur + outcome.fees_ueur <= 10_000


def test_funds_spent_between_plan_and_send_make_the_worker_cap_that_buyer(
    memory_chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = new_market(memory_chain, tmp_path, households=2)
    client = market.world.client
    post_default_orders(client, market.engine, market.agents, SLOT, start_block=market.start_block)
    seller, buyer = market.members
    market.meter_slot(SLOT, {seller.id: (0, 5_000), buyer.id: (5_000, 0)})
    plan = SettlementWorker._plan
    refused: list[str] = []

    def plan_then_spend(self: SettlementWorker, slot: int, tariffs: Tariffs) -> object:
        record = plan(self, slot, tariffs)
        # The buyer spends all but 10,000 ueur after the plan was made from the mirror.
        client.transfer(buyer.account, market.world.operator.address, TOPUP - 10_000)
        return record

    monkeypatch.setattr(SettlementWorker, "_plan", plan_then_spend)
    outcome = market.worker(say=refused.append).settle_slot(SLOT)
    assert any("InsufficientFunds" in line for line in refused)
    assert 0 < outcome.matched_Wh < 5_000
    assert outcome.cost_ueur + outcome.fees_ueur <= 10_000
    assert (
        client.balance_of(buyer.account.address) == 10_000 - outcome.cost_ueur - outcome.fees_ueur
    )


def test_a_slot_settled_after_a_backlog_leaves_out_the_households_whose_slot_has_gone(
    memory_chain: Chain, tmp_path: Path
) -> None:
    """Readings KEPT_SLOTS slots later came before the settlement (a worker that was down): the
    contract keeps nothing of the slot for those households, so the plan leaves them out and
    settles the rest, instead of sending fills the chain must refuse."""
    market = new_market(memory_chain, tmp_path, households=4)
    client = market.world.client
    post_default_orders(client, market.engine, market.agents, SLOT, start_block=market.start_block)
    early_seller, buyer, late_seller, _other_buyer = market.members
    market.meter_slot(
        SLOT, {m.id: (0, 400) if m.id in market.prosumers else (300, 0) for m in market.members}
    )
    # The early seller's meter went on for KEPT_SLOTS more slots before the worker ran.
    for k in range(1, KEPT_SLOTS + 1):
        early_seller.export_Wh += 10
        client.commit_readings(
            market.world.operator,
            [
                market.world.sign(
                    early_seller, SLOT + k, early_seller.import_Wh, early_seller.export_Wh
                )
            ],
        )
    assert client.credits_of(early_seller.id, SLOT) == 0
    outcome = market.worker().settle_slot(SLOT)
    sellers = {e.args["seller"] for e in market.events("FillSettled")}
    assert sellers == {late_seller.id}
    assert outcome.matched_Wh == 400 and outcome.surplus_Wh == 400
    assert client.slot_energy(late_seller.id, SLOT).sold_Wh == 400
    assert buyer.id in {e.args["buyer"] for e in market.events("FillSettled")}


@pytest.mark.parametrize("mechanism", ["pay-as-clear", "pay-as-offer"])
def test_a_slot_settled_before_its_database_was_lost_keeps_its_whole_figures(
    memory_chain: Chain, tmp_path: Path, mechanism: str
) -> None:
    """A worker whose database lost a settled slot (restored from before it, or another
    worker's) finds the slot's batches on chain: it sends nothing again, the slot's figures
    count what those batches settled (no negative unmatched energy; a clearing price only
    from a mechanism that has one), and its digest link is the one the chain sealed."""
    market = new_market(memory_chain, tmp_path, households=8)
    post_default_orders(
        market.world.client, market.engine, market.agents, SLOT, start_block=market.start_block
    )
    # One seller: its fills share one price whatever the mechanism.
    seller = min(market.prosumers)
    market.meter_slot(
        SLOT,
        {
            m.id: (0, 700) if m.id == seller else (0, 0) if m.id in market.prosumers else (400, 0)
            for m in market.members
        },
    )
    original = market.worker(mechanism).settle_slot(SLOT)
    assert original.matched_Wh > 0 and original.fills > 0
    _forget_settlements(market.engine)

    again = market.worker(mechanism).settle_slot(SLOT)
    assert len(market.events("BatchSettled")) == original.batches  # nothing sent twice
    fields = ("clearing_price_ueur_per_kWh", "households", "surplus_Wh", "deficit_Wh",
              "matched_Wh", "unmatched_surplus_Wh", "unmatched_deficit_Wh", "fills",
              "cost_ueur", "fees_ueur")  # fmt: skip
    assert {f: getattr(again, f) for f in fields} == {f: getattr(original, f) for f in fields}
    assert again.unmatched_surplus_Wh >= 0 and again.unmatched_deficit_Wh >= 0
    # Its link of the digest chain comes back as the chain sealed it, not a new one.
    with Session(market.engine) as s:
        links = s.exec(select(SlotDigestRecord)).all()
    assert [link.digest for link in links] == [market.world.client.sealed_digest_head(SLOT)]


@dataclass
class LateMeter:
    """A market whose first prosumer sells 300 Wh a slot to buyers wanting 400 Wh each, and
    whose second prosumer's meter reports after the slots are settled."""

    market: Market
    seller: int
    late: Member

    def settle_on_time(self, slot: int) -> SlotOutcome:
        """Every meter but the late one reads ``slot``, which is then settled."""
        m = self.market
        on_time = [x for x in m.members if x is not self.late]
        for x in on_time:
            x.export_Wh += 300 if x.id == self.seller else 0
            x.import_Wh += 0 if x.id in m.prosumers else 400
        signed = [m.world.sign(x, slot, x.import_Wh, x.export_Wh) for x in on_time]
        m.world.client.commit_readings(m.world.operator, signed)
        return m.worker().settle_slot(slot)

    def report_late(self, slot: int, export_Wh: int = 800) -> None:
        self.late.export_Wh += export_Wh
        signed = self.market.world.sign(self.late, slot, self.late.import_Wh, self.late.export_Wh)
        self.market.world.client.commit_readings(self.market.world.operator, [signed])


def late_meter_market(chain: Chain, tmp_path: Path) -> LateMeter:
    market = new_market(chain, tmp_path, households=8)
    client = market.world.client
    post_default_orders(client, market.engine, market.agents, SLOT, start_block=market.start_block)
    seller, late = sorted(market.prosumers)[:2]
    return LateMeter(market, seller, next(m for m in market.members if m.id == late))


def test_a_reading_committed_late_for_a_settled_slot_is_not_traded_when_it_is_settled_again(
    memory_chain: Chain, tmp_path: Path
) -> None:
    """A reading committed after its slot was settled and sealed came too late for the slot's
    market. A worker whose database lost the slot settles it again from what the slot was
    when it was cleared: the late surplus is not matched to the buyers still short, the slot's
    figures are those first recorded, and its digest link is the one the chain sealed."""
    lm = late_meter_market(memory_chain, tmp_path)
    market, client, late = lm.market, lm.market.world.client, lm.late.id
    original = lm.settle_on_time(SLOT)
    assert 0 < original.matched_Wh == 300 < original.deficit_Wh  # buyers left short
    lm.report_late(SLOT)
    fills_before = len(market.events("FillSettled"))
    _forget_settlements(market.engine)

    again = market.worker().settle_slot(SLOT)
    assert len(market.events("FillSettled")) == fills_before  # the late surplus not traded
    assert client.slot_energy(late, SLOT).sold_Wh == 0
    sealed = {f: getattr(original, f) for f in OUTCOME_FIELDS}
    assert {f: getattr(again, f) for f in OUTCOME_FIELDS} == sealed
    with Session(market.engine) as s:
        links = s.exec(select(SlotDigestRecord)).all()
    assert [link.digest for link in links] == [client.sealed_digest_head(SLOT)]


def _planned_as_backed_up(s: Session) -> None:
    """SLOT as a backup taken while it was being settled holds it: planned, not sealed."""
    record = s.get(SlotOutcomeRecord, SLOT)
    assert record is not None
    record.status, record.gas_used = "planned", 0
    s.add(record)
    for link in s.exec(select(SlotDigestRecord)).all():
        s.delete(link)


def _forget_settlements(engine: Engine) -> None:
    """As a database restored from before the slots were settled holds them."""
    with Session(engine) as s:
        for model in (SlotOutcomeRecord, SettlementBatchRecord, SlotDigestRecord):
            for row in s.exec(select(model)).all():
                s.delete(row)
        s.commit()


def test_sealed_slots_settled_again_trade_nothing_even_after_a_link_that_cannot_be_rebuilt(
    memory_chain: Chain, tmp_path: Path
) -> None:
    """Two slots settled and sealed, then lost by the database. The first one's link cannot
    be rebuilt (a mirrored record of it was changed), so it is written anew at the head; the
    second, which a meter reported late and whose buyer was deactivated since, still trades
    nothing and keeps the figures first recorded."""
    lm = late_meter_market(memory_chain, tmp_path)
    market, client, late = lm.market, lm.market.world.client, lm.late.id
    gone = max(m.id for m in market.members if m.id not in market.prosumers)
    originals = [lm.settle_on_time(slot) for slot in (SLOT, SLOT + 1)]
    lm.report_late(SLOT + 1)
    client.deactivate_household(market.world.operator, gone)
    fills_before = len(market.events("FillSettled"))
    _forget_settlements(market.engine)
    with Session(market.engine) as s:
        changed = s.exec(select(ReadingRecord).where(ReadingRecord.slot == SLOT)).first()
        assert changed is not None
        changed.import_delta_Wh += 1
        s.add(changed)
        s.commit()

    worker = market.worker()
    for e in market.events("SlotSealed"):
        worker.settle_sealed(int(e.args["slot"]), str(e.args["digestHead"]), e.block_number)
    assert len(market.events("FillSettled")) == fills_before
    assert client.slot_energy(late, SLOT + 1).sold_Wh == 0
    again = worker.outcome(SLOT + 1)
    assert again is not None
    assert {f: getattr(again, f) for f in OUTCOME_FIELDS} == {
        f: getattr(originals[1], f) for f in OUTCOME_FIELDS
    }


def test_a_plan_overtaken_by_the_chains_seal_sends_nothing_more(
    memory_chain: Chain, tmp_path: Path
) -> None:
    """A database restored from while a slot was being settled holds its plan with a batch
    unsent (one the chain would still take: a meter reported late, a buyer is still short),
    but the chain settled and sealed the slot since: the unsent batch stays unsent."""
    lm = late_meter_market(memory_chain, tmp_path)
    market, client, late = lm.market, lm.market.world.client, lm.late.id
    original = lm.settle_on_time(SLOT)
    lm.report_late(SLOT)
    index(client, market.engine, start_block=market.start_block)
    (fill,) = market.events("FillSettled")
    buyer = int(fill.args["buyer"])
    with Session(market.engine) as s:
        offer = s.exec(
            select(OrderRecord).where(OrderRecord.household == late, OrderRecord.side == "offer")
        ).first()
        assert offer is not None
        _planned_as_backed_up(s)
        unsent = [[offer.order_id, int(fill.args["bidId"]), 100, int(fill.args["priceUeurPerKWh"])]]
        s.add(SettlementBatchRecord(slot=SLOT, batch=1, fills_json=json.dumps(unsent)))
        s.commit()
    batches = len(market.events("BatchSettled"))

    again = market.worker().settle_slot(SLOT)
    assert len(market.events("BatchSettled")) == batches
    assert client.slot_energy(late, SLOT).sold_Wh == 0
    assert client.slot_energy(buyer, SLOT).bought_Wh == 300
    assert again.status == "settled" and again.fills == original.fills


def _short_buyer_slot(
    chain: Chain, tmp_path: Path, *, gone_before: bool = False
) -> tuple[Market, Member]:
    """A seller's 1,000 Wh against three buyers' 400 Wh each, one of them (returned) with
    20,000 micro-euro left, which caps what it can buy; the slot is metered, not settled.
    ``gone_before``: another buyer is deactivated between its reading and the clearing."""
    market = new_market(chain, tmp_path, households=4)
    client = market.world.client
    post_default_orders(client, market.engine, market.agents, SLOT, start_block=market.start_block)
    seller = min(market.prosumers)
    short = max(m for m in market.members if m.id not in market.prosumers and m.id != 2)
    client.transfer(short.account, market.world.operator.address, TOPUP - 20_000)
    market.meter_slot(
        SLOT, {m.id: (0, 1_000) if m.id == seller else (400, 0) for m in market.members}
    )
    if gone_before:
        gone = min(m.id for m in market.members if m.id not in market.prosumers)
        assert gone != short.id
        client.deactivate_household(market.world.operator, gone)
    return market, short


def _settled_again_as_sealed(market: Market, original: SlotOutcome) -> SlotOutcome:
    """Settle the slot again from a database that lost it; check its figures and link."""
    client = market.world.client
    _forget_settlements(market.engine)
    index(client, market.engine, start_block=market.start_block)
    again = market.worker().settle_slot(SLOT)
    assert {f: getattr(again, f) for f in OUTCOME_FIELDS} == {
        f: getattr(original, f) for f in OUTCOME_FIELDS
    }
    with Session(market.engine) as s:
        links = s.exec(select(SlotDigestRecord)).all()
    assert [link.digest for link in links] == [client.sealed_digest_head(SLOT)]
    return again


@pytest.mark.parametrize("since", ["nothing", "bid cancelled", "fee raised", "deactivated before"])
def test_a_slot_settled_again_counts_what_its_clearing_saw_not_what_changed_since(
    memory_chain: Chain, tmp_path: Path, since: str
) -> None:
    """A buyer whose funds capped its deficit: settled again from a database that lost the
    slot, its deficit is capped by the funds it had then (the chain's state before the slot's
    first batch), with the tariffs, the orders and the households of then, so the figures and
    the digest link are the ones sealed. Changed since: the buyer cancelled its bid, the grid
    fee was tripled; or a buyer deactivated after its reading but before the clearing."""
    market, short = _short_buyer_slot(
        memory_chain, tmp_path, gone_before=since == "deactivated before"
    )
    client = market.world.client
    original = market.worker().settle_slot(SLOT)
    assert client.slot_energy(short.id, SLOT).bought_Wh > 0
    if since == "bid cancelled":
        with Session(market.engine) as s:
            bids = s.exec(
                select(OrderRecord).where(
                    OrderRecord.household == short.id, OrderRecord.side == "bid"
                )
            ).all()
        for bid in bids:
            client.cancel_bid(short.account, bid.order_id)
    elif since == "fee raised":
        t = client.tariffs()
        raised = Tariffs(t.feed_in_ueur_per_kWh, t.retail_ueur_per_kWh, 3 * t.grid_fee_ueur_per_kWh)
        client.set_tariffs(market.world.operator, raised)
    _settled_again_as_sealed(market, original)


def test_a_batch_the_chain_settled_after_the_backup_is_adopted_not_dropped(
    memory_chain: Chain, tmp_path: Path
) -> None:
    """A database restored from between a slot's plan and its first batch's send holds the
    batch unsent; the chain settled and sealed it since: the batch is recorded as sent, with
    its transaction and gas."""
    market, _ = _short_buyer_slot(memory_chain, tmp_path)
    original = market.worker().settle_slot(SLOT)
    with Session(market.engine) as s:
        _planned_as_backed_up(s)
        for batch in s.exec(select(SettlementBatchRecord)).all():
            batch.tx_hash, batch.gas_used = None, 0
            s.add(batch)
        s.commit()
    batches = len(market.events("BatchSettled"))

    again = market.worker().settle_slot(SLOT)
    assert len(market.events("BatchSettled")) == batches
    assert (again.batches, again.gas_used, again.fills) == (
        original.batches,
        original.gas_used,
        original.fills,
    )
