"""The API's own tables, next to the ledger's mirror (:mod:`ledger.mirror.models`) in one database.

- ``api_household``: a household registered through the API: its bearer token (hashed), its
  account key (encrypted, :mod:`api.custody`), its meter and the meter's intake state (the last
  accepted reading's slot and registers, which the next reading must follow).
- ``intake_reading``: every accepted signed reading, stored before the API answers 202, then
  committed on chain by the outbox (``queued`` -> ``committed``, or ``rejected`` with a reason
  if the chain refuses it).
- ``api_order``: every offer or bid accepted by the API, posted on chain by the outbox
  (``queued`` -> ``open`` -> ``cancelled``), with its on-chain id once posted.
- ``api_intent``: every registration, top-up, key or meter rotation, take, order post and token
  rotation the API was asked for, recorded before anything irreversible (``pending`` ->
  ``sending`` -> ``done`` or ``failed``), with its ``Idempotency-Key`` and its answer
  (:mod:`api.intents`).
- ``api_order_post``: an order's post on chain while it is in flight: the transaction's sender,
  nonce, head block before it and call data, committed before it is sent and deleted with the
  post's outcome, so that a post a crash interrupted is found on chain, not posted again
  (:mod:`api.outbox`).
- ``kept_feeder_slot``, ``kept_audit`` and ``kept_state``: what the operator's page shows of
  the feeder's power flows (one row per settled slot) and of the audit (its latest runs), kept
  by :mod:`api.keeper` in the background after settlement so that the page only reads them.
- ``api_key`` and ``api_consent``: third-party apps' keys (hashed) with their scopes, origins
  and limits, and households' consents to a key reading their data, grants and withdrawals
  kept (:mod:`api.apikeys`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.mirror.models import IdInteger


def _now() -> datetime:
    return datetime.now(UTC)


class ApiHousehold(SQLModel, table=True):
    __tablename__ = "api_household"

    id: int = Field(primary_key=True, sa_type=IdInteger)  # the household's id on chain
    name: str | None = None
    account: str = Field(index=True)
    meter: str = Field(unique=True)
    prosumer: bool
    token_hash: str = Field(unique=True)
    key_json: str
    meter_last_slot: int = Field(default=0, sa_type=BigInteger)
    meter_import_Wh: int = Field(default=0, sa_type=BigInteger)
    meter_export_Wh: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=_now)


class IntakeReading(SQLModel, table=True):
    __tablename__ = "intake_reading"
    __table_args__ = (UniqueConstraint("meter", "slot"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    household: int = Field(index=True, sa_type=IdInteger)
    meter: str = Field(index=True)
    slot: int = Field(sa_type=BigInteger, index=True)
    import_Wh: int = Field(sa_type=BigInteger)
    export_Wh: int = Field(sa_type=BigInteger)
    v: int
    r: str
    s: str
    flags: str = ""
    status: str = Field(default="queued", index=True)
    reason: str | None = None
    tx_hash: str | None = None
    received_at: datetime = Field(default_factory=_now)


class ApiOrder(SQLModel, table=True):
    __tablename__ = "api_order"

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    side: str = Field(index=True)  # "offer" or "bid"
    household: int = Field(index=True, sa_type=IdInteger)
    price_limit_ueur_per_kWh: int = Field(sa_type=BigInteger)
    max_Wh_per_slot: int = Field(default=0, sa_type=BigInteger)
    first_slot: int = Field(sa_type=BigInteger)
    last_slot: int = Field(sa_type=BigInteger)
    status: str = Field(default="queued", index=True)
    cancel_requested: bool = False
    chain_id: int | None = Field(default=None, sa_type=IdInteger)
    reason: str | None = None
    source: str = "household"  # "household" or "agent" (a default standing order)
    created_at: datetime = Field(default_factory=_now)


class ApiIntent(SQLModel, table=True):
    """An action recorded before it is done (:mod:`api.intents`): what will be done, where its
    transaction went (sender, nonce, the head before it and its call data), and the answer."""

    __tablename__ = "api_intent"
    __table_args__ = (UniqueConstraint("scope", "idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    #: register, topup, rotate_key, rotate_meter, take, offer, bid, token.
    kind: str = Field(index=True)
    #: pending -> sending -> done | failed.
    state: str = Field(default="pending", index=True)
    #: Whose keys: "operator" or "household:<id>" (api.idempotency.scope_of).
    scope: str
    idempotency_key: str | None = None
    #: SHA-256 of the operation and its validated body (api.idempotency.fingerprint).
    fingerprint: str
    #: The household acted on (None for a registration until it is done).
    household: int | None = Field(default=None, index=True, sa_type=IdInteger)
    #: The unique thing the action claims while unfinished: a meter address.
    subject: str | None = Field(default=None, index=True)
    #: What will be done, as JSON (the account keystore of a new key stays encrypted).
    payload: str = Field(default="{}", sa_type=Text)
    #: The last transaction sent for it: sender, its nonce, the head block before it.
    sender: str | None = None
    nonce: int | None = Field(default=None, sa_type=BigInteger)
    block_before: int | None = Field(default=None, sa_type=BigInteger)
    calldata: str | None = Field(default=None, sa_type=Text)
    tx_hash: str | None = None
    #: The answer (status and JSON body; a bearer token in it is kept as null).
    status_code: int | None = None
    response: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=_now)
    #: Unix seconds of the last change: what retention and the background pass compare.
    updated_s: int = Field(default=0, sa_type=BigInteger, index=True)


class DashboardForm(SQLModel, table=True):
    """A dashboard form's one-time token, once a post has used it (:mod:`api.web.once`).

    The row is the use: it is inserted, and committed, before the form's action starts, so of
    two posts of one token (a reload, a double click) the second finds it and acts no more.
    It then keeps what came of the action, which a later post of the same token shows.
    """

    __tablename__ = "dashboard_form"

    #: SHA-256 (hex) of the one-time token: the row proves the use, it never holds the token.
    token_hash: str = Field(primary_key=True)
    #: Whose form: "operator" or "household:<id>".
    scope: str
    #: Which form: topup, register, meter, offer, bid, take or settle.
    form: str
    #: "sent" (the action under way, or interrupted), then "done" or "refused".
    state: str = "sent"
    #: What came of it as JSON, ``{"key", "values"}``: the message shown again (never a token).
    outcome: str | None = None
    #: Unix seconds of the first post: what the retention compares.
    used_s: int = Field(sa_type=BigInteger, index=True)


class ApiOrderPost(SQLModel, table=True):
    """An order's post on chain in flight (:mod:`api.outbox`): the transaction about to be
    sent, or sent, as :func:`api.sent.about_to_send` records it.

    Committed before the post is sent, and deleted in the database transaction that records
    its outcome (the order ``open`` with its chain id, or ``rejected``). A row found by a later
    pass means that pass's predecessor stopped in between (a crash, the node gone): the post
    is looked for on chain (:func:`api.sent.find_sent`) and adopted if it was mined, before
    the order may be posted again. A table of its own, not columns of ``api_order``: the
    schema is created with ``create_all``, which adds new tables to an existing database but
    never new columns.
    """

    __tablename__ = "api_order_post"

    #: The order posted (``api_order.id``): one post in flight per order.
    order_id: int = Field(
        primary_key=True, sa_type=IdInteger, sa_column_kwargs={"autoincrement": False}
    )
    sender: str
    nonce: int = Field(sa_type=BigInteger)
    block_before: int = Field(sa_type=BigInteger)
    calldata: str = Field(sa_type=Text)
    #: Unix seconds when it was recorded.
    recorded_s: int = Field(sa_type=BigInteger)


class KeptFeederSlot(SQLModel, table=True):
    """One settled slot's feeder power flow (:func:`ledger.audit.feeder.run_feeder` over the
    slot's committed readings), computed once after settlement by :mod:`api.keeper`, again if
    a reading of the slot is mirrored later. Voltages in pu, loadings in %; ``None`` where the
    power flow did not converge. ``findings_json`` holds the slot's feeder findings (JSON list
    of :meth:`ledger.audit.findings.Finding.as_dict`)."""

    __tablename__ = "kept_feeder_slot"

    slot: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    network: str
    households: int
    readings: int
    vm_min_pu: float | None = None
    vm_max_pu: float | None = None
    max_line_loading_percent: float | None = None
    trafo_loading_percent: float | None = None
    findings: int = 0
    findings_json: str = Field(default="[]", sa_type=Text)
    #: Unix seconds when it was computed.
    computed_s: int = Field(sa_type=BigInteger)


class KeptAudit(SQLModel, table=True):
    """One background run of the operator's audit (:mod:`api.keeper`): the same checks as
    ``GET /audit/report`` without the feeder, over every slot, with the block and slot it
    covers. A failed run keeps ``problem`` and no report. The page reads the small columns;
    ``report_json`` (the whole report, last so that reading the others skips it) is for the
    downloads."""

    __tablename__ = "kept_audit"

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    #: Unix seconds when the run started (what it saw) and finished.
    started_s: int = Field(sa_type=BigInteger, index=True)
    finished_s: int = Field(sa_type=BigInteger)
    head_block: int | None = Field(default=None, sa_type=BigInteger)
    mirror_block: int | None = Field(default=None, sa_type=BigInteger)
    #: The last settled slot the audit covered (None: no slot yet).
    last_slot: int | None = Field(default=None, sa_type=BigInteger)
    ok: bool | None = None
    findings: int = 0
    problem: str | None = None
    #: ``summary`` and ``checks`` of the report (JSON).
    summary_json: str = Field(default="{}", sa_type=Text)
    #: The first findings, for the page (JSON list); every finding is in ``report_json``.
    findings_json: str = Field(default="[]", sa_type=Text)
    report_json: str | None = Field(default=None, sa_type=Text)


class KeptState(SQLModel, table=True):
    """Small facts :mod:`api.keeper` carries between passes (e.g. the last reading it saw)."""

    __tablename__ = "kept_state"

    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)


# ─── The public API: keys, scopes, consents (api/migrations/versions/r0003_api_keys.py) ───


class ApiKey(SQLModel, table=True):
    """A third-party app's key (:mod:`api.apikeys`), issued and revoked by the operator.

    Only the key's SHA-256 is stored, as for household tokens; ``prefix`` (its first
    characters) lets the operator and households tell keys apart without the secret."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    name: str
    #: ``vak_`` and the next 6 characters of the key: shown in listings, never enough to use.
    prefix: str
    #: SHA-256 (hex) of the whole key.
    secret_hash: str = Field(unique=True)
    #: Space-separated scopes: ``public:read``, ``household:read``.
    scopes: str
    #: Space-separated browser origins (``https://app.example``) answered with CORS headers.
    origins: str = Field(default="", sa_type=Text)
    #: The key's own limit (requests per second after ``burst``); None: the server's default.
    rate_per_s: int | None = None
    burst: int | None = None
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    #: When the operator revoked it (None: live). A revoked key is kept for the consents'
    #: history, and its hash so that it can never be issued again.
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ApiConsent(SQLModel, table=True):
    """A household's consent that a key reads its data (``household:read``): one row per
    grant, closed by its withdrawal (``withdrawn_at``), so that the history stays."""

    __tablename__ = "api_consent"

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    key_id: int = Field(index=True, sa_type=IdInteger)
    household: int = Field(index=True, sa_type=IdInteger)
    granted_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    #: None while the consent holds.
    withdrawn_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


