"""Upgrading the contract by migration: a populated ledger on the embedded chain (households,
readings over several slots, standing orders, settled fills, a direct take, top-ups, a
transfer to an outsider, a deactivated household) is frozen and carried over to a new
deployment of the same bytecode, which stands in for the new version. The module's ledger is
built and migrated once; the tests read it, and the last ones trade on the new deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from ledger import errors
from ledger.audit.across import audit_recorded, check_across, collect_across
from ledger.chain.backends import Chain, open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.compile import load_artifact
from ledger.contract.deploy import (
    DEPLOYMENTS_FILE,
    Deployment,
    Predecessor,
    deploy,
    open_ledger,
    recorded_deployments,
)
from ledger.contract.upgrade import (
    CarriedHousehold,
    CarriedState,
    MigrationError,
    MigrationReport,
    apply_plan,
    archive_mirror,
    freeze,
    migrate,
    plan_carry_over,
    read_state,
    repost_orders,
)
from ledger.market.settlement import SettlementWorker
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import index
from ledger.readings.eip712 import Reading, SignedReading, sign_reading
from ledger.readings.evidence import store_signed_readings
from ledger.types import Forward, Tariffs

#: A slot in November 2026 (unix seconds // 900).
SLOT = 1_995_000
SLOTS = 4


@dataclass
class Home:
    id: int
    account: LocalAccount
    meter: LocalAccount
    import_Wh: int = 0
    export_Wh: int = 0


@dataclass
class Ledger:
    chain: Chain
    data: Path
    engine: Engine
    old: VoisinClient
    old_deployment: Deployment
    homes: list[Home] = field(default_factory=list)
    signed: list[SignedReading] = field(default_factory=list)
    outsider: str = ""
    report: MigrationReport | None = None
    new: VoisinClient | None = None

    def sign(
        self, client: VoisinClient, home: Home, slot: int, imp: int, exp: int
    ) -> SignedReading:
        home.import_Wh += imp
        home.export_Wh += exp
        reading = Reading(home.meter.address, slot, home.import_Wh, home.export_Wh)
        return sign_reading(home.meter.key, reading, client.domain_separator())

    def meter_slot(
        self, client: VoisinClient, slot: int, flows: dict[int, tuple[int, int]]
    ) -> None:
        active = [h for h in self.homes if client.household(h.id).active]
        readings = [self.sign(client, h, slot, *flows.get(h.id, (0, 0))) for h in active]
        store_signed_readings(self.engine, readings)
        client.commit_readings(self.chain.operator, readings)
        self.signed += readings


def _flows(k: int) -> dict[int, tuple[int, int]]:
    """Home id -> (import, export) Wh in the k-th slot: two sellers, two buyers."""
    return {1: (0, 400 + 10 * k), 2: (20, 250 + k), 3: (300 + k, 0), 4: (280, 0)}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    data = tmp_path_factory.mktemp("upgrade") / "data"
    with open_chain("embedded", data) as chain:
        client, deployment = open_ledger(chain)
        engine = make_engine(f"sqlite:///{(data / 'voisin.db').resolve()}")
        book = Ledger(chain, data, engine, client, deployment)
        operator = chain.operator
        for k in range(5):
            account: LocalAccount = Account.create()
            meter: LocalAccount = Account.create()
            chain.fund(account.address)
            hid = client.register_household(
                operator, account.address, meter.address, prosumer=k < 2
            )
            book.homes.append(Home(hid, account, meter))
            if k >= 2:
                client.top_up(operator, account.address, 5_000_000 + k)
        sellers, buyers = book.homes[:2], book.homes[2:4]
        client.post_offer(sellers[0].account, 60_000, SLOT)
        client.post_offer(sellers[1].account, 80_000, SLOT, SLOT + 50, max_Wh_per_slot=200)
        for b in buyers:
            client.post_bid(b.account, 200_000, SLOT)
        # Household 5 leaves; an outsider is paid by a household (a holder that is no household).
        client.deactivate_household(operator, 5)
        book.outsider = Account.create().address
        client.transfer(buyers[1].account, book.outsider, 1_234)
        worker = SettlementWorker(client, engine, operator, start_block=deployment.block_number)
        for k in range(SLOTS):
            book.meter_slot(client, SLOT + k, _flows(k))
            if k == 2:
                client.take_offer(buyers[0].account, 1, SLOT + k, 30)
            worker.settle_slot(SLOT + k)
        client.top_up(operator, buyers[0].account.address, 777)
        book.report = migrate(chain, data, engine=engine)
        current, _ = recorded_deployments(data, chain.chain_id)
        assert current is not None
        book.new = VoisinClient(chain.w3, current.address, load_artifact("Voisin")["abi"])
        yield book


def _new(ledger: Ledger) -> VoisinClient:
    assert ledger.new is not None
    return ledger.new


def test_the_migration_reports_what_it_carried(ledger: Ledger) -> None:
    report = ledger.report
    assert report is not None
    assert report.old == ledger.old_deployment.address and report.new == _new(ledger).address
    assert report.households == 5
    assert report.last_slot == SLOT + SLOTS - 1
    assert report.carried_ueur == ledger.old.total_supply() == _new(ledger).total_supply()
    # Two standing offers and two standing bids were open: cancelled, to be re-posted.
    assert sorted((o.side, o.order_id) for o in report.cancelled_orders) == [
        ("bid", 1),
        ("bid", 2),
        ("offer", 1),
        ("offer", 2),
    ]
    assert report.carry_over_gas > 0 and report.mirror_rows_archived > 0
    print("\n".join(report.lines()))


def test_balances_households_and_registers_are_carried_exactly(ledger: Ledger) -> None:
    old, new = ledger.old, _new(ledger)
    assert new.household_count() == old.household_count() == 5
    for home in ledger.homes:
        was, now = old.household(home.id), new.household(home.id)
        assert now == was
        before, after = old.meter_state(was.meter), new.meter_state(now.meter)
        assert (after.import_Wh, after.export_Wh) == (home.import_Wh, home.export_Wh)
        assert (after.import_Wh, after.export_Wh) == (before.import_Wh, before.export_Wh)
        # Every meter starts after the last slot metered on the old deployment.
        assert after.last_slot == SLOT + SLOTS - 1
    assert new.balance_of(ledger.outsider) == old.balance_of(ledger.outsider) == 1_234
    fees = old.fee_recipient()
    assert new.fee_recipient() == fees
    assert new.balance_of(fees) == old.balance_of(fees) > 0
    assert new.tariffs() == old.tariffs()
    for role in ("DEFAULT_ADMIN_ROLE", "OPERATOR_ROLE", "SETTLER_ROLE"):
        assert new.has_role(role, ledger.chain.operator.address)
    assert not new.household(5).active


def test_the_deployments_record_keeps_both_and_the_ledger_opens_the_new_one(
    ledger: Ledger,
) -> None:
    report = ledger.report
    assert report is not None
    records = json.loads((ledger.data / DEPLOYMENTS_FILE).read_text())
    entry = records[str(ledger.chain.chain_id)]
    assert entry["address"] == report.new
    assert entry["migrated_from"] == report.old
    assert entry["snapshot_block"] == report.frozen_block
    assert entry["snapshot_digest"] == report.snapshot_digest
    assert entry["carried_block"] == report.carried_block
    [frozen] = entry["history"]
    assert frozen["address"] == report.old
    assert frozen["frozen_block"] == report.frozen_block
    assert frozen["snapshot_digest"] == report.snapshot_digest
    assert frozen["superseded_by"] == report.new
    assert (ledger.data / frozen["mirror_archive"]).is_file()
    client, deployment = open_ledger(ledger.chain)
    assert client.address == deployment.address == report.new
    declared = _new(ledger).contract.functions.predecessor().call()
    assert declared[0] == report.old and declared[1] == report.frozen_block
    assert "0x" + bytes(declared[2]).hex() == report.snapshot_digest


def test_the_old_deployment_refuses_every_write(ledger: Ledger) -> None:
    old, operator = ledger.old, ledger.chain.operator
    seller, buyer = ledger.homes[0], ledger.homes[2]
    assert old.paused()
    reading = sign_reading(
        seller.meter.key,
        Reading(seller.meter.address, SLOT + SLOTS, seller.import_Wh, seller.export_Wh + 5),
        old.domain_separator(),
    )
    with pytest.raises(errors.EnforcedPause):
        old.commit_readings(operator, [reading])
    with pytest.raises(errors.EnforcedPause):
        old.post_offer(seller.account, 60_000, SLOT + SLOTS)
    with pytest.raises(errors.EnforcedPause):
        old.top_up(operator, buyer.account.address, 1)
    with pytest.raises(errors.EnforcedPause):
        old.transfer(buyer.account, ledger.outsider, 1)


def test_a_reading_counted_on_the_old_deployment_is_refused_on_the_new_one(
    ledger: Ledger,
) -> None:
    new, operator = _new(ledger), ledger.chain.operator
    last = ledger.signed[-1]
    # The very bytes: signed for the old deployment's domain.
    with pytest.raises(errors.InvalidSignature):
        new.commit_readings(operator, [last])
    # Signed again for the new domain: the slot, and any before it, was counted already.
    home = next(h for h in ledger.homes if h.meter.address == last.reading.meter)
    again = sign_reading(home.meter.key, last.reading, new.domain_separator())
    with pytest.raises(errors.DuplicateReading):
        new.commit_readings(operator, [again])
    earlier = replace(last.reading, slot=SLOT)
    with pytest.raises(errors.StaleReading):
        new.commit_readings(
            operator, [sign_reading(home.meter.key, earlier, new.domain_separator())]
        )


def test_the_audit_across_the_two_deployments_is_clean(ledger: Ledger) -> None:
    report = audit_recorded(ledger.chain, ledger.data, ledger.engine)
    assert report is not None
    assert report.carry_over == []
    assert report.old.findings == [] and report.new.findings == []
    assert report.ok
    assert report.old.counts["fills"] > 0 and report.old.counts["readings"] == 4 * SLOTS


def test_a_wrong_carried_balance_or_register_is_caught(ledger: Ledger) -> None:
    """A dishonest carry-over: a continuation that declares the true snapshot, then carries
    one micro-euro too many to household 3 and a register 5 Wh low for household 1."""
    report = ledger.report
    assert report is not None
    chain = ledger.chain
    _, history = recorded_deployments(ledger.data, chain.chain_id)
    frozen = history[-1]
    state = read_state(ledger.old, frozen.deployment.block_number, frozen.frozen_block)
    h1, h2, h3, *rest = state.households
    wrong = replace(
        state,
        households=(
            replace(h1, import_Wh=h1.import_Wh, export_Wh=h1.export_Wh - 5),
            h2,
            replace(h3, balance_ueur=h3.balance_ueur + 1),
            *rest,
        ),
    )
    predecessor = Predecessor(
        frozen.deployment.address, frozen.frozen_block, state.digest(), state.last_slot
    )
    rogue = deploy(chain, state.tariffs, None, predecessor)
    client = VoisinClient(chain.w3, rogue.address, load_artifact("Voisin")["abi"])
    block, _, _ = apply_plan(client, chain.operator, plan_carry_over(wrong, chain.operator.address))
    rogue = replace(rogue, carried_block=block)
    findings = check_across(collect_across(ledger.old, frozen, client, rogue))
    named = {(f.check, f.household) for f in findings}
    assert ("money", 3) in named
    assert ("energy", 1) in named
    # Totals disagree too: one micro-euro more was minted than the old ledger held.
    assert any(f.check == "money" and f.household is None for f in findings)


def test_new_readings_and_trades_settle_on_the_new_deployment_and_the_audit_stays_clean(
    ledger: Ledger,
) -> None:
    new, operator, report = _new(ledger), ledger.chain.operator, ledger.report
    assert report is not None
    keys = {h.id: h.account for h in ledger.homes}
    posted = repost_orders(new, report.cancelled_orders, keys, report.last_slot)
    assert set(posted) == {("offer", 1), ("offer", 2), ("bid", 1), ("bid", 2)}
    current, _ = recorded_deployments(ledger.data, ledger.chain.chain_id)
    assert current is not None
    worker = SettlementWorker(new, ledger.engine, operator, start_block=current.block_number)
    first = report.last_slot + 1
    for k in range(2):
        ledger.meter_slot(new, first + k, _flows(k))
        if k == 1:
            new.take_offer(ledger.homes[3].account, posted[("offer", 1)], first + k, 25)
        outcome = worker.settle_slot(first + k)
        assert outcome.matched_Wh > 0
    new.top_up(operator, ledger.homes[2].account.address, 1_000)
    index(new, ledger.engine, start_block=current.block_number)
    across = audit_recorded(ledger.chain, ledger.data, ledger.engine)
    assert across is not None
    assert across.findings == []
    assert across.new.counts["fills"] > 0
    # New money is the new deployment's own top-up, beyond what was carried.
    assert new.total_supply() == report.carried_ueur + 1_000


def _state(*ids: int, fee_recipient: str = "0x" + "11" * 20) -> CarriedState:
    households = tuple(
        CarriedHousehold(
            i, f"0x{i:040x}", f"0x{i + 100:040x}", i % 2 == 1, i != 2, 10 * i, i, 2 * i
        )
        for i in ids
    )
    return CarriedState(
        last_slot=SLOT,
        tariffs=Tariffs(40_000, 250_000, 30_000),
        fee_recipient=fee_recipient,
        roles=(("OPERATOR_ROLE", "0x" + "11" * 20), ("SETTLER_ROLE", "0x" + "22" * 20)),
        households=households,
        other_balances=(("0x" + "33" * 20, 5),),
        total_supply_ueur=sum(h.balance_ueur for h in households) + 5,
    )


def test_the_plan_keeps_ids_carries_registers_and_balances_and_revokes_the_admins_roles_last() -> (
    None
):
    admin = "0x" + "11" * 20
    plan = plan_carry_over(_state(1, 2, 3), admin, batch_size=2)
    assert [[h.account for h in batch] for batch in plan.onboarding] == [
        [f"0x{1:040x}", f"0x{2:040x}"],
        [f"0x{3:040x}"],
    ]
    first = plan.onboarding[0][0]
    assert (first.import_baseline_Wh, first.export_baseline_Wh, first.top_up_ueur) == (1, 2, 10)
    assert plan.deactivate == (2,)
    assert plan.top_ups == (("0x" + "33" * 20, 5),)
    assert plan.fee_recipient is None
    assert plan.grant == (("SETTLER_ROLE", "0x" + "22" * 20),)
    # The admin keeps OPERATOR_ROLE; it loses SETTLER_ROLE, then DEFAULT_ADMIN_ROLE last.
    assert plan.revoke == (("SETTLER_ROLE", admin), ("DEFAULT_ADMIN_ROLE", admin))


def test_households_with_a_gap_in_their_ids_cannot_keep_them() -> None:
    with pytest.raises(MigrationError, match=r"numbered 1\.\.2"):
        plan_carry_over(_state(1, 3), "0x" + "11" * 20)


def test_the_digest_changes_with_any_carried_value() -> None:
    state = _state(1, 2)
    assert state.digest() == _state(1, 2).digest()
    h1, h2 = state.households
    for changed in (
        replace(state, households=(replace(h1, balance_ueur=11), h2)),
        replace(state, households=(h1, replace(h2, import_Wh=3))),
        replace(state, last_slot=SLOT + 1),
        replace(state, other_balances=()),
        replace(state, fee_recipient="0x" + "44" * 20),
    ):
        assert changed.digest() != state.digest()


def test_a_freeze_waits_for_settlement_and_a_migration_run_again_after_a_freeze_completes(
    tmp_path: Path,
) -> None:
    """A metered slot not settled refuses the migration and changes nothing; a migration
    that stopped after its freeze and its archive, run again, still lists the orders the
    freeze cancelled, keeps the archive and carries the ledger over exactly."""
    data = tmp_path / "data"
    with open_chain("embedded", data) as chain:
        client, deployment = open_ledger(chain)
        engine = make_engine(f"sqlite:///{(data / 'voisin.db').resolve()}")
        book = Ledger(chain, data, engine, client, deployment)
        for k in range(2):
            account: LocalAccount = Account.create()
            meter: LocalAccount = Account.create()
            chain.fund(account.address)
            hid = client.register_household(
                chain.operator, account.address, meter.address, prosumer=k == 0
            )
            book.homes.append(Home(hid, account, meter))
        client.top_up(chain.operator, book.homes[1].account.address, 1_000_000)
        offer = client.post_offer(book.homes[0].account, 60_000, SLOT)
        client.post_bid(book.homes[1].account, 200_000, SLOT)
        book.meter_slot(client, SLOT, {1: (0, 300), 2: (250, 0)})
        with pytest.raises(MigrationError, match=rf"slots \[{SLOT}\] are metered but not settled"):
            migrate(chain, data, engine=engine)
        assert not client.paused()
        assert client.offer(offer).open
        worker = SettlementWorker(
            client, engine, chain.operator, start_block=deployment.block_number
        )
        assert worker.settle_slot(SLOT).matched_Wh == 250
        # The first run stops after its freeze: paused, orders cancelled, nothing recorded.
        first = freeze(client, chain.operator, deployment.block_number, engine)
        assert [(o.side, o.order_id) for o in first.cancelled_orders] == [("bid", 1), ("offer", 1)]
        events = client.events(first.block - 2, first.block)
        names = [e.name for e in events][-3:]
        assert names[0] == "Paused" and sorted(names[1:]) == ["BidCancelled", "OfferCancelled"]
        # ... or after archiving the old mirror and emptying the live one, too.
        index(client, engine, start_block=deployment.block_number)
        archive = data / "archive" / f"{deployment.address}.db"
        assert archive_mirror(engine, archive, deployment.address) > 0
        report = migrate(chain, data, engine=engine)
        assert report.frozen_block >= first.block
        assert report.mirror_rows_archived == 0  # the archive was kept, not overwritten
        assert [(o.side, o.order_id) for o in report.cancelled_orders] == [("bid", 1), ("offer", 1)]
        across = audit_recorded(chain, data, engine)
        assert across is not None and across.findings == []


@pytest.mark.anvil
def test_a_migration_on_a_json_rpc_node_carries_the_ledger_and_audits_clean(
    anvil_chain: Chain, tmp_path: Path
) -> None:
    chain = anvil_chain
    client, deployment = open_ledger(chain, record_dir=tmp_path)
    engine = make_engine(f"sqlite:///{(tmp_path / 'voisin.db').resolve()}")
    book = Ledger(chain, tmp_path, engine, client, deployment)
    for k in range(3):
        account: LocalAccount = Account.create()
        meter: LocalAccount = Account.create()
        chain.fund(account.address)
        hid = client.register_household(
            chain.operator, account.address, meter.address, prosumer=k == 0
        )
        book.homes.append(Home(hid, account, meter))
    client.top_up(chain.operator, book.homes[1].account.address, 1_000_000)
    client.post_offer(book.homes[0].account, 60_000, SLOT)
    client.post_bid(book.homes[1].account, 200_000, SLOT)
    book.meter_slot(client, SLOT, {1: (0, 300), 2: (100, 0), 3: (50, 0)})
    worker = SettlementWorker(client, engine, chain.operator, start_block=deployment.block_number)
    assert worker.settle_slot(SLOT).matched_Wh == 100
    report = migrate(chain, tmp_path, engine=engine)
    assert report.households == 3 and len(report.cancelled_orders) == 2
    new, _ = open_ledger(chain, record_dir=tmp_path)
    assert new.address == report.new
    for home in book.homes:
        assert new.household(home.id) == client.household(home.id)
    across = audit_recorded(chain, tmp_path, engine)
    assert across is not None and across.findings == []


def test_a_single_deployment_record_reads_as_before(tmp_path: Path) -> None:
    legacy = {
        "chain_id": 7,
        "address": "0x" + "12" * 20,
        "block_number": 1,
        "tx_hash": "0x" + "34" * 32,
        "bytecode_sha256": "ab" * 32,
        "deployed_at": "2026-01-01T00:00:00+00:00",
    }
    (tmp_path / DEPLOYMENTS_FILE).write_text(json.dumps({"7": legacy}))
    current, history = recorded_deployments(tmp_path, 7)
    assert current == Deployment(**legacy)
    assert current.migrated_from is None and current.carried_block is None
    assert history == []
    assert recorded_deployments(tmp_path, 8) == (None, [])


def test_open_forward_positions_hold_the_freeze_or_go_back_to_their_buyers(
    tmp_path: Path,
) -> None:
    """A forward position still open (its buyer's reservation in the contract's escrow)
    refuses a freeze; an emergency freeze (allow_unsettled) carries the reservation back into
    the buyer's balance, never to the old contract's address, and the audit across the two
    deployments is clean."""
    data = tmp_path / "data"
    with open_chain("embedded", data) as chain:
        client, deployment = open_ledger(chain)
        engine = make_engine(f"sqlite:///{(data / 'voisin.db').resolve()}")
        homes = []
        for k in range(2):
            account: LocalAccount = Account.create()
            meter: LocalAccount = Account.create()
            chain.fund(account.address)
            hid = client.register_household(
                chain.operator, account.address, meter.address, prosumer=k == 0
            )
            homes.append(Home(hid, account, meter))
        client.top_up(chain.operator, homes[1].account.address, 1_000_000)
        cleared = client.clear_forwards(
            chain.operator, SLOT, 0, [Forward(homes[0].id, homes[1].id, 500, 100_000)]
        )
        reserved = int(cleared.named("ForwardCleared")[0].args["reservedUeur"])
        assert client.balance_of(client.address) == reserved
        with pytest.raises(MigrationError, match=rf"forward positions of slots \[{SLOT}\]"):
            migrate(chain, data, engine=engine)
        assert not client.paused()
        report = migrate(chain, data, engine=engine, allow_unsettled=True)
        current, _ = recorded_deployments(data, chain.chain_id)
        assert current is not None and current.address != deployment.address
        new = VoisinClient(chain.w3, current.address, load_artifact("Voisin")["abi"])
        assert new.balance_of(homes[1].account.address) == 1_000_000
        assert new.balance_of(client.address) == 0
        assert report.frozen_block > 0
        across = audit_recorded(chain, data, engine)
        assert across is not None and across.findings == []
