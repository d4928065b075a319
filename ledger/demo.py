"""A small end-to-end walk through the settlement core, on any chain backend.

Four households (two with PV) meter four slots; their meters sign EIP-712 readings, which are
stored as the audit's evidence, committed on chain and mint credits; each household's agent
posts its default standing orders (prosumers offer, everyone bids); the settlement worker
clears each slot (pay-as-clear by default) and settles it in one batch transaction whose fills
the contract re-checks; one household also takes an offer directly; the indexer mirrors every
event into the database; each household gets a statement with its savings against grid-only
supply; and the conservation of energy and money is checked from both the chain and the
mirror, so that ``voisin audit`` on the demo's data dir traces every credit to its reading.
The metered figures are a fixed illustration (a spring morning); the simulator drives real
load and PV models instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from ledger.chain.backends import Chain, open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import open_ledger
from ledger.market.agent_orders import AgentHousehold, post_default_orders
from ledger.market.agents import AgentSettings
from ledger.market.data import load_statement
from ledger.market.settlement import SettlementWorker
from ledger.market.slot_step import commit_and_settle
from ledger.market.statements import Statement
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import index
from ledger.mirror.models import ChainEvent, FillRecord, SlotOutcomeRecord
from ledger.readings.eip712 import Reading, SignedReading, sign_reading
from ledger.types import KEPT_SLOTS, SLOT_SECONDS, SlotEnergy

#: (name, prosumer, per-slot import Wh, per-slot export Wh) over four slots.
HOUSEHOLDS: tuple[tuple[str, bool, tuple[int, ...], tuple[int, ...]], ...] = (
    ("Amélie (PV 6 kWp)", True, (0, 0, 0, 0), (420, 610, 780, 690)),
    ("Bastien (PV 3 kWp)", True, (40, 0, 0, 0), (0, 180, 260, 210)),
    ("Chloé", False, (350, 410, 520, 380), (0, 0, 0, 0)),
    ("David", False, (280, 300, 260, 450), (0, 0, 0, 0)),
)
#: What each household is topped up with (micro-euro): 5 EUR, more than any bill of the demo.
TOP_UP_UEUR = 5_000_000


@dataclass
class DemoHousehold:
    name: str
    prosumer: bool
    account: LocalAccount
    meter: LocalAccount
    id: int = 0
    import_Wh: int = 0
    export_Wh: int = 0
    offer_id: int = 0
    bid_id: int = 0


@dataclass
class DemoReport:
    chain: str
    contract: str
    first_slot: int
    slots: int
    readings: int = 0
    fills: int = 0
    local_Wh: int = 0
    fees_ueur: int = 0
    gas_used: int = 0
    events_indexed: int = 0
    households: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


def run_demo(
    chain_spec: str,
    data_dir: Path,
    database_url: str,
    operator_key: str | None = None,
    say: Callable[[str], None] = print,
    mechanism: str = "pay-as-clear",
) -> DemoReport:
    """Run the walk-through and return what happened, with its conservation checks.

    In order: set the four households up (registered, topped up, standing orders posted), meter
    and settle each slot, mirror the chain, then set each household's statement against the
    chain and check that energy and money are conserved on the chain and in the mirror.
    """
    with open_chain(chain_spec, data_dir, operator_key) as chain:
        client, deployment = open_ledger(chain)
        say(f"chain {chain.kind} (id {chain.chain_id}), Voisin at {deployment.address}")
        engine = make_engine(database_url)
        slots = len(HOUSEHOLDS[0][2])
        first_slot = _fresh_first_slot(engine, slots)
        report = DemoReport(chain.kind, deployment.address, first_slot, slots)
        tariffs = client.tariffs()
        say(
            f"tariffs (ueur/kWh): feed-in {tariffs.feed_in_ueur_per_kWh}, "
            f"retail {tariffs.retail_ueur_per_kWh}, grid fee {tariffs.grid_fee_ueur_per_kWh}"
        )
        supply_before = client.total_supply()
        fees_before = client.balance_of(client.fee_recipient())

        people = _register(chain, client, say)
        top_ups = _top_up(client, chain.operator, people, say)
        _post_standing_orders(client, engine, people, first_slot, deployment.block_number, say)
        worker = SettlementWorker(
            client, engine, chain.operator, mechanism, start_block=deployment.block_number
        )
        _meter_and_settle(client, worker, people, report, say)

        indexed = index(client, engine, start_block=deployment.block_number)
        on_chain = len(client.events(deployment.block_number, indexed.to_block))
        say(f"indexed up to block {indexed.to_block} into the database")
        report.fees_ueur = client.balance_of(client.fee_recipient()) - fees_before
        reconciled = [_reconcile(client, engine, p, first_slot, slots) for p in people]
        report.households = [r.line for r in reconciled]
        mirrored = _mirrored(engine, people, deployment.address)
        report.events_indexed = mirrored.events
        report.checks = _checks(
            report,
            reconciled,
            top_ups_ueur=top_ups,
            supply_growth_ueur=client.total_supply() - supply_before,
            mirrored=mirrored,
            events_on_chain=on_chain,
        )
        say(f"grid fees of this run: {report.fees_ueur} ueur, paid to the operator")
        return report


# ───────────────────────────── Set-up ─────────────────────────────


def _fresh_first_slot(engine: Engine, slots: int) -> int:
    """The first of the latest ``slots`` consecutive slots that have ended and that this market
    has neither settled nor planned.

    A slot settles once per market, so a second run in the same data dir goes back in time,
    before the slots the first one took, never ahead: the contract refuses a reading more than
    one slot ahead of the chain's clock (``FutureReading``). Each run's meters are new, so an
    earlier slot is still each meter's first reading.
    """
    last = int(time.time()) // SLOT_SECONDS - 1
    with Session(engine) as session:
        taken = set(
            session.exec(select(SlotOutcomeRecord.slot).where(SlotOutcomeRecord.slot <= last))
        )
    return _latest_free_window(taken, last, slots)


def _latest_free_window(taken: Collection[int], last: int, length: int) -> int:
    """The first slot of the latest ``length`` consecutive slots that end at or before ``last``
    and hold none of ``taken``."""
    end = last
    while clash := [s for s in taken if end - length < s <= end]:
        # Every window that ends between the latest clashing slot and ``end`` holds that slot.
        end = max(clash) - 1
    return end - length + 1


def _register(
    chain: Chain, client: VoisinClient, say: Callable[[str], None]
) -> list[DemoHousehold]:
    """Each household of :data:`HOUSEHOLDS`, with fresh (funded) account and meter keys."""
    people: list[DemoHousehold] = []
    for name, prosumer, _, _ in HOUSEHOLDS:
        person = DemoHousehold(name, prosumer, Account.create(), Account.create())
        chain.fund(person.account.address)
        person.id = client.register_household(
            chain.operator, person.account.address, person.meter.address, prosumer=prosumer
        )
        people.append(person)
    say(f"registered {len(people)} households: " + ", ".join(p.name for p in people))
    return people


def _top_up(
    client: VoisinClient,
    operator: LocalAccount,
    people: Sequence[DemoHousehold],
    say: Callable[[str], None],
) -> int:
    """Top each household up with :data:`TOP_UP_UEUR`; returns the sum (micro-euro)."""
    for person in people:
        client.top_up(operator, person.account.address, TOP_UP_UEUR)
    say(f"topped up each household with {TOP_UP_UEUR / 1_000_000:.2f} EUR")
    return TOP_UP_UEUR * len(people)


def _post_standing_orders(
    client: VoisinClient,
    engine: Engine,
    people: Sequence[DemoHousehold],
    first_slot: int,
    start_block: int,
    say: Callable[[str], None],
) -> None:
    """Each household's agent posts its default standing orders; their ids are kept."""
    agents = {p.id: AgentHousehold(p.account, p.prosumer, AgentSettings()) for p in people}
    posted = post_default_orders(client, engine, agents, first_slot, start_block=start_block)
    for person in people:
        person.offer_id = posted.get((person.id, "offer"), 0)
        person.bid_id = posted.get((person.id, "bid"), 0)
    say(
        "agents posted default standing orders: prosumers offer at feed-in + 0.02 EUR/kWh, "
        "everyone bids up to retail - 0.02 EUR/kWh all in"
    )


