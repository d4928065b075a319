"""The settlement worker: clear a slot, settle its fills on chain, record the outcome.

One worker runs per market. For a slot whose readings are committed,
:meth:`SettlementWorker.settle_slot`:

1. brings the database mirror up to the chain head (:func:`ledger.mirror.indexer.index`);
2. returns the recorded outcome if the slot is already settled (running a slot twice is a
   no-op);
   otherwise settles the day-ahead forward positions due by then
   (:func:`ledger.market.forwards.settle_due_forwards`) and re-indexes, so that the real-time
   market below clears what the forwards left of each household's metered energy;
3. otherwise loads the slot's book (:func:`ledger.market.data.load_slot_book`), clears it with
   the market's mechanism, splits the fills into batches that fit the gas limit, and writes
   this **plan** to the database *before* sending anything;
4. sends each planned batch that the chain has not settled yet (``settleBatch(slot, batch)``
   is accepted once per pair, so a crash between sending and recording never settles twice);
5. re-indexes and marks the slot ``settled`` with its totals.

A slot the chain settled and sealed before the database knew (restored from before it) is
settled again as it was cleared: nothing more is matched, and a reading committed for it after
its first batch (or its seal) is left out of its figures, as it was left out of its market.

If a planned batch is refused because the chain moved since the plan (a direct take used the
credits, an order was cancelled, a buyer's balance is short), the unsent part of the plan is
dropped and the rest of the slot is cleared again from the chain's new state; the contract's
error names the buyer and its funds, which caps that buyer in the next plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from sqlalchemy import Engine
from sqlmodel import Session, col, delete, func, select

from ledger import errors
from ledger.audit.digest import rebuild_link, seal_slot
from ledger.contract.client import VoisinClient
from ledger.errors import LedgerError
from ledger.market.agents import AgentSettings, effective_limit
from ledger.market.clearing import MECHANISMS, ONE_PRICE, BookOrder, ClearingResult, Mechanism
from ledger.market.data import LimitAdjuster, SlotBook, load_slot_book, tariff_schedule
from ledger.market.forwards import ForwardGas, clear_forwards, settle_due_forwards
from ledger.market.strategies import clear_over_gate, gate_steps_of
from ledger.mirror.indexer import index
from ledger.mirror.models import (
    ChainEvent,
    FillRecord,
    HouseholdRecord,
    IndexerCursor,
    ReadingRecord,
    SettlementBatchRecord,
    SlotDigestRecord,
    SlotOutcome,
    SlotOutcomeRecord,
    plain_rows,
)
from ledger.types import Fill, Forward, Tariffs

__all__ = [
    "BASE_BATCH_GAS",
    "MAX_BATCH_GAS",
    "WORST_FILL_GAS",
    "SettlementError",
    "SettlementWorker",
    "SlotOutcome",
    "max_fills_per_batch",
    "seal_gas",
    "split_batches",
]

#: Gas budget of one settleBatch transaction: under the 2^24 (16,777,216) per-transaction cap
#: of Osaka-rules chains, with room to spare.
MAX_BATCH_GAS = 15_000_000
#: Fixed cost of a batch transaction (intrinsic gas, calldata head, fee credit, event).
BASE_BATCH_GAS = 120_000
#: Most gas one fill can take: 30,740 measured for a 100-fill batch in which every fill brings
#: two new households and two new orders (BENCHMARKS.md, "worst" layout; 34,066 before the
#: contract's fill loop ran in assembly), plus calldata margin. Kept at the older bound.
WORST_FILL_GAS = 35_000
#: Attempts to re-plan a slot after the chain refused a batch, before giving up.
MAX_REPLANS = 25


class SettlementError(LedgerError):
    """The worker could not settle a slot (the chain keeps refusing its batches)."""


def max_fills_per_batch(gas_budget: int = MAX_BATCH_GAS) -> int:
    """How many fills always fit one batch within ``gas_budget``."""
    fills = (gas_budget - BASE_BATCH_GAS) // WORST_FILL_GAS
    if fills < 1:
        raise errors.ConfigError(
            f"a gas budget of {gas_budget} does not fit even one fill "
            f"(needs at least {BASE_BATCH_GAS + WORST_FILL_GAS})"
        )
    return fills


def split_batches(fills: tuple[Fill, ...], per_batch: int) -> list[tuple[Fill, ...]]:
    """Cut ``fills`` into consecutive batches of at most ``per_batch`` fills, order kept.

    Every prefix of a settleable list of fills is settleable (the contract's checks only get
    looser as fewer fills use the slot's credits, deficits, caps and funds), so the batches
    can be sent one after the other.
    """
    if per_batch < 1:
        raise ValueError(f"per_batch must be at least 1, got {per_batch}")
    return [fills[i : i + per_batch] for i in range(0, len(fills), per_batch)]


def _fills_json(fills: tuple[Fill, ...]) -> str:
    return json.dumps(
        [[f.offer_id, f.bid_id, f.energy_Wh, f.price_ueur_per_kWh] for f in fills],
        separators=(",", ":"),
    )


def _fills_from_json(text: str) -> tuple[Fill, ...]:
    return tuple(Fill(*row) for row in json.loads(text))


def seal_gas(client: VoisinClient, engine: Engine, first_slot: int, last_slot: int) -> int:
    """Gas of the ``sealSlot`` transactions that anchored slots ``first_slot..last_slot``,
    from the receipts of their mirrored ``SlotSealed`` events (each transaction once)."""
    with Session(engine) as session:
        events = session.exec(
            select(ChainEvent).where(
                ChainEvent.contract == client.address, ChainEvent.name == "SlotSealed"
            )
        ).all()
        tx_hashes = {
            e.tx_hash
            for e in events
            if first_slot <= int(json.loads(e.args_json)["slot"]) <= last_slot
        }
    receipts = [client.w3.eth.get_transaction_receipt(HexBytes(tx)) for tx in sorted(tx_hashes)]
    return sum(int(receipt["gasUsed"]) for receipt in receipts)


class SettlementWorker:
    """Settles slots of one market with one clearing mechanism.

    ``settler`` must hold the contract's SETTLER role. ``agents`` maps household ids to their
    agent settings, whose daily ramps or strategies tighten those households' limits per slot.
    When a strategy asks for it (an adaptive agent), each slot's gate is cleared in
    ``gate_steps`` steps (:func:`ledger.market.strategies.clear_over_gate`), else once.
    ``start_block`` is where the mirror starts (the deployment block).
    """

    def __init__(
        self,
        client: VoisinClient,
        engine: Engine,
        settler: LocalAccount,
        mechanism: str = "pay-as-clear",
        *,
        agents: Mapping[int, AgentSettings] | None = None,
        start_block: int = 0,
        gas_budget: int = MAX_BATCH_GAS,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if mechanism not in MECHANISMS:
            raise errors.ConfigError(
                f"unknown clearing mechanism {mechanism!r}; choose one of "
                + ", ".join(sorted(MECHANISMS))
            )
        self.client = client
        self.engine = engine
        self.settler = settler
        self.mechanism_name = mechanism
        self.mechanism: Mechanism = MECHANISMS[mechanism]
        self.agents = dict(agents or {})
        self.gate_steps = gate_steps_of(a.strategy for a in self.agents.values())
        self.start_block = start_block
        self.per_batch = max_fills_per_batch(gas_budget)
        self._say = say
        # The newest digest link this worker saw anchored on chain (anchor_seals).
        self._anchored_seq: int | None = None
        #: The day-ahead forward transactions this worker sent (gas, positions).
        self.forward_gas = ForwardGas()
        #: Seals the chain holds that the caller found for the worker (slot: head, block):
        #: see :meth:`settle_sealed`.
        self._seals: dict[int, tuple[str, int]] = {}

    def _log(self, message: str) -> None:
        if self._say is not None:
            self._say(message)

    # ───────────────────────────── Planning ─────────────────────────────

    def _adjuster(self, tariffs: Tariffs) -> LimitAdjuster | None:
        if not self.agents:
            return None
        agents = self.agents

        def adjust(side: str, household: int, posted: int, slot: int) -> int:
            return effective_limit(side, posted, agents.get(household), slot, tariffs)

        return adjust

    def _book(
        self,
        slot: int,
        tariffs: Tariffs,
        balance_caps: Mapping[int, int],
        before_block: int | None = None,
    ) -> SlotBook:
        # Over a gate, with the posted limits: a buyer's funds then cap its deficit at its
        # loosest (dearest) bid, which holds at every step of the gate.
        adjust = self._adjuster(tariffs) if self.gate_steps <= 1 else None
        return load_slot_book(
            self.engine,
            slot,
            tariffs,
            adjust=adjust,
            balance_caps=balance_caps,
            before_block=before_block,
        )

    def _clear(
        self, slot: int, tariffs: Tariffs, balance_caps: Mapping[int, int]
    ) -> tuple[ClearingResult, int]:
        if self.gate_steps > 1:
            return self._clear_over_gate(slot, tariffs, balance_caps)
        book = self._book(slot, tariffs, balance_caps)
        result = self.mechanism(book.orders, book.surplus, book.deficit, tariffs)
        return result, book.metered_households

    def _cleared_on_chain(self, slot: int, tariffs: Tariffs) -> tuple[ClearingResult, int] | None:
        """For a slot the chain sealed before this database knew (restored from before it):
        nothing more to match, and what was left of the slot as it stood when it was cleared,
        before its first batch (or its seal, if it had none). A reading committed for it after
        that came too late for its market, as it did for the worker that settled it. None for
        a slot the chain has not sealed."""
        with Session(self.engine) as session:
            seal = self._seal_of(session, slot)
            if seal is None:
                return None
            first_batch_block = session.exec(
                select(func.min(FillRecord.block_number)).where(
                    FillRecord.slot == slot, FillRecord.bid_id != 0
                )
            ).one()
            before = seal[1] if first_batch_block is None else first_batch_block
            # The tariffs, the funds, the households and orders of then, not of now.
            tariffs = tariff_schedule(session).at_block(before - 1)
        book = self._book(slot, tariffs, self._balances_after(slot, before - 1), before)
        # The book holds the slot's whole surplus and deficit, its batches' fills included:
        # what is left of them is what those fills did not take (_plan counts them again).
        already, _ = self._settled_before(slot)
        left = ClearingResult(
            (),
            None,
            0,
            sum(book.surplus.values()) - already,
            sum(book.deficit.values()) - already,
        )
        return left, book.metered_households

    def _balances_after(self, slot: int, block: int) -> dict[int, int]:
        """The balances the slot's clearing read, as the chain had them after ``block``, of
        the households metered in it by then (a buyer's funds cap its deficit); none if the
        node keeps no state that old (the balances mirrored now are used then)."""
        with Session(self.engine) as session:
            households = session.exec(
                select(ReadingRecord.household)
                .where(ReadingRecord.slot == slot, ReadingRecord.block_number <= block)
                .distinct()
            ).all()
        balances: dict[int, int] = {}
        for household in households:
            balance = self.client.household_balance_after(household, block)
            if balance is None:
                return {}
            balances[household] = balance
        return balances

    def _seal_of(self, session: Session, slot: int) -> tuple[str, int] | None:
        """The head the chain sealed for ``slot`` and the block that sealed it, or None."""
        known = self._seals.get(slot)
        return known if known is not None else _chain_seal(session, self.client.address, slot)

    def _clear_over_gate(
        self, slot: int, tariffs: Tariffs, balance_caps: Mapping[int, int]
    ) -> tuple[ClearingResult, int]:
        book = self._book(slot, tariffs, balance_caps)
        agents, steps = self.agents, self.gate_steps

        def limit_at(order: BookOrder, step: int) -> int:
            settings = agents.get(order.household_id)
            side = order.side.value
            posted = order.price_limit_ueur_per_kWh
            return effective_limit(side, posted, settings, slot, tariffs, step, steps)

        result = clear_over_gate(
            self.mechanism, book.orders, book.surplus, book.deficit, tariffs, limit_at, steps
        )
        return result, book.metered_households

    def _write_plan(
        self, session: Session, slot: int, first_batch: int, fills: tuple[Fill, ...]
    ) -> int:
        batches = split_batches(fills, self.per_batch)
        for i, batch in enumerate(batches):
            session.add(
                SettlementBatchRecord(
                    slot=slot, batch=first_batch + i, fills_json=_fills_json(batch)
                )
            )
        return len(batches)

    def _plan(self, slot: int, tariffs: Tariffs) -> SlotOutcomeRecord:
        """Clear the slot and persist the plan (status ``planned``) before sending anything."""
        # Batches another worker (or a lost database) already settled keep their numbers.
        first_batch = 0
        while self.client.batch_settled(slot, first_batch):
            first_batch += 1
        result, metered = self._cleared_on_chain(slot, tariffs) or self._clear(slot, tariffs, {})
        # What those batches settled is gone from what is left to clear: the slot's figures
        # count it again, so that they hold its whole surplus and deficit.
        already, settled_price = self._settled_before(slot)
        surplus = result.matched_Wh + result.unmatched_surplus_Wh + already
        deficit = result.matched_Wh + result.unmatched_deficit_Wh + already
        price = result.clearing_price_ueur_per_kWh
        if already and not result.fills and self.mechanism_name in ONE_PRICE:
            price = settled_price
        elif already and price != settled_price:
            price = None  # two prices in one slot: no single clearing price
        record = SlotOutcomeRecord(
            slot=slot,
            status="planned",
            mechanism=self.mechanism_name,
            clearing_price_ueur_per_kWh=price,
            households=metered,
            surplus_Wh=surplus,
            deficit_Wh=deficit,
            matched_Wh=0,
            unmatched_surplus_Wh=surplus,
            unmatched_deficit_Wh=deficit,
            fills=0,
            batches=0,
        )
        settled_batches = self._chain_batches(slot, first_batch)
        with Session(self.engine) as session, session.begin():
            session.add(record)
            session.add_all(settled_batches)
            record.batches = self._write_plan(session, slot, first_batch, result.fills)
        with Session(self.engine) as session:
            stored = session.get(SlotOutcomeRecord, slot)
            assert stored is not None
            return stored

    def _chain_batches(self, slot: int, count: int) -> list[SettlementBatchRecord]:
        """Batches ``0..count - 1`` of ``slot``, which the chain settled before this database
        knew (another worker, or a database restored from before), as this worker records the
        batches it sends: their fills, transaction and gas, from the mirror and the receipts.
        So that the slot's outcome counts them as its own."""
        if count == 0:
            return []
        tx_of = self._batch_transactions(slot)
        with Session(self.engine) as session:
            fills = plain_rows(
                session,
                FillRecord,
                FillRecord.slot == slot,
                FillRecord.bid_id != 0,
                order=(FillRecord.block_number, FillRecord.log_index),
            )
        records = []
        for batch in range(count):
            tx = tx_of.get(batch)
            if tx is None:
                continue
            batch_fills = tuple(
                Fill(f.offer_id, f.bid_id, f.energy_Wh, f.price_ueur_per_kWh)
                for f in fills
                if f.tx_hash.lower() == tx.lower()
            )
            records.append(
                SettlementBatchRecord(
                    slot=slot,
                    batch=batch,
                    fills_json=_fills_json(batch_fills),
                    tx_hash=tx,
                    gas_used=self.client.gas_used(tx),
                )
            )
        return records

    def _settled_before(self, slot: int) -> tuple[int, int | None]:
        """The energy (Wh) of ``slot``'s real-time fills the mirror already holds, which a
        settlement this worker has no record of sent (another worker before it, or a database
        restored from before it), and their price when they share one."""
        with Session(self.engine) as session:
            fills = plain_rows(session, FillRecord, FillRecord.slot == slot, FillRecord.bid_id != 0)
        prices = {f.price_ueur_per_kWh for f in fills}
        return sum(f.energy_Wh for f in fills), (next(iter(prices)) if len(prices) == 1 else None)

    def _replan(
        self, slot: int, from_batch: int, tariffs: Tariffs, caps: Mapping[int, int]
    ) -> None:
        """Drop the unsent batches from ``from_batch`` on and plan the rest of the slot anew."""
        index(self.client, self.engine, start_block=self.start_block)
        result, _ = self._clear(slot, tariffs, caps)
        with Session(self.engine) as session, session.begin():
            session.exec(
                delete(SettlementBatchRecord).where(
                    col(SettlementBatchRecord.slot) == slot,
                    col(SettlementBatchRecord.batch) >= from_batch,
                )
            )
            self._write_plan(session, slot, from_batch, result.fills)

    # ───────────────────────────── Sending ─────────────────────────────

    def _pending_batches(self, slot: int) -> list[SettlementBatchRecord]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(SettlementBatchRecord)
                    .where(
                        SettlementBatchRecord.slot == slot,
                        col(SettlementBatchRecord.tx_hash).is_(None),
                    )
                    .order_by(col(SettlementBatchRecord.batch))
                )
            )

    def _mark_sent(self, record_id: int | None, tx_hash: str, gas_used: int) -> None:
        with Session(self.engine) as session, session.begin():
            record = session.get(SettlementBatchRecord, record_id)
            assert record is not None
            record.tx_hash = tx_hash
            record.gas_used = gas_used
            session.add(record)

    def _adopt_settled(self, slot: int, batch: SettlementBatchRecord) -> None:
        """Record a batch the chain settled before we could record it (a crash after send)."""
        index(self.client, self.engine, start_block=self.start_block)
        tx_hash = self._batch_transactions(slot).get(batch.batch)
        gas = 0 if tx_hash is None else self.client.gas_used(tx_hash)
        self._mark_sent(batch.id, tx_hash or "unknown", gas)

    def _batch_transactions(self, slot: int) -> dict[int, str]:
        """The transactions of ``slot``'s batches the chain settled (mirrored ``BatchSettled``),
        by batch number: read among the blocks of the slot's batch fills, where they are."""
        with Session(self.engine) as session:
            first, last = session.exec(
                select(func.min(FillRecord.block_number), func.max(FillRecord.block_number)).where(
                    FillRecord.slot == slot, FillRecord.bid_id != 0
                )
            ).one()
            if first is None:
                return {}
            events = session.exec(
                select(ChainEvent.tx_hash, ChainEvent.args_json).where(
                    ChainEvent.contract == self.client.address,
                    ChainEvent.name == "BatchSettled",
                    col(ChainEvent.block_number) >= first,
                    col(ChainEvent.block_number) <= last,
                )
            ).all()
        return {
            int(args["batch"]): tx
            for tx, args in ((tx, json.loads(text)) for tx, text in events)
            if int(args["slot"]) == slot
        }

    def _household_of(self, account: str) -> int | None:
        with Session(self.engine) as session:
            record = session.exec(
                select(HouseholdRecord).where(HouseholdRecord.account == account)
            ).first()
            return None if record is None else record.id

    def _send(self, slot: int, tariffs: Tariffs) -> None:
        caps: dict[int, int] = {}
        replans = 0
        while batches := self._pending_batches(slot):
            batch = batches[0]
            if self.client.batch_settled(slot, batch.batch):
                self._adopt_settled(slot, batch)
                continue
            fills = _fills_from_json(batch.fills_json)
            if not fills:
                self._mark_sent(batch.id, "empty", 0)
                continue
            try:
                # Cleared from the mirror just now: send without a dry run; if the chain moved,
                # the typed refusal below re-plans the slot.
                result = self.client.settle_batch(
                    self.settler, slot, batch.batch, fills, check_first=False
                )
            except errors.BatchAlreadySettled:
                self._adopt_settled(slot, batch)
                continue
            except (
                errors.InsufficientFunds,
                errors.InsufficientCredits,
                errors.InsufficientDeficit,
                errors.OrderClosed,
                errors.OrderCapExceeded,
                errors.PriceOutsideTariffs,
                errors.PriceBelowOffer,
                errors.PriceAboveBid,
                errors.HouseholdInactive,
            ) as exc:
                replans += 1
                if replans > MAX_REPLANS:
                    raise SettlementError(
                        f"slot {slot}: the chain refused {replans} plans in a row; last: {exc}"
                    ) from exc
                self._log(f"slot {slot}: batch {batch.batch} refused ({exc}); clearing again")
                if isinstance(exc, errors.InsufficientFunds):
                    household = self._household_of(str(exc.values["buyer"]))
                    if household is not None:
                        caps[household] = int(exc.values["haveUeur"])
                tariffs = self.client.tariffs()
                self._replan(slot, batch.batch, tariffs, caps)
                continue
            self._mark_sent(batch.id, result.tx_hash, result.gas_used)

    # ───────────────────────────── Public ─────────────────────────────

    def outcome(self, slot: int) -> SlotOutcome | None:
        """The recorded outcome of ``slot`` if it is settled, else ``None``."""
        with Session(self.engine) as session:
            record = session.get(SlotOutcomeRecord, slot)
            if record is None or record.status != "settled":
                return None
            return SlotOutcome.model_validate(record, from_attributes=True)

    def settle_slot(self, slot: int) -> SlotOutcome:
        """Clear and settle ``slot`` once; later calls return the recorded outcome.

        The slot's link of the digest chain is anchored on chain after it is sealed in the
        database; links a crash left unanchored are anchored first (:meth:`anchor_seals`).
        """
        index(self.client, self.engine, start_block=self.start_block)
        self.anchor_seals()
        done = self.outcome(slot)
        if done is not None:
            return done
        # Forward positions first: they are delivered before the real-time market clears
        # what is left of the slot's metered energy (ledger.market.forwards).
        if settle_due_forwards(self.client, self.engine, self.settler, slot, self.forward_gas):
            index(self.client, self.engine, start_block=self.start_block)
        tariffs = self.client.tariffs()
        with Session(self.engine) as session:
            planned = session.get(SlotOutcomeRecord, slot) is not None
            sealed = planned and self._seal_of(session, slot) is not None
        if not planned:
            self._plan(slot, tariffs)
        elif sealed:
            # A plan the chain's seal has overtaken (a database restored from while the slot
            # was being settled): the slot's market is over, and what is unsent stays so.
            self._drop_unsent(slot)
        self._send(slot, tariffs)
        index(self.client, self.engine, start_block=self.start_block)
        outcome = self._finish(slot)
        if self.anchor_seals():
            # Mirror the seal too, so that the mirror is caught up when the slot is settled.
            index(self.client, self.engine, start_block=self.start_block)
        return outcome

    def settle_sealed(self, slot: int, head: str, block: int) -> SlotOutcome:
        """Settle again ``slot``, which the chain sealed as ``head`` in ``block`` and this
        database has no settled outcome of (a database restored from before it was settled):
        :meth:`settle_slot`, with the seal given rather than searched for. Nothing is matched
        in a sealed slot; its outcome is recounted and its digest link rebuilt."""
        self._seals[slot] = (head.lower(), block)
        try:
            return self.settle_slot(slot)
        finally:
            self._seals.pop(slot, None)

    def _drop_unsent(self, slot: int) -> None:
        """Of ``slot``'s batches recorded unsent, adopt the ones the chain settled (sent before
        the database learnt it) and drop the others."""
        for batch in self._pending_batches(slot):
            if self.client.batch_settled(slot, batch.batch):
                self._adopt_settled(slot, batch)
        with Session(self.engine) as session, session.begin():
            session.exec(
                delete(SettlementBatchRecord).where(
                    col(SettlementBatchRecord.slot) == slot,
                    col(SettlementBatchRecord.tx_hash).is_(None),
                )
            )

    def clear_forwards(self, slot: int, forwards: Sequence[Forward]) -> int:
        """Clear day-ahead ``forwards`` for ``slot`` before it is metered (batches already
        cleared are skipped: :func:`ledger.market.forwards.clear_forwards`); returns the gas
        used. :meth:`settle_slot` settles them before the slot's real-time market."""
        return clear_forwards(self.client, self.settler, slot, forwards, self.forward_gas)

    def anchor_seals(self) -> int:
        """Anchor on chain every digest link the database sealed but the chain has not; returns
        how many were sent.

        The database seals a slot first (in the transaction that records its outcome), then the
        chain: so a crash between the two leaves links to anchor here, oldest first, and a
        retry of a link already anchored is a no-op on chain. The newest links are checked
        first and the walk stops at the first anchored one, so a settled history costs one
        view call; and none while the newest link is one this worker saw anchored (it is the
        market's only worker, so nothing else seals links behind its back).
        """
        newest_first = select(SlotDigestRecord).order_by(col(SlotDigestRecord.seq).desc())
        pending: list[tuple[int, str]] = []
        with Session(self.engine) as session:
            newest = session.exec(select(func.max(SlotDigestRecord.seq))).one()
            if newest is None or newest == self._anchored_seq:
                return 0
            # A page of links at a time: loading every link on every slot made a year-long
            # history cost a quarter second per slot.
            while page := session.exec(newest_first.offset(len(pending)).limit(16)).all():
                anchored = False
                for link in page:
                    if self.client.sealed_digest_head(link.slot) is not None:
                        anchored = True
                        break
                    pending.append((link.slot, link.digest))
                if anchored:
                    break
        for slot, digest in reversed(pending):
            self.client.seal_slot(self.settler, slot, digest, check_first=False)
        self._anchored_seq = newest
        return len(pending)

    def _finish(self, slot: int) -> SlotOutcome:
        with Session(self.engine) as session, session.begin():
            record = session.get(SlotOutcomeRecord, slot)
            assert record is not None
            batches = plain_rows(session, SettlementBatchRecord, SettlementBatchRecord.slot == slot)
            fills = plain_rows(session, FillRecord, FillRecord.slot == slot, FillRecord.bid_id != 0)
            record.status = "settled"
            record.batches = sum(1 for b in batches if b.gas_used)
            record.gas_used = sum(b.gas_used for b in batches)
            record.fills = len(fills)
            record.matched_Wh = sum(f.energy_Wh for f in fills)
            record.cost_ueur = sum(f.cost_ueur for f in fills)
            record.fees_ueur = sum(f.fee_ueur for f in fills)
            record.unmatched_surplus_Wh = record.surplus_Wh - record.matched_Wh
            record.unmatched_deficit_Wh = record.deficit_Wh - record.matched_Wh
            if not fills:
                record.clearing_price_ueur_per_kWh = None
            session.add(record)
            # Seal the slot in the digest chain with its outcome (same transaction): any later
            # change to its mirrored records shows in the audit (ledger.audit.digest). A slot
            # the chain sealed already (the database lost its link: restored from before it)
            # gets back the very link sealed, if the mirror and the outcome rebuild it.
            cursor = session.get(IndexerCursor, self.client.address)
            sealed = _sealed_on_chain(session, slot, self._seal_of(session, slot))
            if sealed is None or rebuild_link(session, slot, record, *sealed) is None:
                seal_slot(session, slot, 0 if cursor is None else cursor.last_block, record)
            outcome = SlotOutcome.model_validate(record, from_attributes=True)
        self._log(
            f"slot {slot}: {outcome.fills} fills, {outcome.matched_Wh} Wh in "
            f"{outcome.batches} batch(es), {outcome.gas_used} gas"
        )
        return outcome


