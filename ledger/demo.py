"""A small end-to-end walk through the settlement core, on any chain backend.

Four households (two with PV) meter four slots; their meters sign EIP-712 readings, which are
committed on chain and mint credits; each household's agent posts its default standing orders
(prosumers offer, everyone bids); the settlement worker clears each slot (pay-as-clear by
default) and settles it in one batch transaction whose fills the contract re-checks; one
household also takes an offer directly; the indexer mirrors every event into the database;
each household gets a statement with its savings against grid-only supply; and the
conservation of energy and money is checked from both the chain and the mirror. The metered
figures are a fixed illustration (a spring morning); the simulator drives real load and PV
models instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func
from sqlmodel import Session, select

from ledger.chain.backends import open_chain
from ledger.contract.deploy import open_ledger
from ledger.market.agent_orders import AgentHousehold, post_default_orders
from ledger.market.agents import AgentSettings
from ledger.market.data import load_statement
from ledger.market.settlement import SettlementWorker
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import index
from ledger.mirror.models import ChainEvent, FillRecord, SlotOutcomeRecord
from ledger.readings.eip712 import Reading, SignedReading, sign_reading
from ledger.types import SLOT_SECONDS

#: (name, prosumer, per-slot import Wh, per-slot export Wh) over four slots.
HOUSEHOLDS: tuple[tuple[str, bool, tuple[int, ...], tuple[int, ...]], ...] = (
    ("Amélie (PV 6 kWp)", True, (0, 0, 0, 0), (420, 610, 780, 690)),
    ("Bastien (PV 3 kWp)", True, (40, 0, 0, 0), (0, 180, 260, 210)),
    ("Chloé", False, (350, 410, 520, 380), (0, 0, 0, 0)),
    ("David", False, (280, 300, 260, 450), (0, 0, 0, 0)),
)


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
    """Run the walk-through and return what happened, with its conservation checks."""
    with open_chain(chain_spec, data_dir, operator_key) as chain:
        client, deployment = open_ledger(chain)
        say(f"chain {chain.kind} (id {chain.chain_id}), Voisin at {deployment.address}")
        op = chain.operator
        engine = make_engine(database_url)
        slots = len(HOUSEHOLDS[0][2])
        first_slot = int(time.time()) // SLOT_SECONDS - slots
        with Session(engine) as session:
            # A slot settles once per market: a second run in this data dir uses fresh slots.
            last_settled = session.exec(select(func.max(SlotOutcomeRecord.slot))).one()
        if last_settled is not None:
            first_slot = max(first_slot, int(last_settled) + 1)
        report = DemoReport(chain.kind, deployment.address, first_slot, slots)
        tariffs = client.tariffs()
        say(
            f"tariffs (ueur/kWh): feed-in {tariffs.feed_in_ueur_per_kWh}, "
            f"retail {tariffs.retail_ueur_per_kWh}, grid fee {tariffs.grid_fee_ueur_per_kWh}"
        )
        supply_before = client.total_supply()
        fees_before = client.balance_of(client.fee_recipient())

        people: list[DemoHousehold] = []
        for name, prosumer, _, _ in HOUSEHOLDS:
            person = DemoHousehold(name, prosumer, Account.create(), Account.create())
            chain.fund(person.account.address)
            person.id = client.register_household(
                op, person.account.address, person.meter.address, prosumer=prosumer
            )
            people.append(person)
        say(f"registered {len(people)} households: " + ", ".join(p.name for p in people))

        topups = 0
        for person in people:
            client.top_up(op, person.account.address, 5_000_000)
            topups += 5_000_000
        say("topped up each household with 5.00 EUR")

        agents = {p.id: AgentHousehold(p.account, p.prosumer, AgentSettings()) for p in people}
        posted = post_default_orders(
            client, engine, agents, first_slot, start_block=deployment.block_number
        )
        for person in people:
            person.offer_id = posted.get((person.id, "offer"), 0)
            person.bid_id = posted.get((person.id, "bid"), 0)
        say(
            "agents posted default standing orders: prosumers offer at feed-in + 0.02 EUR/kWh, "
            "everyone bids up to retail - 0.02 EUR/kWh all in"
        )

        worker = SettlementWorker(
            client, engine, op, mechanism, start_block=deployment.block_number
        )
        domain = client.domain_separator()
        amelie, david = people[0], people[3]
        for t in range(report.slots):
            slot = first_slot + t
            signed: list[SignedReading] = []
            for person, (_, _, imports, exports) in zip(people, HOUSEHOLDS, strict=True):
                person.import_Wh += imports[t]
                person.export_Wh += exports[t]
                reading = Reading(person.meter.address, slot, person.import_Wh, person.export_Wh)
                signed.append(sign_reading(person.meter.key, reading, domain))
            result = client.commit_readings(op, signed)
            report.readings += len(signed)
            report.gas_used += result.gas_used
            if t == report.slots - 1:
                # In the last slot David buys 100 Wh directly before the market clears.
                take = client.take_offer(david.account, amelie.offer_id, slot, 100)
                fill = take.named("FillSettled")[0].args
                report.fills += 1
                report.local_Wh += int(fill["energyWh"])
                report.gas_used += take.gas_used
                say(f"{david.name} took {fill['energyWh']} Wh directly from {amelie.name}'s offer")
            outcome = worker.settle_slot(slot)
            report.fills += outcome.fills
            report.local_Wh += outcome.matched_Wh
            report.gas_used += outcome.gas_used
            price = outcome.clearing_price_ueur_per_kWh
            say(
                f"slot {slot}: {len(signed)} signed readings committed; {mechanism} "
                f"{'at ' + str(price) + ' ueur/kWh' if price is not None else 'found no trade'}: "
                f"{outcome.fills} fills, {outcome.matched_Wh} Wh local, "
                f"{outcome.unmatched_surplus_Wh} Wh to the grid, "
                f"{outcome.unmatched_deficit_Wh} Wh from the grid"
            )

        indexed = index(client, engine, start_block=deployment.block_number)
        on_chain = len(client.events(deployment.block_number, indexed.to_block))
        say(f"indexed up to block {indexed.to_block} into the database")
        report.fees_ueur = client.balance_of(client.fee_recipient()) - fees_before

        sold = bought = 0
        last_slot = first_slot + report.slots - 1
        statements_agree = True
        for person in people:
            energy = [client.slot_energy(person.id, first_slot + t) for t in range(report.slots)]
            sold += sum(e.sold_Wh for e in energy)
            bought += sum(e.bought_Wh for e in energy)
            statement = load_statement(engine, person.id, first_slot, last_slot)
            balance = client.balance_of(person.account.address)
            statements_agree &= (
                statement.bought_Wh == sum(e.bought_Wh for e in energy)
                and statement.sold_Wh == sum(e.sold_Wh for e in energy)
                and balance
                == 5_000_000
                - statement.paid_local_ueur
                - statement.fees_ueur
                + statement.earned_local_ueur
                and all(
                    line.bought_Wh + line.grid_import_Wh == e.import_Wh
                    and line.sold_Wh + line.grid_export_Wh == e.export_Wh
                    for line, e in zip(statement.lines, energy, strict=True)
                )
            )
            report.households.append(
                {
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
            )
        balances = sum(int(h["balance_ueur"]) for h in report.households)
        with Session(engine) as session:
            ours = FillRecord.buyer.in_([p.id for p in people])  # type: ignore[attr-defined]
            mirrored_fills = session.exec(
                select(func.count()).select_from(FillRecord).where(ours)
            ).one()
            mirrored_wh = session.exec(
                select(func.coalesce(func.sum(FillRecord.energy_Wh), 0)).where(ours)
            ).one()
            mirrored_events = session.exec(
                select(func.count())
                .select_from(ChainEvent)
                .where(ChainEvent.contract == deployment.address)
            ).one()
        report.events_indexed = int(mirrored_events)
        report.checks = {
            "energy: sold == bought": sold == bought == report.local_Wh,
            "energy: sold <= exported and bought <= imported": all(
                h["sold_locally_Wh"] <= h["exported_Wh"]
                and h["bought_locally_Wh"] <= h["imported_Wh"]
                for h in report.households
            ),
            "money: this run's balances + fees == top-ups": (balances + report.fees_ueur == topups),
            "money: total supply grew by the top-ups": (
                client.total_supply() - supply_before == topups
            ),
            "statements: local + grid == metered, and match the balances": statements_agree,
            "mirror: database fills == chain fills": (
                mirrored_fills == report.fills and int(mirrored_wh) == report.local_Wh
            ),
            "mirror: every contract event stored once": mirrored_events == on_chain > 0,
        }
        say(f"grid fees of this run: {report.fees_ueur} ueur, paid to the operator")
        return report
