"""The audit across a contract upgrade: the old deployment up to its freeze, the new one from
its start, and the carry-over between them (:mod:`ledger.contract.upgrade`).

The carry-over check proves that the new deployment began with exactly the old one's state:

- the new deployment declares, in its constructor (``MigratedFrom``, ``predecessor()``), the
  old deployment, the freeze block B, the snapshot digest and the last slot metered; the
  record in ``deployments.json`` names the same;
- the old deployment's state at B has that digest, it is paused, and nothing happened on it
  after B (no event, the same state at the head);
- the new deployment's state at the carried block C has that digest too, household by
  household: a carried balance that differs is a ``money`` finding, carried registers that
  differ an ``energy`` finding, anything else an ``integrity`` finding; and up to C it emitted
  nothing but the carry-over (registrations, top-ups, deactivations, tariffs, fee recipient,
  roles): no reading, order or fill;
- money is conserved across the boundary: the top-ups up to C (the carry-over) equal the old
  total supply at B, and so does the new total supply at C; money minted after C is new money,
  which the new deployment's own audit accounts for;
- energy is conserved across the boundary: each meter's carried registers are its last ones
  on the old deployment (in the digest), so its next reading on the new one meters only what
  was not counted; and no slot is metered on both: the old deployment metered nothing after
  the declared last slot, the new one nothing up to it.

``C`` comes from ``deployments.json``, which a database writer could change: a C moved later
takes in readings or new top-ups and one moved earlier leaves carried households out, so the
state at it no longer has the digest the chain declared. Such an edit shows up as a finding;
it cannot hide a wrong carry-over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ledger.audit.findings import ERROR, Finding
from ledger.audit.report import AuditReport, run_audit
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import Deployment, FrozenDeployment
from ledger.contract.upgrade import CarriedHousehold, CarriedState, read_state
from ledger.types import Event

if TYPE_CHECKING:
    from ledger.chain.backends import Chain

__all__ = [
    "CARRY_OVER_EVENTS",
    "AcrossInputs",
    "AcrossReport",
    "audit_across",
    "audit_recorded",
    "check_across",
    "collect_across",
]

#: The events a carry-over emits: anything else before the carried block is a finding.
CARRY_OVER_EVENTS = frozenset(
    {
        "RoleGranted",
        "RoleRevoked",
        "MigratedFrom",
        "FeeRecipientSet",
        "TariffsSet",
        "HouseholdRegistered",
        "HouseholdDeactivated",
        "ToppedUp",
        "Transfer",
    }
)


@dataclass
class AcrossInputs:
    """What the carry-over check reads from the two deployments (see :func:`collect_across`)."""

    old: FrozenDeployment
    new: Deployment
    declared: tuple[str, int, str, int]
    """The new deployment's ``predecessor()``: deployment, snapshot block, digest, last slot."""
    old_at_freeze: CarriedState
    old_at_head: CarriedState
    old_paused: bool
    old_events_after_freeze: list[Event]
    old_last_reading_slot: int | None
    new_at_carried: CarriedState
    new_carry_over_events: list[Event]
    new_first_reading_slot: int | None
    new_total_supply_at_carried_ueur: int
    head_block: int


def collect_across(
    old_client: VoisinClient,
    old: FrozenDeployment,
    new_client: VoisinClient,
    new: Deployment,
) -> AcrossInputs:
    """Read both deployments: the old one at its freeze block and at the head, the new one at
    its carried block (its deployment block when none is recorded)."""
    head = int(new_client.w3.eth.block_number)
    carried_block = new.carried_block if new.carried_block is not None else new.block_number
    old_events = old_client.events(old.deployment.block_number, head)
    new_events = new_client.events(new.block_number, head)
    old_slots = [int(e.args["slot"]) for e in old_events if e.name == "ReadingCommitted"]
    new_slots = [int(e.args["slot"]) for e in new_events if e.name == "ReadingCommitted"]
    previous = new_client.contract.functions.predecessor().call(block_identifier=carried_block)
    return AcrossInputs(
        old=old,
        new=new,
        declared=(
            str(previous[0]),
            int(previous[1]),
            "0x" + bytes(previous[2]).hex(),
            int(previous[3]),
        ),
        old_at_freeze=read_state(old_client, old.deployment.block_number, old.frozen_block),
        old_at_head=read_state(old_client, old.deployment.block_number, head),
        old_paused=old_client.paused(),
        old_events_after_freeze=[e for e in old_events if e.block_number > old.frozen_block],
        old_last_reading_slot=max(old_slots) if old_slots else None,
        new_at_carried=read_state(new_client, new.block_number, carried_block),
        new_carry_over_events=[e for e in new_events if e.block_number <= carried_block],
        new_first_reading_slot=min(new_slots) if new_slots else None,
        new_total_supply_at_carried_ueur=int(
            new_client.contract.functions.totalSupply().call(block_identifier=carried_block)
        ),
        head_block=head,
    )


