"""The city page in headless Chromium: a city of two neighbourhood markets (``north`` and
``south``) served by one app under uvicorn, as ``voisin serve`` with ``VOISIN_MARKETS`` serves
it. The city's operator signs in to ``/city`` (a wrong token is refused there), sees each
market's figures side by side with the city's totals as ``GET /v1/city`` gives them, follows a
market's row to that market's operator page under ``/markets/<name>/`` (its own sign-in, its
links, forms and live updates under its prefix), reads the page in French, and axe-core finds
no serious or critical violation.

The households, their signed readings and the settled slots are set up through each market's
API with the city's operator token, which holds every market.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Expect
from pydantic import SecretStr

from api.city_app import CITY_COOKIE, create_city_app
from api.settings import Settings
from api.web.operator_views import decimal
from api.web.session import TOKEN_COOKIE
from tests.web.conftest import (
    OP,
    OPERATOR_TOKEN,
    Server,
    axe_violations,
    past_slot,
    sign_in,
)

pytestmark = pytest.mark.browser

#: This module's assertions wait up to a minute: a loaded machine serves two markets here.
expect = Expect()
expect.set_options(timeout=60_000)

MARKETS = ("north", "south")
#: The city's operator token (the markets' API routes take it as their operator's).
CITY_TOKEN = OPERATOR_TOKEN
WRONG_TOKEN = "not-the-city-operator-token-0123456789"
AUDIT_STATES = {"ok", "empty", "pending", "failed", "unavailable"}
#: Households registered per market: (prosumer, name, top-up in µ€), and each one's flows per
#: slot (import Wh, export Wh). The markets differ in households and in energy.
HOUSEHOLDS: dict[str, list[tuple[bool, str, int, tuple[int, int]]]] = {
    "north": [
        (True, "North roof A", 0, (0, 1500)),
        (True, "North roof B", 0, (0, 1200)),
        (False, "North flat", 5_000_000, (2000, 0)),
    ],
    "south": [
        (True, "South roof", 0, (0, 800)),
        (False, "South house", 5_000_000, (600, 0)),
    ],
}
#: Slots settled in each market: within the 96 slots before now, which the page shows.
SLOTS_BACK = (8, 7)


@dataclass
class RunningCity:
    """A running city: its address, its app, and each market as the browser tests' helpers
    drive a neighbourhood (:class:`tests.web.conftest.Server`, at the market's prefix)."""

    url: str
    app: FastAPI
    http: httpx.Client
    markets: dict[str, Server]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_city(data_dir: Path) -> Iterator[RunningCity]:
    """A city of :data:`MARKETS` under uvicorn in a thread, on a free loopback port."""
    settings = Settings(
        data_dir=data_dir,
        markets=",".join(MARKETS),
        operator_token=SecretStr(CITY_TOKEN),
        auto_settle=False,
        outbox_interval_s=0.2,
        chain_process=False,
    )
    app = create_city_app(settings)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, name="city-server", daemon=True)
    thread.start()
    # Each market deploys its contract on the city's chain before the city serves.
    deadline = time.monotonic() + 240
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the city's server did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    clients: list[httpx.Client] = []
    try:
        http = httpx.Client(base_url=url, timeout=60)
        clients.append(http)
        markets = {}
        for name in MARKETS:
            market_http = httpx.Client(base_url=f"{url}/markets/{name}", timeout=60)
            clients.append(market_http)
            services = app.state.city.services(name)
            markets[name] = Server(f"{url}/markets/{name}", services, market_http)
        yield RunningCity(url, app, http, markets)
    finally:
        for client in clients:
            client.close()
        uv.should_exit = True
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCity]:
    """The city with :data:`HOUSEHOLDS` registered and the slots :data:`SLOTS_BACK` settled in
    each market; every market's keeper has caught up."""
    with running_city(tmp_path_factory.mktemp("city") / "data") as running:
        slots = [past_slot(back) for back in SLOTS_BACK]
        for name, households in HOUSEHOLDS.items():
            market = running.markets[name]
            flows = {}
            for prosumer, label, topup, flow in households:
                member = market.register(prosumer=prosumer, name=label, topup_ueur=topup)
                flows[member.id] = flow
            outcomes = market.simulate(slots, flows)
            assert all(o["status"] == "settled" and o["matched_Wh"] > 0 for o in outcomes), outcomes
            market.services.keeper.catch_up()
        yield running