# ───────────────────────────── The slots ─────────────────────────────


def _meter_and_settle(
    client: VoisinClient,
    worker: SettlementWorker,
    people: Sequence[DemoHousehold],
    report: DemoReport,
    say: Callable[[str], None],
) -> None:
    """Each slot: the meters sign their readings, which are stored as evidence and committed,
    then the slot is settled (:func:`ledger.market.slot_step.commit_and_settle`, in two steps
    so that in the last slot David can first take 100 Wh directly from Amélie's offer)."""
    domain = client.domain_separator()
    amelie, david = people[0], people[3]
    for t in range(report.slots):
        slot = report.first_slot + t
        signed = _sign_slot(people, t, slot, domain)
        # Stored as the audit's evidence, then committed; not pre-validated by the intake,
        # so each batch is dry-run before it is sent.
        committed = commit_and_settle(
            client, worker.settler, signed, worker=worker, check_first=True
        )
        report.readings += committed.committed
        report.gas_used += committed.gas_used
        if t == report.slots - 1:
            _take(client, david, amelie, slot, report, say)
        settled = commit_and_settle(client, worker.settler, [], worker=worker, settle=[slot])
        report.fills += settled.fills
        report.local_Wh += settled.matched_Wh
        report.gas_used += settled.gas_used
        (outcome,) = settled.outcomes
        price = outcome.clearing_price_ueur_per_kWh
        say(
            f"slot {slot}: {committed.committed} signed readings committed; "
            f"{worker.mechanism_name} "
            f"{'at ' + str(price) + ' ueur/kWh' if price is not None else 'found no trade'}: "
            f"{outcome.fills} fills, {outcome.matched_Wh} Wh local, "
            f"{outcome.unmatched_surplus_Wh} Wh to the grid, "
            f"{outcome.unmatched_deficit_Wh} Wh from the grid"
        )


