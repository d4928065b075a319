"""What the audit reads, gathered in one place: the chain's events and state, and the database.

:func:`collect` is the only function of :mod:`ledger.audit` that touches the chain and the
database; the checks are pure functions over the :class:`AuditInputs` it returns. It only reads:
the audit never indexes, so a mirror that was tampered with is audited as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from ledger.contract.client import VoisinClient
from ledger.contract.event_codec import checksum_address
from ledger.errors import LedgerError
from ledger.mirror.models import (
    BalanceRecord,
    ChainEvent,
    FillRecord,
    ForwardRecord,
    HouseholdRecord,
    IndexerCursor,
    IndexerState,
    NeighbourhoodSlotRecord,
    OrderRecord,
    ReadingRecord,
    SignedReadingRecord,
    SlotDigestRecord,
    SlotOutcomeRecord,
    TariffRecord,
    TopUpRecord,
    plain_rows,
)
from ledger.types import Event, MeterState

__all__ = ["EVIDENCE_FROM_KEY", "AuditInputs", "Registration", "checksum", "collect"]

#: The ``indexer_state`` key that holds the first slot whose signed readings are all kept:
#: those of earlier sealed slots were purged past their retention (``api.privacy.purge``).
EVIDENCE_FROM_KEY = "signed_readings_from_slot"


#: ``address`` checksummed, remembered: the checks compare tens of thousands of addresses among
#: a few hundred distinct ones, and checksumming (a keccak each) dominated their time. The event
#: decoder's cache, so that an address is hashed once per process.
checksum = checksum_address


@dataclass(frozen=True, slots=True)
class Registration:
    """A meter's start on chain: registration or rotation, with its baseline registers (Wh)."""

    household: int
    meter: str
    import_baseline_Wh: int
    export_baseline_Wh: int
    block_number: int
    log_index: int


@dataclass
class AuditInputs:
    """Everything the checks look at. Addresses are checksummed; energy Wh, money micro-euro.

    ``events`` are the contract's events from the deployment block to ``head_block``, in chain
    order; ``mirror_block`` is the last block the database claims to mirror (``None`` before
    any indexing). ``registrations`` come from the chain (events, with the baselines read from
    the registering transactions). ``balances`` and ``meter_states`` are the chain's current
    state for every account and meter the events name.
    """

    chain_id: int
    contract: str
    deployment_block: int
    head_block: int
    mirror_block: int | None
    events: list[Event]
    registrations: list[Registration]
    balances: dict[str, int]
    """Every account's balance at the head."""
    total_supply_ueur: int
    meter_states: dict[str, MeterState]
    household_meters: dict[int, str]
    """Each household's current meter, as the chain's ``getHousehold`` returns it."""
    mirror_balances: dict[str, int] = field(default_factory=dict)
    """Every account's balance after ``mirror_block``, when the mirror lags the head: what the
    mirrored balances must then equal."""
    db_events: list[ChainEvent] = field(default_factory=list)
    db_households: list[HouseholdRecord] = field(default_factory=list)
    db_readings: list[ReadingRecord] = field(default_factory=list)
    db_fills: list[FillRecord] = field(default_factory=list)
    db_forwards: list[ForwardRecord] = field(default_factory=list)
    db_topups: list[TopUpRecord] = field(default_factory=list)
    db_orders: list[OrderRecord] = field(default_factory=list)
    db_tariffs: list[TariffRecord] = field(default_factory=list)
    db_balances: list[BalanceRecord] = field(default_factory=list)
    db_outcomes: list[SlotOutcomeRecord] = field(default_factory=list)
    db_digests: list[SlotDigestRecord] = field(default_factory=list)
    signed: list[SignedReadingRecord] = field(default_factory=list)
    evidence_from_slot: int | None = None
    """The evidence store's window: the signed readings of sealed slots before this one were
    purged past their retention (``None``: every signed reading is kept)."""
    neighbourhood: list[NeighbourhoodSlotRecord] = field(default_factory=list)

    def named(self, *names: str) -> list[Event]:
        return [e for e in self.events if e.name in names]


def _all(session: Session, model: Any, order: Sequence[Any] = ()) -> list[Any]:
    """Every row of ``model``'s table, as plain rows (the audit only reads them)."""
    return plain_rows(session, model, order=order)


class AuditError(LedgerError, ValueError):
    """The audit was asked something it cannot answer (e.g. a slot range that is empty), or
    the database holds something it cannot read."""


