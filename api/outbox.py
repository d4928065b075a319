"""The outbox: what the API accepted, sent to the chain in order, exactly once.

Readings and orders are committed to the database before the API answers. Each pass of
:meth:`Outbox.run_once` (the background loop runs one every ``outbox_interval_s``):

1. commits queued readings in slot order, in batches of up to :data:`READING_BATCH`; if the
   chain refuses a batch, the reading it names is marked ``rejected`` with the contract's
   reason and the rest is sent again (the intake pre-checks make this rare);
2. posts queued orders and sends requested cancellations, one order at a time, each status
   change a compare-and-set (see "Orders" below): a cancel asked while an order is being sent
   is sent right after the post lands, and nothing the outbox writes overwrites a newer state;
3. mirrors the chain into the database (the indexer);
4. settles closed slots (with ``auto_settle``).

Steps 1 and 4 go through the market's one commit-then-settle step
(:func:`ledger.market.slot_step.commit_and_settle`): each batch's evidence is stored before it
is sent and mirrored after, and a slot is settled only once, as in every other path that puts
readings on chain. The outbox adds what a server needs around it: the orders between the two,
a pause for requests before each batch, and a pass that stops where the node stopped answering.

If the node is unreachable the pass stops where it is; everything stays queued and the next
pass resumes. While the operator has paused the ledger, readings and new orders stay queued
and cancellations still go to the chain (the contract takes them). A crash between sending
and recording cannot apply a reading batch twice: the contract refuses a second reading for a
(meter, slot) and a second batch for a (slot, batch), and the outbox treats those refusals as
"already done". A cancel is the same: a second cancel of an order is refused
(``OrderAlreadyClosed``) and taken as done. A post is not: the contract takes a second post of
an order as a new order. So a post is recorded before it is sent (``api_order_post``: the
sender, the nonce it takes, the head block and the call data), and the record is deleted in
the database transaction that stores the outcome. A pass that finds a record (its predecessor
stopped in between) looks for that transaction on chain (:func:`api.sent.find_sent`, as the
intents do) before anything else for that order: if it was mined the order is recorded open
with the id of its ``OfferPosted`` or ``BidPosted`` event; if not (its nonce unused, or taken
by another transaction) the record is dropped and the order is posted then; while it waits in
the node's pool the order waits too. An order is posted on chain once, whatever the crash.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from sqlalchemy import ColumnElement, Engine, delete, func, update
from sqlmodel import Session, and_, col, or_, select

from api.chain_gate import CHAIN_DOWN, ChainGate
from api.custody import KeyVault
from api.intents import SENDING, FaultHook
from api.models import ApiHousehold, ApiIntent, ApiOrder, ApiOrderPost, IntakeReading
from api.sent import Sending, TransactionPending, about_to_send, find_sent
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


#: Why a queued order of a household without an account key waits (:mod:`api.recovery`).
NO_KEY = (
    "the household has no account key (taken back from the chain after a restore): the order "
    "is posted once the operator issues it one (POST /households/{id}/rotate-key)"
)


@dataclass
class PassResult:
    committed: int = 0
    rejected: int = 0
    orders_posted: int = 0
    #: Posts an earlier pass sent but did not record (it stopped in between), found on chain.
    orders_found: int = 0
    orders_cancelled: int = 0
    settled_slots: list[int] = field(default_factory=list)
    chain_down: bool = False


def _culprits(batch: list[IntakeReading], exc: ledger_errors.ContractError) -> list[IntakeReading]:
    """The readings of ``batch`` that the chain's refusal names, so that they are refused and
    the rest of the batch is sent again: one reading by its index, or every reading of a
    household deactivated since they were accepted (``HouseholdInactive`` names the household,
    not the reading). None if the refusal names none (the pass stops: nothing is lost)."""
    at = exc.values.get("index")
    if at is not None:
        return [batch[int(at)]]
    if isinstance(exc, ledger_errors.HouseholdInactive):
        household = int(exc.values["household"])
        return [r for r in batch if r.household == household]
    return []


def _order_pending() -> ColumnElement[bool]:
    """An order the outbox still has to send: queued, or open with a cancel requested, or
    one whose post is in flight (sent by a pass that stopped before recording its outcome:
    maybe on chain, whatever the order's status says now)."""
    return or_(
        col(ApiOrder.status) == "queued",
        and_(col(ApiOrder.status) == "open", col(ApiOrder.cancel_requested)),
        col(ApiOrder.id).in_(select(ApiOrderPost.order_id)),
    )


def ask_cancel(engine: Engine, order_id: int) -> bool:
    """Ask for an order's cancellation, which the outbox carries out; whether this asked it
    (False: the order is closed already, or its cancel was asked before).

    A request never moves an order's status itself: it only raises ``cancel_requested``, at
    once and atomically (a conditional update, so two cancels cannot both win), and the
    outbox, which alone moves the status, sees it before sending a queued order, or right
    after an order it was sending lands on chain.
    """
    with Session(engine) as session, session.begin():
        done = session.execute(
            update(ApiOrder)
            .where(
                col(ApiOrder.id) == order_id,
                col(ApiOrder.status).in_(["queued", "open"]),
                col(ApiOrder.cancel_requested).is_(False),
            )
            .values(cancel_requested=True)
        )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


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
        fault: FaultHook | None = None,
    ) -> None:
        """``operator`` sends the readings; ``vault`` opens each household's key for its
        orders; ``mirror`` brings the database up to the chain (the caller holds the gate's
        lock); a slot is settled ``settle_after_s`` seconds after it ends. ``fault`` is the
        test-only fault hook (:data:`api.intents.OUTBOX_FAULT_POINTS`); by default the one
        ``VOISIN_TEST_FAULT`` arms, which is off unless that variable is set."""
        self.gate = gate
        self.client = client
        self.engine = engine
        self.operator = operator
        self.vault = vault
        self.worker = worker
        self.mirror = mirror
        self.settle_after_s = settle_after_s
        self.fault = fault if fault is not None else FaultHook.from_environment()

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
            except ledger_errors.LedgerPaused:
                # Readings wait for the ledger to resume; the pass goes on to the orders, as
                # cancellations are still taken while it is paused.
                log.warning("the ledger is paused: readings stay queued until it resumes")
                return
            except ledger_errors.ContractError as exc:
                culprits = _culprits(batch, exc)
                if not culprits:
                    raise
                for culprit in culprits:
                    log.warning("reading %s refused by the chain: %s", culprit.id, exc)
                self._mark([c.id or 0 for c in culprits], "rejected", None, str(exc))
                result.rejected += len(culprits)
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
    #
    # An order's status is moved only here, each move a compare-and-set on the status read
    # just before (:meth:`_move`), and never while a session is open across a chain call.
    # Requests only raise ``cancel_requested`` (api/routes/orders.py), which no move clears:
    # a cancel asked while the order was being sent is still there when the post lands, and
    # is sent to the chain right after it.

    def _orders(self, result: PassResult) -> None:
        with Session(self.engine) as session:
            pending = list(
                session.exec(select(ApiOrder.id).where(_order_pending()).order_by(col(ApiOrder.id)))
            )
        paused = False
        for order_id in pending:
            self.gate.yield_to_requests()
            if not self._order_step(order_id or 0, result, post=not paused) and not paused:
                # New orders wait for the ledger to resume; cancellations go on (the contract
                # takes them while it is paused): an old price does not stay live meanwhile.
                log.warning("the ledger is paused: orders stay queued until it resumes")
                paused = True

    def _load(self, order_id: int) -> tuple[ApiOrder, LocalAccount | None] | None:
        """The order as stored now, with its household's current key (None for a household
        that has none: taken back from the chain after a restore, until the operator issues
        it one, :mod:`api.recovery`)."""
        with Session(self.engine) as session:
            order = session.get(ApiOrder, order_id)
            household = session.get(ApiHousehold, order.household) if order else None
        if order is None or household is None:
            return None
        return order, self.vault.account(household.key_json) if household.key_json else None

    def _order_step(self, order_id: int, result: PassResult, *, post: bool = True) -> bool:
        """Take one order as far as it goes now: a post an earlier pass sent without recording
        its outcome is looked for on chain first (:meth:`_settle_post`); a queued order
        cancelled before it was sent is closed without the chain; a queued one is posted
        (unless ``post`` is False); an open one whose cancel was asked (before, or while it
        was being posted) is cancelled on chain. False if the ledger is paused."""
        loaded = self._load(order_id)
        if loaded is None:
            return True
        order, account = loaded
        in_flight = self._post_in_flight(order_id)
        if in_flight is not None:
            try:
                self._settle_post(order, in_flight, result)
            except TransactionPending as exc:
                log.warning("order %s: its post waits in the node's pool: %s", order_id, exc)
                return True
            loaded = self._load(order_id)
            if loaded is None:
                return True
            order, account = loaded
        if order.status == "queued" and order.cancel_requested:
            if self._move(order_id, was="queued", status="cancelled"):
                result.orders_cancelled += 1
            return True
        if order.status == "queued":
            if not post:
                return False
            if account is None:
                # Posted once the operator has issued the household a key (rotate-key).
                self._move(order_id, was="queued", reason=NO_KEY)
                return True
            if self._key_rotation_sent(order.household):
                # The rotation was sent and its outcome is not recorded yet (it stopped half-way
                # and waits for the intents' pass): signed with the key it may have replaced,
                # the post would be refused for good. It waits for the rotation.
                log.warning("order %s waits for its household's key rotation to finish", order_id)
                return True
            try:
                posted = self._post(order, account, result)
            except ledger_errors.LedgerPaused:
                return False
            if not posted:
                return True
            loaded = self._load(order_id)  # a cancel may have come while it was being sent
            if loaded is None:
                return True
            order, account = loaded
        if order.status == "open" and order.cancel_requested:
            self._cancel(order, account, result)
        return True

    def _key_rotation_sent(self, household: int) -> bool:
        """Whether ``household`` has a key rotation sent whose outcome is not recorded."""
        with Session(self.engine) as session:
            found = session.exec(
                select(ApiIntent.id).where(
                    ApiIntent.household == household,
                    ApiIntent.kind == "rotate_key",
                    ApiIntent.state == SENDING,
                )
            ).first()
        return found is not None

    def _post(self, order: ApiOrder, account: LocalAccount, result: PassResult) -> bool:
        """Post a queued order on chain and record it ``open``; whether it is on chain.

        The transaction is recorded (``api_order_post``) before it is sent, and the record is
        deleted in the database transaction that stores the outcome: whatever stops the pass
        in between, the next pass finds the record and looks for the post on chain before
        sending it again (:meth:`_settle_post`)."""
        assert order.id is not None
        kind = f"post_{order.side}"
        # The exact call data post_offer or post_bid sends below.
        calldata = self.client.order_calldata(
            order.side,
            order.price_limit_ueur_per_kWh,
            order.first_slot,
            order.last_slot,
            order.max_Wh_per_slot,
        )
        self._record_post(order.id, account.address, calldata)
        self.fault.at(kind, "sending")
        post = self.client.post_offer if order.side == "offer" else self.client.post_bid
        try:
            chain_id = post(
                account,
                order.price_limit_ueur_per_kWh,
                order.first_slot,
                order.last_slot,
                order.max_Wh_per_slot,
            )
        except ledger_errors.LedgerPaused:
            # Refused by the dry run, or mined and reverted: nothing of it is on chain.
            self._forget_post(order.id)
            raise
        except ledger_errors.NoGasMoney as exc:
            # Refused before it was sent: the order stays queued, and one household's empty
            # gas purse holds back no other household's orders.
            self._forget_post(order.id)
            log.warning("order %s waits: %s", order.id, exc)
            return False
        except ledger_errors.ContractError as exc:
            log.warning("order %s refused by the chain: %s", order.id, exc)
            # Nothing is on chain; if it was cancelled meanwhile, it stays cancelled.
            self._move(order.id, was="queued", status="rejected", reason=str(exc), posted=True)
            return False
        self.fault.at(kind, "sent")
        result.orders_posted += 1
        self._record_open(order.id, chain_id)
        return True

    def _record_post(self, order_id: int, sender: str, calldata: bytes) -> None:
        """Commit the post about to be sent: its sender, nonce, head block and call data."""
        # The gate is held for the whole pass: nothing else sends as ``sender`` until the
        # post is sent, so the nonce read here is the one it takes.
        sending = about_to_send(self.client.w3, sender, calldata)
        assert sending.calldata is not None
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiOrderPost, order_id) or ApiOrderPost(
                order_id=order_id, sender="", nonce=0, block_before=0, calldata="", recorded_s=0
            )
            row.sender, row.nonce, row.block_before = sender, sending.nonce, sending.block_before
            row.calldata, row.recorded_s = sending.calldata, int(time.time())
            session.add(row)

    def _post_in_flight(self, order_id: int) -> ApiOrderPost | None:
        with Session(self.engine) as session:
            return session.get(ApiOrderPost, order_id)

    def _forget_post(self, order_id: int) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(ApiOrderPost).where(col(ApiOrderPost.order_id) == order_id))

    def _settle_post(self, order: ApiOrder, in_flight: ApiOrderPost, result: PassResult) -> None:
        """A post an earlier pass recorded, then stopped (a crash, the node gone) before
        recording its outcome: adopt it if the chain holds it, else forget it, so that the
        order is posted again only if it is not on chain. Raises
        :class:`~api.sent.TransactionPending` while it waits in the node's pool."""
        assert order.id is not None
        sending = Sending(
            in_flight.sender, in_flight.nonce, in_flight.block_before, in_flight.calldata
        )
        receipt = find_sent(self.client.w3, self.client.address, sending)
        if receipt is None:
            # Never mined (its nonce unused, or taken by another transaction), or reverted:
            # nothing of it is on chain, and the order is as if it had never been sent.
            log.info("order %s: its interrupted post is not on chain; it is sent again", order.id)
            self._forget_post(order.id)
            return
        name, key = ("OfferPosted", "offerId") if order.side == "offer" else ("BidPosted", "bidId")
        (event,) = [e for e in self.client.decode_logs(receipt["logs"]) if e.name == name]
        chain_id = int(event.args[key])
        log.warning(
            "order %s was posted on chain (%s %d) by a pass that stopped before recording it: "
            "recorded now, not posted again",
            order.id,
            order.side,
            chain_id,
        )
        result.orders_found += 1
        self._record_open(order.id, chain_id)

    def settle_posts_in_flight(self) -> int:
        """Settle every post an earlier process left in flight (:meth:`_settle_post`): each is
        recorded as the order it made on chain, or forgotten; returns how many there were.
        Raises :class:`~api.sent.TransactionPending` while one waits in the node's pool."""
        result = PassResult()
        with self.gate.lock:
            with Session(self.engine) as session:
                posts = list(session.exec(select(ApiOrderPost)))
            for in_flight in posts:
                loaded = self._load(in_flight.order_id)
                if loaded is None:
                    self._forget_post(in_flight.order_id)
                    continue
                self._settle_post(loaded[0], in_flight, result)
        return len(posts)

    def adopt_posted(self, pairs: Sequence[tuple[int, int, bool]]) -> list[int]:
        """Record each queued order of ``pairs`` (API order id, chain order id, whether that
        order is still open) as the order already on chain (:func:`api.recovery.twin_orders`)
        instead of posting it: open, or cancelled; returns the ids recorded."""
        adopted: list[int] = []
        with self.gate.lock:
            for order_id, chain_id, still_open in pairs:
                status = "open" if still_open else "cancelled"
                with Session(self.engine) as session, session.begin():
                    if self._cas(session, order_id, "queued", status=status, chain_id=chain_id):
                        adopted.append(order_id)
        return adopted

    def _record_open(self, order_id: int, chain_id: int) -> None:
        """Record a post that is on chain: the order ``open`` with its chain id, and its
        in-flight record deleted, in one database transaction."""
        with Session(self.engine) as session, session.begin():
            opened = self._cas(session, order_id, "queued", status="open", chain_id=chain_id)
            # Not queued: closed in the database while it was being sent, by a writer that
            # closes a queued order at once (a household's own order replacing its agent's
            # default). It is on chain all the same: record that truthfully, open with its
            # cancel owed, so that the cancel follows right away instead of an order live on
            # chain that nobody tracks.
            if not opened and self._cas(
                session,
                order_id,
                "cancelled",
                unposted=True,
                status="open",
                chain_id=chain_id,
                cancel_requested=True,
            ):
                log.warning("order %s closed while it was being posted: cancelling it", order_id)
            session.execute(delete(ApiOrderPost).where(col(ApiOrderPost.order_id) == order_id))

    def _cancel(self, order: ApiOrder, account: LocalAccount | None, result: PassResult) -> None:
        """Cancel an open order on chain and record it ``cancelled``.

        A cancel needs no record before it is sent: the contract refuses a second cancel of
        an order (``OrderAlreadyClosed``), which is taken as done, so a cancel mined just
        before a crash is simply sent again by the next pass and recorded then."""
        assert order.chain_id is not None
        cancel = self.client.cancel_offer if order.side == "offer" else self.client.cancel_bid
        try:
            try:
                with contextlib.suppress(ledger_errors.OrderAlreadyClosed):
                    # A household without a key (NO_KEY): the operator may cancel any order.
                    cancel(account or self.operator, order.chain_id)
            except (ledger_errors.NotOrderOwner, ledger_errors.NoGasMoney):
                # The key that signed the post was replaced in between (a key rotation), or
                # the household's account has no gas money (refused before it was sent): the
                # operator may cancel any order, and a cancel asked for must happen.
                with contextlib.suppress(ledger_errors.OrderAlreadyClosed):
                    cancel(self.operator, order.chain_id)
        except ledger_errors.ContractError as exc:
            # The order is still open on chain: it stays pending, and the next pass retries.
            log.warning("cancel of order %s refused by the chain: %s", order.id, exc)
            self._move(order.id or 0, was="open", reason=str(exc))
            return
        self.fault.at(f"cancel_{order.side}", "sent")
        if self._move(order.id or 0, was="open", status="cancelled", reason=None):
            result.orders_cancelled += 1

    def _move(
        self,
        order_id: int,
        *,
        was: str,
        unposted: bool = False,
        posted: bool = False,
        **values: object,
    ) -> bool:
        """Compare-and-set: write ``values`` to the order only if its status is still ``was``
        (and, with ``unposted``, it has no chain id yet); whether it did. With ``posted``,
        the order's in-flight post record is deleted in the same transaction, moved or not."""
        with Session(self.engine) as session, session.begin():
            done = self._cas(session, order_id, was, unposted=unposted, **values)
            if posted:
                session.execute(delete(ApiOrderPost).where(col(ApiOrderPost.order_id) == order_id))
        return done

    @staticmethod
    def _cas(
        session: Session, order_id: int, was: str, *, unposted: bool = False, **values: object
    ) -> bool:
        query = update(ApiOrder).where(col(ApiOrder.id) == order_id, col(ApiOrder.status) == was)
        if unposted:
            query = query.where(col(ApiOrder.chain_id).is_(None))
        done = session.execute(query.values(**values))
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]

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
