"""Day-ahead forward positions on chain: cleared ahead of their slot, settled against its
metered energy before the slot's real-time market.

- :func:`clear_forwards` sends a slot's positions in batches numbered 0, 1, ... in the order
  given (``clearForwards(slot, batch)``, accepted once per pair). A batch the chain has
  cleared already is skipped, so calling again with the same positions after a crash clears
  each of them once. Each position reserves its buyer's cost and grid fee in the contract's
  escrow; the contract refuses one whose buyer cannot pay, or whose slot either party has
  metered already.
- :func:`settle_due_forwards` settles every open position of the slots up to a given one,
  as the mirror holds them (``forward_position``, from the ``ForwardCleared`` events): each
  delivers what both parties' metered energy left for the slot allows, as a fill, and gives
  the rest of its reservation back. A position whose party has not metered its slot yet stays
  open for a later call (the contract refuses it as ``ForwardNotDue``).

The settlement worker (:class:`ledger.market.settlement.SettlementWorker`) settles a slot's
forwards first, re-indexes, then clears the real-time market on what is left: the deviations
from the forward positions meet neighbours' opposite deviations there, and the rest goes to
the grid at its tariffs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger import errors
from ledger.contract.client import VoisinClient
from ledger.mirror.models import ForwardRecord
from ledger.types import Forward, ForwardPosition

__all__ = [
    "FORWARDS_PER_BATCH",
    "ForwardGas",
    "clear_forwards",
    "open_positions",
    "settle_due_forwards",
]

#: Positions per ``clearForwards`` or ``settleForwards`` transaction: about 60,000 gas each
#: at most (a fresh storage word, two balance words, two kept-slot words, two events), so a
#: batch stays far under the per-transaction gas cap.
FORWARDS_PER_BATCH = 100


class ForwardGas:
    """Running sums of the forward transactions a worker sent (gas units, positions), and
    each transaction's gas by its hash (so that a report need not read their receipts back)."""

    __slots__ = ("by_tx", "clear_gas", "cleared", "settle_gas", "settled")

    def __init__(self) -> None:
        self.clear_gas = 0
        self.cleared = 0
        self.settle_gas = 0
        self.settled = 0
        self.by_tx: dict[str, int] = {}


def _chunks(items: Sequence[Forward], size: int) -> list[Sequence[Forward]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def clear_forwards(
    client: VoisinClient,
    settler: LocalAccount,
    slot: int,
    forwards: Sequence[Forward],
    tally: ForwardGas | None = None,
) -> int:
    """Clear ``forwards`` for ``slot`` (batches not cleared yet); returns the gas used."""
    gas = 0
    for batch, chunk in enumerate(_chunks(forwards, FORWARDS_PER_BATCH)):
        if client.forward_batch_cleared(slot, batch):
            continue
        try:
            # Checked by the contract as it runs: a refused batch raises its typed error and
            # changes nothing, so no dry run first.
            result = client.clear_forwards(settler, slot, batch, chunk, check_first=False)
        except errors.ForwardBatchAlreadyCleared:
            continue
        gas += result.gas_used
        if tally is not None:
            tally.clear_gas += result.gas_used
            tally.cleared += len(chunk)
            tally.by_tx[result.tx_hash] = result.gas_used
    return gas


def open_positions(engine: Engine, up_to_slot: int) -> list[ForwardPosition]:
    """The mirror's open positions of the slots up to ``up_to_slot``, by slot and id."""
    with Session(engine) as session:
        rows = session.exec(
            select(ForwardRecord)
            .where(
                col(ForwardRecord.settled_block).is_(None),
                col(ForwardRecord.slot) <= up_to_slot,
            )
            .order_by(col(ForwardRecord.slot), col(ForwardRecord.forward_id))
        ).all()
        return [
            ForwardPosition(
                r.forward_id,
                r.slot,
                r.seller,
                r.buyer,
                r.energy_Wh,
                r.price_ueur_per_kWh,
                r.reserved_ueur,
            )
            for r in rows
        ]


def settle_due_forwards(
    client: VoisinClient,
    engine: Engine,
    settler: LocalAccount,
    up_to_slot: int,
    tally: ForwardGas | None = None,
) -> int:
    """Settle the open positions of the slots up to ``up_to_slot`` whose parties have both
    metered their slot; returns the gas used (0 when there were none). The mirror must be
    caught up (the worker indexes first)."""
    by_slot: dict[int, list[ForwardPosition]] = defaultdict(list)
    for p in open_positions(engine, up_to_slot):
        by_slot[p.slot].append(p)
    gas = 0
    for slot, positions in sorted(by_slot.items()):
        for i in range(0, len(positions), FORWARDS_PER_BATCH):
            gas += _settle_batch(
                client, settler, slot, positions[i : i + FORWARDS_PER_BATCH], tally
            )
    return gas


def _settle_batch(
    client: VoisinClient,
    settler: LocalAccount,
    slot: int,
    positions: list[ForwardPosition],
    tally: ForwardGas | None,
) -> int:
    """Send one batch, leaving out the positions the chain says are not due or settled
    already (a batch is all or none, so each such refusal drops one and tries again)."""
    while positions:
        try:
            result = client.settle_forwards(settler, slot, positions, check_first=False)
        except (errors.ForwardNotDue, errors.ForwardAlreadySettled) as exc:
            refused = int(exc.values["forwardId"])
            positions = [p for p in positions if p.forward_id != refused]
            continue
        if tally is not None:
            tally.settle_gas += result.gas_used
            tally.settled += len(positions)
            tally.by_tx[result.tx_hash] = result.gas_used
        return result.gas_used
    return 0
