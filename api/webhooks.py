"""Webhooks: Voisin's events POSTed to the operator's systems (billing, CRM), signed.

The pure parts come first: the event types and the bodies built from the mirror's events and
the keeper's audit runs, the signature (HMAC-SHA256 over ``timestamp + "." + body`` with the
subscription's secret) and the retry schedule (exponential backoff with jitter). Then the
worker, which does the I/O (docs/webhooks.md is the receiver's side):

1. **Enqueue.** A cursor over the mirror's ``chain_event`` rows (and one over ``kept_audit``)
   is moved in the database transaction that records a delivery per event and matching
   subscription (``webhook_delivery``, unique per subscription and event): a crash before the
   commit records nothing and moves nothing, so the next pass reads the same events again; a
   crash after it has every delivery recorded, and the cursor past them, so none is recorded
   twice. A subscription receives only the events mirrored after it was created.
2. **Deliver.** Due deliveries are claimed (a compare-and-set to ``sending`` with a lease) and
   attempted by a bounded pool of threads, at most one attempt per subscription at a time,
   each with a timeout per step: a slow or dead receiver holds one thread for at most its
   timeouts, and never the API, whose requests only read and write these tables. A 2xx
   answer is ``delivered``; anything else is retried after :func:`retry_delay_s`, up to the
   maximum attempts, then ``failed`` (listed for the operator, who may retry it). An attempt
   a crash interrupted is made again once its lease has passed: a receiver may see a
   delivery twice, with the same ``Voisin-Delivery`` id, which is what it deduplicates on.

The mirror's ids grow with the chain: the indexer is the only writer of ``chain_event``, one
chunk at a time under the chain's lock, so when a row is visible every row with a lower id is
too, and the cursor never steps over one still to come.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ColumnElement, Engine, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, and_, col, or_, select

from api.custody import KeyVault
from api.models import KeptAudit, WebhookCursor, WebhookDelivery, WebhookSubscription
from api.settings import Settings
from ledger.market.statements import is_forward_delivery
from ledger.mirror.models import ChainEvent, HouseholdRecord, SlotOutcomeRecord

log = logging.getLogger("voisin.webhooks")

# ───────────────────────────── Event types ─────────────────────────────

EventType = Literal[
    "household_registered",
    "household_deactivated",
    "topup",
    "trade_settled",
    "slot_settled",
    "audit_failed",
]
#: Every event type a subscription may ask for.
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)

#: The contract's events that become webhooks, by the type they are sent as.
CHAIN_EVENTS: Final[dict[str, str]] = {
    "HouseholdRegistered": "household_registered",
    "HouseholdDeactivated": "household_deactivated",
    "ToppedUp": "topup",
    "FillSettled": "trade_settled",
    # Emitted once per slot, after the slot's outcome is recorded as settled.
    "SlotSealed": "slot_settled",
}

DeliveryStatus = Literal["pending", "sending", "delivered", "failed", "cancelled"]

# ───────────────────────────── Signature ─────────────────────────────

DELIVERY_HEADER: Final = "Voisin-Delivery"
EVENT_HEADER: Final = "Voisin-Event"
TIMESTAMP_HEADER: Final = "Voisin-Timestamp"
SIGNATURE_HEADER: Final = "Voisin-Signature"
#: The signature's scheme in its header: ``v1=<hex HMAC-SHA256>``.
SIGNATURE_SCHEME: Final = "v1"
#: How old a timestamp a receiver should accept (seconds), as docs/webhooks.md advises.
TOLERANCE_S: Final = 300
SECRET_PREFIX: Final = "whsec_"
USER_AGENT: Final = "Voisin-Webhooks/1"


def secret_from_key(key: bytes) -> str:
    """The secret a receiver is given for 32 random bytes (the vault keeps the bytes)."""
    return SECRET_PREFIX + bytes(key).hex()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 (hex) of ``"<timestamp>.<body>"`` under the secret's UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def delivery_headers(uid: str, event_type: str, timestamp: int, sig: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        DELIVERY_HEADER: uid,
        EVENT_HEADER: event_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SIGNATURE_SCHEME}={sig}",
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature_header: str,
    *,
    now: float,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """What a receiver checks: the timestamp is recent and the signature matches."""
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(now - int(timestamp)) > tolerance_s:
        return False
    scheme, _, given = signature_header.partition("=")
    expected = signature(secret, int(timestamp), body)
    return scheme == SIGNATURE_SCHEME and hmac.compare_digest(given, expected)


# ───────────────────────────── Retries ─────────────────────────────


def retry_delay_s(failed: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The wait after the ``failed``-th failed attempt (1, 2, ...): ``base_s`` doubled after
    each failure, at most ``cap_s``, drawn between half and all of it. The jitter spreads the
    retries of many deliveries a receiver's outage failed together; the half kept keeps the
    schedule growing."""
    ceiling = min(cap_s, base_s * 2.0 ** min(failed - 1, 64))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


