"""The tamper-evident digest chain over settled slots.

When the settlement worker finishes a slot it **seals** it (:func:`seal_slot`, in the same
database transaction): for every household with a reading or a fill in the slot, a *leaf* is
the SHA-256 of the canonical JSON of those mirrored records (registers, deltas, fill energy,
price, cost, fee, block, log index, transaction); one more leaf, ``"slot"``, covers the slot's
outcome. Only records from blocks up to ``sealed_block`` (the mirror's head at sealing) count,
so a direct take mirrored later does not break the seal. The link is

    digest_n = SHA-256(digest_{n-1} || canonical JSON {slot, sealed_block, leaves})

with ``digest_0`` = 32 zero bytes. The audit recomputes every leaf from the database as it is
now: a changed past record changes its household's leaf (so the finding names the slot and the
household), and rewriting a stored link breaks the next one. Publishing the head digest (the
report shows it) lets anyone later prove that even a wholesale rewrite of the chain happened.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, col, select

from ledger.mirror.models import (
    FillRecord,
    ReadingRecord,
    SlotDigestRecord,
    SlotOutcomeRecord,
    plain_rows,
)

__all__ = ["GENESIS_DIGEST", "compute_leaves", "link_digest", "rebuild_link", "seal_slot"]

GENESIS_DIGEST = "0x" + "00" * 32
#: The outcome fields a seal covers (all but the worker's bookkeeping of its own batches).
OUTCOME_FIELDS = (
    "slot",
    "status",
    "mechanism",
    "clearing_price_ueur_per_kWh",
    "households",
    "surplus_Wh",
    "deficit_Wh",
    "matched_Wh",
    "unmatched_surplus_Wh",
    "unmatched_deficit_Wh",
    "fills",
    "cost_ueur",
    "fees_ueur",
)


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def _reading_item(r: ReadingRecord) -> list[Any]:
    return [
        "reading",
        r.household,
        r.meter.lower(),
        r.slot,
        r.import_Wh,
        r.export_Wh,
        r.import_delta_Wh,
        r.export_delta_Wh,
        r.block_number,
        r.tx_hash.lower(),
    ]


def _fill_item(f: FillRecord) -> list[Any]:
    return [
        "fill",
        f.slot,
        f.seller,
        f.buyer,
        f.offer_id,
        f.bid_id,
        f.energy_Wh,
        f.price_ueur_per_kWh,
        f.cost_ueur,
        f.fee_ueur,
        f.block_number,
        f.log_index,
        f.tx_hash.lower(),
    ]


def compute_leaves(
    slot: int,
    sealed_block: int,
    readings: Iterable[ReadingRecord],
    fills: Iterable[FillRecord],
    outcome: SlotOutcomeRecord | None,
) -> dict[str, str]:
    """The leaf hashes of ``slot``: one per household (by id, as a string), and ``"slot"``."""
    items: dict[int, list[list[Any]]] = defaultdict(list)
    for r in readings:
        if r.slot == slot and r.block_number <= sealed_block:
            items[r.household].append(_reading_item(r))
    for f in fills:
        if f.slot == slot and f.block_number <= sealed_block:
            items[f.seller].append(_fill_item(f))
            items[f.buyer].append(_fill_item(f))
    leaves = {str(h): _hash(sorted(rows)) for h, rows in sorted(items.items())}
    summary = None if outcome is None else [getattr(outcome, k) for k in OUTCOME_FIELDS]
    leaves["slot"] = _hash(summary)
    return leaves


def link_digest(prev_digest: str, slot: int, sealed_block: int, leaves: Mapping[str, str]) -> str:
    """The digest of one link, chained to ``prev_digest``."""
    body = json.dumps(
        {"slot": slot, "sealed_block": sealed_block, "leaves": dict(leaves)},
        sort_keys=True,
        separators=(",", ":"),
    )
    prev = bytes.fromhex(prev_digest.removeprefix("0x"))
    return "0x" + hashlib.sha256(prev + body.encode()).hexdigest()


def seal_slot(
    session: Session, slot: int, sealed_block: int, outcome: SlotOutcomeRecord
) -> SlotDigestRecord:
    """Append ``slot``'s link to the chain in ``session`` (the caller commits); idempotent."""
    existing = _link_of(session, slot)
    if existing is not None:
        return existing
    prev, readings, fills = _sealing_inputs(session, slot)
    record = _link(
        slot, sealed_block, prev, compute_leaves(slot, sealed_block, readings, fills, outcome)
    )
    session.add(record)
    return record


def rebuild_link(
    session: Session,
    slot: int,
    outcome: SlotOutcomeRecord,
    head: str,
    sealed_blocks: Iterable[int],
) -> SlotDigestRecord | None:
    """Append the link of ``slot`` that the chain sealed as ``head``, rebuilt from the mirror,
    if one of ``sealed_blocks`` gives it (the caller commits); None, appending nothing, if none
    does. For a database that lost the link (restored from before the slot was settled): the
    link covers the mirror's records up to the block it was sealed at, which only the head
    proves, so each candidate block is tried and the link kept only if it is the one sealed."""
    existing = _link_of(session, slot)
    if existing is not None:
        return existing if existing.digest == head else None
    prev, readings, fills = _sealing_inputs(session, slot)
    for block in sealed_blocks:
        record = _link(slot, block, prev, compute_leaves(slot, block, readings, fills, outcome))
        if record.digest == head:
            session.add(record)
            return record
    return None


def _link_of(session: Session, slot: int) -> SlotDigestRecord | None:
    return session.exec(select(SlotDigestRecord).where(SlotDigestRecord.slot == slot)).first()


def _sealing_inputs(session: Session, slot: int) -> tuple[str, list[Any], list[Any]]:
    """The newest link's digest (the one the next link follows), and the slot's records."""
    readings = plain_rows(session, ReadingRecord, ReadingRecord.slot == slot)
    fills = plain_rows(session, FillRecord, FillRecord.slot == slot)
    last = session.exec(
        select(SlotDigestRecord).order_by(col(SlotDigestRecord.seq).desc()).limit(1)
    ).first()
    return (GENESIS_DIGEST if last is None else last.digest), readings, fills


def _link(slot: int, sealed_block: int, prev: str, leaves: Mapping[str, str]) -> SlotDigestRecord:
    return SlotDigestRecord(
        slot=slot,
        sealed_block=sealed_block,
        prev_digest=prev,
        digest=link_digest(prev, slot, sealed_block, leaves),
        leaves_json=json.dumps(leaves, sort_keys=True),
    )
