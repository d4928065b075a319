"""Privacy by design: a household's export of its data, its erasure, and the retention of raw
signed readings (``docs/privacy.md`` says what is kept, why and how long).

**Export** (:func:`sections`, :func:`json_chunks`, :func:`zip_chunks`). Everything Voisin holds
about one household, kind by kind: its identity, the addresses it has used, its signed
readings (with their signatures) as the meters sent them and as the chain committed them,
its orders, its trades, its monthly statements, its top-ups, its consents and its erasure.
Rows are read in pages of :data:`PAGE` by key and written out as they come, so a long history
is streamed with bounded memory, as one JSON document or as a zip of one CSV per kind. Times
are UTC (ISO 8601) with a local-time column beside each, in the neighbourhood's zone.

**Erasure** (:func:`blockers`, :func:`wipe`). A household's personal data are its name, its
bearer token and its account key; what remains is pseudonymous (the household's id, its
account and meter addresses), which the chain holds for good anyway and which the audit's
evidence (signed readings, fills, the mirror) is keyed by. The API deactivates the household
on chain through an intent (:mod:`api.intents`, kind ``erase``), then :func:`wipe` removes the
personal data in the transaction that finishes it, once. Money left on the account is moved to
the operator's account first (with the household's key, before it is destroyed: money left on
an account without a key could never move again), and the operator pays it back outside
Voisin; the erasure's record keeps the amount. Erasure is refused while readings of its meter
wait for the chain, or while one of its orders is being sent.

**Retention** (:func:`purge`). Raw signed readings (``signed_reading`` and the intake's
``intake_reading``) older than ``VOISIN_SIGNED_READING_RETENTION_DAYS`` are deleted, only for
slots sealed on chain, and the slot from which every signed reading is still kept is recorded
for the audit (:data:`ledger.audit.inputs.EVIDENCE_FROM_KEY`), which then checks signatures
within that window and says so in its report.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, delete, func, or_
from sqlmodel import Session, col, select

from api.errors import ApiError, not_found
from api.models import (
    ApiConsent,
    ApiHousehold,
    ApiIntent,
    ApiOrder,
    ApiOrderPost,
    HouseholdErasure,
    IntakeReading,
    SignedReadingPurge,
)
from ledger import localtime
from ledger.audit.inputs import EVIDENCE_FROM_KEY
from ledger.market.data import MarketDataError, load_statement
from ledger.mirror.models import (
    ChainEvent,
    FillRecord,
    HouseholdRecord,
    IndexerState,
    OrderRecord,
    ReadingRecord,
    SignedReadingRecord,
    SlotDigestRecord,
    TopUpRecord,
)
from ledger.types import SLOT_SECONDS

#: Rows read per query while exporting: memory stays bounded whatever the history's length.
PAGE = 1_000
#: Bytes gathered before a chunk of the export is handed to the client.
CHUNK_BYTES = 64 * 1024
#: The export's format name, in the JSON and in the zip's README.
FORMAT = "voisin-household-export/1"

# ───────────────────────────── Pure parts ─────────────────────────────


def confirmation(household: int) -> str:
    """The words an erasure request must carry, exactly: they name the household erased."""
    return f"erase household {household}"


def erased_token_hash(household: int) -> str:
    """What stands in the token column of an erased household: no SHA-256 hex digest (which
    every bearer token is looked up by) can equal it, so no token matches it."""
    return f"erased:{household}"


def utc_iso(moment: datetime | None) -> str | None:
    """``moment`` in UTC, ISO 8601 (a naive time, as SQLite returns them, is UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def local_iso(moment: datetime | None, tz: str) -> str | None:
    """``moment`` in the neighbourhood's zone ``tz``, ISO 8601 with its offset."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(localtime.zone(tz)).isoformat()


def times(name: str, moment: datetime | None, tz: str) -> dict[str, str | None]:
    """The two columns of one time: ``<name>_utc`` and ``<name>_local``."""
    return {f"{name}_utc": utc_iso(moment), f"{name}_local": local_iso(moment, tz)}


def slot_times(slot: int, tz: str) -> dict[str, Any]:
    """A slot's number with its start in UTC and in local time."""
    start = datetime.fromtimestamp(slot * SLOT_SECONDS, UTC)
    return {"slot": slot, **times("slot_start", start, tz)}


def retention_before_slot(now_s: float, days: int) -> int:
    """The first slot whose signed readings are within ``days`` of ``now_s`` (unix seconds):
    those of earlier slots are past their retention."""
    return int(now_s - days * 86_400) // SLOT_SECONDS


def months_between(first_slot: int, last_slot: int, tz: str) -> list[tuple[int, int]]:
    """The local calendar months (year, month) the slots ``first_slot..last_slot`` touch."""
    start = localtime.local_date(first_slot, tz)
    end = localtime.local_date(last_slot, tz)
    months: list[tuple[int, int]] = []
    year, month = start.year, start.month
    while date(year, month, 1) <= end:
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(frozen=True, slots=True)
class Holdings:
    """What an erasure must wait for, as found: readings of the household's meter not on
    chain yet, and its orders whose post is in flight."""

    queued_readings: int
    orders_in_flight: int
    #: Whether the household has no account key (taken back from the chain after a restore,
    #: :mod:`api.recovery`): what is left on its account could not be refunded.
    keyless: bool = False


def blockers(household: int, found: Holdings) -> ApiError | None:
    """Why ``household`` cannot be erased now, or None: the refusal says what to do."""
    if found.queued_readings:
        return ApiError(
            409,
            "meter_readings_pending",
            f"{found.queued_readings} reading(s) of household {household}'s meter are not on "
            "chain yet; retry once the outbox has committed them (GET /health shows the backlog)",
        )
    if found.orders_in_flight:
        return ApiError(
            409,
            "orders_pending",
            f"{found.orders_in_flight} order(s) of household {household} are being sent to the "
            "chain; retry in a few seconds",
        )
    if found.keyless:
        return ApiError(
            409,
            "no_account_key",
            f"household {household} has no account key (taken back from the chain after a "
            "restore), so what is left on its account could not be refunded: the operator "
            f"issues it one first (POST /households/{household}/rotate-key), then retry",
        )
    return None


#: What stays after an erasure, said in every answer to one (docs/privacy.md).
KEPT_AFTER_ERASURE = (
    "the household's id, account and meter addresses: pseudonymous, and on chain for good",
    "its committed readings, trades, top-ups and statements' records: billing records the "
    "operator must keep (legal obligation)",
    "its signed readings, until VOISIN_SIGNED_READING_RETENTION_DAYS: the audit's evidence",
    "this erasure's record: when, and at whose request",
)


class ErasureIn(BaseModel):
    """An erasure request: ``confirm`` repeats ``erase household <id>`` word for word."""

    confirm: str = Field(
        max_length=100,
        description="Exactly `erase household <id>`, the id of the household erased.",
    )

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"confirm": confirmation(7)}]}
    )


