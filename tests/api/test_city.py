"""A city of markets in one server (``voisin serve --markets``): each market's API under
``/markets/<name>`` on one chain and one database, isolated from the others; the city's
figures, audit and health; a market served alone keeps answering at the root."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from api.city import market_schema
from api.city_app import City, create_city_app
from api.cli import main
from api.keeper import kept_mapping
from api.services import (
    BACKGROUND_CONNECTIONS,
    REQUEST_THREADS,
    Services,
    connections_per_process,
    pool_kept,
)
from api.settings import Settings
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, OPERATOR_TOKEN, Member, _settings, past_slot
from tests.conftest import ANVIL_KEY

MARKETS = ("north", "south-2")
#: The city's markets as VOISIN_MARKETS names them: the north on a village feeder.
MARKETS_SETTING = "north:kerber_dorfnetz,south-2"


@dataclass
class Market:
    """One market of the city, as a client sees it: its prefix and its households."""

    name: str
    client: TestClient
    services: Services

    @property
    def prefix(self) -> str:
        return f"/markets/{self.name}"

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(self.prefix + path, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(self.prefix + path, **kw)

    def register(self, prosumer: bool, topup_ueur: int = 0) -> Member:
        meter = Account.create()
        r = self.post(
            "/v1/households", json={"meter": meter.address, "prosumer": prosumer}, headers=OP
        )
        assert r.status_code == 201, r.text
        member = Member(r.json()["id"], r.json()["token"], meter, r.json()["account"], prosumer)
        if topup_ueur:
            t = self.post(
                "/v1/topups", json={"household": member.id, "amount_ueur": topup_ueur}, headers=OP
            )
            assert t.status_code == 201, t.text
        return member

    def reading(
        self, m: Member, slot: int, import_Wh: int = 0, export_Wh: int = 0
    ) -> dict[str, Any]:
        m.import_Wh += import_Wh
        m.export_Wh += export_Wh
        signed = sign_reading(
            m.meter.key,
            Reading(m.meter.address, slot, m.import_Wh, m.export_Wh),
            self.services.domain,
        )
        return reading_to_json(signed)


@dataclass
class CityUnderTest:
    client: TestClient
    city: City
    settings: Settings

    def market(self, name: str) -> Market:
        return Market(name, self.client, self.city.services(name))


def _city_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "embedded-sqlite":
        return _settings(tmp_path, markets=MARKETS_SETTING)
    return _settings(
        tmp_path,
        markets=MARKETS_SETTING,
        chain=request.getfixturevalue("anvil_url"),
        chain_key=ANVIL_KEY,
        database_url=request.getfixturevalue("postgres_url"),
    )


@pytest.fixture(
    params=[
        "embedded-sqlite",
        pytest.param("anvil-postgres", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def city(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CityUnderTest]:
    settings = _city_settings(request, tmp_path)
    app = create_city_app(settings, background=False)
    with TestClient(app) as client:
        yield CityUnderTest(client, app.state.city, settings)


def _trade(m: Market, first: int, slots: int, sellers: int, buyers: int) -> None:
    """``sellers`` prosumers export and ``buyers`` consumers import for ``slots`` slots from
    ``first``; every slot is settled."""
    sold = [m.register(prosumer=True) for _ in range(sellers)]
    bought = [m.register(prosumer=False, topup_ueur=5_000_000) for _ in range(buyers)]
    for slot in range(first, first + slots):
        batch = [m.reading(s, slot, export_Wh=400) for s in sold]
        batch += [m.reading(b, slot, import_Wh=300) for b in bought]
        r = m.post("/v1/readings", json={"readings": batch})
        assert r.status_code == 202 and r.json()["accepted"] == len(batch), r.text
    m.services.outbox.run_once()
    for slot in range(first, first + slots):
        r = m.post(f"/v1/market/slots/{slot}/settle", headers=OP)
        assert r.status_code == 200, r.text


def test_each_market_is_its_own_deployment_on_the_one_chain(city: CityUnderTest) -> None:
    health = city.client.get("/health").json()
    assert [m["name"] for m in health["markets"]] == list(MARKETS)
    contracts = {m["contract"] for m in health["markets"]}
    assert len(contracts) == 2 and None not in contracts
    for name in MARKETS:
        market = city.market(name)
        own = market.get("/v1/health").json()
        assert own["chain"]["contract"] == market.services.client.address
        assert own["chain"]["chain_id"] == health["chain_id"]
        # One chain: the markets' services hold the city's chain object itself.
        assert market.services.chain is city.city.chain
    a, b = (city.market(n).services for n in MARKETS)
    assert a.domain != b.domain
    # One power-flow worker process for the city (where the power flows run in one).
    if a.chain_access() is not None:
        assert a.feeder_worker is b.feeder_worker is city.city.feeder
    # And their audits in child processes take turns, a few at a time.
    assert a.city is not None and b.city is not None and a.city.audits is b.city.audits


def test_a_token_an_order_and_a_reading_of_one_market_are_refused_in_another(
    city: CityUnderTest,
) -> None:
    north, south = (city.market(n) for n in MARKETS)
    seller = north.register(prosumer=True)
    buyer = south.register(prosumer=False, topup_ueur=1_000_000)
    # A household token works in its market, and is refused in the other, which says where.
    assert north.get(f"/v1/households/{seller.id}/balance", headers=seller.auth).status_code == 200
    r = south.get(f"/v1/households/{seller.id}/balance", headers=seller.auth)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "unauthorized"
    assert "'north'" in r.json()["message"] and "/markets/north/" in r.json()["message"]
    # An order of the north market is unknown in the south one.
    r = north.post(
        "/v1/offers",
        json={"price_limit_ueur_per_kWh": 60_000, "first_slot": past_slot(-2)},
        headers=seller.auth,
    )
    assert r.status_code == 202, r.text
    offer = r.json()["id"]
    listed = north.get("/v1/offers", params={"household": seller.id}, headers=seller.auth)
    assert offer in [o["id"] for o in listed.json()["items"]]
    r = south.post(
        f"/v1/offers/{offer}/take", json={"slot": past_slot(-1), "max_Wh": 100}, headers=buyer.auth
    )
    assert r.status_code == 404, r.text
    # A reading of a north meter is refused by the south market, which says where it belongs.
    slot = past_slot(3)
    r = south.post("/v1/readings", json={"readings": [north.reading(seller, slot, export_Wh=10)]})
    assert r.status_code == 422 and r.json()["code"] == "unknown_meter", r.text
    assert "in market 'north'" in r.json()["message"], r.text
    assert "/markets/north/v1/readings" in r.json()["message"], r.text
    # In a batch, each refusal names its meter's market; a meter of no market says only that.
    other = north.register(prosumer=False)
    stray = Member(0, "", Account.create(), "", False)
    batch = [
        north.reading(seller, slot + 1, export_Wh=10),
        north.reading(other, slot, import_Wh=10),
        north.reading(stray, slot, import_Wh=10),
    ]
    r = south.post("/v1/readings", json={"readings": batch})
    results = r.json()["details"]["results"]
    assert [v["code"] for v in results] == ["unknown_meter"] * 3, r.text
    assert ["in market 'north'" in v["message"] for v in results] == [True, True, False]
    assert results[2]["message"] == f"meter {stray.meter.address} is not registered"
    # A south meter's reading signed for the north contract: the signature names another
    # contract.
    meter = south_member = buyer
    forged = sign_reading(
        meter.meter.key, Reading(meter.meter.address, slot, 20, 0), north.services.domain
    )
    r = south.post("/v1/readings", json={"readings": [reading_to_json(forged)]})
    assert r.status_code == 422 and r.json()["code"] == "bad_signature", r.text
    assert south_member.import_Wh == 0
    # And the north market takes its own meter's reading.
    r = north.post("/v1/readings", json={"readings": [north.reading(seller, slot, export_Wh=10)]})
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text


def test_a_meter_belongs_to_one_market_once(
    city: CityUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A meter of one market, or one retired there, is refused in another: by registration,
    by a meter rotation, and under the chain's lock when the other market took it meanwhile."""
    north, south = (city.market(n) for n in MARKETS)
    ours = north.register(prosumer=True)
    theirs = south.register(prosumer=True)
    heads = city.city.chain.w3.eth.block_number  # type: ignore[union-attr]
    r = south.post(
        "/v1/households", json={"meter": ours.meter.address, "prosumer": True}, headers=OP
    )
    assert r.status_code == 409 and r.json()["code"] == "meter_already_registered", r.text
    assert "market 'north'" in r.json()["message"], r.text
    r = south.post(
        f"/v1/households/{theirs.id}/meter", json={"meter": ours.meter.address}, headers=OP
    )
    assert r.status_code == 409 and "market 'north'" in r.json()["message"], r.text
    assert city.city.chain.w3.eth.block_number == heads  # type: ignore[union-attr]
    # North rotates its meter away: the retired key stays north's.
    r = north.post(
        f"/v1/households/{ours.id}/meter", json={"meter": Account.create().address}, headers=OP
    )
    assert r.status_code == 200, r.text
    r = south.post(
        "/v1/households", json={"meter": ours.meter.address, "prosumer": False}, headers=OP
    )
    assert r.status_code == 409 and "market 'north'" in r.json()["message"], r.text
    # North registers a meter after south's request for it was checked (the check is made
    # to miss it): south's registration is refused under the chain's lock.
    contested = Account.create().address
    r = north.post("/v1/households", json={"meter": contested, "prosumer": False}, headers=OP)
    assert r.status_code == 201, r.text
    monkeypatch.setattr(south.services, "meter_elsewhere", lambda meter: None)
    r = south.post("/v1/households", json={"meter": contested, "prosumer": False}, headers=OP)
    assert r.status_code == 409 and "market 'north'" in r.json()["message"], r.text
    assert south.services.client.meter_state(contested).household == 0


