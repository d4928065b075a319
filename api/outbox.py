"""The outbox: what the API accepted, sent to the chain in order, exactly once.

Readings and orders are committed to the database before the API answers. Each pass of
:meth:`Outbox.run_once` (the background loop runs one every ``outbox_interval_s``):

1. commits queued readings in slot order, in batches of up to :data:`READING_BATCH`; if the
   chain refuses a batch, the reading it names is marked ``rejected`` with the contract's
   reason and the rest is sent again (the intake pre-checks make this rare);
2. posts queued orders and sends requested cancellations;
3. mirrors the chain into the database (the indexer);
4. settles closed slots (with ``auto_settle``).

Steps 1 and 4 go through the market's one commit-then-settle step
(:func:`ledger.market.slot_step.commit_and_settle`): each batch's evidence is stored before it
is sent and mirrored after, and a slot is settled only once, as in every other path that puts
readings on chain. The outbox adds what a server needs around it: the orders between the two,
a pause for requests before each batch, and a pass that stops where the node stopped answering.

If the node is unreachable the pass stops where it is; everything stays queued and the next
pass resumes. A crash between sending and recording cannot apply anything twice: the contract
refuses a second reading for a (meter, slot) and a second batch for a (slot, batch), and the
outbox treats those refusals as "already done".
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from sqlalchemy import ColumnElement, Engine, func
from sqlmodel import Session, and_, col, or_, select

from api.chain_gate import CHAIN_DOWN, ChainGate
from api.custody import KeyVault
from api.models import ApiHousehold, ApiOrder, IntakeReading
from ledger import errors as ledger_errors
from ledger.contract.client import VoisinClient
from ledger.market.settlement import SettlementWorker
from ledger.market.slot_step import commit_and_settle
from ledger.mirror.models import ReadingRecord, SlotOutcomeRecord
from ledger.readings.intake import reading_from_json
from ledger.types import SLOT_SECONDS

log = logging.getLogger("voisin.outbox")

#: Readings per commitReadings transaction (43,765 gas each: about 4.4 M gas per batch).
READING_BATCH = 100


@dataclass
class PassResult:
    committed: int = 0
    rejected: int = 0
    orders_posted: int = 0
    orders_cancelled: int = 0
    settled_slots: list[int] = field(default_factory=list)
    chain_down: bool = False


def _order_pending() -> ColumnElement[bool]:
    """An order the outbox still has to send: queued, or open with a cancel requested."""
    return or_(
        col(ApiOrder.status) == "queued",
        and_(col(ApiOrder.status) == "open", col(ApiOrder.cancel_requested)),
    )


class Outbox:
    """Sends what the API accepted to the chain; one pass at a time, under the chain gate."""

    def __init__(
        self,
        gate: ChainGate,
        *,
        client: VoisinClient,
        engine: Engine,
        operator: LocalAccount,
        vault: KeyVault,
        worker: SettlementWorker,
        mirror: Callable[[], object],
        settle_after_s: int,
    ) -> None:
        """``operator`` sends the readings; ``vault`` opens each household's key for its
        orders; ``mirror`` brings the database up to the chain (the caller holds the gate's
        lock); a slot is settled ``settle_after_s`` seconds after it ends."""
        self.gate = gate
        self.client = client
        self.engine = engine
        self.operator = operator
        self.vault = vault
        self.worker = worker
        self.mirror = mirror
        self.settle_after_s = settle_after_s

    # ───────────────────────────── Readings ─────────────────────────────

    def _queued_readings(self) -> list[IntakeReading]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(IntakeReading)
                    .where(IntakeReading.status == "queued")
                    .order_by(col(IntakeReading.slot), col(IntakeReading.id))
                    .limit(READING_BATCH * 10)
                )
            )

    def _mark(self, ids: list[int], status: str, tx_hash: str | None, reason: str | None) -> None:
        with Session(self.engine) as session, session.begin():
            for record in session.exec(select(IntakeReading).where(col(IntakeReading.id).in_(ids))):
                record.status = status
                record.tx_hash = tx_hash
                record.reason = reason
                session.add(record)

    def _commit_readings(self, result: PassResult) -> None:
        queued = self._queued_readings()
        while queued:
            batch = queued[:READING_BATCH]
            self.gate.yield_to_requests()
            signed = [reading_from_json(r.model_dump()) for r in batch]
            try:
                # Stores the audit's evidence (the readings as the meters signed them), sends
                # the batch as one transaction, mirrors it. The intake checked the readings as
                # the contract will: no dry run first.
                step = commit_and_settle(
                    self.client,
                    self.operator,
                    signed,
                    worker=self.worker,
                    batch_size=READING_BATCH,
                    check_first=False,
                )
            except (
                ledger_errors.DuplicateReading,
                ledger_errors.StaleReading,
            ) as exc:
                # Already on chain (a crash after sending), or overtaken: look at the chain.
                culprit = batch[int(exc.values["index"])]
                self._settle_known(culprit, exc)
                queued = self._queued_readings()
                continue
            except ledger_errors.ContractError as exc:
                at = exc.values.get("index")
                if at is None:
                    raise
                culprit = batch[int(at)]
                log.warning("reading %s refused by the chain: %s", culprit.id, exc)
                self._mark([culprit.id or 0], "rejected", None, str(exc))
                result.rejected += 1
                queued = self._queued_readings()
                continue
            (tx,) = step.transactions
            self._mark([r.id or 0 for r in batch], "committed", tx.tx_hash, None)
            result.committed += len(batch)
            queued = queued[READING_BATCH:] or self._queued_readings()

    def _settle_known(self, culprit: IntakeReading, exc: ledger_errors.ContractError) -> None:
        """A duplicate or stale refusal: committed already if the chain holds the same reading."""
        state = self.client.meter_state(culprit.meter)
        same = state.last_slot >= culprit.slot
        self.mirror()
        with Session(self.engine) as session:
            mirrored = session.exec(
                select(ReadingRecord).where(
                    ReadingRecord.meter == culprit.meter, ReadingRecord.slot == culprit.slot
                )
            ).first()
        if (
            same
            and mirrored is not None
            and (mirrored.import_Wh, mirrored.export_Wh)
            == (
                culprit.import_Wh,
                culprit.export_Wh,
            )
        ):
            self._mark([culprit.id or 0], "committed", mirrored.tx_hash, None)
        else:
            self._mark([culprit.id or 0], "rejected", None, str(exc))

    # ───────────────────────────── Orders ─────────────────────────────

    def _orders(self, result: PassResult) -> None:
        with Session(self.engine) as session:
            pending = list(
                session.exec(select(ApiOrder).where(_order_pending()).order_by(col(ApiOrder.id)))
            )
            keys = {h.id: h.key_json for h in session.exec(select(ApiHousehold))}
        for order in pending:
            self.gate.yield_to_requests()
            account = self.vault.account(keys[order.household])
            status, chain_id, reason = order.status, order.chain_id, None
            try:
                if order.status == "queued":
                    post = self.client.post_offer if order.side == "offer" else self.client.post_bid
                    chain_id = post(
                        account,
                        order.price_limit_ueur_per_kWh,
                        order.first_slot,
                        order.last_slot,
                        order.max_Wh_per_slot,
                    )
                    status = "open"
                    result.orders_posted += 1
                else:
                    assert chain_id is not None
                    cancel = (
                        self.client.cancel_offer
                        if order.side == "offer"
                        else self.client.cancel_bid
                    )
                    with contextlib.suppress(ledger_errors.OrderAlreadyClosed):
                        cancel(account, chain_id)
                    status = "cancelled"
                    result.orders_cancelled += 1
            except ledger_errors.ContractError as exc:
                status, reason = "rejected", str(exc)
                log.warning("order %s refused by the chain: %s", order.id, exc)
            with Session(self.engine) as session, session.begin():
                record = session.get(ApiOrder, order.id)
                assert record is not None
                record.status, record.chain_id, record.reason = status, chain_id, reason
                session.add(record)

    # ───────────────────────────── A pass ─────────────────────────────

    def run_once(self, *, auto_settle: bool = False) -> PassResult:
        """One pass; stops early (and says so) if the chain is unreachable."""
        result = PassResult()
        with self.gate.lock:
            try:
                self._commit_readings(result)
                self._orders(result)
                self.gate.yield_to_requests()
                self.mirror()
                if auto_settle:
                    self._settle_closed(result)
            except CHAIN_DOWN as exc:
                self.gate.mark_down(exc)
                result.chain_down = True
                return result
            self.gate.mark_up()
        return result

    def _settle_closed(self, result: PassResult) -> None:
        """Settle every metered slot that closed ``settle_after_s`` ago or earlier."""
        # Slot s ends at (s + 1) * SLOT_SECONDS; settle it settle_after_s later.
        closed = (int(time.time()) - self.settle_after_s) // SLOT_SECONDS - 1
        for slot in self._unsettled_slots(closed):
            # One slot per step: a slot settled before the node stops answering is in the
            # pass's result even though the pass ends there.
            commit_and_settle(self.client, self.operator, (), worker=self.worker, settle=(slot,))
            result.settled_slots.append(slot)

    def _unsettled_slots(self, up_to: int) -> list[int]:
        with Session(self.engine) as session:
            metered = set(
                session.exec(
                    select(ReadingRecord.slot)
                    .where(ReadingRecord.slot <= up_to)
                    .group_by(col(ReadingRecord.slot))
                )
            )
            settled = set(
                session.exec(
                    select(SlotOutcomeRecord.slot).where(SlotOutcomeRecord.status == "settled")
                )
            )
        return sorted(metered - settled)

    def backlog(self) -> dict[str, int]:
        with Session(self.engine) as session:
            readings = session.exec(
                select(func.count()).where(IntakeReading.status == "queued")
            ).one()
            orders = session.exec(select(func.count()).where(_order_pending())).one()
        return {"readings": int(readings), "orders": int(orders)}