class ErasureOut(BaseModel):
    """A household's erasure, done."""

    household: int
    erased_at: datetime = Field(description="When the personal data were removed (UTC).")
    requested_by: str = Field(
        description=(
            "`household` (its own token), `operator`, or `restore`: erased after the backup a "
            "restored database came from, and applied again from the chain's deactivation."
        )
    )
    deactivated_tx: str | None = Field(
        description="The `deactivateHousehold` transaction (null: not mirrored yet then)."
    )
    refund_ueur: int = Field(
        description=(
            "What was left on the account (µ€), moved to the operator's account: the operator "
            "pays it back to the household outside Voisin."
        )
    )
    kept: list[str] = Field(description="What Voisin keeps, and why (docs/privacy.md).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "household": 7,
                    "erased_at": "2026-12-06T10:15:00+00:00",
                    "requested_by": "household",
                    "deactivated_tx": "0x" + "ab" * 32,
                    "refund_ueur": 1_250_000,
                    "kept": list(KEPT_AFTER_ERASURE),
                }
            ]
        }
    )


def erasure_out(row: HouseholdErasure) -> ErasureOut:
    return ErasureOut(
        household=row.household,
        erased_at=datetime.fromisoformat(utc_iso(row.erased_at) or ""),
        requested_by=row.requested_by,
        deactivated_tx=row.deactivated_tx,
        refund_ueur=row.refund_ueur,
        kept=list(KEPT_AFTER_ERASURE),
    )