def _chain_seal(session: Session, contract: str, slot: int) -> tuple[str, int] | None:
    """The head the chain sealed for ``slot`` and the block that sealed it (its mirrored
    ``SlotSealed``), or None if the chain has not sealed it. Slots are sealed in the order they
    are settled, so only the seals after the database's newest link are read."""
    seals = session.exec(
        select(ChainEvent.block_number, ChainEvent.args_json)
        .where(
            ChainEvent.contract == contract,
            ChainEvent.name == "SlotSealed",
            col(ChainEvent.block_number) > _newest_link_block(session),
        )
        .order_by(col(ChainEvent.block_number))
    )
    for block, args_json in seals:
        args = json.loads(args_json)
        if int(args["slot"]) == slot:
            return str(args["digestHead"]).lower(), block
    return None


def _newest_link_block(session: Session) -> int:
    """The block the database's newest digest link was sealed at (0 without one)."""
    newest = session.exec(
        select(SlotDigestRecord.sealed_block).order_by(col(SlotDigestRecord.seq).desc()).limit(1)
    ).first()
    return newest or 0


def _sealed_on_chain(
    session: Session, slot: int, seal: tuple[str, int] | None
) -> tuple[str, range] | None:
    """The head the chain sealed for ``slot`` (``seal``: head and block), with the blocks the
    database can have sealed it at, newest first: before the seal's block, and no earlier than
    the slot's newest record before it (a reading committed late for the slot comes after) or
    the link before it; None if the chain has not sealed it."""
    if seal is None:
        return None
    head, sealed_in = seal
    newest = [
        session.exec(
            select(func.max(model.block_number)).where(
                model.slot == slot, model.block_number < sealed_in
            )
        ).one()
        or 0
        for model in (ReadingRecord, FillRecord)
    ]
    low = max(*newest, _newest_link_block(session))
    return head, range(sealed_in - 1, low - 1, -1)
