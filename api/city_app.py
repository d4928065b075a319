"""A city's API: every market's API under ``/markets/<name>``, and the city's own routes.

``create_city_app(settings)`` (``voisin serve`` with ``VOISIN_MARKETS``) builds one market app
per name (:func:`api.app.create_app`, with the settings :mod:`api.city` derives) and mounts
it at ``/markets/<name>``: every route and page of a market answers there, unchanged, and a
market's tokens, orders and readings are its own. The city's lifespan opens the one chain
(every market deploys its contract on it), then starts the markets one after the other; they
send from the city's operator account, one at a time (the city's chain-writes lock).

The city's own routes (docs/city.md):

- ``GET /health``: the markets, their paths and contracts (no token);
- ``GET /v1/city``: each market's figures side by side over a span of slots, and the city's
  totals (:mod:`api.city_summary`), for the city's operator token;
- ``GET /v1/city/audit``: every market's audit, run now, and whether all are clean;
- ``/city``: the city page, the same figures for a person, after signing in with the city's
  operator token.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Receive, Scope, Send

from api import docs_ui, errors
from api.app import create_app
from api.body_guard import BodyGuard
from api.chain_gate import WRITES_LOCK
from api.city import (
    CityError,
    create_schemas,
    market_meters,
    market_settings,
    meters_in_several_markets,
)
from api.city_summary import DEFAULT_SPAN_SLOTS, MAX_SPAN_SLOTS, city_totals, market_figures
from api.custody import given_or_kept_secret
from api.errors import ApiError, unauthorized
from api.feeder_process import FeederWorker
from api.models import ApiHousehold
from api.routes import dashboard
from api.schemas import UINT32
from api.services import CityPart, Services, slot_now
from api.settings import Settings
from api.web.operator_views import decimal
from api.web.render import lang_of, page
from api.web.session import sent_from_here, signed_in_to
from ledger import localtime
from ledger.chain.backends import Chain, open_chain

CITY_COOKIE = "voisin_city"
#: Audit child processes a city runs at once (each holds one market's history while it runs).
AUDITS_AT_ONCE = 2
_bearer = HTTPBearer(auto_error=False)


class City:
    """The city while it runs: its settings, its markets' apps, and the chain they share."""

    def __init__(self, settings: Settings, *, background: bool = True) -> None:
        if not settings.market_names:
            raise CityError("a city needs at least one market (VOISIN_MARKETS=n01,n02,...)")
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.operator_token = given_or_kept_secret(
            settings.operator_token, settings.data_dir / "operator.token"
        )
        key_secret = given_or_kept_secret(settings.key_secret, settings.data_dir / "key.secret")
        self.chain: Chain | None = None
        #: One power-flow worker process for every market (started at the first slot).
        self.feeder = FeederWorker()
        #: Audits in child processes at once, across the markets.
        self.audits = threading.BoundedSemaphore(AUDITS_AT_ONCE)
        self.market_settings = {
            name: market_settings(settings, name, key_secret) for name in settings.market_names
        }
        self.apps: dict[str, FastAPI] = {
            name: create_app(market, background=background, city=self._part_of(name))
            for name, market in self.market_settings.items()
        }

    def _part_of(self, name: str) -> Callable[[], CityPart]:
        def part() -> CityPart:
            assert self.chain is not None, "the city's chain opens before its markets"
            return CityPart(
                name=name,
                chain=self.chain,
                writes_lock=self.settings.data_dir / WRITES_LOCK,
                operator_token=self.operator_token,
                markets=len(self.apps),
                feeder=self.feeder,
                audits=self.audits,
                market_of=lambda field, values: self.market_of(field, values, name),
                meter_elsewhere=lambda meter: self.meter_elsewhere(meter, name),
            )

        return part

    def services(self, name: str) -> Services:
        services: Services | None = getattr(self.apps[name].state, "services", None)
        if services is None:
            raise ApiError(503, "market_starting", f"market {name!r} is not serving yet")
        return services

    def market_of(self, field: str, values: Collection[str], asking: str) -> dict[str, str]:
        """For each of ``values``, the market other than ``asking`` with a household whose
        ``field`` (``token_hash`` or ``meter``) it is, where one has: one query per market."""
        column = {"token_hash": ApiHousehold.token_hash, "meter": ApiHousehold.meter}[field]
        left, found = set(values), {}
        for name, app in self.apps.items():
            services = getattr(app.state, "services", None)
            if name == asking or services is None or not left:
                continue
            with Session(services.engine) as session:
                held = session.exec(select(column).where(col(column).in_(sorted(left)))).all()
            for value in held:
                found[str(value)] = name
            left.difference_update(str(v) for v in held)
        return found

    def meter_elsewhere(self, meter: str, asking: str) -> str | None:
        """The market other than ``asking`` that holds ``meter``: a household of its database
        has it, or its contract has it registered or retired (a meter rotated away there)."""
        found = self.market_of("meter", [meter], asking).get(meter)
        if found is not None:
            return found
        for name, app in self.apps.items():
            services = getattr(app.state, "services", None)
            if name == asking or services is None:
                continue
            state = services.client.meter_state(meter)
            if state.household != 0 or state.retired:
                return name
        return None

    def is_operator(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(
            str(token).encode(), self.operator_token.encode()
        )

    def open(self) -> None:
        """Create the markets' schemas (PostgreSQL) and open the city's chain."""
        settings = self.settings
        create_schemas(settings)
        self.chain = open_chain(
            settings.chain,
            settings.data_dir,
            settings.chain_key_value(),
            process=settings.chain_process,
        )

    def close(self) -> None:
        self.feeder.close()
        chain, self.chain = self.chain, None
        if chain is not None:
            chain.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.open()
        try:
            async with AsyncExitStack() as stack:
                for app in self.apps.values():
                    await stack.enter_async_context(app.router.lifespan_context(app))
                yield
        finally:
            self.close()

    # ───────────────────────────── What the city shows ─────────────────────────────

    def span(self, from_slot: int | None, to_slot: int | None) -> tuple[int, int]:
        """The slots to show: ``from``..``to`` as given, else the day before now."""
        last = to_slot if to_slot is not None else slot_now() - 1
        first = from_slot if from_slot is not None else last - DEFAULT_SPAN_SLOTS + 1
        if first > last:
            raise ApiError(422, "invalid_input", f"from slot {first} is after to slot {last}")
        if last - first + 1 > MAX_SPAN_SLOTS:
            raise ApiError(
                422,
                "invalid_input",
                f"{last - first + 1} slots: the city view sums at most {MAX_SPAN_SLOTS} (92 days)",
            )
        return max(first, 0), last

    def figures(self, first: int, last: int) -> dict[str, Any]:
        """Every market's figures over ``first``..``last`` and the city's totals."""
        tz = self.settings.timezone
        markets = [
            {
                "name": name,
                "path": f"/markets/{name}",
                "contract": self.services(name).client.address,
                "feeder_network": self.market_settings[name].feeder_network,
                **market_figures(self.services(name).engine, first, last),
            }
            for name in self.apps
        ]
        return {
            "from_slot": first,
            "to_slot": last,
            "starts_at": localtime.slot_iso(first, tz),
            "ends_at": localtime.slot_iso(last + 1, tz),
            "timezone": tz,
            "markets": markets,
            "city": city_totals(markets),
        }

    def audit(self, first: int | None, last: int | None) -> dict[str, Any]:
        """Every market's audit over ``first``..``last``, run now, one after the other, and
        the meter keys held by more than one market (``shared_meters``)."""
        results = []
        meters = {}
        for name in self.apps:
            services = self.services(name)
            report = services.audit(from_slot=first, to_slot=last).report
            meters[name] = market_meters(services.engine)
            results.append(
                {
                    "name": name,
                    "ok": bool(report["ok"]),
                    "summary": report["summary"],
                    "findings": len(report["findings"]),
                    "first_findings": report["findings"][:20],
                }
            )
        shared = meters_in_several_markets(meters)
        ok = all(r["ok"] for r in results) and not shared
        return {"ok": ok, "markets": results, "shared_meters": shared}


def prepare_city(settings: Settings) -> None:
    """Create every market's schema and deploy (or find) its contract, then close: what
    ``voisin serve --workers N`` does once before its processes start."""
    city = City(settings)
    city.open()
    try:
        for name, market in city.market_settings.items():
            Services(market, city._part_of(name)()).close()
    finally:
        city.close()


def create_city_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    """The city's app (see the module's docstring); ``VOISIN_*`` settings by default, so that
    ``voisin serve --workers N`` can build it in each worker process. ``background``: whether
    the markets run their background work (tests drive it by hand)."""
    city = City(settings or Settings(), background=background)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with city.running():
            yield

    app = FastAPI(
        title="Voisin city",
        version="0.1.0",
        description=(
            "A city of neighbourhood markets. Each market's API is served under "
            "`/markets/<name>` (its own documentation at `/markets/<name>/docs`); the city's "
            "operator token holds every market."
        ),
        lifespan=lifespan,
        dependencies=[Depends(errors.reject_unknown_query)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.city = city
    app.state.timezone = city.settings.timezone
    errors.install(app)
    docs_ui.install(app)  # the city's routes at /docs and /redoc; a market's at its own
    app.add_middleware(
        _GuardOutsideMarkets,
        max_body_bytes=city.settings.max_body_bytes,
        max_json_depth=city.settings.max_json_depth,
    )
    _routes(app, city)
    for name, market in city.apps.items():
        app.mount(f"/markets/{name}", market)
    return app


class _GuardOutsideMarkets:
    """Pure ASGI middleware: the body guard (:class:`api.body_guard.BodyGuard`) on the city's
    own routes. A market's requests go straight on: its own app guards them (once)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.guarded = BodyGuard(app, max_body_bytes=max_body_bytes, max_json_depth=max_json_depth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/markets/"):
            await self.app(scope, receive, send)
        else:
            await self.guarded(scope, receive, send)


def _operator(city: City) -> Callable[..., Any]:
    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None:
            raise unauthorized()
        if not city.is_operator(credentials.credentials):
            raise unauthorized(
                "the city's routes take the city's operator token (a market's own operator "
                "token holds that market only, under /markets/<name>)"
            )

    return check


def _routes(app: FastAPI, city: City) -> None:
    operator = [Depends(_operator(city))]

    @app.get("/health", summary="The city's markets", tags=["city"])
    @app.get("/v1/health", summary="The city's markets", tags=["city"])
    def health() -> dict[str, Any]:
        """Each market's name, path and contract on the one chain (no token): a market's own
        `GET /markets/<name>/health` says the rest."""
        markets = []
        for name in city.apps:
            services = getattr(city.apps[name].state, "services", None)
            markets.append(
                {
                    "name": name,
                    "path": f"/markets/{name}",
                    "contract": services.client.address if services is not None else None,
                }
            )
        chain_id = city.chain.chain_id if city.chain is not None else None
        return {"status": "ok", "chain_id": chain_id, "markets": markets}

    @app.get("/v1/city", dependencies=operator, summary="Every market side by side", tags=["city"])
    async def figures(
        from_slot: Annotated[int | None, Query(alias="from", ge=0, le=UINT32)] = None,
        to_slot: Annotated[int | None, Query(alias="to", ge=0, le=UINT32)] = None,
    ) -> dict[str, Any]:
        """Each market's households, energy (Wh), self-sufficiency, local share of the
        surplus, local prices (ueur/kWh), kept audit and feeder status over the slots
        `from`..`to` (default: the 96 slots before the current one), and the city's totals."""
        first, last = city.span(from_slot, to_slot)
        return await run_in_threadpool(city.figures, first, last)

    @app.get("/v1/city/audit", dependencies=operator, summary="Audit every market", tags=["city"])
    async def audit(
        from_slot: Annotated[int | None, Query(alias="from", ge=0, le=UINT32)] = None,
        to_slot: Annotated[int | None, Query(alias="to", ge=0, le=UINT32)] = None,
    ) -> dict[str, Any]:
        """Every market's audit over the slots `from`..`to` (all by default), run now, one
        market after the other: `ok` is true when every market's is."""
        if from_slot is not None and to_slot is not None and from_slot > to_slot:
            raise ApiError(
                422, "invalid_input", f"from slot {from_slot} is after to slot {to_slot}"
            )
        return await run_in_threadpool(city.audit, from_slot, to_slot)

    # The city page and its sign-in; the static files and the language switch as a market's.
    app.add_api_route("/ui/static/{name}", dashboard.static, include_in_schema=False)
    app.add_api_route("/ui/lang/{lang}", dashboard.switch_language, include_in_schema=False)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return RedirectResponse("/city", 303)

    @app.get("/city", include_in_schema=False)
    async def city_page(
        request: Request,
        day: Annotated[str, Query(max_length=10)] = "",
    ) -> Response:
        if not city.is_operator(request.cookies.get(CITY_COOKIE)):
            return page(request, "signin.html", {"signin_to": "/city/signin", "here": "/city"})
        tz = city.settings.timezone
        first, last = _day_span(_local_day(day), tz)
        shown = await run_in_threadpool(city.figures, first, last)
        lang = lang_of(request)
        context = {
            "here": "/city",
            "day": day,
            "span": localtime.span_label(first, last, tz),
            "dec": lambda value, places: decimal(value, places, lang),
            **shown,
        }
        return page(request, "city.html", context)

    @app.post("/city/signin", include_in_schema=False)
    def signin(request: Request, token: Annotated[str, Form(max_length=512)] = "") -> Response:
        token = token.strip()
        if not sent_from_here(request):
            context = {
                "errors": {"token": "err_cross_site"},
                "signin_to": "/city/signin",
                "here": "/city",
            }
            return page(request, "signin.html", context, status=403)
        if not city.is_operator(token):
            errors_ = {"token": "err_token_empty" if not token else "err_token_wrong"}
            context = {"errors": errors_, "signin_to": "/city/signin", "here": "/city"}
            return page(request, "signin.html", context, status=422 if not token else 401)
        return signed_in_to(request, "/city", CITY_COOKIE, token, "/city")

    @app.post("/city/signout", include_in_schema=False)
    def signout(request: Request) -> Response:
        response = RedirectResponse("/city", 303)
        if sent_from_here(request):  # another site's form changes nothing
            response.delete_cookie(CITY_COOKIE, path="/city")
        return response


def _local_day(text: str) -> date | None:
    """The page's ``day`` (``YYYY-MM-DD``; empty: none, the last 24 hours)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "invalid_input", f"day {text!r}: give a date as YYYY-MM-DD") from None


def _day_span(day: date | None, tz: str) -> tuple[int, int]:
    """The slots of the local day ``day`` (default: the 96 slots before now)."""
    if day is None:
        last = slot_now() - 1
        return last - DEFAULT_SPAN_SLOTS + 1, last
    if not 2000 <= day.year <= 2100:
        raise ApiError(422, "invalid_input", f"day {day}: give a day between 2000 and 2100")
    return localtime.day_span(day, tz)