# ───────────────────────────── Erasure ─────────────────────────────


def holdings(engine: Engine, household: int, meter: str) -> Holdings:
    """What :func:`blockers` checks, read from the database."""
    with Session(engine) as session:
        queued = session.exec(
            select(func.count())
            .select_from(IntakeReading)
            .where(IntakeReading.meter == meter, IntakeReading.status == "queued")
        ).one()
        in_flight = session.exec(
            select(func.count())
            .select_from(ApiOrderPost)
            .where(
                col(ApiOrderPost.order_id).in_(
                    select(ApiOrder.id).where(ApiOrder.household == household)
                )
            )
        ).one()
        record = session.get(ApiHousehold, household)
    keyless = record is not None and not record.key_json
    return Holdings(int(queued), int(in_flight), keyless)


def deactivation_tx(session: Session, household: int) -> str | None:
    """The transaction that deactivated ``household``, from the mirrored events (None before
    the mirror has it)."""
    for e in session.exec(
        select(ChainEvent)
        .where(ChainEvent.name == "HouseholdDeactivated")
        .order_by(col(ChainEvent.block_number).desc())
    ):
        if int(json.loads(e.args_json).get("household", -1)) == household:
            return e.tx_hash
    return None


def erasure_of(engine: Engine, household: int) -> HouseholdErasure | None:
    with Session(engine) as session:
        return session.get(HouseholdErasure, household)


#: The intents' payload and answer fields that hold personal data or a key. A token's salt
#: stays: the token it derives matches nothing once the household's token column is erased, and
#: a registration's retry still gets its answer (without the name).
_PERSONAL_FIELDS = ("name", "key_json")


def _scrubbed(text: str | None) -> str | None:
    if not text:
        return text
    value = json.loads(text)
    if not isinstance(value, dict):
        return text
    for name in _PERSONAL_FIELDS:
        if name in value:
            value[name] = None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _locked_row(session: Session, household: int) -> ApiHousehold | None:
    """``household``'s row, locked until ``session``'s transaction ends (PostgreSQL: the row's
    lock; SQLite: the transaction must hold the write lock already,
    :func:`api.sqlite_pragmas.begin_writing`)."""
    query = select(ApiHousehold).where(ApiHousehold.id == household).with_for_update()
    return session.exec(query).first()


def hold_household(session: Session, household: int) -> ApiHousehold:
    """``household``'s row, locked for the rest of ``session``'s transaction; refused if it is
    not registered or was erased.

    Every write that gives a household something to act with (a token, an order, a consent)
    goes through here in the transaction that writes it, and the erasure (:func:`wipe`) takes
    the same lock first: whichever comes second sees what the first did, so an erasure that
    finishes while such a request is checked is never undone by it."""
    row = _locked_row(session, household)
    if row is None:
        raise not_found("unknown_household", f"household {household} is not registered")
    if session.get(HouseholdErasure, household) is not None:
        raise erased_error(household)
    return row


def erased_error(household: int) -> ApiError:
    return ApiError(
        409,
        "household_erased",
        f"household {household} was erased at its request: it gets no new key, token, meter, "
        "order or consent; a new registration starts a new household",
    )


def wipe(
    session: Session,
    household: int,
    *,
    requested_by: str,
    deactivated_tx: str | None,
    refund_ueur: int = 0,
    now: datetime | None = None,
) -> HouseholdErasure:
    """Remove ``household``'s personal data in ``session`` and record the erasure; an erasure
    recorded already is returned as it is (erasure happens once).

    - ``api_household``: the name goes, the token column gets :func:`erased_token_hash` (no
      token matches it any more) and the account's encrypted key is deleted;
    - ``api_intent``: the household's intents forget its name and its account's keys;
    - ``api_order``: its orders still queued or open are closed (``cancelled``): the chain
      refuses a deactivated household's orders, and there is no key left to send them with;
    - ``api_consent``: its consents still in force are withdrawn.
    """
    record = _locked_row(session, household)
    existing = session.get(HouseholdErasure, household)
    if existing is not None:
        return existing
    moment = now or datetime.now(UTC)
    if record is not None:
        record.name = None
        record.token_hash = erased_token_hash(household)
        record.key_json = ""
        session.add(record)
    for intent in session.exec(select(ApiIntent).where(ApiIntent.household == household)):
        intent.payload = _scrubbed(intent.payload) or "{}"
        intent.response = _scrubbed(intent.response)
        session.add(intent)
    for order in session.exec(
        select(ApiOrder).where(
            ApiOrder.household == household, col(ApiOrder.status).in_(("queued", "open"))
        )
    ):
        order.status = "cancelled"
        order.reason = "household erased: deactivated on chain, its orders can no longer trade"
        session.add(order)
    for consent in session.exec(
        select(ApiConsent).where(
            ApiConsent.household == household, col(ApiConsent.withdrawn_at).is_(None)
        )
    ):
        consent.withdrawn_at = moment
        session.add(consent)
    row = HouseholdErasure(
        household=household,
        requested_by=requested_by,
        erased_at=moment,
        deactivated_tx=deactivated_tx,
        refund_ueur=refund_ueur,
    )
    session.add(row)
    return row