def _evidence_window(value: str) -> int:
    """The evidence store's first kept slot, as the database holds it; :class:`AuditError`
    (the audit cannot say what provenance covers) if it is no slot number."""
    if not re.fullmatch(r"[0-9]{1,10}", value) or int(value) >= 2**32:
        raise AuditError(
            f"the database's signed-readings window ({EVIDENCE_FROM_KEY} = {value!r}) is not a "
            "slot number: the database was altered or damaged"
        )
    return int(value)


def collect(client: VoisinClient, engine: Engine, deployment_block: int) -> AuditInputs:
    """Read the chain's events and state and every table the audit checks."""
    head = int(client.w3.eth.block_number)
    events = client.events(deployment_block, head)
    registrations: list[Registration] = []
    accounts: set[str] = set()
    meters: set[str] = set()
    households: set[int] = set()
    for e in events:
        a = e.args
        if e.name == "HouseholdRegistered":
            registrations.append(
                Registration(
                    int(a["household"]),
                    checksum(a["meter"]),
                    int(a["importBaselineWh"]),
                    int(a["exportBaselineWh"]),
                    e.block_number,
                    e.log_index,
                )
            )
            accounts.add(checksum(a["account"]))
            meters.add(checksum(a["meter"]))
            households.add(int(a["household"]))
        elif e.name == "MeterRotated":
            registrations.append(
                Registration(
                    int(a["household"]),
                    checksum(a["newMeter"]),
                    int(a["importBaselineWh"]),
                    int(a["exportBaselineWh"]),
                    e.block_number,
                    e.log_index,
                )
            )
            meters.add(checksum(a["newMeter"]))
        elif e.name == "AccountRotated":
            accounts.add(checksum(a["newAccount"]))
        elif e.name in ("Transfer", "ToppedUp"):
            for key in ("from", "to", "account"):
                if key in a and int(a[key], 16) != 0:
                    accounts.add(checksum(a[key]))
        elif e.name == "FeeRecipientSet":
            accounts.add(checksum(a["recipient"]))
    household_meters = {h: str(checksum(client.household(h).meter)) for h in households}
    with Session(engine) as session:
        cursor = session.get(IndexerCursor, client.address)
        mirror_block = None if cursor is None else cursor.last_block
        kept_from = session.get(IndexerState, EVIDENCE_FROM_KEY)
        lagging = mirror_block is not None and deployment_block <= mirror_block < head
        inputs = AuditInputs(
            chain_id=client.chain_id,
            contract=client.address,
            deployment_block=deployment_block,
            head_block=head,
            mirror_block=mirror_block,
            events=events,
            registrations=registrations,
            balances={a: client.balance_of(a) for a in sorted(accounts)},
            mirror_balances=(
                {a: client.balance_of(a, block=mirror_block) for a in sorted(accounts)}
                if lagging and mirror_block is not None
                else {}
            ),
            total_supply_ueur=client.total_supply(),
            meter_states={m: client.meter_state(m) for m in sorted(meters)},
            household_meters=household_meters,
            # Whatever the address's spelling: a row of this contract spelled otherwise is
            # compared with the chain like the others, not left out unchecked.
            db_events=[
                e
                for e in _all(session, ChainEvent, (ChainEvent.block_number, ChainEvent.log_index))
                if e.contract.lower() == client.address.lower()
            ],
            db_households=_all(session, HouseholdRecord, (HouseholdRecord.id,)),
            db_readings=_all(session, ReadingRecord, (ReadingRecord.slot, ReadingRecord.id)),
            db_fills=_all(session, FillRecord, (FillRecord.block_number, FillRecord.log_index)),
            db_forwards=_all(session, ForwardRecord, (ForwardRecord.forward_id,)),
            db_topups=_all(session, TopUpRecord, (TopUpRecord.block_number,)),
            db_orders=_all(session, OrderRecord, (OrderRecord.side, OrderRecord.order_id)),
            db_tariffs=_all(session, TariffRecord, (TariffRecord.block_number,)),
            db_balances=_all(session, BalanceRecord, (BalanceRecord.account,)),
            db_outcomes=_all(session, SlotOutcomeRecord, (SlotOutcomeRecord.slot,)),
            db_digests=_all(session, SlotDigestRecord, (SlotDigestRecord.seq,)),
            signed=_all(session, SignedReadingRecord, (SignedReadingRecord.slot,)),
            evidence_from_slot=None if kept_from is None else _evidence_window(kept_from.value),
            neighbourhood=_all(session, NeighbourhoodSlotRecord, (NeighbourhoodSlotRecord.slot,)),
        )
    return inputs