def _figures(city: RunningCity) -> dict[str, Any]:
    """``GET /v1/city`` with the city's token: the figures the page shows."""
    r = city.http.get("/v1/city", headers=OP)
    assert r.status_code == 200, r.text
    figures: dict[str, Any] = r.json()
    return figures


def _cookies(page: Any) -> dict[str, str]:
    """The browser's sign-in cookies for the city and the markets: name -> path."""
    names = (CITY_COOKIE, TOKEN_COOKIE)
    return {c["name"]: c["path"] for c in page.context.cookies() if c["name"] in names}


def _sign_in_to_city(page: Any, city: RunningCity) -> None:
    """Sign in to the city page with the city's token, and wait until it has loaded."""
    page.goto(f"{city.url}/city")
    page.get_by_label("Access token").fill(CITY_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#city-table")).to_be_visible()
    page.wait_for_load_state("load")


def test_the_city_operator_signs_in_and_sees_every_market_beside_the_city_totals(
    city: RunningCity, page: Any
) -> None:
    page.goto(f"{city.url}/city")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("#city-table")).to_have_count(0)

    # A wrong token: the sign-in form again, with the error beside the field.
    page.get_by_label("Access token").fill(WRONG_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-error")).to_have_text(
        "This token is not valid. Check that it was copied whole; a household's token starts "
        "with vsn_. Ask your grid operator if it was lost."
    )
    expect(page.get_by_label("Access token")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("#city-table")).to_have_count(0)
    assert _cookies(page) == {}

    # The city's token: the table of the markets and the city's totals.
    page.get_by_label("Access token").fill(CITY_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{city.url}/city")
    expect(page.get_by_role("heading", level=1)).to_have_text("Neighbourhoods side by side")
    table = page.locator("#city-table")
    expect(table.locator("tbody tr")).to_have_count(len(MARKETS))
    rows = {name: table.locator(f"tr[data-market='{name}']") for name in MARKETS}
    total = table.locator("tr[data-market='city']")
    expect(total).to_have_count(1)

    figures = _figures(city)
    shown = {m["name"]: m for m in figures["markets"]}
    assert sorted(shown) == sorted(MARKETS)
    for name in MARKETS:
        registered = len(HOUSEHOLDS[name])
        assert shown[name]["households"] == registered
        expect(rows[name].locator("td[data-field='households']")).to_have_text(str(registered))
        expect(rows[name].locator("th a")).to_have_attribute("href", f"/markets/{name}/ui/operator")
        # Both markets traded locally in the settled slots.
        assert shown[name]["local_Wh"] > 0 and shown[name]["fills"] > 0, shown[name]
        expect(rows[name].locator("td[data-field='local_kWh']")).to_have_text(
            decimal(shown[name]["local_Wh"] / 1000, 1, "en")
        )
        state = rows[name].locator("td[data-field='audit']").get_attribute("data-state")
        assert state in AUDIT_STATES, state
    # The two markets' rows differ.
    assert shown["north"]["local_Wh"] != shown["south"]["local_Wh"]
    assert rows["north"].inner_text() != rows["south"].inner_text()

    # The city's totals are the markets' sums.
    households = sum(len(h) for h in HOUSEHOLDS.values())
    assert figures["city"]["households"] == households
    expect(total.locator("td[data-field='households']")).to_have_text(str(households))
    local_Wh = sum(shown[name]["local_Wh"] for name in MARKETS)
    assert figures["city"]["local_Wh"] == local_Wh
    expect(total.locator("td[data-field='local_kWh']")).to_have_text(
        decimal(local_Wh / 1000, 1, "en")
    )


def test_a_market_row_opens_that_market_operator_page_under_its_prefix(
    city: RunningCity, page: Any
) -> None:
    _sign_in_to_city(page, city)
    prefix = "/markets/north/"
    requested: list[str] = []

    def sent(request: Any) -> None:
        # Not the tab's icon, which Chromium may fetch for the city page after it showed (the
        # market page's icon is among its links, checked below).
        if request.resource_type != "other":
            requested.append(request.url)

    page.on("request", sent)

    # The market's own sign-in is separate from the city's: it asks for a token.
    page.locator("#city-table tr[data-market='north'] th a").click()
    expect(page).to_have_url(f"{city.url}{prefix}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    form = page.locator("form", has=page.get_by_label("Access token"))
    expect(form).to_have_attribute("action", f"{prefix}ui/signin")

    # The city's token holds every market; the market's live updates poll under its prefix.
    page.get_by_label("Access token").fill(CITY_TOKEN)
    live = f"{city.url}{prefix}ui/live"
    with page.expect_request(lambda request: request.url == live, timeout=60_000):
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{city.url}{prefix}ui/operator")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grid operator")
    expect(page.locator("body")).to_have_attribute("data-root", prefix.rstrip("/"))
    assert _cookies(page) == {CITY_COOKIE: "/city", TOKEN_COOKIE: prefix}

    # The page's forms and links stay under the market's prefix (the account's sign-out
    # form, in the page's header, is the next test's).
    actions = page.locator("main form").evaluate_all("fs => fs.map(f => f.getAttribute('action'))")
    assert len(actions) >= 3, actions  # register, replace a meter, top up
    assert all(a.startswith(f"{prefix}ui/operator/") for a in actions), actions
    links = page.locator("a[href], link[href], script[src]").evaluate_all(
        "es => es.map(e => e.getAttribute('href') || e.getAttribute('src'))"
    )
    local = [link for link in links if not link.startswith("#")]
    assert len(local) >= 5, local  # the static files, the languages, the audit's downloads
    assert all(link.startswith(prefix) for link in local), local
    french = page.get_by_role("link", name="Français")
    expect(french).to_have_attribute("href", f"{prefix}ui/lang/fr?to={prefix}ui/operator")
    # What the browser asked the server for, the poll included, is under the prefix too.
    paths = [urlsplit(u).path for u in requested if u.startswith(city.url)]
    assert f"{prefix}ui/live" in paths, paths
    assert all(path.startswith(prefix) for path in paths), paths

    # Signed in to north only: south asks for its own sign-in, and the city's stays.
    page.goto(f"{city.url}/markets/south/ui/operator")
    expect(page).to_have_url(f"{city.url}/markets/south/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto(f"{city.url}/city")
    expect(page.locator("#city-table tr[data-market='north']")).to_be_visible()


def test_signing_out_of_a_market_returns_to_that_market_sign_in(
    city: RunningCity, page: Any
) -> None:
    prefix = "/markets/north/"
    sign_in(page, f"{city.url}{prefix.rstrip('/')}", CITY_TOKEN)
    expect(page).to_have_url(f"{city.url}{prefix}ui/operator")
    signout = page.locator("header form")
    assert signout.get_attribute("action") == f"{prefix}ui/signout"
    signout.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{city.url}{prefix}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_showing_the_city_without_a_day_shows_the_last_24_hours(
    city: RunningCity, page: Any
) -> None:
    _sign_in_to_city(page, city)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/city") as shown:
        page.get_by_role("button", name="Show").click()
    assert shown.value.status == 200, shown.value.text()
    expect(page.locator("#city-table tr[data-market='city']")).to_be_visible()


def test_the_city_page_reads_in_french_and_passes_axe(city: RunningCity, page: Any) -> None:
    _sign_in_to_city(page, city)
    assert axe_violations(page) == []

    page.get_by_role("link", name="Français").click()
    expect(page).to_have_url(f"{city.url}/city")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Les quartiers côte à côte")
    expect(page.locator("#city-table tr[data-market='city'] th")).to_have_text("Ville")
    # French decimals in the city's traded energy.
    local_Wh = _figures(city)["city"]["local_Wh"]
    expect(
        page.locator("#city-table tr[data-market='city'] td[data-field='local_kWh']")
    ).to_have_text(decimal(local_Wh / 1000, 1, "fr"))
    assert axe_violations(page) == []