# ───────────────────────────── Bodies ─────────────────────────────


@dataclass(frozen=True, slots=True)
class ChainPlace:
    """Where a contract event is on chain."""

    contract: str
    block_number: int
    log_index: int
    tx_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "block_number": self.block_number,
            "log_index": self.log_index,
            "tx_hash": self.tx_hash,
        }


#: A slot outcome's fields a ``slot_settled`` body carries (SlotOutcomeRecord's columns).
OUTCOME_FIELDS: Final = (
    "mechanism",
    "clearing_price_ueur_per_kWh",
    "households",
    "surplus_Wh",
    "deficit_Wh",
    "matched_Wh",
    "unmatched_surplus_Wh",
    "unmatched_deficit_Wh",
    "fills",
    "batches",
    "cost_ueur",
    "fees_ueur",
)


def _fill_kind(offer_id: int, bid_id: int) -> str:
    """``day-ahead`` for a forward position's delivery (offer and bid id 0), ``take`` for a
    direct take (bid id 0), ``auction`` for a fill of the slot's clearing."""
    if is_forward_delivery(offer_id, bid_id):
        return "day-ahead"
    return "take" if bid_id == 0 else "auction"


def chain_event_data(
    name: str,
    args: Mapping[str, Any],
    place: ChainPlace,
    *,
    household: int | None = None,
    outcome: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``data`` of a contract event's body. ``household`` is the top-up's household (the
    mirror's, by account; None if the account is not a household's); ``outcome`` the settled
    slot's outcome (OUTCOME_FIELDS)."""
    data: dict[str, Any]
    if name == "HouseholdRegistered":
        data = {
            "household": int(args["household"]),
            "account": args["account"],
            "meter": args["meter"],
            "prosumer": bool(args["prosumer"]),
            "import_baseline_Wh": int(args["importBaselineWh"]),
            "export_baseline_Wh": int(args["exportBaselineWh"]),
        }
    elif name == "HouseholdDeactivated":
        data = {"household": int(args["household"])}
    elif name == "ToppedUp":
        data = {
            "household": household,
            "account": args["account"],
            "amount_ueur": int(args["amountUeur"]),
        }
    elif name == "FillSettled":
        bid = int(args["bidId"])
        data = {
            "slot": int(args["slot"]),
            "seller": int(args["seller"]),
            "buyer": int(args["buyer"]),
            "offer_chain_id": int(args["offerId"]),
            "bid_chain_id": bid,
            "kind": _fill_kind(int(args["offerId"]), bid),
            "energy_Wh": int(args["energyWh"]),
            "price_ueur_per_kWh": int(args["priceUeurPerKWh"]),
            "cost_ueur": int(args["costUeur"]),
            "fee_ueur": int(args["feeUeur"]),
        }
    elif name == "SlotSealed":
        data = {"slot": int(args["slot"])}
        data.update({key: (outcome or {}).get(key) for key in OUTCOME_FIELDS})
    else:
        raise ValueError(f"{name} is not an event webhooks send; they send {sorted(CHAIN_EVENTS)}")
    data["chain"] = place.as_dict()
    return data


def _iso(unix_s: float | None) -> str | None:
    if unix_s is None:
        return None
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


def audit_data(run: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` of an ``audit_failed`` body, from a kept audit run's columns."""
    try:
        summary = json.loads(run.get("summary_json") or "{}").get("summary")
    except (ValueError, AttributeError):
        summary = None
    return {
        "run": int(run["id"]),
        "started_at": _iso(run["started_s"]),
        "finished_at": _iso(run["finished_s"]),
        "ran": run.get("problem") is None,
        "problem": run.get("problem"),
        "findings": int(run.get("findings") or 0),
        "last_slot": run.get("last_slot"),
        "head_block": run.get("head_block"),
        "summary": summary,
    }


def audit_state(ok: bool | None, problem: str | None, findings: int) -> str:
    """A kept audit run's outcome as the cursor remembers it: ``ok``, ``not_run`` (it could
    not run) or ``findings:<n>``."""
    if problem is not None:
        return "not_run"
    if ok:
        return "ok"
    return f"findings:{findings}"


def body(event_type: str, event_id: str, data: Mapping[str, Any], created_at: datetime) -> str:
    """The JSON body of a delivery, the same bytes at every attempt."""
    envelope = {
        "type": event_type,
        "event_id": event_id,
        "created_at": created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def new_uid() -> str:
    """A delivery's id: random, so that it is unique across databases and restores too."""
    return "dlv_" + secrets.token_hex(16)


def chain_delivery_uid(place: str, subscription_id: int) -> str:
    """The id of a contract event's delivery to one subscription: derived from where the event
    is on chain (``place``: contract, block and log index) and the subscription, so that a
    database restored from a backup, which records the deliveries of the events since again,
    gives each the id it had, and the receiver deduplicates it."""
    digest = hashlib.sha256(f"{place}|{subscription_id}".encode()).hexdigest()
    return "dlv_" + digest[:32]


# ───────────────────────────── The worker ─────────────────────────────

#: Mirror ids read per enqueue transaction.
WINDOW_IDS: Final = 2_000
#: Audit runs read per enqueue transaction.
AUDIT_BATCH: Final = 100
#: The kept audit runs' columns an ``audit_failed`` body is built from (not the whole report).
_AUDIT_COLUMNS: Final = (
    "id",
    "started_s",
    "finished_s",
    "ok",
    "problem",
    "findings",
    "last_slot",
    "head_block",
    "summary_json",
)
#: Characters of an attempt's error kept (the receiver's words are not ours to store whole).
ERROR_CHARS: Final = 300


class _CursorMoved(Exception):
    """Another process moved a cursor under this pass: its transaction is rolled back."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery claimed for one attempt."""

    id: int
    uid: str
    subscription_id: int
    url: str
    secret_json: str
    event_type: str
    body: str
    attempts: int


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _due(now_ms: int) -> ColumnElement[bool]:
    return or_(
        and_(
            col(WebhookDelivery.status) == "pending", col(WebhookDelivery.next_attempt_ms) <= now_ms
        ),
        and_(
            col(WebhookDelivery.status) == "sending",
            col(WebhookDelivery.lease_until_ms) < now_ms,
        ),
    )


def event_types_of(subscription: WebhookSubscription) -> set[str]:
    return {t for t in subscription.event_types.split(",") if t}


class WebhookWorker:
    """Records and delivers the webhooks (see the module). One per process, started and
    stopped by :class:`api.services.Services`; tests drive it with :meth:`run_once`."""

    def __init__(
        self,
        engine: Engine,
        vault: KeyVault,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.max_attempts = settings.webhook_max_attempts
        self.backoff_s = settings.webhook_backoff_s
        self.backoff_max_s = settings.webhook_backoff_max_s
        self.timeout_s = settings.webhook_timeout_s
        self.concurrency = settings.webhook_concurrency
        self.poll_s = settings.webhook_poll_s
        # An attempt's steps (connect, send, read the answer's head) each end within the
        # timeout: past four of them and a margin, a claim whose process died is taken back.
        self.lease_ms = _ms(4 * self.timeout_s + 5)
        self.clock = clock
        self.rng = rng or random.Random()
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
            headers={"User-Agent": USER_AGENT},
        )
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="voisin-webhook")
        self._busy: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held_slot: int | None = None

    # ───────────────────────────── The thread ─────────────────────────────

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="voisin-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now (a retry was asked for, a slot settled)."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking work, let the attempts under way end (each within its timeouts)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.enqueue()
                self.dispatch()
            except Exception:  # keep the thread alive; the next pass retries
                log.exception("webhooks pass failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_once(self, timeout_s: float = 30.0) -> int:
        """Enqueue, attempt what is due, and wait for those attempts; how many were made."""
        self.enqueue()
        futures = self.dispatch()
        wait_for(futures, timeout=timeout_s)
        return len(futures)

    # ───────────────────────────── Enqueue ─────────────────────────────

    def enqueue(self) -> int:
        """Record the deliveries of every event read since the last pass; how many."""
        total = 0
        more = True
        while more:
            try:
                done, more = self._enqueue_chain_events()
            except (_CursorMoved, IntegrityError) as exc:
                self._overtaken("chain_event", exc)
                break
            total += done
        try:
            total += self._enqueue_audits()
        except (_CursorMoved, IntegrityError) as exc:
            self._overtaken("kept_audit", exc)
        return total

    @staticmethod
    def _overtaken(source: str, exc: Exception) -> None:
        """Another process recorded the same events first (it moved the cursor, or inserted
        the same deliveries): this pass's transaction is rolled back, the next one reads on
        from where that process left the cursor. Routine with several API processes on one
        database, hence not a warning."""
        log.info("webhooks: %s read by another process first (%s)", source, type(exc).__name__)

    @staticmethod
    def _cursor(session: Session, source: str, start: int) -> tuple[WebhookCursor, int]:
        cursor = session.get(WebhookCursor, source)
        if cursor is None:
            cursor = WebhookCursor(source=source, last_id=start)
            session.add(cursor)
            session.flush()  # two first passes at once: the second fails here, changes nothing
        return cursor, cursor.last_id

    @staticmethod
    def _move(session: Session, source: str, was: int, to: int, state: str | None = None) -> None:
        values: dict[str, Any] = {"last_id": to}
        if state is not None:
            values["state"] = state
        moved = session.execute(
            update(WebhookCursor)
            .where(col(WebhookCursor.source) == source, col(WebhookCursor.last_id) == was)
            .values(**values)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise _CursorMoved(source)

    def _enqueue_chain_events(self) -> tuple[int, bool]:
        """One transaction: the deliveries of the next window of mirrored events, and the
        cursor past them. Returns how many deliveries, and whether events remain."""
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            top = int(session.exec(select(func.max(ChainEvent.id))).one() or 0)
            subscriptions = self._subscriptions(session)
            start = min((s.after_event_id for s in subscriptions), default=top)
            _, last = self._cursor(session, "chain_event", start)
            if top <= last:
                return 0, False
            wanted = [s for s in subscriptions if event_types_of(s) & set(CHAIN_EVENTS.values())]
            if not wanted:
                self._move(session, "chain_event", last, top)
                return 0, False
            upto = min(top, last + WINDOW_IDS)
            events = session.exec(
                select(ChainEvent)
                .where(
                    col(ChainEvent.id) > last,
                    col(ChainEvent.id) <= upto,
                    col(ChainEvent.name).in_(list(CHAIN_EVENTS)),
                )
                .order_by(col(ChainEvent.id))
            ).all()
            recorded = 0
            for event in events:
                assert event.id is not None
                event_type = CHAIN_EVENTS[event.name]
                targets = [
                    s
                    for s in wanted
                    if event_type in event_types_of(s) and event.id > s.after_event_id
                ]
                if not targets:
                    continue
                data = self._chain_data(session, event)
                if data is None:
                    # Not settled here yet: the events from this one on wait for the next pass.
                    self._hold(int(json.loads(event.args_json)["slot"]))
                    self._move(session, "chain_event", last, event.id - 1)
                    return recorded, False
                key = f"chain_event:{event.id}"
                place = f"{event.contract.lower()}:{event.block_number}:{event.log_index}"
                recorded += self._record(session, targets, event_type, key, data, now, place)
            self._move(session, "chain_event", last, upto)
            self._held_slot = None
            return recorded, upto < top

    def _hold(self, slot: int) -> None:
        """Say once per slot that its ``slot_settled`` webhook waits for its outcome."""
        if self._held_slot != slot:
            self._held_slot = slot
            log.warning(
                "webhooks: slot %s is sealed on chain but not settled in this database yet "
                "(a restore's recovery settles it again); its slot_settled delivery and the "
                "events after it wait until it is",
                slot,
            )

    def _chain_data(self, session: Session, event: ChainEvent) -> dict[str, Any] | None:
        """A chain event's webhook data; None for a slot's seal whose outcome this database
        has not recorded as settled: restored from before the slot was settled, it settles
        the slot again in the restore's recovery, and the webhook carries that outcome. (The
        settlement worker records a slot's outcome before it seals the slot on chain, so this
        happens only after a restore.)"""
        args = json.loads(event.args_json)
        place = ChainPlace(event.contract, event.block_number, event.log_index, event.tx_hash)
        household = None
        outcome = None
        if event.name == "ToppedUp":
            household = session.exec(
                select(HouseholdRecord.id).where(HouseholdRecord.account == args["account"])
            ).first()
        elif event.name == "SlotSealed":
            record = session.get(SlotOutcomeRecord, int(args["slot"]))
            if record is None or record.status != "settled":
                return None
            outcome = {key: getattr(record, key) for key in OUTCOME_FIELDS}
        return chain_event_data(event.name, args, place, household=household, outcome=outcome)

    def _enqueue_audits(self) -> int:
        """One transaction: an ``audit_failed`` delivery for each kept audit run that failed
        when the run before it did not, or failed otherwise; the cursor past them."""
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            top = int(session.exec(select(func.max(KeptAudit.id))).one() or 0)
            subscriptions = [
                s for s in self._subscriptions(session) if "audit_failed" in event_types_of(s)
            ]
            start = min((s.after_audit_id for s in subscriptions), default=top)
            cursor, last = self._cursor(session, "kept_audit", start)
            if top <= last:
                return 0
            state = cursor.state
            columns = [getattr(KeptAudit, name) for name in _AUDIT_COLUMNS]
            runs = session.execute(
                sa_select(*columns)
                .where(col(KeptAudit.id) > last)
                .order_by(col(KeptAudit.id))
                .limit(AUDIT_BATCH)
            ).all()
            recorded = 0
            upto = last
            for row in runs:
                run = dict(row._mapping)
                upto = int(run["id"])
                now_state = audit_state(run["ok"], run["problem"], run["findings"])
                if now_state != "ok" and now_state != state:
                    targets = [s for s in subscriptions if upto > s.after_audit_id]
                    key = f"kept_audit:{upto}"
                    recorded += self._record(
                        session, targets, "audit_failed", key, audit_data(run), now
                    )
                state = now_state
            self._move(session, "kept_audit", last, upto, state)
            return recorded

    @staticmethod
    def _subscriptions(session: Session) -> list[WebhookSubscription]:
        return list(
            session.exec(
                select(WebhookSubscription)
                .where(col(WebhookSubscription.active))
                .order_by(col(WebhookSubscription.id))
            )
        )

    @staticmethod
    def _record(
        session: Session,
        targets: Iterable[WebhookSubscription],
        event_type: str,
        key: str,
        data: Mapping[str, Any],
        now: datetime,
        place: str | None = None,
    ) -> int:
        """Record the deliveries of one event; a contract event's ids follow from its
        ``place`` on chain (:func:`chain_delivery_uid`), any other's are random."""
        text = body(event_type, key, data, now)
        count = 0
        for subscription in targets:
            assert subscription.id is not None
            session.add(
                WebhookDelivery(
                    uid=new_uid() if place is None else chain_delivery_uid(place, subscription.id),
                    subscription_id=subscription.id,
                    event_key=key,
                    event_type=event_type,
                    body=text,
                    next_attempt_ms=_ms(now.timestamp()),
                    created_at=now,
                )
            )
            count += 1
        return count

    # ───────────────────────────── Deliver ─────────────────────────────

    def dispatch(self) -> list[Future[None]]:
        """Claim due deliveries for the free threads (one per subscription at a time) and
        start their attempts; the attempts' futures."""
        with self._lock:
            free = self.concurrency - len(self._busy)
            busy = set(self._busy)
        if free <= 0 or self._stop.is_set():
            return []
        now = _ms(self.clock())
        # Per subscription first, then its earliest due delivery: a backlog of one webhook
        # (a receiver down for a day) never hides another webhook's deliveries behind it.
        first_due = func.min(WebhookDelivery.next_attempt_ms)
        chosen: dict[int, int] = {}
        with Session(self.engine) as session:
            waiting = session.exec(
                select(WebhookDelivery.subscription_id, first_due)
                .where(_due(now))
                .group_by(col(WebhookDelivery.subscription_id))
                .order_by(first_due)
            ).all()
            for subscription_id, _ in waiting:
                if subscription_id in busy:
                    continue
                delivery_id = session.exec(
                    select(WebhookDelivery.id)
                    .where(col(WebhookDelivery.subscription_id) == subscription_id, _due(now))
                    .order_by(col(WebhookDelivery.next_attempt_ms), col(WebhookDelivery.id))
                    .limit(1)
                ).first()
                if delivery_id is not None:
                    chosen[subscription_id] = delivery_id
                if len(chosen) == free:
                    break
        futures = []
        for subscription_id, delivery_id in chosen.items():
            claim = self.claim(delivery_id, now)
            if claim is None:
                continue
            with self._lock:
                future = self._pool.submit(self.attempt, claim)
                self._busy[subscription_id] = future
            future.add_done_callback(functools.partial(self._done, subscription_id))
            futures.append(future)
        return futures

    def _done(self, subscription_id: int, future: Future[None]) -> None:
        with self._lock:
            self._busy.pop(subscription_id, None)
        if not future.cancelled() and future.exception() is not None:
            # The outcome could not be recorded (the database down): the lease lapses and
            # the attempt is made again.
            log.error("webhook attempt failed to record: %s", future.exception())
        self._wake.set()

    def claim(self, delivery_id: int, now_ms: int) -> Claim | None:
        """Take a due delivery for one attempt (compare-and-set to ``sending`` with a lease);
        None if it is no longer due or another process took it. A delivery of a deleted
        subscription is cancelled instead."""
        with Session(self.engine) as session, session.begin():
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return None
            subscription = session.get(WebhookSubscription, row.subscription_id)
            same = [
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.status) == row.status,
                col(WebhookDelivery.attempts) == row.attempts,
                _due(now_ms),
            ]
            if subscription is None or not subscription.active:
                session.execute(update(WebhookDelivery).where(*same).values(status="cancelled"))
                return None
            taken = session.execute(
                update(WebhookDelivery)
                .where(*same)
                .values(
                    status="sending",
                    lease_until_ms=now_ms + self.lease_ms,
                    last_attempt_at=datetime.now(UTC),
                )
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return Claim(
                id=delivery_id,
                uid=row.uid,
                subscription_id=row.subscription_id,
                url=subscription.url,
                secret_json=subscription.secret_json,
                event_type=row.event_type,
                body=row.body,
                attempts=row.attempts,
            )

    def attempt(self, claim: Claim) -> None:
        """POST the delivery once, signed now, and record how it went."""
        content = claim.body.encode()
        try:
            secret = secret_from_key(self.vault.account(claim.secret_json).key)
        except Exception as exc:  # a key secret changed under the stored secrets
            self.finish(claim, None, f"the signing secret cannot be decrypted: {exc}")
            return
        timestamp = int(self.clock())
        headers = delivery_headers(
            claim.uid, claim.event_type, timestamp, signature(secret, timestamp, content)
        )
        status: int | None = None
        error: str | None = None
        try:
            # Only the answer's status counts: its body is never read (closing the stream
            # drops it), so a receiver cannot make Voisin download anything.
            with self._http.stream("POST", claim.url, content=content, headers=headers) as answer:
                status = answer.status_code
        except httpx.TimeoutException as exc:
            error = f"no answer within {self.timeout_s:g} s ({type(exc).__name__})"
        except Exception as exc:  # whatever stops an attempt counts as one, toward failed
            error = f"{type(exc).__name__}: {exc}"
        if status is not None and not 200 <= status < 300:
            error = f"the receiver answered HTTP {status}"
        self.finish(claim, status, error)

    def finish(self, claim: Claim, status: int | None, error: str | None) -> str:
        """Record an attempt's outcome (if the claim still holds); the delivery's status."""
        attempts = claim.attempts + 1
        now = self.clock()
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": status,
            "last_error": None if error is None else error[:ERROR_CHARS],
            "lease_until_ms": None,
        }
        if error is None:
            values.update(status="delivered", delivered_at=datetime.now(UTC))
        elif attempts >= self.max_attempts:
            values.update(status="failed")
        else:
            wait = retry_delay_s(attempts, self.backoff_s, self.backoff_max_s, self.rng)
            values.update(status="pending", next_attempt_ms=_ms(now + wait))
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.id) == claim.id,
                    col(WebhookDelivery.status) == "sending",
                    col(WebhookDelivery.attempts) == claim.attempts,
                )
                .values(**values)
            )
        if error is not None:
            log.warning(
                "webhook delivery %s to subscription %s, attempt %d: %s (%s)",
                claim.uid,
                claim.subscription_id,
                attempts,
                error,
                values["status"],
            )
        return str(values["status"])


# ───────────────────────────── The operator's page ─────────────────────────────


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A failed delivery as the operator's page lists it (the receiver by its host only)."""

    id: int
    webhook: int
    host: str
    event_type: str
    attempts: int
    last_error: str | None
    #: Unix seconds of its last attempt (None: never attempted).
    last_attempt_s: int | None


def failed_view(engine: Engine, limit: int = 10) -> dict[str, Any]:
    """What the operator's page shows of the webhooks: how many webhooks there are, how many
    deliveries failed after every attempt, and the newest ``limit`` of those."""
    with Session(engine) as session:
        active = session.exec(select(func.count()).where(col(WebhookSubscription.active))).one()
        failed = session.exec(
            select(func.count()).where(col(WebhookDelivery.status) == "failed")
        ).one()
        rows = session.exec(
            select(WebhookDelivery, WebhookSubscription.url)
            .join(
                WebhookSubscription,
                col(WebhookSubscription.id) == col(WebhookDelivery.subscription_id),
            )
            .where(col(WebhookDelivery.status) == "failed")
            .order_by(col(WebhookDelivery.id).desc())
            .limit(limit)
        ).all()
    shown = []
    for delivery, url in rows:
        attempted = delivery.last_attempt_at
        if attempted is not None and attempted.tzinfo is None:
            attempted = attempted.replace(tzinfo=UTC)  # SQLite's UTC times have no zone
        shown.append(
            FailedDelivery(
                id=delivery.id or 0,
                webhook=delivery.subscription_id,
                host=urlsplit(url).hostname or url,
                event_type=delivery.event_type,
                attempts=delivery.attempts,
                last_error=delivery.last_error,
                last_attempt_s=None if attempted is None else int(attempted.timestamp()),
            )
        )
    return {"active": int(active), "failed": int(failed), "rows": shown}