def test_the_city_token_holds_every_market_and_a_market_token_only_its_own(
    city: CityUnderTest,
) -> None:
    north, south = (city.market(n) for n in MARKETS)
    own = {
        name: (city.settings.data_dir / "markets" / name / "operator.token").read_text().strip()
        for name in MARKETS
    }
    assert own["north"] != own["south-2"] != OPERATOR_TOKEN
    north_op = {"Authorization": f"Bearer {own['north']}"}
    assert north.get("/v1/trades", headers=OP).status_code == 200
    assert south.get("/v1/trades", headers=OP).status_code == 200
    assert north.get("/v1/trades", headers=north_op).status_code == 200
    assert south.get("/v1/trades", headers=north_op).status_code == 401
    r = city.client.get("/v1/city", headers=north_op)
    assert r.status_code == 401 and "city's operator token" in r.json()["message"]
    assert city.client.get("/v1/city").status_code == 401
    assert city.client.get("/v1/city/audit", headers=north_op).status_code == 401


def test_the_city_view_is_the_markets_side_by_side_and_their_sum(city: CityUnderTest) -> None:
    north, south = (city.market(n) for n in MARKETS)
    first = past_slot(12)
    _trade(north, first, 3, sellers=2, buyers=1)
    _trade(south, first, 2, sellers=1, buyers=3)
    r = city.client.get("/v1/city", headers=OP)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["to_slot"] - body["from_slot"] == 95
    markets = {m["name"]: m for m in body["markets"]}
    assert list(markets) == list(MARKETS)
    n, s = markets["north"], markets["south-2"]
    assert (n["households"], s["households"]) == (3, 4)
    assert (n["slots_settled"], s["slots_settled"]) == (3, 2)
    assert (n["export_Wh"], n["import_Wh"]) == (3 * 2 * 400, 3 * 300)
    assert (s["export_Wh"], s["import_Wh"]) == (2 * 400, 2 * 3 * 300)
    for m, market in ((n, north), (s, south)):
        # Each market's figures are its own trades, as its API lists them.
        trades = market.get("/v1/trades", headers=OP).json()
        assert m["fills"] == trades["total"] > 0
        assert m["local_Wh"] == sum(t["energy_Wh"] for t in trades["items"]) > 0
        assert m["local_paid_ueur"] == sum(t["cost_ueur"] for t in trades["items"])
        assert m["grid_export_Wh"] == m["export_Wh"] - m["local_Wh"]
        assert m["local_share_of_surplus"] == round(m["local_Wh"] / m["export_Wh"], 4)
        # Meters give no load: no self-sufficiency is claimed.
        assert m["load_Wh"] is None and m["self_sufficiency"] is None
        assert m["average_local_price_ueur_per_kWh"] == m["local_paid_ueur"] * 1000 // m["local_Wh"]
        assert m["audit"]["state"] == "pending"
        assert m["feeder"]["state"] == "none"
    assert (n["feeder_network"], s["feeder_network"]) == (
        "kerber_dorfnetz",
        "kerber_vorstadtnetz_kabel_1",
    )
    total = body["city"]
    for key in ("households", "import_Wh", "export_Wh", "local_Wh", "fills", "local_paid_ueur"):
        assert total[key] == n[key] + s[key], key
    assert total["local_share_of_surplus"] == round(total["local_Wh"] / total["export_Wh"], 4)
    # A span before any trade shows none.
    before = {"from": first - 50, "to": first - 1}
    early = city.client.get("/v1/city", params=before, headers=OP).json()
    assert [m["fills"] for m in early["markets"]] == [0, 0]

    # Once each market's keeper ran, its power flows (on its own feeder) and audit show.
    for market in (north, south):
        market.services.keeper.catch_up()
    kept = city.client.get("/v1/city", headers=OP).json()["markets"]
    assert [m["audit"]["state"] for m in kept] == ["ok", "ok"]
    assert [m["feeder"]["slots"] for m in kept] == [3, 2]
    assert all(m["feeder"]["state"] in ("ok", "over") for m in kept)
    assert kept_mapping(north.services.engine)[0] == "kerber_dorfnetz"
    assert kept_mapping(south.services.engine)[0] == "kerber_vorstadtnetz_kabel_1"

    # Every market's audit, run now: clean.
    audit = city.client.get("/v1/city/audit", headers=OP)
    assert audit.status_code == 200, audit.text
    assert audit.json()["ok"] is True
    assert [m["name"] for m in audit.json()["markets"]] == list(MARKETS)
    assert [m["summary"]["fills"] for m in audit.json()["markets"]] == [n["fills"], s["fills"]]
    # Over a span before the trades: nothing to find, nothing filled.
    early_audit = city.client.get("/v1/city/audit", params=before, headers=OP).json()
    assert early_audit["ok"] is True
    assert [m["summary"]["fills"] for m in early_audit["markets"]] == [0, 0]
    bad = city.client.get("/v1/city/audit", params={"from": 9, "to": 3}, headers=OP)
    assert bad.status_code == 422 and "after" in bad.json()["message"]


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"from": 10, "to": 5}, "after"),
        ({"from": 0, "to": 100_000}, "at most"),
        ({"from": -1}, "from"),
        ({"to": 2**32}, "to"),
        ({"slot": 3}, "slot"),
        ({"from": "x"}, "from"),
    ],
)
def test_the_city_view_refuses_a_bad_span(
    city: CityUnderTest, params: dict[str, Any], word: str
) -> None:
    r = city.client.get("/v1/city", params=params, headers=OP)
    assert r.status_code == 422, r.text
    assert r.json()["code"] in ("invalid_input", "unknown_query_parameter")
    assert word in r.text


