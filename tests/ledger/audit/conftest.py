"""Fixtures of the audit tests: one clean simulated day (shared, copied before any tampering)
and a small market driven by hand on the embedded chain for the chain-level tampers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from ledger.audit import AuditReport, run_audit
from ledger.chain.backends import Chain, open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import Deployment, open_ledger
from ledger.market.settlement import SettlementWorker
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import index
from ledger.readings.eip712 import Reading, SignedReading, sign_reading
from ledger.readings.evidence import store_signed_readings
from meter_sim import default_scenario
from meter_sim.run import RunResult, run_simulation
from meter_sim.scenario import Scenario

#: A slot in November 2026 (unix seconds // 900).
SLOT = 1_995_000


def day_scenario() -> Scenario:
    """Six households on a June day, half with PV, some with a battery."""
    return default_scenario(
        6, days=1, start=date(2026, 6, 21), seed=3, prosumer_share=0.5, battery_share=0.5
    )


@pytest.fixture(scope="session")
def clean_day(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One whole simulated day (96 slots) of six households, untouched: copy it to tamper."""
    data = tmp_path_factory.mktemp("clean-day") / "data"
    return run_simulation(day_scenario(), "pay-as-clear", "embedded", data)


def copy_data(run: RunResult, tmp_path: Path) -> Path:
    """A private copy of a finished run's data dir (chain, deployment record, database)."""
    target = tmp_path / "data"
    shutil.copytree(run.data_dir, target)
    return target


def db_engine(data: Path) -> Engine:
    return make_engine(f"sqlite:///{(data / 'voisin.db').resolve()}")


def audit_dir(data: Path, **options: object) -> AuditReport:
    """Audit the ledger in ``data`` as ``voisin audit --data-dir`` does."""
    with open_chain("embedded", data) as chain:
        client, deployment = open_ledger(chain)
        return run_audit(client, db_engine(data), deployment.block_number, **options)  # type: ignore[arg-type]


@dataclass
class Home:
    id: int
    account: LocalAccount
    meter: LocalAccount
    import_Wh: int = 0
    export_Wh: int = 0


@dataclass
class Market:
    """A hand-driven market: households, standing orders, signed readings, settled slots."""

    chain: Chain
    client: VoisinClient
    deployment: Deployment
    engine: Engine
    worker: SettlementWorker
    homes: list[Home] = field(default_factory=list)

    def home(self, *, prosumer: bool, topup_ueur: int = 0) -> Home:
        account: LocalAccount = Account.create()
        meter: LocalAccount = Account.create()
        self.chain.fund(account.address)
        hid = self.client.register_household(
            self.chain.operator, account.address, meter.address, prosumer=prosumer
        )
        if topup_ueur:
            self.client.top_up(self.chain.operator, account.address, topup_ueur)
        home = Home(hid, account, meter)
        self.homes.append(home)
        return home

    def sign(self, home: Home, slot: int, import_Wh: int, export_Wh: int) -> SignedReading:
        home.import_Wh += import_Wh
        home.export_Wh += export_Wh
        return sign_reading(
            home.meter.key,
            Reading(home.meter.address, slot, home.import_Wh, home.export_Wh),
            self.client.domain_separator(),
        )

    def meter_slot(self, slot: int, flows: dict[int, tuple[int, int]]) -> None:
        """Store and commit each home's reading of ``slot``: home id -> (import, export) Wh."""
        readings = [self.sign(h, slot, *flows.get(h.id, (0, 0))) for h in self.homes]
        store_signed_readings(self.engine, readings)
        self.client.commit_readings(self.chain.operator, readings)

    def audit(self, **options: object) -> AuditReport:
        """Mirror the chain (as the API and the simulator do before an audit), then audit."""
        index(self.client, self.engine, start_block=self.deployment.block_number)
        return run_audit(self.client, self.engine, self.deployment.block_number, **options)  # type: ignore[arg-type]


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    """Two sellers and two buyers with standing orders, on a fresh embedded chain."""
    data = tmp_path / "data"
    with open_chain("embedded", data) as chain:
        client, deployment = open_ledger(chain)
        engine = db_engine(data)
        worker = SettlementWorker(
            client, engine, chain.operator, start_block=deployment.block_number
        )
        m = Market(chain, client, deployment, engine, worker)
        for _ in range(2):
            seller = m.home(prosumer=True)
            client.post_offer(seller.account, 60_000, SLOT)
        for _ in range(2):
            buyer = m.home(prosumer=False, topup_ueur=10_000_000)
            client.post_bid(buyer.account, 200_000, SLOT)
        yield m