def _sign_slot(
    people: Sequence[DemoHousehold], t: int, slot: int, domain: bytes
) -> list[SignedReading]:
    """Grow each meter's registers by its household's metered Wh of the ``t``-th slot and sign
    the reading (the registers are cumulative, so they never decrease)."""
    signed: list[SignedReading] = []
    for person, (_, _, imports, exports) in zip(people, HOUSEHOLDS, strict=True):
        person.import_Wh += imports[t]
        person.export_Wh += exports[t]
        reading = Reading(person.meter.address, slot, person.import_Wh, person.export_Wh)
        signed.append(sign_reading(person.meter.key, reading, domain))
    return signed


def _take(
    client: VoisinClient,
    buyer: DemoHousehold,
    seller: DemoHousehold,
    slot: int,
    report: DemoReport,
    say: Callable[[str], None],
) -> None:
    """``buyer`` takes 100 Wh of ``slot`` directly from ``seller``'s offer, before clearing."""
    take = client.take_offer(buyer.account, seller.offer_id, slot, 100)
    fill = take.named("FillSettled")[0].args
    report.fills += 1
    report.local_Wh += int(fill["energyWh"])
    report.gas_used += take.gas_used
    say(f"{buyer.name} took {fill['energyWh']} Wh directly from {seller.name}'s offer")


# ───────────────────────────── Statements and checks ─────────────────────────────


@dataclass(frozen=True, slots=True)
class _Reconciled:
    """One household's statement line (``line``, as the report shows it), with the chain's own
    sold and bought Wh and whether the statement agrees with the chain."""

    line: dict[str, Any]
    sold_Wh: int
    bought_Wh: int
    agrees: bool


