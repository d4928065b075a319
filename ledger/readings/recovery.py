"""Signed readings the evidence store lacks, taken back from the chain.

Every reading the contract minted from came with its meter's signature in the call data of a
``commitReadings`` transaction, and the contract checked that signature before it minted. The
evidence store (:mod:`ledger.readings.evidence`) keeps the same bytes off chain, for the
operator's audit to check them a second time. A database restored from a backup lacks the
evidence of the readings committed since the backup was taken (the meters were answered, so
they do not post them again): :func:`recover_signed_readings` reads each such reading's
transaction, takes the signed reading back from its call data, checks that its signature
recovers to its meter, and stores it, so that provenance holds again without trusting anything
but the chain.

Signed readings the operator purged past their retention (the evidence window,
:data:`ledger.audit.inputs.EVIDENCE_FROM_KEY`) are not taken back: only those of slots from
the window's first slot on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, and_, select
from sqlmodel import Session

from ledger.audit.inputs import EVIDENCE_FROM_KEY
from ledger.contract.client import VoisinClient
from ledger.contract.event_codec import checksum_address as checksum
from ledger.errors import LedgerError
from ledger.mirror.models import IndexerState, ReadingRecord, SignedReadingRecord
from ledger.readings.eip712 import (
    InvalidReading,
    Reading,
    SignedReading,
    domain_separator,
    recover_signer,
)
from ledger.readings.evidence import store_signed_readings

__all__ = [
    "UnrecoverableReading",
    "missing_evidence",
    "recover_signed_readings",
    "signed_readings_of",
]


class UnrecoverableReading(LedgerError, ValueError):
    """A committed reading's transaction does not hold it with a signature of its meter."""


def missing_evidence(engine: Engine) -> dict[str, list[tuple[str, int]]]:
    """The committed readings (meter, slot) whose signed reading the evidence store lacks,
    by the transaction that committed them; none before the evidence window."""
    readings = ReadingRecord.__table__  # type: ignore[attr-defined]
    signed = SignedReadingRecord.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:
        window = session.get(IndexerState, EVIDENCE_FROM_KEY)
        query = (
            select(readings.c.meter, readings.c.slot, readings.c.tx_hash)
            .select_from(
                readings.outerjoin(
                    signed,
                    and_(signed.c.meter == readings.c.meter, signed.c.slot == readings.c.slot),
                )
            )
            .where(signed.c.id.is_(None))
        )
        if window is not None:
            query = query.where(readings.c.slot >= int(window.value))
        rows = session.execute(query.order_by(readings.c.slot, readings.c.meter)).all()
    by_tx: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for meter, slot, tx_hash in rows:
        by_tx[str(tx_hash)].append((str(meter), int(slot)))
    return dict(by_tx)


def signed_readings_of(client: VoisinClient, tx_hash: str) -> dict[tuple[str, int], SignedReading]:
    """The signed readings a ``commitReadings`` transaction carried, by (meter, slot)."""
    tx = client.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    if str(tx.get("to") or "").lower() != client.address.lower():
        raise UnrecoverableReading(f"transaction {tx_hash} is not a call of the Voisin contract")
    try:
        function, args = client.contract.decode_function_input(tx["input"])
    except ValueError as exc:
        raise UnrecoverableReading(f"transaction {tx_hash} cannot be decoded: {exc}") from exc
    if function.fn_name != "commitReadings":
        raise UnrecoverableReading(
            f"transaction {tx_hash} is a {function.fn_name}, not a commitReadings"
        )
    out: dict[tuple[str, int], SignedReading] = {}
    for item in args["readings"]:
        meter, slot, import_Wh, export_Wh, v, r, s = _fields(item)
        signed = SignedReading(
            Reading(checksum(meter), int(slot), int(import_Wh), int(export_Wh)),
            int(v),
            bytes(r),
            bytes(s),
        )
        out[(signed.reading.meter, signed.reading.slot)] = signed
    return out


def _fields(item: Any) -> tuple[Any, ...]:
    if isinstance(item, Mapping):
        names = ("meter", "slot", "importWh", "exportWh", "v", "r", "s")
        return tuple(item[name] for name in names)
    return tuple(item)


def recover_signed_readings(client: VoisinClient, engine: Engine) -> int:
    """Store the signed readings of every committed reading the evidence store lacks (from the
    evidence window on), taken from their ``commitReadings`` transactions; returns how many.

    Raises :class:`UnrecoverableReading` (storing nothing) if a transaction does not carry the
    reading with a signature that recovers to its meter: then the chain and the mirror
    disagree, which is the audit's to report."""
    missing = missing_evidence(engine)
    if not missing:
        return 0
    domain = domain_separator(client.chain_id, client.address)
    recovered: list[SignedReading] = []
    for tx_hash, keys in missing.items():
        carried = signed_readings_of(client, tx_hash)
        for meter, slot in keys:
            signed = carried.get((checksum(meter), slot))
            if signed is None:
                raise UnrecoverableReading(
                    f"transaction {tx_hash} does not carry the reading of meter {meter} for "
                    f"slot {slot} that the mirror says it committed"
                )
            try:
                signer = recover_signer(signed, domain)
            except InvalidReading as exc:
                raise UnrecoverableReading(
                    f"the reading of meter {meter} for slot {slot} in {tx_hash}: {exc}"
                ) from exc
            if signer != signed.reading.meter:
                raise UnrecoverableReading(
                    f"the reading of meter {meter} for slot {slot} in {tx_hash} is signed by "
                    f"{signer}, not its meter"
                )
            recovered.append(signed)
    return store_signed_readings(engine, recovered)