# ───────────────────────────── Retention ─────────────────────────────


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What one purge did: signed readings of sealed slots before ``before_slot`` deleted."""

    before_slot: int
    signed_readings: int
    intake_readings: int
    #: The first slot from which every signed reading is kept (the audit's window).
    evidence_from_slot: int


def purge(engine: Engine, retention_days: int, now_s: float) -> PurgeResult:
    """Delete the raw signed readings past ``retention_days`` (before
    :func:`retention_before_slot`) of slots sealed in the digest chain, from the evidence store
    and from the intake (committed or rejected readings only), in one transaction; record it
    and the audit's window.

    Only sealed slots: their records are pinned on chain, and their credits were minted by a
    contract that checked each reading's signature. A slot not sealed yet keeps its readings,
    whatever their age. The window recorded only moves forward.
    """
    before = retention_before_slot(now_s, retention_days)
    sealed = select(SlotDigestRecord.slot).where(SlotDigestRecord.slot < before)
    with Session(engine) as session, session.begin():
        signed = session.execute(
            delete(SignedReadingRecord).where(
                col(SignedReadingRecord.slot) < before, col(SignedReadingRecord.slot).in_(sealed)
            )
        )
        intake = session.execute(
            delete(IntakeReading).where(
                col(IntakeReading.slot) < before,
                col(IntakeReading.slot).in_(sealed),
                col(IntakeReading.status) != "queued",
            )
        )
        state = session.get(IndexerState, EVIDENCE_FROM_KEY)
        window = max(before, int(state.value)) if state is not None else before
        session.merge(IndexerState(key=EVIDENCE_FROM_KEY, value=str(window)))
        result = PurgeResult(
            before,
            int(signed.rowcount or 0),  # type: ignore[attr-defined]
            int(intake.rowcount or 0),  # type: ignore[attr-defined]
            window,
        )
        session.add(
            SignedReadingPurge(
                purged_at=datetime.fromtimestamp(now_s, UTC),
                retention_days=retention_days,
                before_slot=before,
                signed_readings=result.signed_readings,
                intake_readings=result.intake_readings,
            )
        )
    return result


# ───────────────────────────── Export ─────────────────────────────


@dataclass
class Section:
    """One kind of the export: its name, its columns and its rows (read as they are asked)."""

    kind: str
    columns: tuple[str, ...]
    rows: Callable[[], Iterator[dict[str, Any]]] = field(repr=False)


def _paged(
    engine: Engine, model: Any, key: Any, *where: Any
) -> Iterator[Any]:  # a page at a time, by key
    last: Any = None
    while True:
        query = select(model).where(*where)
        if last is not None:
            query = query.where(key > last)
        with Session(engine) as session:
            page = list(session.exec(query.order_by(key).limit(PAGE)))
        yield from page
        if len(page) < PAGE:
            return
        last = getattr(page[-1], key.key)


def _addresses(engine: Engine, household: int) -> list[dict[str, Any]]:
    """The accounts and meters the household has had, from the mirrored chain events."""
    rows: list[dict[str, Any]] = []
    with Session(engine) as session:
        events = session.exec(
            select(ChainEvent)
            .where(
                col(ChainEvent.name).in_(("HouseholdRegistered", "MeterRotated", "AccountRotated"))
            )
            .order_by(col(ChainEvent.block_number), col(ChainEvent.log_index))
        )
        for e in events:
            args = json.loads(e.args_json)
            if int(args.get("household", -1)) != household:
                continue
            if e.name == "HouseholdRegistered":
                found = [("account", args["account"]), ("meter", args["meter"])]
            elif e.name == "MeterRotated":
                found = [("meter", args["newMeter"])]
            else:
                found = [("account", args["newAccount"])]
            for kind, address in found:
                rows.append(
                    {
                        "kind": kind,
                        "address": address,
                        "from_block": e.block_number,
                        "event": e.name,
                        "tx_hash": e.tx_hash,
                    }
                )
    return rows


def sections(engine: Engine, household: int, tz: str) -> list[Section]:
    """Every kind of data held about ``household``, in the export's order. Raises
    :class:`ApiError` 404 if it is not registered."""
    with Session(engine) as session:
        record = session.get(ApiHousehold, household)
        mirrored = session.get(HouseholdRecord, household)
        erasure = session.get(HouseholdErasure, household)
    if record is None:
        raise ApiError(404, "unknown_household", f"household {household} is not registered")
    addresses = _addresses(engine, household)
    meters = sorted({a["address"] for a in addresses if a["kind"] == "meter"} | {record.meter})
    accounts = sorted(
        {a["address"] for a in addresses if a["kind"] == "account"} | {record.account}
    )

    def identity() -> Iterator[dict[str, Any]]:
        yield {
            "id": record.id,
            "name": record.name,
            "account": record.account,
            "meter": record.meter,
            "prosumer": record.prosumer,
            "active": None if mirrored is None else mirrored.active,
            **times("registered_at", record.created_at, tz),
            **times("erased_at", erasure.erased_at if erasure else None, tz),
        }

    def signed() -> Iterator[dict[str, Any]]:
        for r in _paged(
            engine,
            SignedReadingRecord,
            col(SignedReadingRecord.id),
            col(SignedReadingRecord.meter).in_(meters),
        ):
            yield {
                "meter": r.meter,
                **slot_times(r.slot, tz),
                "import_Wh": r.import_Wh,
                "export_Wh": r.export_Wh,
                "v": r.v,
                "r": r.r,
                "s": r.s,
            }

    def received() -> Iterator[dict[str, Any]]:
        for r in _paged(
            engine, IntakeReading, col(IntakeReading.id), IntakeReading.household == household
        ):
            yield {
                "meter": r.meter,
                **slot_times(r.slot, tz),
                "import_Wh": r.import_Wh,
                "export_Wh": r.export_Wh,
                "v": r.v,
                "r": r.r,
                "s": r.s,
                "status": r.status,
                "reason": r.reason,
                "tx_hash": r.tx_hash,
                **times("received_at", r.received_at, tz),
            }

    def committed() -> Iterator[dict[str, Any]]:
        for r in _paged(
            engine, ReadingRecord, col(ReadingRecord.id), ReadingRecord.household == household
        ):
            yield {
                "meter": r.meter,
                **slot_times(r.slot, tz),
                "import_Wh": r.import_Wh,
                "export_Wh": r.export_Wh,
                "import_delta_Wh": r.import_delta_Wh,
                "export_delta_Wh": r.export_delta_Wh,
                "block_number": r.block_number,
                "tx_hash": r.tx_hash,
            }

    def orders() -> Iterator[dict[str, Any]]:
        for o in _paged(engine, ApiOrder, col(ApiOrder.id), ApiOrder.household == household):
            yield {
                "id": o.id,
                "side": o.side,
                "price_limit_ueur_per_kWh": o.price_limit_ueur_per_kWh,
                "max_Wh_per_slot": o.max_Wh_per_slot,
                "first_slot": o.first_slot,
                "last_slot": o.last_slot,
                "status": o.status,
                "chain_id": o.chain_id,
                "reason": o.reason,
                "source": o.source,
                **times("created_at", o.created_at, tz),
            }

    def chain_orders() -> Iterator[dict[str, Any]]:
        for o in _paged(
            engine, OrderRecord, col(OrderRecord.id), OrderRecord.household == household
        ):
            yield {
                "side": o.side,
                "order_id": o.order_id,
                "price_limit_ueur_per_kWh": o.price_limit_ueur_per_kWh,
                "max_Wh_per_slot": o.max_Wh_per_slot,
                "first_slot": o.first_slot,
                "last_slot": o.last_slot,
                "open": o.open,
            }

    def trades() -> Iterator[dict[str, Any]]:
        for f in _paged(
            engine,
            FillRecord,
            col(FillRecord.id),
            or_(col(FillRecord.seller) == household, col(FillRecord.buyer) == household),
        ):
            selling = f.seller == household
            yield {
                **slot_times(f.slot, tz),
                "direction": "sold" if selling else "bought",
                "counterpart_household": f.buyer if selling else f.seller,
                "energy_Wh": f.energy_Wh,
                "price_ueur_per_kWh": f.price_ueur_per_kWh,
                "amount_ueur": f.cost_ueur if selling else -f.cost_ueur,
                "fee_ueur": 0 if selling else f.fee_ueur,
                "offer_id": f.offer_id,
                "bid_id": f.bid_id,
                "block_number": f.block_number,
                "tx_hash": f.tx_hash,
            }

    def statements() -> Iterator[dict[str, Any]]:
        with Session(engine) as session:
            first, last = session.exec(
                select(func.min(ReadingRecord.slot), func.max(ReadingRecord.slot)).where(
                    ReadingRecord.household == household
                )
            ).one()
        if first is None or last is None:
            return
        for year, month in months_between(first, last, tz):
            lo, hi = localtime.month_span(year, month, tz)
            try:
                s = load_statement(engine, household, lo, hi)
            except MarketDataError:
                return
            yield {
                "month": f"{year:04d}-{month:02d}",
                "first_slot": lo,
                "last_slot": hi,
                **{name: getattr(s, name) for name in STATEMENT_FIELDS},
            }

    def topups() -> Iterator[dict[str, Any]]:
        for t in _paged(
            engine, TopUpRecord, col(TopUpRecord.id), col(TopUpRecord.account).in_(accounts)
        ):
            yield {
                "account": t.account,
                "amount_ueur": t.amount_ueur,
                "block_number": t.block_number,
                "tx_hash": t.tx_hash,
            }

    def consents() -> Iterator[dict[str, Any]]:
        for c in _paged(engine, ApiConsent, col(ApiConsent.id), ApiConsent.household == household):
            yield {
                "key_id": c.key_id,
                **times("granted_at", c.granted_at, tz),
                **times("withdrawn_at", c.withdrawn_at, tz),
            }

    def erasures() -> Iterator[dict[str, Any]]:
        if erasure is not None:
            yield {
                "requested_by": erasure.requested_by,
                **times("erased_at", erasure.erased_at, tz),
                "deactivated_tx": erasure.deactivated_tx,
                "refund_ueur": erasure.refund_ueur,
            }

    readers: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {
        "household": identity,
        "addresses": lambda: iter(addresses),
        "signed_readings": signed,
        "received_readings": received,
        "committed_readings": committed,
        "orders": orders,
        "chain_orders": chain_orders,
        "trades": trades,
        "statements": statements,
        "topups": topups,
        "consents": consents,
        "erasure": erasures,
    }
    return [Section(kind, columns, readers[kind]) for kind, columns in COLUMNS.items()]


#: A monthly statement's totals, as exported (energy Wh, money micro-euro).
STATEMENT_FIELDS = (
    "import_Wh", "export_Wh", "bought_Wh", "sold_Wh", "grid_import_Wh", "grid_export_Wh",
    "paid_local_ueur", "fees_ueur", "earned_local_ueur", "grid_import_cost_ueur",
    "grid_export_revenue_ueur", "net_cost_ueur", "savings_ueur", "pending_slots",
)  # fmt: skip

_SLOT = ("slot", "slot_start_utc", "slot_start_local")
_READING = ("meter", *_SLOT, "import_Wh", "export_Wh")
_SIGNATURE = ("v", "r", "s")

#: Each kind of the export and its columns, in the export's order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "household": (
        "id", "name", "account", "meter", "prosumer", "active", "registered_at_utc",
        "registered_at_local", "erased_at_utc", "erased_at_local",
    ),
    "addresses": ("kind", "address", "from_block", "event", "tx_hash"),
    "signed_readings": (*_READING, *_SIGNATURE),
    "received_readings": (
        *_READING, *_SIGNATURE, "status", "reason", "tx_hash", "received_at_utc",
        "received_at_local",
    ),
    "committed_readings": (
        *_READING, "import_delta_Wh", "export_delta_Wh", "block_number", "tx_hash",
    ),
    "orders": (
        "id", "side", "price_limit_ueur_per_kWh", "max_Wh_per_slot", "first_slot", "last_slot",
        "status", "chain_id", "reason", "source", "created_at_utc", "created_at_local",
    ),
    "chain_orders": (
        "side", "order_id", "price_limit_ueur_per_kWh", "max_Wh_per_slot", "first_slot",
        "last_slot", "open",
    ),
    "trades": (
        *_SLOT, "direction", "counterpart_household", "energy_Wh", "price_ueur_per_kWh",
        "amount_ueur", "fee_ueur", "offer_id", "bid_id", "block_number", "tx_hash",
    ),
    "statements": ("month", "first_slot", "last_slot", *STATEMENT_FIELDS),
    "topups": ("account", "amount_ueur", "block_number", "tx_hash"),
    "consents": (
        "key_id", "granted_at_utc", "granted_at_local", "withdrawn_at_utc", "withdrawn_at_local",
    ),
    "erasure": (
        "requested_by", "erased_at_utc", "erased_at_local", "deactivated_tx", "refund_ueur",
    ),
}  # fmt: skip


def _header(household: int, tz: str, now: datetime) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "household": household,
        "timezone": tz,
        **times("generated_at", now, tz),
        "units": "energy in Wh, money in micro-euro (1 € = 1,000,000 µ€), prices in µ€ per kWh",
    }


def _batched(parts: Iterable[bytes]) -> Iterator[bytes]:
    """``parts`` gathered into chunks of about :data:`CHUNK_BYTES`."""
    buffer = bytearray()
    for part in parts:
        buffer += part
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def json_chunks(
    household: int, parts: Sequence[Section], tz: str, now: datetime | None = None
) -> Iterator[bytes]:
    """The export as one JSON document, ``{"format", ..., "data": {kind: [rows]}}``, in
    chunks, each kind's rows written as they are read."""

    def pieces() -> Iterator[bytes]:
        head = json.dumps(_header(household, tz, now or datetime.now(UTC)), ensure_ascii=False)
        yield (head[:-1] + ', "data": {').encode()
        for n, section in enumerate(parts):
            yield (", " if n else "").encode() + json.dumps(section.kind).encode() + b": ["
            for m, row in enumerate(section.rows()):
                yield (b", " if m else b"") + json.dumps(row, ensure_ascii=False).encode()
            yield b"]"
        yield b"}}\n"

    return _batched(pieces())


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken as they come (the zip's output):
    :mod:`zipfile` then writes each entry's sizes after its data."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _readme(household: int, tz: str, now: datetime) -> str:
    head = _header(household, tz, now)
    lines = [f"{k}: {v}" for k, v in head.items()]
    return "\n".join(
        [
            *lines,
            "",
            "One CSV file per kind of data (UTF-8, comma-separated, a header row). Each time is "
            "given in UTC and in the neighbourhood's local time (the _utc and _local columns).",
            "docs/privacy.md says what each kind is, why it is kept and for how long.",
            "",
        ]
    )


def zip_chunks(
    household: int, parts: Sequence[Section], tz: str, now: datetime | None = None
) -> Iterator[bytes]:
    """The export as a zip of one CSV per kind (and a README), in chunks, each CSV written row
    by row as its rows are read."""
    moment = now or datetime.now(UTC)

    def pieces() -> Iterator[bytes]:
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"voisin-{household}/README.txt", _readme(household, tz, moment))
            yield sink.take()
            for section in parts:
                name = f"voisin-{household}/{section.kind}.csv"
                with archive.open(name, "w") as entry:
                    text = io.TextIOWrapper(entry, encoding="utf-8", newline="")
                    writer = csv.writer(text)
                    writer.writerow(section.columns)
                    for row in section.rows():
                        writer.writerow([_cell(row[c]) for c in section.columns])
                        text.flush()
                        yield sink.take()
                    text.flush()
                    text.detach()
                yield sink.take()
        yield sink.take()

    return _batched(pieces())


