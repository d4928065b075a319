"""A small end-to-end walk through the settlement core, on any chain backend.

Four households (two with PV) meter four slots; their meters sign EIP-712 readings, which are
committed on chain and mint credits; the prosumers post standing offers and the others
standing bids; each slot is settled in one batch transaction whose fills the contract
re-checks; one household also takes an offer directly; the indexer mirrors every event into
the database; and the conservation of energy and money is checked from both the chain and
the mirror. The metered figures are a fixed illustration (a spring morning); the simulator
drives real load and PV models instead.
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

from ledger.chain import open_chain
from ledger.client import Fill, VoisinClient
from ledger.deploy import open_ledger
from ledger.eip712 import Reading, SignedReading, sign_reading
from ledger.indexer import index, make_engine
from ledger.models import ChainEvent, FillRecord

SLOT_SECONDS = 900

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
) -> DemoReport:
    """Run the walk-through and return what happened, with its conservation checks."""
    with open_chain(chain_spec, data_dir, operator_key) as chain:
        client, deployment = open_ledger(chain)
        say(f"chain {chain.kind} (id {chain.chain_id}), Voisin at {deployment.address}")
        op = chain.operator
        first_slot = int(time.time()) // SLOT_SECONDS - len(HOUSEHOLDS[0][2])
        report = DemoReport(chain.kind, deployment.address, first_slot, len(HOUSEHOLDS[0][2]))
        tariffs = client.tariffs()
        say(
            f"tariffs (ueur/kWh): feed-in {tariffs.feed_in_ueur_per_kWh}, "
            f"retail {tariffs.retail_ueur_per_kWh}, grid fee {tariffs.grid_fee_ueur_per_kWh}"
        )
        supply_before = client.total_supply()

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
            if not person.prosumer:
                client.top_up(op, person.account.address, 5_000_000)
                topups += 5_000_000
        say("topped up each buyer with 5.00 EUR")

        fee = tariffs.grid_fee_ueur_per_kWh
        for person in people:
            if person.prosumer:
                person.offer_id = client.post_offer(
                    person.account, tariffs.feed_in_ueur_per_kWh + 30_000, first_slot
                )
            else:
                person.bid_id = client.post_bid(
                    person.account, tariffs.retail_ueur_per_kWh - fee - 40_000, first_slot
                )
        say("prosumers posted standing offers, the others standing bids")

        domain = client.domain_separator()
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
            # In the last slot David buys directly instead of through the batch (below).
            bidders = people[:3] if t == report.slots - 1 else people
            fills = _match(client, bidders, slot)
            if fills:
                # Another run in this data dir may have settled this slot already.
                batch = 0
                while client.batch_settled(slot, batch):
                    batch += 1
                result = client.settle_batch(op, slot, batch, fills)
                report.fees_ueur += sum(int(e.args["feeUeur"]) for e in result.named("FillSettled"))
                report.gas_used += result.gas_used
                report.fills += len(fills)
                report.local_Wh += sum(f.energy_Wh for f in fills)
            say(
                f"slot {slot}: {len(signed)} signed readings committed, "
                f"{len(fills)} fills settled ({sum(f.energy_Wh for f in fills)} Wh)"
            )

        # David takes what is left of Amélie's offer in the last slot, directly.
        last = first_slot + report.slots - 1
        amelie, david = people[0], people[3]
        if (
            client.credits_of(amelie.id, last)
            and client.slot_energy(david.id, last).deficit_left_Wh
        ):
            result = client.take_offer(david.account, amelie.offer_id, last, 10_000)
            taken = result.named("FillSettled")[0].args["energyWh"]
            report.fees_ueur += int(result.named("FillSettled")[0].args["feeUeur"])
            report.fills += 1
            report.local_Wh += int(taken)
            report.gas_used += result.gas_used
            say(f"{david.name} took {taken} Wh directly from {amelie.name}'s offer")

        engine = make_engine(database_url)
        indexed = index(client, engine, start_block=deployment.block_number)
        report.events_indexed = indexed.events
        say(f"indexed {indexed.events} events up to block {indexed.to_block} into the database")

        sold = bought = 0
        for person in people:
            energy = [client.slot_energy(person.id, first_slot + t) for t in range(report.slots)]
            sold += sum(e.sold_Wh for e in energy)
            bought += sum(e.bought_Wh for e in energy)
            report.households.append(
                {
                    "household": person.id,
                    "name": person.name,
                    "exported_Wh": sum(e.export_Wh for e in energy),
                    "imported_Wh": sum(e.import_Wh for e in energy),
                    "sold_locally_Wh": sum(e.sold_Wh for e in energy),
                    "bought_locally_Wh": sum(e.bought_Wh for e in energy),
                    "balance_ueur": client.balance_of(person.account.address),
                }
            )
        fees = client.balance_of(client.fee_recipient())
        balances = sum(int(h["balance_ueur"]) for h in report.households)
        with Session(engine) as session:
            ours = FillRecord.buyer.in_([p.id for p in people])  # type: ignore[attr-defined]
            mirrored_fills = session.exec(
                select(func.count()).select_from(FillRecord).where(ours)
            ).one()
            mirrored_wh = session.exec(
                select(func.coalesce(func.sum(FillRecord.energy_Wh), 0)).where(ours)
            ).one()
            mirrored_events = session.exec(select(func.count()).select_from(ChainEvent)).one()
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
            "mirror: database fills == chain fills": (
                mirrored_fills == report.fills and int(mirrored_wh) == report.local_Wh
            ),
            "mirror: events stored": mirrored_events >= report.events_indexed > 0,
        }
        say(f"fee recipient holds {fees} ueur in grid fees in total")
        return report


def _match(client: VoisinClient, people: list[DemoHousehold], slot: int) -> list[Fill]:
    """Pair each seller's credits with buyers' metered import at the midpoint of the limits.

    A stand-in for the market's clearing mechanisms: enough to exercise batch settlement.
    """
    fills: list[Fill] = []
    buyers = [p for p in people if p.bid_id]
    left = {p.id: client.slot_energy(p.id, slot).deficit_left_Wh for p in buyers}
    bid_limits = {p.id: client.bid(p.bid_id).price_limit_ueur_per_kWh for p in buyers}
    for seller in (p for p in people if p.offer_id):
        credits = client.credits_of(seller.id, slot)
        offer_limit = client.offer(seller.offer_id).price_limit_ueur_per_kWh
        for buyer in buyers:
            wh = min(credits, left[buyer.id])
            if wh <= 0:
                continue
            price = (offer_limit + bid_limits[buyer.id]) // 2
            fills.append(Fill(seller.offer_id, buyer.bid_id, wh, price))
            credits -= wh
            left[buyer.id] -= wh
    return fills