def check_across(inputs: AcrossInputs) -> list[Finding]:
    """The carry-over checks over ``inputs``; pure."""
    findings: list[Finding] = []

    def add(check: str, message: str, household: int | None = None, **evidence: Any) -> None:
        findings.append(
            Finding(check, ERROR, None, household, message, {"boundary": "carry-over", **evidence})
        )

    old, new = inputs.old, inputs.new
    snapshot = inputs.old_at_freeze
    digest = snapshot.digest()
    declared = inputs.declared
    recorded = (old.deployment.address, old.frozen_block, old.snapshot_digest, snapshot.last_slot)
    if declared != recorded:
        add(
            "integrity",
            "the new deployment's declared predecessor differs from the recorded freeze",
            declared=list(declared),
            recorded=list(recorded),
        )
    if new.migrated_from != old.deployment.address or new.snapshot_digest != old.snapshot_digest:
        add(
            "integrity",
            "deployments.json's record of the new deployment names another predecessor or digest",
            migrated_from=new.migrated_from,
            snapshot_digest=new.snapshot_digest,
            frozen=old.deployment.address,
            frozen_digest=old.snapshot_digest,
        )
    if digest != old.snapshot_digest:
        add(
            "integrity",
            f"the old deployment's state at its freeze block {old.frozen_block} has digest "
            f"{digest}, not the snapshot digest {old.snapshot_digest}",
            recomputed=digest,
            snapshot_digest=old.snapshot_digest,
        )
    # The old deployment stays frozen.
    if not inputs.old_paused:
        add("integrity", f"the old deployment {old.deployment.address} is no longer paused")
    for e in inputs.old_events_after_freeze:
        add(
            "integrity",
            f"the old deployment emitted {e.name} after its freeze block {old.frozen_block}",
            event=e.name,
            block=e.block_number,
            tx_hash=e.tx_hash,
            args={k: str(v) for k, v in e.args.items()},
        )
    if inputs.old_at_head != snapshot:
        add(
            "integrity",
            "the old deployment's state changed after its freeze: its digest is now "
            f"{inputs.old_at_head.digest()}",
            recomputed=inputs.old_at_head.digest(),
            snapshot_digest=digest,
        )
    _carried(snapshot, inputs.new_at_carried, add)
    # Only the carry-over happened up to the carried block.
    for e in inputs.new_carry_over_events:
        if e.name not in CARRY_OVER_EVENTS:
            add(
                "integrity",
                f"the new deployment emitted {e.name} before its carry-over was complete "
                f"(block {new.carried_block})",
                event=e.name,
                block=e.block_number,
                tx_hash=e.tx_hash,
            )
    # Money across the boundary.
    carried_in = sum(
        int(e.args["amountUeur"]) for e in inputs.new_carry_over_events if e.name == "ToppedUp"
    )
    supply = inputs.new_total_supply_at_carried_ueur
    if not carried_in == supply == snapshot.total_supply_ueur:
        add(
            "money",
            f"money carried over {carried_in} ueur, new total supply {supply} ueur at the "
            f"carried block, old total supply {snapshot.total_supply_ueur} ueur at the freeze: "
            "must all be equal",
            carried_top_ups_ueur=carried_in,
            new_total_supply_ueur=supply,
            old_total_supply_ueur=snapshot.total_supply_ueur,
        )
    held = snapshot.household_balances_ueur + snapshot.other_balances_ueur
    if held != snapshot.total_supply_ueur:
        add(
            "money",
            f"the old deployment's balances sum to {held} ueur at its freeze, its total supply "
            f"is {snapshot.total_supply_ueur} ueur",
            balances_ueur=held,
            total_supply_ueur=snapshot.total_supply_ueur,
        )
    # Energy across the boundary: no slot metered on both sides of the declared last slot.
    last = snapshot.last_slot
    if inputs.old_last_reading_slot is not None and inputs.old_last_reading_slot > last:
        add(
            "energy",
            f"the old deployment metered slot {inputs.old_last_reading_slot}, after the last "
            f"slot carried over ({last})",
            old_last_reading_slot=inputs.old_last_reading_slot,
            last_slot=last,
        )
    if inputs.new_first_reading_slot is not None and inputs.new_first_reading_slot <= last:
        add(
            "energy",
            f"the new deployment metered slot {inputs.new_first_reading_slot}, which the old "
            f"deployment's last slot ({last}) already covers",
            new_first_reading_slot=inputs.new_first_reading_slot,
            last_slot=last,
        )
    return findings