@pytest.mark.anvil
@pytest.mark.postgres
def test_one_postgres_database_holds_the_city_one_schema_per_market(
    tmp_path: Path,
    postgres_url: str,
    anvil_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = _settings(
        tmp_path,
        markets=",".join(MARKETS),
        chain=anvil_url,
        chain_key=ANVIL_KEY,
        database_url=postgres_url,
    )
    app = create_city_app(settings, background=False)
    with TestClient(app) as client:
        north = Market("north", client, app.state.city.services("north"))
        north.register(prosumer=True)
    engine = create_engine(postgres_url)
    try:
        inspector = inspect(engine)
        schemas = set(inspector.get_schema_names())
        assert {market_schema(n) for n in MARKETS} <= schemas
        assert market_schema("south-2") == "market_south_2"
        for name in MARKETS:
            tables = set(inspector.get_table_names(schema=market_schema(name)))
            assert {"api_household", "alembic_version", "reading"} <= tables
        # The public schema holds nothing of the markets.
        assert "api_household" not in inspector.get_table_names(schema="public")
        with engine.connect() as conn:
            counts = [
                conn.exec_driver_sql(
                    f'SELECT count(*) FROM "{market_schema(n)}".api_household'
                ).scalar_one()
                for n in MARKETS
            ]
        assert counts == [1, 0]
    finally:
        engine.dispose()
    # Each market's schema is at this release's revision, and says so by market.
    monkeypatch.setenv("VOISIN_DATABASE_URL", postgres_url)
    data = str(settings.data_dir)
    assert main(["db", "current", "--data-dir", data, "--market", "south-2"]) == 0
    assert "search_path" not in capsys.readouterr().err
    assert main(["db", "upgrade", "--data-dir", data, "--market", "north"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    # Started again on the same database, the city finds its markets' contracts and rows.
    app = create_city_app(settings, background=False)
    with TestClient(app) as client:
        again = app.state.city.services("north")
        assert client.get("/markets/north/v1/trades", headers=OP).status_code == 200
        assert again.client.address == north.services.client.address


def test_a_market_served_alone_keeps_its_root_paths(tmp_path: Path) -> None:
    """No markets: today's single market, at the server's root, with no city routes."""
    from api.app import create_app

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        assert client.get("/v1/health").status_code == 200
        assert client.get("/v1/city", headers=OP).status_code == 404
        assert client.get("/markets/north/v1/health").status_code == 404


@pytest.mark.parametrize("city", ["embedded-sqlite"], indirect=True)
def test_the_city_page_asks_for_the_city_token_and_refuses_a_bad_day(city: CityUnderTest) -> None:
    c = city.client
    page = c.get("/city")
    assert page.status_code == 200 and 'action="/city/signin"' in page.text
    wrong = c.post("/city/signin", data={"token": "not-the-token"}, follow_redirects=False)
    assert wrong.status_code == 401 and "voisin_city" not in wrong.headers.get("set-cookie", "")
    # A market's own operator token holds that market only, not the city.
    north_token = (city.settings.data_dir / "markets/north/operator.token").read_text().strip()
    assert c.post("/city/signin", data={"token": north_token}).status_code == 401
    # Another site's form neither signs the city's operator in nor out.
    cross = {"sec-fetch-site": "cross-site"}
    forged = c.post("/city/signin", data={"token": OPERATOR_TOKEN}, headers=cross)
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    done = c.post("/city/signin", data={"token": OPERATOR_TOKEN}, follow_redirects=False)
    assert done.status_code == 303 and "Path=/city" in done.headers["set-cookie"]
    kept = c.post("/city/signout", headers=cross, follow_redirects=False)
    assert kept.status_code == 303 and "set-cookie" not in kept.headers
    assert 'id="city-table"' in c.get("/city").text
    assert 'data-market="south-2"' in c.get("/city", params={"day": ""}).text
    assert 'id="city-table"' in c.get("/city", params={"day": "2026-06-21"}).text
    for day in ("2026-13-40", "yesterday", "1900-01-01"):
        r = c.get("/city", params={"day": day})
        assert r.status_code == 422 and "day" in r.json()["message"], r.text


@pytest.mark.parametrize("city", ["embedded-sqlite"], indirect=True)
def test_the_city_routes_refuse_oversized_bodies_and_unknown_markets(city: CityUnderTest) -> None:
    c = city.client
    big = c.post("/city/signin", data={"token": "x" * 2_000_000})
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
    assert c.get("/markets/east/v1/health").status_code == 404
    # Each documentation page describes its own routes, at its own prefix.
    assert "/v1/city" in c.get("/openapi.json").text
    assert "/markets/north/openapi.json" in c.get("/markets/north/docs").text
    assert "/v1/readings" in c.get("/markets/north/openapi.json").text
    assert "/openapi.json" in c.get("/docs").text
    assert c.get("/markets/v1/health").status_code == 404
    # A market's own guard still answers for its routes.
    deep = c.post(
        "/markets/north/v1/readings",
        content=b"[" * 100 + b"]" * 100,
        headers={"Content-Type": "application/json"},
    )
    assert deep.status_code == 422 and deep.json()["code"] == "json_too_deep"


def test_a_city_keeps_about_as_many_connections_as_one_market() -> None:
    """Each market keeps its background connections and its share of the request threads,
    and may borrow the rest for a burst."""
    alone = pool_kept(1)
    assert alone == REQUEST_THREADS + BACKGROUND_CONNECTIONS
    for markets in (2, 4, 20, 200):
        kept = pool_kept(markets)
        assert BACKGROUND_CONNECTIONS < kept < alone
        assert markets * (kept - BACKGROUND_CONNECTIONS) < REQUEST_THREADS + markets
    assert connections_per_process(4) == 4 * (BACKGROUND_CONNECTIONS + 2) + REQUEST_THREADS


@pytest.mark.parametrize("city", ["embedded-sqlite"], indirect=True)
def test_each_market_of_the_city_pools_its_share(city: CityUnderTest) -> None:
    pool = city.city.services("north").engine.pool
    assert pool.size() == pool_kept(len(MARKETS))  # type: ignore[attr-defined]


def test_a_market_at_another_schema_revision_is_refused_with_its_command(tmp_path: Path) -> None:
    import sqlite3

    from api.city import city_problem, market_dir

    settings = _settings(tmp_path, markets=MARKETS_SETTING)
    assert city_problem(settings) is None  # nothing yet: each market's first start creates it
    place = market_dir(settings, "south-2")
    place.mkdir(parents=True)
    with sqlite3.connect(place / "voisin.db") as db:  # a release before migrations: no revision
        db.execute("CREATE TABLE api_household (id INTEGER PRIMARY KEY)")
    said = city_problem(settings)
    assert said is not None and "market 'south-2'" in said
    assert said.endswith("voisin db upgrade --market south-2)")


@pytest.mark.parametrize("city", ["embedded-sqlite"], indirect=True)
def test_a_dashboard_form_of_one_market_acts_in_that_market_only(city: CityUnderTest) -> None:
    """The city's operator token is the same in every market: a top-up form taken from one
    market's page and posted again to another's is refused there (each keeps its own used
    one-time tokens)."""
    from api.web.session import TOKEN_COOKIE
    from tests.web.test_form_once import _Forms

    north, south = (city.market(name) for name in MARKETS)
    here, there = north.register(prosumer=False), south.register(prosumer=False)

    def balances() -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            int(m.get(f"/v1/households/{h.id}/balance", headers=OP).json()["balance_ueur"])
            for m, h in ((north, here), (south, there))
        )

    city.client.cookies.clear()
    city.client.cookies.set(TOKEN_COOKIE, OPERATOR_TOKEN)
    parser = _Forms()
    parser.feed(north.get("/ui/operator").text)
    form = next(f for a, f in parser.forms if a.split("#")[0].endswith("/ui/operator/topup"))
    before = balances()
    for market, household in ((north, here), (south, there)):
        data = {**form, "household": str(household.id), "amount": "3"}
        market.post("/ui/operator/topup", data=data, follow_redirects=False)
    assert balances() == (before[0] + 3_000_000, before[1])


@pytest.mark.parametrize("city", ["embedded-sqlite"], indirect=True)
def test_the_city_view_counts_the_active_households(city: CityUnderTest) -> None:
    north = city.market(MARKETS[0])
    stays, leaves = north.register(prosumer=False), north.register(prosumer=False)
    r = north.post(
        f"/v1/households/{leaves.id}/erasure",
        json={"confirm": f"erase household {leaves.id}"},
        headers=leaves.auth,
    )
    assert r.status_code == 200, r.text
    markets = {m["name"]: m for m in city.client.get("/v1/city", headers=OP).json()["markets"]}
    assert markets[MARKETS[0]]["households"] == 1
    assert north.get(f"/v1/households/{stays.id}/balance", headers=stays.auth).status_code == 200