#: What makes a spreadsheet read a cell as a formula when it starts the cell.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None; text a person wrote (a household's name) that a spreadsheet
    would run as a formula gets a leading ``'``, so it opens as the text it is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


# ───────────────────────────── The page's texts ─────────────────────────────

#: The household page's privacy section, in its two languages.
PAGE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your data",
        "intro": (
            "Download everything Voisin holds about your household, or ask for your personal "
            "data to be erased. The privacy notice says what is kept, why and for how long."
        ),
        "export_json": "Download my data (JSON)",
        "export_csv": "Download my data (CSV, zip)",
        "notice": "Privacy notice",
        "erase": "Erase my data…",
        "confirm_title": "Erase your personal data?",
        "confirm_what": (
            "Your name, your sign-in token and your account's key are deleted, your household "
            "is deactivated on the ledger (no more readings, orders or trades), and you are "
            "signed out for good. This cannot be undone."
        ),
        "confirm_kept": (
            "Kept: your household's number and its account and meter addresses (pseudonymous, "
            "on the ledger for good), the billing records of your readings and trades (a legal "
            "obligation), and your signed readings until their retention ends."
        ),
        "confirm_balance": (
            "Your account still holds {balance}: it is moved to the operator's account with "
            "the erasure, and the operator pays it back to you."
        ),
        "confirm_download": "Download your data first if you want to keep a copy.",
        "confirm_check": "I understand that my data will be erased and that I will be signed out.",
        "confirm_button": "Erase my data for good",
        "cancel": "Keep my data",
        "err_confirm": "Tick the box to confirm the erasure.",
        "erased_title": "Your data were erased",
        "erased_text": (
            "Household {id}'s personal data were erased on {when}, and it is deactivated on "
            "the ledger. You are signed out."
        ),
        "home": "Back to the sign-in page",
    },
    "fr": {
        "title": "Vos données",
        "intro": (
            "Téléchargez tout ce que Voisin détient sur votre foyer, ou demandez l'effacement "
            "de vos données personnelles. La notice de confidentialité dit ce qui est gardé, "
            "pourquoi et combien de temps."
        ),
        "export_json": "Télécharger mes données (JSON)",
        "export_csv": "Télécharger mes données (CSV, zip)",
        "notice": "Notice de confidentialité",
        "erase": "Effacer mes données…",
        "confirm_title": "Effacer vos données personnelles ?",
        "confirm_what": (
            "Votre nom, votre jeton de connexion et la clé de votre compte sont supprimés, votre "
            "foyer est désactivé dans le registre (plus de relevés, d'ordres ni d'échanges) et "
            "vous êtes déconnecté pour de bon. C'est irréversible."
        ),
        "confirm_kept": (
            "Gardés : le numéro de votre foyer et les adresses de son compte et de son compteur "
            "(pseudonymes, inscrites pour toujours dans le registre), les pièces de facturation "
            "de vos relevés et échanges (une obligation légale), et vos relevés signés jusqu'à "
            "la fin de leur durée de conservation."
        ),
        "confirm_balance": (
            "Votre compte détient encore {balance} : ce solde passe sur le compte de "
            "l'opérateur avec l'effacement, et l'opérateur vous le rembourse."
        ),
        "confirm_download": "Téléchargez d'abord vos données si vous voulez en garder une copie.",
        "confirm_check": (
            "Je comprends que mes données seront effacées et que je serai déconnecté."
        ),
        "confirm_button": "Effacer mes données pour de bon",
        "cancel": "Garder mes données",
        "err_confirm": "Cochez la case pour confirmer l'effacement.",
        "erased_title": "Vos données ont été effacées",
        "erased_text": (
            "Les données personnelles du foyer {id} ont été effacées le {when}, et il est "
            "désactivé dans le registre. Vous êtes déconnecté."
        ),
        "home": "Retour à la page de connexion",
    },
}


def page_texts(lang: str) -> dict[str, str]:
    """The privacy section's texts in ``lang`` (``en`` or ``fr``)."""
    return PAGE_TEXTS["fr" if lang == "fr" else "en"]