def _carried(want: CarriedState, have: CarriedState, add: Callable[..., None]) -> None:
    """Compare the new deployment's carried state with the snapshot, field by field."""
    if have.digest() == want.digest():
        return
    for name in ("last_slot", "tariffs", "fee_recipient", "roles", "total_supply_ueur"):
        a, b = getattr(want, name), getattr(have, name)
        if a != b:
            check = "money" if name == "total_supply_ueur" else "integrity"
            add(check, f"carried {name} differs from the snapshot", snapshot=str(a), carried=str(b))
    theirs: Mapping[int, CarriedHousehold] = {h.id: h for h in have.households}
    for h in want.households:
        got = theirs.get(h.id)
        if got is None:
            add("integrity", f"household {h.id} was not carried over", h.id)
            continue
        if got.balance_ueur != h.balance_ueur:
            add(
                "money",
                f"household {h.id}'s carried balance is {got.balance_ueur} ueur; it held "
                f"{h.balance_ueur} ueur at the freeze",
                h.id,
                account=h.account,
                snapshot_ueur=h.balance_ueur,
                carried_ueur=got.balance_ueur,
            )
        if (got.import_Wh, got.export_Wh) != (h.import_Wh, h.export_Wh):
            add(
                "energy",
                f"household {h.id}'s meter starts at registers {[got.import_Wh, got.export_Wh]} "
                f"Wh on the new deployment; it ended at {[h.import_Wh, h.export_Wh]} Wh",
                h.id,
                meter=h.meter,
                snapshot_registers_Wh=[h.import_Wh, h.export_Wh],
                carried_registers_Wh=[got.import_Wh, got.export_Wh],
            )
        same = {
            k: v
            for k, v in asdict(h).items()
            if k not in ("balance_ueur", "import_Wh", "export_Wh")
        }
        if same != {k: asdict(got)[k] for k in same}:
            add(
                "integrity",
                f"household {h.id} was carried over with another registry entry",
                h.id,
                snapshot={k: str(v) for k, v in same.items()},
                carried={k: str(asdict(got)[k]) for k in same},
            )
    for h in have.households:
        if h.id not in {w.id for w in want.households}:
            add(
                "integrity",
                f"household {h.id} was registered in the carry-over but is not in the snapshot",
                h.id,
            )
    if have.other_balances != want.other_balances:
        add(
            "money",
            "the balances of holders that are not households differ from the snapshot",
            snapshot=[list(b) for b in want.other_balances],
            carried=[list(b) for b in have.other_balances],
        )


@dataclass
class AcrossReport:
    """The audit across an upgrade: the old deployment's audit (up to its freeze), the new
    one's (from its start), and the carry-over findings between them."""

    old: AuditReport
    new: AuditReport
    carry_over: list[Finding]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.old.ok and self.new.ok and not self.carry_over

    @property
    def findings(self) -> list[Finding]:
        return [*self.old.findings, *self.carry_over, *self.new.findings]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.meta,
            "old": self.old.as_dict(),
            "carry_over": {
                "ok": not self.carry_over,
                "findings": [f.as_dict() for f in self.carry_over],
            },
            "new": self.new.as_dict(),
        }


def audit_across(
    old_client: VoisinClient,
    old_engine: Engine,
    old: FrozenDeployment,
    new_client: VoisinClient,
    new_engine: Engine,
    new: Deployment,
) -> AcrossReport:
    """Audit the old deployment (its archived mirror ``old_engine``), the carry-over, and the
    new deployment (its mirror ``new_engine``)."""
    old_report = run_audit(old_client, old_engine, old.deployment.block_number)
    inputs = collect_across(old_client, old, new_client, new)
    carry = check_across(inputs)
    new_report = run_audit(new_client, new_engine, new.block_number)
    meta = {
        "old_contract": old.deployment.address,
        "frozen_block": old.frozen_block,
        "snapshot_digest": old.snapshot_digest,
        "new_contract": new.address,
        "carried_block": new.carried_block,
        "last_slot": inputs.old_at_freeze.last_slot,
        "households_carried": len(inputs.old_at_freeze.households),
        "carried_ueur": inputs.old_at_freeze.total_supply_ueur,
        "head_block": inputs.head_block,
    }
    return AcrossReport(old_report, new_report, carry, meta)


def audit_recorded(chain: Chain, data_dir: Path, engine: Engine) -> AcrossReport | None:
    """:func:`audit_across` over the last upgrade recorded in ``data_dir``'s
    ``deployments.json`` (the live database ``engine`` mirrors the current deployment, the
    old one's archive is where the record says); None when no upgrade is recorded."""
    from ledger.contract.compile import load_artifact
    from ledger.contract.deploy import CONTRACT_NAME, recorded_deployments
    from ledger.mirror.engine import make_engine

    current, history = recorded_deployments(data_dir, chain.chain_id)
    if current is None or not history:
        return None
    old = history[-1]
    abi = load_artifact(CONTRACT_NAME)["abi"]
    gas = chain.estimates_gas
    old_client = VoisinClient(chain.w3, old.deployment.address, abi, estimate_gas=gas)
    new_client = VoisinClient(chain.w3, current.address, abi, estimate_gas=gas)
    archive = old.mirror_archive
    if archive is None:
        old_engine = engine
    elif "://" in archive:
        old_engine = make_engine(archive)
    else:
        old_engine = make_engine(f"sqlite:///{(Path(data_dir) / archive).resolve()}")
    return audit_across(old_client, old_engine, old, new_client, engine, current)
