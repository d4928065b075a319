"""``/webhooks`` (operator): the operator's systems subscribed to Voisin's events, and what
was delivered to them (docs/webhooks.md).

A subscription's secret is made by the key vault (32 random bytes in an encrypted keystore,
:mod:`api.custody`) and shown once, in the answer that creates it. The deliveries themselves
are the worker's (:mod:`api.webhooks`): these routes only read and write the tables, so a
slow receiver never holds up a request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from api.auth import Operator
from api.deps import Svc, problems
from api.errors import ApiError, not_found
from api.models import KeptAudit, WebhookDelivery, WebhookSubscription
from api.schemas import INT64_MAX, Limit, Offset, Page, PlainText, Strict, plain_text
from api.webhooks import (
    EVENT_TYPES,
    DeliveryStatus,
    EventType,
    event_types_of,
    secret_from_key,
)
from ledger.mirror.models import ChainEvent

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

#: Active subscriptions at most: each is a receiver every event may be POSTed to.
MAX_WEBHOOKS = 100
MAX_URL_CHARS = 2_000

WebhookPath = Annotated[int, Path(ge=1, le=INT64_MAX, description="The webhook's id")]
DeliveryPath = Annotated[int, Path(ge=1, le=INT64_MAX, description="The delivery's id")]


def check_url(value: str) -> str:
    """An http(s) URL Voisin can POST to: a host, no credentials, no fragment."""
    plain_text(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL must name a host, e.g. https://billing.example/voisin")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "the URL must not hold credentials (they would be stored and shown in clear); "
            "the receiver authenticates Voisin by the signature"
        )
    if port == 0:
        raise ValueError("the port must be between 1 and 65535")
    if parts.fragment or value.endswith("#"):
        raise ValueError("the URL must not have a fragment (#...): it is never sent")
    try:
        httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    return value


Url = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_CHARS, pattern=r"^https?://\S+$"),
    AfterValidator(check_url),
]


class WebhookIn(Strict):
    url: Url = Field(description="Where the events are POSTed: an http:// or https:// URL")
    event_types: list[EventType] = Field(
        min_length=1,
        max_length=2 * len(EVENT_TYPES),
        description="The event types to receive (repeats count once)",
    )
    description: Annotated[PlainText, StringConstraints(max_length=200)] | None = None

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "url": "https://billing.example/voisin/webhooks",
                    "event_types": ["trade_settled", "topup"],
                    "description": "billing",
                }
            ]
        },
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str | None
    active: bool = Field(description="False once deleted")
    created_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "url": "https://billing.example/voisin/webhooks",
                    "event_types": ["topup", "trade_settled"],
                    "description": "billing",
                    "active": True,
                    "created_at": "2026-12-06T10:14:12.213177Z",
                }
            ]
        }
    )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description=(
            "The signing secret (whsec_...), shown only here: every delivery's "
            "Voisin-Signature is an HMAC-SHA256 under it"
        )
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "url": "https://billing.example/voisin/webhooks",
                    "event_types": ["topup", "trade_settled"],
                    "description": "billing",
                    "active": True,
                    "created_at": "2026-12-06T10:14:12.213177Z",
                    "secret": "whsec_" + "137695d9499284aff2eec67c8b9a0c12" * 2,
                }
            ]
        }
    )


class DeliveryOut(BaseModel):
    id: int = Field(description="The delivery's id in these routes")
    delivery_id: str = Field(description="The Voisin-Delivery header: the same at every attempt")
    webhook: int
    event_type: str
    event_id: str
    status: str = Field(description="pending, sending, delivered, failed or cancelled")
    attempts: int
    next_attempt_at: datetime | None = Field(description="While pending: when it is due")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    body: dict[str, Any] = Field(description="The JSON body every attempt sends")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "delivery_id": "dlv_6d9bfb6fb4fee53de0287156bd8e2042",
                    "webhook": 1,
                    "event_type": "topup",
                    "event_id": "chain_event:9",
                    "status": "failed",
                    "attempts": 12,
                    "next_attempt_at": None,
                    "last_status_code": 503,
                    "last_error": "the receiver answered HTTP 503",
                    "created_at": "2026-12-06T10:14:12.213177Z",
                    "last_attempt_at": "2026-12-06T12:39:40.112000Z",
                    "delivered_at": None,
                    "body": {
                        "type": "topup",
                        "event_id": "chain_event:9",
                        "created_at": "2026-12-06T10:14:12.213177Z",
                        "data": {
                            "household": 2,
                            "account": "0x21c5cbDF87A387736976969582cE38D77A2722F4",
                            "amount_ueur": 3_000_000,
                            "chain": {
                                "contract": "0xa9eBeBF400377b71C9A720940D7B9241c8c819F5",
                                "block_number": 6,
                                "log_index": 1,
                                "tx_hash": "0xf6311e377450cefda309b7d7affd19c5"
                                "26d1b3cab3e09bb2dbfe6c593e7d877a",
                            },
                        },
                    },
                }
            ]
        }
    )


def _utc(value: datetime | None) -> datetime | None:
    # SQLite gives its UTC times back without a zone.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _webhook(row: WebhookSubscription) -> WebhookOut:
    assert row.id is not None
    return WebhookOut(
        id=row.id,
        url=row.url,
        event_types=sorted(event_types_of(row), key=EVENT_TYPES.index),
        description=row.description,
        active=row.active,
        created_at=_utc(row.created_at) or row.created_at,
    )


def _delivery(row: WebhookDelivery) -> DeliveryOut:
    assert row.id is not None
    due = None
    if row.status == "pending":
        due = datetime.fromtimestamp(row.next_attempt_ms / 1000, UTC)
    return DeliveryOut(
        id=row.id,
        delivery_id=row.uid,
        webhook=row.subscription_id,
        event_type=row.event_type,
        event_id=row.event_key,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=due,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=_utc(row.created_at) or row.created_at,
        last_attempt_at=_utc(row.last_attempt_at),
        delivered_at=_utc(row.delivered_at),
        body=json.loads(row.body),
    )


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=problems(401, 403, 409, 422),
    summary="Subscribe a system to events (operator)",
)
def create_webhook(body: WebhookIn, caller: Operator, services: Svc) -> WebhookCreated:
    """Events mirrored from now on, of the given types, are POSTed to ``url``, signed with the
    secret returned here (only here). Event types: ``household_registered``,
    ``household_deactivated``, ``topup``, ``trade_settled``, ``slot_settled``,
    ``audit_failed``. At most 100 webhooks at once (409 ``too_many_webhooks``)."""
    types = sorted(set(body.event_types), key=EVENT_TYPES.index)
    account, keystore = services.vault.new_account()
    with Session(services.engine) as session, session.begin():
        active = session.exec(select(func.count()).where(col(WebhookSubscription.active))).one()
        if active >= MAX_WEBHOOKS:
            raise ApiError(
                409,
                "too_many_webhooks",
                f"there are {active} webhooks already, the most allowed: delete one first",
            )
        row = WebhookSubscription(
            url=body.url,
            event_types=",".join(types),
            description=body.description,
            secret_json=keystore,
            after_event_id=int(session.exec(select(func.max(ChainEvent.id))).one() or 0),
            after_audit_id=int(session.exec(select(func.max(KeptAudit.id))).one() or 0),
        )
        session.add(row)
        session.flush()
        out = _webhook(row)
    return WebhookCreated(**out.model_dump(), secret=secret_from_key(account.key))


@router.get(
    "",
    response_model=Page[WebhookOut],
    responses=problems(401, 403, 422),
    summary="List the webhooks (operator)",
)
def list_webhooks(
    caller: Operator, services: Svc, limit: Limit = 100, offset: Offset = 0
) -> Page[WebhookOut]:
    """The webhooks not deleted, oldest first (their secrets are never shown again)."""
    query = select(WebhookSubscription).where(col(WebhookSubscription.active))
    with Session(services.engine) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(WebhookSubscription.id)).offset(offset).limit(limit)
        ).all()
        items = [_webhook(row) for row in rows]
    return Page[WebhookOut](items=items, total=int(total), limit=limit, offset=offset)


@router.get(
    "/deliveries",
    response_model=Page[DeliveryOut],
    responses=problems(401, 403, 422),
    summary="List deliveries, e.g. the failed ones (operator)",
)
def list_deliveries(
    caller: Operator,
    services: Svc,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    webhook: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[DeliveryOut]:
    """Newest first. ``?status=failed`` lists what ran out of attempts: retry one with
    ``POST /webhooks/deliveries/{id}/retry`` once its receiver is back."""
    query = select(WebhookDelivery)
    if status is not None:
        query = query.where(col(WebhookDelivery.status) == status)
    if webhook is not None:
        query = query.where(col(WebhookDelivery.subscription_id) == webhook)
    with Session(services.engine) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(WebhookDelivery.id).desc()).offset(offset).limit(limit)
        ).all()
        items = [_delivery(row) for row in rows]
    return Page[DeliveryOut](items=items, total=int(total), limit=limit, offset=offset)


@router.post(
    "/deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    responses=problems(401, 403, 404, 409, 422),
    summary="Retry a failed delivery (operator)",
)
def retry_delivery(delivery_id: DeliveryPath, caller: Operator, services: Svc) -> DeliveryOut:
    """A failed delivery is due again at once, for a new round of attempts (same delivery id
    and body, signed anew). 409 ``delivery_not_failed`` for any other status, and
    ``webhook_deleted`` when its webhook was deleted."""
    with Session(services.engine) as session, session.begin():
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            raise not_found("unknown_delivery", f"there is no delivery {delivery_id}")
        webhook = session.get(WebhookSubscription, row.subscription_id)
        if webhook is None or not webhook.active:
            raise ApiError(
                409,
                "webhook_deleted",
                f"delivery {delivery_id}'s webhook {row.subscription_id} is deleted",
            )
        moved = session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.status) == "failed")
            .values(status="pending", attempts=0, next_attempt_ms=0, lease_until_ms=None)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise ApiError(
                409,
                "delivery_not_failed",
                f"delivery {delivery_id} is {row.status}: only a failed delivery is retried",
            )
        session.refresh(row)
        out = _delivery(row)
    services.webhooks.wake()
    return out


@router.get(
    # Digits only: ``/webhooks/deliveries`` is not a webhook's id.
    "/{webhook_id:int}",
    response_model=WebhookOut,
    responses=problems(401, 403, 404, 422),
    summary="One webhook (operator)",
)
def get_webhook(webhook_id: WebhookPath, caller: Operator, services: Svc) -> WebhookOut:
    with Session(services.engine) as session:
        row = session.get(WebhookSubscription, webhook_id)
        if row is None:
            raise not_found("unknown_webhook", f"there is no webhook {webhook_id}")
        return _webhook(row)


@router.delete(
    # Digits only: ``/webhooks/deliveries`` is not a webhook's id.
    "/{webhook_id:int}",
    response_model=WebhookOut,
    responses=problems(401, 403, 404, 409, 422),
    summary="Delete a webhook (operator)",
)
def delete_webhook(webhook_id: WebhookPath, caller: Operator, services: Svc) -> WebhookOut:
    """Nothing more is sent to it: its pending and failed deliveries are cancelled (an
    attempt under way ends). It stays listed in its deliveries, inactive. 409
    ``webhook_deleted`` if it was deleted already."""
    with Session(services.engine) as session, session.begin():
        row = session.get(WebhookSubscription, webhook_id)
        if row is None:
            raise not_found("unknown_webhook", f"there is no webhook {webhook_id}")
        if not row.active:
            raise ApiError(409, "webhook_deleted", f"webhook {webhook_id} is deleted already")
        row.active = False
        row.deleted_at = datetime.now(UTC)
        session.add(row)
        session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.subscription_id) == webhook_id,
                col(WebhookDelivery.status).in_(["pending", "failed"]),
            )
            .values(status="cancelled", lease_until_ms=None)
        )
        session.flush()
        return _webhook(row)
