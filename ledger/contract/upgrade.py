"""Upgrading the contract: a migration to a new deployment, carrying a snapshot of the old one.

Voisin does not sit behind an upgradeable proxy: whoever could swap a proxy's code could change
the rules under existing balances. A new contract version is a **new deployment** that
continues the old one from a declared point (docs/architecture.md, "Upgrading the contract"):

1. **Freeze** (:func:`freeze`): once every slot that can still be traded is settled, the
   operator pauses the old deployment and cancels its open orders (``OfferCancelled``/
   ``BidCancelled`` with the operator as ``by``: the households are told on chain, and
   :attr:`MigrationReport.cancelled_orders` lists what to re-post). Nothing moves on it
   again; the block of the last of these is the **freeze block** B.
2. **Snapshot** (:func:`read_state`): the old deployment's state at B, as its views answer
   there: households (ids, accounts, meters, prosumer, active), each meter's last registers,
   balances (households and every other holder), the total supply, tariffs, fee recipient,
   roles, and the last slot metered. :meth:`CarriedState.digest` is its digest.
3. **Carry over** (:func:`plan_carry_over`, pure, then :func:`carry_over`): a new deployment is
   constructed naming the old one, B, the digest and the last slot (``MigratedFrom``; every
   meter it ever registers starts after that slot, so no (meter, slot) counts on both). The
   state is then carried with the operator's ordinary, evented functions: ``onboard`` in id
   order (same ids; each meter's baselines are its last registers, each balance a top-up),
   ``deactivateHousehold``, ``topUp`` for the other holders, ``setFeeRecipient``, roles. The
   state of the new deployment at the block where the carry-over is complete (the **carried
   block** C) must have the same digest; else nothing is recorded.
4. **Record** (:func:`migrate`): the old deployment's database mirror is archived and the
   live mirror tables are emptied for the new one, then ``deployments.json`` records the new
   deployment as current (``migrated_from``, ``snapshot_block``, ``snapshot_digest``,
   ``carried_block``) and keeps the old one in its history (frozen block, digest, archive).

Per-slot energy credits are not carried: the last slots are settled before the freeze, and
what was not sold of them went to the grid (the residual), as for every settled slot. Money
carried over is told apart from new money by the audit (:func:`ledger.audit.across`): the
top-ups up to C are the carry-over and must equal the snapshot, the ones after C are new.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy import Engine, Table, create_engine, delete, select
from sqlmodel import Session, SQLModel
from web3.exceptions import ContractLogicError, Web3Exception

from ledger.chain.backends import Chain
from ledger.contract.client import VoisinClient, role_id
from ledger.contract.compile import Artifact, load_artifact
from ledger.contract.deploy import (
    CONTRACT_NAME,
    Deployment,
    FrozenDeployment,
    Predecessor,
    deploy,
    record_upgrade,
    recorded_deployments,
)
from ledger.errors import LedgerError
from ledger.types import KEPT_SLOTS, OPEN_END, Event, Onboarding, Tariffs

__all__ = [
    "ROLES",
    "CarriedHousehold",
    "CarriedState",
    "CarryOverPlan",
    "Freeze",
    "MigrationError",
    "MigrationReport",
    "OpenOrder",
    "apply_plan",
    "archive_mirror",
    "carry_over",
    "freeze",
    "is_archived",
    "migrate",
    "open_orders",
    "plan_carry_over",
    "read_state",
    "repost_orders",
]

#: The contract's roles, by name (VoisinAccess).
ROLES = ("DEFAULT_ADMIN_ROLE", "OPERATOR_ROLE", "SETTLER_ROLE")
#: Households per ``onboard`` transaction of the carry-over: about 104,000 gas each in a batch
#: of 50 (VoisinClient.onboard), well within a block.
ONBOARD_BATCH = 50
#: Where the old deployments' database mirrors are archived, under the data dir.
ARCHIVE_DIR = "archive"


class MigrationError(LedgerError, RuntimeError):
    """A migration cannot start or did not carry the state over exactly; says why."""


# ───────────────────────────── The carried state (pure) ─────────────────────────────


@dataclass(frozen=True, slots=True)
class CarriedHousehold:
    """A household as carried: its registry entry, its meter's last registers (Wh) and its
    balance (micro-euro)."""

    id: int
    account: str
    meter: str
    prosumer: bool
    active: bool
    balance_ueur: int
    import_Wh: int
    export_Wh: int


@dataclass(frozen=True, slots=True)
class CarriedState:
    """What a migration carries over, as one deployment's views answer it at one block.

    ``last_slot`` is the last slot metered (no meter can meter it, or an earlier one, on the
    new deployment). ``other_balances`` are the non-zero balances of accounts that are not a
    household's (the fee recipient's grid fees, mostly), sorted by account; ``roles`` the
    (role, account) pairs held, sorted. Every micro-euro is in a balance:
    ``total_supply_ueur`` equals their sum on an intact deployment.
    """

    last_slot: int
    tariffs: Tariffs
    fee_recipient: str
    roles: tuple[tuple[str, str], ...]
    households: tuple[CarriedHousehold, ...]
    other_balances: tuple[tuple[str, int], ...]
    total_supply_ueur: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_slot": self.last_slot,
            "tariffs": asdict(self.tariffs),
            "fee_recipient": self.fee_recipient,
            "roles": [list(r) for r in self.roles],
            "households": [asdict(h) for h in self.households],
            "other_balances": [list(b) for b in self.other_balances],
            "total_supply_ueur": self.total_supply_ueur,
        }

    def digest(self) -> str:
        """``0x`` + keccak-256 of the state's canonical JSON (sorted keys, no spaces): the
        snapshot digest the new deployment declares and the audit recomputes on both sides."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return "0x" + keccak(text=text).hex()

    @property
    def household_balances_ueur(self) -> int:
        return sum(h.balance_ueur for h in self.households)

    @property
    def other_balances_ueur(self) -> int:
        return sum(b for _, b in self.other_balances)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order open when the old deployment froze (cancelled there, to be re-posted)."""

    side: str
    order_id: int
    household: int
    price_limit_ueur_per_kWh: int
    max_Wh_per_slot: int
    first_slot: int
    last_slot: int


@dataclass(frozen=True, slots=True)
class CarryOverPlan:
    """The operator's calls that carry a :class:`CarriedState` to a new deployment, in order
    (:func:`plan_carry_over`)."""

    fee_recipient: str | None
    """``setFeeRecipient`` to this account, or None when it is the new admin already."""
    onboarding: tuple[tuple[Onboarding, ...], ...]
    """``onboard`` batches, households in id order: ids 1, 2, ... as on the old deployment."""
    deactivate: tuple[int, ...]
    top_ups: tuple[tuple[str, int], ...]
    """``topUp`` of the holders that are not households."""
    grant: tuple[tuple[str, str], ...]
    revoke: tuple[tuple[str, str], ...]


def plan_carry_over(
    state: CarriedState, admin: str, batch_size: int = ONBOARD_BATCH
) -> CarryOverPlan:
    """The calls that give a new deployment, constructed by ``admin`` (which then holds every
    role and receives the fees), exactly ``state``. Pure.

    Households must be numbered 1..n without a gap (the contract numbers them so), or they
    could not keep their ids.
    """
    if batch_size < 1:
        raise MigrationError(f"batch_size must be at least 1, got {batch_size}")
    ids = [h.id for h in state.households]
    if ids != list(range(1, len(ids) + 1)):
        raise MigrationError(f"households must be numbered 1..{len(ids)} in order, got {ids}")
    admin = to_checksum_address(admin)
    entries = [
        Onboarding(
            account=h.account,
            meter=h.meter,
            prosumer=h.prosumer,
            import_baseline_Wh=h.import_Wh,
            export_baseline_Wh=h.export_Wh,
            top_up_ueur=h.balance_ueur,
        )
        for h in state.households
    ]
    batches = tuple(tuple(entries[i : i + batch_size]) for i in range(0, len(entries), batch_size))
    initial = {(role, admin) for role in ROLES}
    wanted = set(state.roles)
    # The admin's own roles are revoked last, so that it can still grant and revoke before.
    revoke = sorted(initial - wanted, key=lambda r: (r[0] == "DEFAULT_ADMIN_ROLE", r))
    return CarryOverPlan(
        fee_recipient=None if state.fee_recipient == admin else state.fee_recipient,
        onboarding=batches,
        deactivate=tuple(h.id for h in state.households if not h.active),
        top_ups=state.other_balances,
        grant=tuple(sorted(wanted - initial)),
        revoke=tuple(revoke),
    )


# ───────────────────────────── Reading a deployment's state ─────────────────────────────


def _at(client: VoisinClient, block: int, function: str, *args: Any) -> Any:
    """``function(*args)`` of the contract as it answered after ``block``."""
    return getattr(client.contract.functions, function)(*args).call(block_identifier=block)


def _role_name(role: str) -> str:
    for name in ROLES:
        if "0x" + role_id(name).hex() == role.lower():
            return name
    return role.lower()


def read_state(client: VoisinClient, from_block: int, block: int) -> CarriedState:
    """The state a migration carries, as the deployment of ``client`` (deployed at
    ``from_block``) held it after ``block``: views called at that block, and its events up to
    it to find every holder of money and of a role."""
    events = client.events(from_block, block)
    accounts: set[str] = set()
    roles: set[tuple[str, str]] = set()
    escrowed = open_forwards(events)
    for e in events:
        a = e.args
        if e.name in ("Transfer", "ToppedUp", "AccountRotated", "FeeRecipientSet"):
            for key in ("from", "to", "account", "oldAccount", "newAccount", "recipient"):
                if key in a and int(a[key], 16) != 0:
                    accounts.add(to_checksum_address(a[key]))
        elif e.name in ("RoleGranted", "RoleRevoked"):
            roles.add((str(a["role"]), to_checksum_address(a["account"])))
    held = tuple(
        sorted(
            (_role_name(role), account)
            for role, account in roles
            if _at(client, block, "hasRole", bytes.fromhex(role[2:]), account)
        )
    )
    count = int(_at(client, block, "householdCount"))
    households: list[CarriedHousehold] = []
    last_slot = _declared_last_slot(client, block)
    for hid in range(1, count + 1):
        account, active, prosumer, balance, meter = _at(client, block, "getHousehold", hid)
        state = _at(client, block, "meterState", meter)
        last_slot = max(last_slot, int(state[1]))
        households.append(
            CarriedHousehold(
                id=hid,
                account=to_checksum_address(account),
                meter=to_checksum_address(meter),
                prosumer=bool(prosumer),
                active=bool(active),
                # A reservation still in escrow goes back to its buyer (an emergency freeze
                # with open forward positions; a normal one has none: see freeze).
                balance_ueur=int(balance) + sum(r for _, b, r in escrowed.values() if b == hid),
                import_Wh=int(state[2]),
                export_Wh=int(state[3]),
            )
        )
    household_accounts = {h.account for h in households}
    others = []
    # The escrow (the contract's own balance) is carried in its buyers' balances above.
    for account in sorted(accounts - household_accounts - {client.address}):
        balance = int(_at(client, block, "balanceOf", account))
        if balance:
            others.append((account, balance))
    feed_in, retail, grid_fee = _at(client, block, "tariffs")
    return CarriedState(
        last_slot=last_slot,
        tariffs=Tariffs(int(feed_in), int(retail), int(grid_fee)),
        fee_recipient=to_checksum_address(_at(client, block, "feeRecipient")),
        roles=held,
        households=tuple(households),
        other_balances=tuple(others),
        total_supply_ueur=int(_at(client, block, "totalSupply")),
    )


def open_forwards(events: Sequence[Event]) -> dict[int, tuple[int, int, int]]:
    """The forward positions cleared and not settled in ``events``: id -> (slot, buyer,
    reserved micro-euro held in the contract's escrow)."""
    positions: dict[int, tuple[int, int, int]] = {}
    for e in events:
        if e.name == "ForwardCleared":
            a = e.args
            positions[int(a["forwardId"])] = (
                int(a["slot"]),
                int(a["buyer"]),
                int(a["reservedUeur"]),
            )
        elif e.name == "ForwardSettled":
            positions.pop(int(e.args["forwardId"]), None)
    return positions


def _declared_last_slot(client: VoisinClient, block: int) -> int:
    """The last slot of the deployment this one continues (0 for a first deployment, and for
    a deployment of a version without ``predecessor``)."""
    try:
        return int(_at(client, block, "predecessor")[3])
    except (ContractLogicError, Web3Exception, ValueError):
        return 0


def open_orders(client: VoisinClient, from_block: int, block: int) -> list[OpenOrder]:
    """The orders open after ``block``: posted and not cancelled by then (events), each read
    back from the contract at that block."""
    posted: dict[tuple[str, int], int] = {}
    for e in client.events(from_block, block):
        if e.name in ("OfferPosted", "BidPosted"):
            side = "offer" if e.name == "OfferPosted" else "bid"
            posted[(side, int(e.args[f"{side}Id"]))] = int(e.args["household"])
        elif e.name in ("OfferCancelled", "BidCancelled"):
            side = "offer" if e.name == "OfferCancelled" else "bid"
            posted.pop((side, int(e.args[f"{side}Id"])), None)
    out: list[OpenOrder] = []
    for side, order_id in sorted(posted):
        household, price, cap, first, last, is_open = _at(
            client, block, "getOffer" if side == "offer" else "getBid", order_id
        )
        if is_open:
            out.append(OpenOrder(side, order_id, int(household), price, cap, first, last))
    return out


# ───────────────────────────── Freeze, carry over, record ─────────────────────────────


@dataclass(frozen=True, slots=True)
class Freeze:
    """The old deployment, frozen: paused at ``block`` after its open orders were cancelled."""

    block: int
    cancelled_orders: tuple[OpenOrder, ...]
    was_paused: bool
    gas_used: int


def freeze(
    client: VoisinClient,
    operator: LocalAccount,
    from_block: int,
    engine: Engine | None = None,
    *,
    allow_unsettled: bool = False,
) -> Freeze:
    """Pause the deployment of ``client``, then cancel its open orders; returns the freeze
    block B (the last of those transactions) and the orders cancelled.

    Paused first, so that no order can be posted between the cancellations and the pause; a
    cancellation is allowed while paused. The orders cancelled are read back from the
    ``OfferCancelled``/``BidCancelled`` events the operator caused since the last pause, so a
    migration run again after a crash still lists the orders the first run cancelled.

    With ``engine`` (its database mirror), refuses while a slot that can still be traded (one
    of the last KEPT_SLOTS slots metered) has readings but no settled outcome: its credits
    would be stranded on a frozen deployment. ``allow_unsettled`` freezes anyway (an
    emergency); what was not sold of those slots is then grid export, like any unsold surplus.
    Refusing changes nothing.
    """
    head = int(client.w3.eth.block_number)
    if not allow_unsettled:
        escrowed = open_forwards(client.events(from_block, head))
        if escrowed:
            slots = sorted({slot for slot, _, _ in escrowed.values()})
            held = sum(r for _, _, r in escrowed.values())
            raise MigrationError(
                f"{len(escrowed)} forward positions of slots {slots} are open, {held} ueur in "
                "escrow; settle them once their slots are metered, before the freeze (or pass "
                "allow_unsettled: their reservations then go back to their buyers' balances)"
            )
    if engine is not None and not allow_unsettled:
        unsettled = _unsettled_slots(client, from_block, head, engine)
        if unsettled:
            raise MigrationError(
                f"slots {unsettled} are metered but not settled; settle them before the freeze "
                "(or pass allow_unsettled to freeze an emergency-stopped ledger as it is)"
            )
    gas = 0
    block = head
    was_paused = client.paused()
    if not was_paused:
        result = client.pause(operator)
        gas += result.gas_used
        block = result.block_number
    orders = open_orders(client, from_block, block)
    calls = [
        (operator, "cancelOffer" if o.side == "offer" else "cancelBid", (o.order_id,))
        for o in orders
    ]
    for result in client.transact_many(calls) if calls else []:
        gas += result.gas_used
        block = max(block, result.block_number)
    cancelled = _cancelled_since_pause(client, from_block, block, operator.address)
    return Freeze(block, tuple(cancelled), was_paused, gas)


def _cancelled_since_pause(
    client: VoisinClient, from_block: int, block: int, operator: str
) -> list[OpenOrder]:
    """The orders ``operator`` cancelled from the last ``Paused`` event up to ``block``, as
    they were posted."""
    events = client.events(from_block, block)
    paused_at = max((e.block_number for e in events if e.name == "Paused"), default=from_block)
    out: list[OpenOrder] = []
    for e in events:
        if e.name not in ("OfferCancelled", "BidCancelled") or e.block_number < paused_at:
            continue
        if to_checksum_address(e.args["by"]) != to_checksum_address(operator):
            continue
        side = "offer" if e.name == "OfferCancelled" else "bid"
        order_id = int(e.args[f"{side}Id"])
        household, price, cap, first, last, _ = _at(
            client, block, "getOffer" if side == "offer" else "getBid", order_id
        )
        out.append(OpenOrder(side, order_id, int(household), price, cap, first, last))
    return sorted(out, key=lambda o: (o.side, o.order_id))


def _unsettled_slots(client: VoisinClient, from_block: int, head: int, engine: Engine) -> list[int]:
    """The slots still tradeable on chain (the last KEPT_SLOTS metered by any household) that
    have readings but no settled outcome in the mirror."""
    from ledger.mirror.models import SlotOutcomeRecord, plain_rows

    slots = sorted(
        {
            int(e.args["slot"])
            for e in client.events(from_block, head)
            if e.name == "ReadingCommitted"
        }
    )
    recent = slots[-KEPT_SLOTS:]
    with Session(engine) as session:
        settled = {
            int(r.slot) for r in plain_rows(session, SlotOutcomeRecord) if r.status == "settled"
        }
    return [s for s in recent if s not in settled]


@dataclass(frozen=True, slots=True)
class CarryOver:
    """A new deployment that carries a snapshot: where it is and what the carry-over cost."""

    deployment: Deployment
    client: VoisinClient
    carried_block: int
    carried: CarriedState
    deploy_gas: int
    gas_used: int
    transactions: int


def carry_over(
    chain: Chain,
    old: Deployment,
    frozen_block: int,
    state: CarriedState,
    *,
    artifact: Artifact | None = None,
    batch_size: int = ONBOARD_BATCH,
) -> CarryOver:
    """Deploy the new version continuing ``old`` (frozen at ``frozen_block`` with ``state``)
    and carry ``state`` to it; raises :class:`MigrationError` if the new deployment's state at
    the end differs from ``state`` (its digest names the first difference)."""
    artifact = artifact or load_artifact(CONTRACT_NAME)
    operator = chain.operator
    plan = plan_carry_over(state, operator.address, batch_size)
    predecessor = Predecessor(old.address, frozen_block, state.digest(), state.last_slot)
    deployment = deploy(chain, state.tariffs, artifact, predecessor)
    client = VoisinClient(
        chain.w3, deployment.address, artifact["abi"], estimate_gas=chain.estimates_gas
    )
    receipt = chain.w3.eth.get_transaction_receipt(deployment.tx_hash)  # type: ignore[arg-type]
    block, gas, sent = apply_plan(client, operator, plan)
    block = max(block, deployment.block_number)
    carried = read_state(client, deployment.block_number, block)
    if carried != state:
        raise MigrationError(
            f"the new deployment {deployment.address} does not hold the snapshot after block "
            f"{block}: digest {carried.digest()} against {state.digest()}; "
            f"first difference: {_first_difference(state, carried)}"
        )
    return CarryOver(deployment, client, block, carried, int(receipt["gasUsed"]), gas, sent)


def apply_plan(
    client: VoisinClient, operator: LocalAccount, plan: CarryOverPlan
) -> tuple[int, int, int]:
    """Send ``plan``'s calls to the new deployment of ``client`` as ``operator``, in order;
    returns the last block they were mined in, the gas they used and how many there were."""
    calls: list[tuple[LocalAccount, str, Sequence[Any]]] = []
    if plan.fee_recipient is not None:
        calls.append((operator, "setFeeRecipient", (plan.fee_recipient,)))
    for role, account in plan.grant:
        calls.append((operator, "grantRole", (role_id(role), account)))
    results = client.transact_many(calls) if calls else []
    for batch in plan.onboarding:
        entries = [
            (
                h.account,
                h.meter,
                h.prosumer,
                h.import_baseline_Wh,
                h.export_baseline_Wh,
                h.top_up_ueur,
            )
            for h in batch
        ]
        results.append(client.transact(operator, "onboard", entries))
    later: list[tuple[LocalAccount, str, Sequence[Any]]] = [
        (operator, "deactivateHousehold", (hid,)) for hid in plan.deactivate
    ]
    later += [(operator, "topUp", (account, amount)) for account, amount in plan.top_ups]
    later += [(operator, "revokeRole", (role_id(r), a)) for r, a in plan.revoke]
    if later:
        results += client.transact_many(later)
    block = max((r.block_number for r in results), default=0)
    return block, sum(r.gas_used for r in results), len(results)


def _first_difference(want: CarriedState, have: CarriedState) -> str:
    a, b = want.as_dict(), have.as_dict()
    for key in a:
        if a[key] != b[key]:
            if isinstance(a[key], list) and isinstance(b[key], list):
                for i, (x, y) in enumerate(zip(a[key], b[key], strict=False)):
                    if x != y:
                        return f"{key}[{i}]: {x} against {y}"
                return f"{key}: {len(a[key])} entries against {len(b[key])}"
            return f"{key}: {a[key]} against {b[key]}"
    return "none"


def _mirror_tables() -> list[Table]:
    """The database mirror's tables (ledger.mirror.models), in the metadata's order."""
    from ledger.mirror import models

    names = {
        cls.__tablename__
        for cls in vars(models).values()
        if isinstance(cls, type)
        and issubclass(cls, SQLModel)
        and cls.__module__ == models.__name__
        and "__table__" in vars(cls)
    }
    return [t for t in SQLModel.metadata.sorted_tables if t.name in names]


def _archive_engine(archive: Path) -> Engine:
    """The SQLite database ``archive``, with the mirror's tables."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    target = create_engine(f"sqlite:///{archive}")
    SQLModel.metadata.create_all(target, tables=_mirror_tables())
    return target


def is_archived(archive: Path, contract: str) -> bool:
    """Whether ``archive`` holds the mirror of ``contract`` (its indexer cursor)."""
    from ledger.mirror.models import IndexerCursor

    if not archive.is_file():
        return False
    target = _archive_engine(archive)
    try:
        with Session(target) as session:
            return session.get(IndexerCursor, contract) is not None
    finally:
        target.dispose()


def archive_mirror(engine: Engine, archive: Path, contract: str) -> int:
    """Copy the database mirror (every table of :mod:`ledger.mirror.models`: events, records,
    evidence, outcomes, digests) into the SQLite database ``archive``, then empty those tables
    in ``engine`` for the deployment that continues ``contract``; returns the rows archived.

    The archive is the old deployment's mirror as it was at its freeze, which its audit reads.
    An archive that already holds ``contract``'s mirror is kept (a migration run again after a
    crash must not overwrite it with an emptied mirror). The API's own tables are left alone.
    """
    tables = _mirror_tables()
    copied = 0
    if not is_archived(archive, contract):
        target = _archive_engine(archive)
        try:
            with engine.connect() as source, target.begin() as sink:
                for table in tables:
                    sink.execute(delete(table))
                    rows = [dict(r) for r in source.execute(select(table)).mappings()]
                    for start in range(0, len(rows), 1000):
                        sink.execute(table.insert(), rows[start : start + 1000])
                    copied += len(rows)
        finally:
            target.dispose()
    with engine.begin() as live:
        for table in reversed(tables):
            live.execute(delete(table))
    return copied


# ───────────────────────────── The command ─────────────────────────────


@dataclass
class MigrationReport:
    """What a migration did: the two deployments, the freeze and carried blocks, the snapshot
    and its digest, what it cost, and the orders cancelled on the old deployment."""

    chain_id: int
    old: str
    new: str
    frozen_block: int
    carried_block: int
    snapshot_digest: str
    last_slot: int
    households: int
    carried_ueur: int
    cancelled_orders: list[OpenOrder]
    freeze_gas: int
    deploy_gas: int
    carry_over_gas: int
    transactions: int
    mirror_archive: str | None
    mirror_rows_archived: int
    seconds: float
    state: CarriedState = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.state.as_dict()
        return out

    def lines(self) -> list[str]:
        """The report for people, one line each."""
        out = [
            f"chain {self.chain_id}: Voisin {self.old} frozen at block {self.frozen_block}",
            f"continued by {self.new}; state carried over by block {self.carried_block}",
            f"snapshot digest {self.snapshot_digest}; meters start after slot {self.last_slot}",
            f"{self.households} households and {self.carried_ueur} ueur carried over",
            f"gas: freeze {self.freeze_gas}, deployment {self.deploy_gas}, carry-over "
            f"{self.carry_over_gas} ({self.transactions} transactions); {self.seconds:.1f} s",
        ]
        if self.mirror_archive:
            out.append(f"old mirror archived in {self.mirror_archive}")
        for o in self.cancelled_orders:
            last = "standing" if o.last_slot == OPEN_END else f"to slot {o.last_slot}"
            out.append(
                f"cancelled {o.side} {o.order_id} of household {o.household} "
                f"({o.price_limit_ueur_per_kWh} ueur/kWh, from slot {o.first_slot}, {last}): "
                "to be re-posted by the household"
            )
        return out


def migrate(
    chain: Chain,
    data_dir: Path,
    *,
    engine: Engine | None = None,
    artifact: Artifact | None = None,
    batch_size: int = ONBOARD_BATCH,
    allow_unsettled: bool = False,
    say: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Migrate the ledger recorded in ``data_dir`` on ``chain`` to a new deployment of
    ``artifact`` (the committed contract by default): freeze, snapshot, carry over, archive the
    old mirror from ``engine`` (the ledger's database; none to leave databases alone), record.

    Each step is checked before the next; a migration that stops half-way leaves the old
    deployment paused and still recorded as current, and running it again deploys afresh
    (the half-carried contract is never recorded, so never opened).
    """
    started = time.perf_counter()
    tell = say or (lambda _line: None)
    current, _history = recorded_deployments(data_dir, chain.chain_id)
    if current is None:
        raise MigrationError(f"{data_dir} records no Voisin deployment on chain {chain.chain_id}")
    artifact = artifact or load_artifact(CONTRACT_NAME)
    old = VoisinClient(chain.w3, current.address, artifact["abi"], estimate_gas=chain.estimates_gas)
    from ledger.mirror.indexer import index

    archive_name = f"{ARCHIVE_DIR}/{current.address}.db"
    archive = Path(data_dir) / archive_name
    # The old deployment's mirror: the live one, or its archive when a run that stopped
    # half-way archived it already (the live tables are emptied then).
    mirror = engine
    if engine is not None and is_archived(archive, current.address):
        mirror = _archive_engine(archive)
    if mirror is not None:
        index(old, mirror, start_block=current.block_number)
    frozen = freeze(
        old, chain.operator, current.block_number, mirror, allow_unsettled=allow_unsettled
    )
    tell(f"froze {current.address} at block {frozen.block}")
    if mirror is not None:
        index(old, mirror, start_block=current.block_number)
        if mirror is not engine:
            mirror.dispose()
    state = read_state(old, current.block_number, frozen.block)
    digest = state.digest()
    if state.household_balances_ueur + state.other_balances_ueur != state.total_supply_ueur:
        raise MigrationError(
            f"the frozen deployment's balances sum to "
            f"{state.household_balances_ueur + state.other_balances_ueur} ueur but its total "
            f"supply is {state.total_supply_ueur} ueur: some holder was not found"
        )
    tell(f"snapshot at block {frozen.block}: digest {digest}")
    carried = carry_over(
        chain, current, frozen.block, state, artifact=artifact, batch_size=batch_size
    )
    tell(f"carried over to {carried.deployment.address} by block {carried.carried_block}")
    archived = 0
    if engine is not None:
        archived = archive_mirror(engine, archive, current.address)
        tell(f"archived {archived} mirror rows in {archive_name}")
    new = Deployment(**{**asdict(carried.deployment), "carried_block": carried.carried_block})
    record_upgrade(
        Path(data_dir),
        FrozenDeployment(
            current, frozen.block, digest, archive_name if engine else None, new.address
        ),
        new,
    )
    if engine is not None:
        index(carried.client, engine, start_block=new.block_number)
    return MigrationReport(
        chain_id=chain.chain_id,
        old=current.address,
        new=new.address,
        frozen_block=frozen.block,
        carried_block=carried.carried_block,
        snapshot_digest=digest,
        last_slot=state.last_slot,
        households=len(state.households),
        carried_ueur=state.total_supply_ueur,
        cancelled_orders=list(frozen.cancelled_orders),
        freeze_gas=frozen.gas_used,
        deploy_gas=carried.deploy_gas,
        carry_over_gas=carried.gas_used,
        transactions=carried.transactions,
        mirror_archive=archive_name if engine else None,
        mirror_rows_archived=archived,
        seconds=time.perf_counter() - started,
        state=state,
    )


def repost_orders(
    client: VoisinClient,
    orders: Sequence[OpenOrder],
    accounts: Mapping[int, LocalAccount],
    last_slot: int,
) -> dict[tuple[str, int], int]:
    """Re-post on the new deployment the ``orders`` cancelled at the freeze, each by its
    household's key in ``accounts`` (household id -> key: whoever holds the households' keys,
    the API's custody, calls this), from the slot after ``last_slot`` on; an order whose slots
    all lie before is not re-posted. Returns (side, old id) -> new id."""
    posted: dict[tuple[str, int], int] = {}
    for o in orders:
        if o.last_slot <= last_slot:
            continue
        key = accounts.get(o.household)
        if key is None:
            raise MigrationError(f"no key for household {o.household} to re-post its {o.side}")
        first = max(o.first_slot, last_slot + 1)
        post = client.post_offer if o.side == "offer" else client.post_bid
        posted[(o.side, o.order_id)] = post(
            key, o.price_limit_ueur_per_kWh, first, o.last_slot, o.max_Wh_per_slot
        )
    return posted