# ─── Webhooks (api/migrations/versions/r0004_webhooks.py) ───


class WebhookSubscription(SQLModel, table=True):
    """An operator's system (billing, CRM) that receives Voisin's events by HTTP POST
    (:mod:`api.webhooks`). Deleting one only marks it inactive: its deliveries stay listed."""

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    url: str = Field(sa_type=Text)
    #: The event types it receives, comma-separated (:data:`api.webhooks.EVENT_TYPES`).
    event_types: str
    description: str | None = None
    #: The signing secret as an encrypted keystore under the key secret (:mod:`api.custody`):
    #: signing needs it back, so it is encrypted, not hashed.
    secret_json: str = Field(sa_type=Text)
    #: The newest mirrored chain event and kept audit run when it was created: it receives
    #: only what comes after them.
    after_event_id: int = Field(default=0, sa_type=BigInteger)
    after_audit_id: int = Field(default=0, sa_type=BigInteger)
    active: bool = Field(default=True, index=True)
    created_at: datetime = Field(default_factory=_now)
    deleted_at: datetime | None = None


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: its body (fixed when it is recorded, so every attempt
    sends the same bytes), and where its attempts stand (``pending`` -> ``sending`` ->
    ``delivered``, or back to ``pending`` after a failed attempt, ``failed`` after the last,
    ``cancelled`` when its subscription is deleted). Times of the schedule are unix
    milliseconds: retries a test runs a few milliseconds apart are ordered too."""

    __tablename__ = "webhook_delivery"
    # An event is recorded once per subscription, whatever crash comes between.
    __table_args__ = (UniqueConstraint("subscription_id", "event_key"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    #: The id the receiver sees (``Voisin-Delivery``), the same on every attempt.
    uid: str = Field(unique=True)
    subscription_id: int = Field(index=True, sa_type=IdInteger)
    #: What the event came from: ``chain_event:<id>`` or ``kept_audit:<id>``.
    event_key: str
    event_type: str = Field(index=True)
    body: str = Field(sa_type=Text)
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    #: When the next attempt is due (unix ms).
    next_attempt_ms: int = Field(default=0, sa_type=BigInteger)
    #: While ``sending``: until when the attempt is the claimer's (unix ms); past it, an
    #: attempt a crash interrupted is made again.
    lease_until_ms: int | None = Field(default=None, sa_type=BigInteger)
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=_now)
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class WebhookCursor(SQLModel, table=True):
    """How far the webhooks' worker read a source of events (``chain_event``: the mirror,
    ``kept_audit``: the keeper's audit runs), moved in the transaction that records the
    deliveries of what it read."""

    __tablename__ = "webhook_cursor"

    source: str = Field(primary_key=True)
    last_id: int = Field(default=0, sa_type=BigInteger)
    #: ``kept_audit``: the outcome of the last run read ("ok", or how it failed), so that a
    #: failure is announced when it starts or changes, not at every run that repeats it.
    state: str = ""


# ─── Privacy: erasure, retention (api/migrations/versions/r0005_privacy.py) ───


class HouseholdErasure(SQLModel, table=True):
    """A household's erasure (:mod:`api.privacy`): when it was asked and done, and by whom.

    The row outlives the personal data it records the removal of: the household's name, its
    bearer token and its account key are gone from ``api_household``, which keeps only the
    pseudonymous id, account and meter that the chain and the audit's evidence name.
    """

    __tablename__ = "household_erasure"

    #: The household erased (``api_household.id``): erased once.
    household: int = Field(
        primary_key=True, sa_type=IdInteger, sa_column_kwargs={"autoincrement": False}
    )
    #: "household" (its own token) or "operator".
    requested_by: str
    #: When the erasure was done (UTC).
    erased_at: datetime = Field(default_factory=_now)
    #: The ``deactivateHousehold`` transaction (None: not mirrored when the erasure was done).
    deactivated_tx: str | None = None
    #: What was left on the account (micro-euro), moved to the operator's account with the
    #: erasure: the operator owes it to the household, and pays it back outside Voisin.
    refund_ueur: int = Field(default=0, sa_type=BigInteger)


class SignedReadingPurge(SQLModel, table=True):
    """One purge of raw signed readings past their retention (:func:`api.privacy.purge`):
    readings of sealed slots before ``before_slot`` were deleted from the evidence store
    (``signed_reading``) and the intake (``intake_reading``)."""

    __tablename__ = "signed_reading_purge"

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    purged_at: datetime = Field(default_factory=_now)
    retention_days: int
    #: Readings of sealed slots before this one are gone; the audit's window starts here.
    before_slot: int = Field(sa_type=BigInteger)
    #: Rows deleted from ``signed_reading`` and from ``intake_reading``.
    signed_readings: int = Field(default=0, sa_type=BigInteger)
    intake_readings: int = Field(default=0, sa_type=BigInteger)
