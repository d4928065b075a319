"""The live feed over Server-Sent Events: ``GET /feed`` (anyone) and
``GET /households/{household}/feed`` (that household's token, or the operator's).

Both resume after the id given in ``Last-Event-ID`` (or, for a first connection, in
``?after=``; the header wins, as a browser's EventSource sends it on every reconnection).
What the streams carry, their ids and their limits: :mod:`api.feed` and docs/feed.md.

The routes stay out of the OpenAPI schema: a stream never ends, which a schema-driven client
cannot call; docs/feed.md documents them instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sqlmodel import Session
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from api.auth import Caller, principal_of_token
from api.deps import Svc
from api.errors import ApiError, forbidden, not_found
from api.feed import (
    Book,
    FeedError,
    FeedFull,
    FeedHub,
    FeedLimits,
    FeedStore,
    Position,
    Subscriber,
    parse_event_id,
)
from api.recovery import refuse_while_restoring
from api.schemas import HouseholdPath
from api.services import Services
from ledger.mirror.models import HouseholdRecord

log = logging.getLogger("voisin.feed")
router = APIRouter(tags=["feed"])

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event id (<block>-<log index>-<part>, or 0: from the start)",
    ),
]
After = Annotated[
    str | None,
    Query(max_length=64, description="As Last-Event-ID, for a first connection (the header wins)"),
]


def _hub(request: Request, services: Services) -> FeedHub:
    """The process's one hub, made on first use (it polls only while someone listens)."""
    hub: FeedHub | None = getattr(request.app.state, "feed_hub", None)
    if hub is None or hub.store.engine is not services.engine:
        settings = services.settings
        limits = FeedLimits(
            max_subscribers=settings.feed_max_subscribers,
            max_lag_events=settings.feed_max_lag_events,
            poll_s=settings.feed_poll_s,
            # A stream takes a few events at a time, so that its lag counts what it has not sent.
            take=max(1, min(100, settings.feed_max_lag_events // 4)),
        )
        store = FeedStore(services.engine, services.client.address, settings.timezone)
        hub = FeedHub(
            store,
            limits,
            still_valid=lambda token: _still_valid(services, token),
            tokens_forgotten=lambda: services.token_forgets,
        )
        request.app.state.feed_hub = hub
    return hub


def _still_valid(services: Services, token: str) -> bool:
    try:
        principal_of_token(services, token)
    except ApiError:
        return False
    return True


async def _resume_point(
    hub: FeedHub, last_event_id: str | None, after: str | None
) -> Position | None:
    given = last_event_id if last_event_id is not None else after
    if given is None or not given.strip():
        return None
    try:
        position = parse_event_id(given)
    except FeedError as exc:
        raise ApiError(400, "invalid_last_event_id", str(exc)) from exc
    if not await run_in_threadpool(hub.store.exists, position):
        raise ApiError(
            409,
            "unknown_last_event_id",
            f"Last-Event-ID {given.strip()!r} names no event of this ledger (another "
            "deployment's, or a database restored to an earlier point): reconnect without it "
            "to follow from now, or with 0 to replay from the start",
        )
    return position


async def _open(
    request: Request,
    services: Services,
    household: int | None,
    after: Position | None,
    token: str | None = None,
) -> Response:
    await run_in_threadpool(refuse_while_restoring, services.engine, "the live feed")
    hub = _hub(request, services)
    try:
        subscriber, upto, book = await hub.subscribe(household, after, token)
    except FeedFull:
        raise ApiError(
            503,
            "feed_full",
            f"this server already serves {hub.limits.max_subscribers} feed streams "
            "(VOISIN_FEED_MAX_SUBSCRIBERS); retry in a few seconds, with your Last-Event-ID",
            headers={"Retry-After": "5"},
        ) from None
    settings = services.settings
    return FeedResponse(
        hub,
        subscriber,
        stream(hub, subscriber, after, upto, book),
        ping=settings.feed_ping_s,
        send_timeout=settings.feed_send_timeout_s,
    )


class FeedResponse(EventSourceResponse):
    """An SSE response that the hub can end (a subscriber too far behind), and that leaves
    the hub however it ends (even if its stream was never iterated)."""

    def __init__(self, hub: FeedHub, subscriber: Subscriber, content: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.hub = hub
        self.subscriber = subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = complete = False

        async def watched(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        cancel = anyio.CancelScope()
        try:
            with cancel:
                self.subscriber.cancel = cancel
                if self.subscriber.closed:
                    cancel.cancel()
                await super().__call__(scope, receive, watched)
        except SendTimeoutError:
            log.info("feed subscriber dropped: a send stalled beyond the timeout")
        finally:
            self.hub.leave(self.subscriber)
        if cancel.cancelled_caught and started and not complete:
            # Ended by the hub: end the body too, if the client still takes bytes.
            with anyio.move_on_after(1), contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def stream(
    hub: FeedHub, subscriber: Subscriber, after: Position | None, upto: Position, book: Book
) -> AsyncIterator[bytes]:
    """A subscriber's stream: its replay from the database, then the live ring."""
    # Reconnect after a second, not EventSource's default of three.
    yield ServerSentEvent(comment="voisin feed", retry=1000).encode()
    if after is not None:
        async for event in hub.replay(subscriber, after, upto, book):
            yield event.encoded
    while events := await hub.next_events(subscriber):
        for event in events:
            yield event.encoded
    # Closed by the hub: the client reconnects with its Last-Event-ID.


@router.get("/feed", include_in_schema=False)
async def public_feed(
    request: Request, services: Svc, last_event_id: LastEventId = None, after: After = None
) -> Response:
    """The neighbourhood's public stream: ``slot_settled`` and ``tariffs_changed``."""
    after_position = await _resume_point(_hub(request, services), last_event_id, after)
    return await _open(request, services, None, after_position)


def _registered(services: Services, household: int) -> bool:
    with Session(services.engine) as session:
        return session.get(HouseholdRecord, household) is not None


@router.get("/households/{household}/feed", include_in_schema=False)
async def household_feed(
    request: Request,
    household: HouseholdPath,
    caller: Caller,
    services: Svc,
    last_event_id: LastEventId = None,
    after: After = None,
) -> Response:
    """One household's stream: its ``trade``, ``balance_changed`` and ``order_changed``."""
    if not caller.may_see(household):
        raise forbidden(f"this token does not open household {household}'s feed; use its own")
    if not await run_in_threadpool(_registered, services, household):
        raise not_found("unknown_household", f"household {household} is not registered")
    after_position = await _resume_point(_hub(request, services), last_event_id, after)
    # A household's stream is checked again while it is open: rotating the token closes it.
    token = None
    if caller.role == "household":
        token = request.headers.get("authorization", "").partition(" ")[2].strip() or None
    return await _open(request, services, household, after_position, token)
