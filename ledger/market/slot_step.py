"""One market step: commit signed readings on chain, then settle the slots they close.

Every in-process path that puts readings on chain goes through :func:`commit_and_settle`: the
simulator's slot loop (:mod:`meter_sim.run`), the in-process delivery of a run's envelopes
(:mod:`meter_sim.delivery`), the walk-through (:mod:`ledger.demo`) and the API's outbox. It
lives in the market, beside the :class:`~ledger.market.settlement.SettlementWorker` it drives,
because settling a slot is only right after that slot's readings are on chain and mirrored;
keeping the order in one place keeps every caller's gas, evidence and outcomes alike.

The function only sequences side effects (database, chain); deciding which readings to send is
the intake's pure check (:func:`ledger.readings.intake.classify`), and clearing is the
worker's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from ledger.contract.client import VoisinClient
from ledger.market.settlement import SettlementWorker
from ledger.mirror.indexer import index
from ledger.mirror.models import SlotOutcome
from ledger.readings.eip712 import SignedReading
from ledger.readings.evidence import store_signed_readings
from ledger.types import TxResult

__all__ = ["READINGS_PER_BATCH", "SlotStep", "commit_and_settle"]

#: Readings per commitReadings transaction: about 11.5 M gas at about 38,000 gas per reading,
#: under the 2^24 per-transaction gas cap of Osaka-rules chains. Fewer transactions per slot
#: for large neighbourhoods: each pays its own signing, block, state root and fsync.
READINGS_PER_BATCH = 300


@dataclass(frozen=True, slots=True)
class SlotStep:
    """What one call of :func:`commit_and_settle` did (and only that call). Gas in gas units,
    energy in Wh.

    ``transactions`` are the commitReadings transactions in the order sent, one per batch;
    ``outcomes`` the slots this call settled, in the order asked; ``already_settled`` the
    asked slots the worker had settled before (left as they were).
    """

    committed: int
    transactions: tuple[TxResult, ...]
    outcomes: tuple[SlotOutcome, ...]
    already_settled: tuple[int, ...]

    @property
    def readings_gas(self) -> int:
        return sum(tx.gas_used for tx in self.transactions)

    @property
    def settlement_gas(self) -> int:
        return sum(o.gas_used for o in self.outcomes)

    @property
    def gas_used(self) -> int:
        return self.readings_gas + self.settlement_gas

    @property
    def fills(self) -> int:
        return sum(o.fills for o in self.outcomes)

    @property
    def matched_Wh(self) -> int:
        return sum(o.matched_Wh for o in self.outcomes)


def commit_and_settle(
    client: VoisinClient,
    sender: LocalAccount,
    readings: Sequence[SignedReading],
    *,
    worker: SettlementWorker | None = None,
    settle: Iterable[int] = (),
    batch_size: int = READINGS_PER_BATCH,
    check_first: bool = False,
) -> SlotStep:
    """Commit ``readings`` as ``sender``, then settle the slots ``settle`` through ``worker``.

    Steps, in this order:

    1. **Evidence.** With a ``worker``, ``readings`` are stored in its database
       (:func:`ledger.readings.evidence.store_signed_readings`) before anything is sent: the
       audit traces every credit back to them. A different reading already stored for a
       (meter, slot) raises :class:`~ledger.readings.evidence.ConflictingReading` and nothing
       is sent.
    2. **Commit.** ``readings`` go on chain in the order given (the contract needs each meter's
       slots increasing), in consecutive batches of at most ``batch_size``, one
       ``commitReadings`` transaction each (all or none per batch). ``check_first=False`` skips
       the dry run, for readings the intake accepted (:func:`ledger.readings.intake.classify`);
       a revert is raised either way, as the contract's typed error (its ``index`` counts from
       the refused batch's first reading). The batches before a refused one stay committed and
       nothing is settled.
    3. **Mirror.** With a ``worker``, its database is brought up to the chain head
       (:func:`ledger.mirror.indexer.index`), so it holds the readings just committed.
    4. **Settle.** Each slot of ``settle``, in order, that the worker has not settled yet is
       cleared and settled once (:meth:`SettlementWorker.settle_slot`); one it settled already
       is left as it is and listed in ``already_settled``.

    Invariants: each reading is sent in at most one transaction, and the contract counts each
    (meter, slot) once, so a reading sent again is refused (``DuplicateReading``), never counted
    twice; a slot is settled at most once per market; the result's gas and outcomes are this
    call's only, so a call again for a settled slot with no new readings sends nothing and
    returns an empty step. Without a ``worker`` only step 2 runs (a caller without a database).
    """
    slots = tuple(settle)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if worker is None and slots:
        raise ValueError(f"settling slots {list(slots)} needs a settlement worker")
    if worker is not None and worker.client.address != client.address:
        raise ValueError(
            f"the worker settles the contract {worker.client.address}, not {client.address}"
        )
    if worker is not None:
        store_signed_readings(worker.engine, readings)
    transactions = tuple(
        client.commit_readings(sender, readings[k : k + batch_size], check_first=check_first)
        for k in range(0, len(readings), batch_size)
    )
    outcomes: list[SlotOutcome] = []
    already: list[int] = []
    if worker is not None:
        index(client, worker.engine, start_block=worker.start_block)
        for slot in slots:
            if worker.outcome(slot) is not None:
                already.append(slot)
            else:
                outcomes.append(worker.settle_slot(slot))
    return SlotStep(len(readings), transactions, tuple(outcomes), tuple(already))