def _reconcile(
    client: VoisinClient, engine: Engine, person: DemoHousehold, first_slot: int, slots: int
) -> _Reconciled:
    """Set ``person``'s statement from the mirror against the chain's slot energy and balance."""
    # The demo meters at most KEPT_SLOTS slots, so the chain still keeps every one of them.
    assert slots <= KEPT_SLOTS, "the chain keeps a household's last KEPT_SLOTS slots only"
    energy = [client.slot_energy(person.id, first_slot + t) for t in range(slots)]
    statement = load_statement(engine, person.id, first_slot, first_slot + slots - 1)
    balance = client.balance_of(person.account.address)
    line = {
        "household": person.id,
        "name": person.name,
        "exported_Wh": sum(e.export_Wh for e in energy),
        "imported_Wh": sum(e.import_Wh for e in energy),
        "sold_locally_Wh": statement.sold_Wh,
        "bought_locally_Wh": statement.bought_Wh,
        "grid_import_Wh": statement.grid_import_Wh,
        "grid_export_Wh": statement.grid_export_Wh,
        "net_cost_ueur": statement.net_cost_ueur,
        "grid_only_cost_ueur": statement.grid_only_cost_ueur,
        "savings_ueur": statement.savings_ueur,
        "balance_ueur": balance,
    }
    sold = sum(e.sold_Wh for e in energy)
    bought = sum(e.bought_Wh for e in energy)
    return _Reconciled(line, sold, bought, _statement_agrees(statement, energy, balance))


def _statement_agrees(
    statement: Statement, energy: Sequence[SlotEnergy], balance_ueur: int
) -> bool:
    """The statement's local Wh are the chain's, its money explains the balance (top-up less
    what was paid and the fees, plus what was earned), and each slot's local + grid Wh is the
    metered Wh."""
    return (
        statement.bought_Wh == sum(e.bought_Wh for e in energy)
        and statement.sold_Wh == sum(e.sold_Wh for e in energy)
        and balance_ueur
        == TOP_UP_UEUR
        - statement.paid_local_ueur
        - statement.fees_ueur
        + statement.earned_local_ueur
        and all(
            line.bought_Wh + line.grid_import_Wh == e.import_Wh
            and line.sold_Wh + line.grid_export_Wh == e.export_Wh
            for line, e in zip(statement.lines, energy, strict=True)
        )
    )


@dataclass(frozen=True, slots=True)
class _Mirrored:
    """What the database mirror holds of this run: fills (and their Wh) bought by its
    households, and every event of the contract."""

    fills: int
    fills_Wh: int
    events: int


def _mirrored(engine: Engine, people: Sequence[DemoHousehold], contract: str) -> _Mirrored:
    with Session(engine) as session:
        ours = FillRecord.buyer.in_([p.id for p in people])  # type: ignore[attr-defined]
        fills = session.exec(select(func.count()).select_from(FillRecord).where(ours)).one()
        fills_Wh = session.exec(
            select(func.coalesce(func.sum(FillRecord.energy_Wh), 0)).where(ours)
        ).one()
        events = session.exec(
            select(func.count()).select_from(ChainEvent).where(ChainEvent.contract == contract)
        ).one()
    return _Mirrored(int(fills), int(fills_Wh), int(events))


def _checks(
    report: DemoReport,
    reconciled: Sequence[_Reconciled],
    *,
    top_ups_ueur: int,
    supply_growth_ueur: int,
    mirrored: _Mirrored,
    events_on_chain: int,
) -> dict[str, bool]:
    """The run's conservation checks, by name (pure: every figure is read before)."""
    sold = sum(r.sold_Wh for r in reconciled)
    bought = sum(r.bought_Wh for r in reconciled)
    lines = [r.line for r in reconciled]
    balances = sum(int(h["balance_ueur"]) for h in lines)
    return {
        "energy: sold == bought": sold == bought == report.local_Wh,
        "energy: sold <= exported and bought <= imported": all(
            h["sold_locally_Wh"] <= h["exported_Wh"] and h["bought_locally_Wh"] <= h["imported_Wh"]
            for h in lines
        ),
        "money: this run's balances + fees == top-ups": (
            balances + report.fees_ueur == top_ups_ueur
        ),
        "money: total supply grew by the top-ups": supply_growth_ueur == top_ups_ueur,
        "statements: local + grid == metered, and match the balances": all(
            r.agrees for r in reconciled
        ),
        "mirror: database fills == chain fills": (
            mirrored.fills == report.fills and mirrored.fills_Wh == report.local_Wh
        ),
        "mirror: every contract event stored once": mirrored.events == events_on_chain > 0,
    }
