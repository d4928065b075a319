"""A city's markets: where each keeps its data, and its settings derived from the city's.

A city (``VOISIN_MARKETS=n01,n02,...``) is one operator, one chain and one database serving
many neighbourhood markets, each its own contract deployment (docs/architecture.md). From the
city's settings, market ``<name>`` gets:

- its data directory ``<data dir>/markets/<name>/`` (its deployment record, its own operator
  token, and its SQLite database when the city has no PostgreSQL);
- with PostgreSQL, the city's database with its tables in the schema ``market_<name>``
  (``-` becomes ``_``): the connection's ``search_path`` names it, so every query, migration
  and lock of the market stays in it, and one database holds the city;
- its feeder network (``VOISIN_MARKETS=north:kerber_dorfnetz,...``; the city's
  ``VOISIN_FEEDER_NETWORK`` by default), on which the keeper runs its power flows;
- the city's chain, operator account, key secret, tariffs and every other setting.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from api.cluster import is_postgres
from api.settings import MARKET_NAME, Settings
from ledger.mirror.models import ChainEvent

#: Where the markets' data directories are, inside the city's.
MARKETS_DIR = "markets"


class CityError(ValueError):
    """The city's settings cannot serve its markets (said to the operator as is)."""


def market_dir(city: Settings, name: str) -> Path:
    return city.data_dir / MARKETS_DIR / name


def city_markets(data_dir: Path) -> tuple[str, ...]:
    """The markets a city's data directory holds: the folders under ``markets/`` with a
    deployment record, by name."""
    from ledger.contract.deploy import DEPLOYMENTS_FILE

    folder = data_dir / MARKETS_DIR
    if not folder.is_dir():
        return ()
    return tuple(
        sorted(
            p.name
            for p in folder.iterdir()
            if MARKET_NAME.fullmatch(p.name) and (p / DEPLOYMENTS_FILE).is_file()
        )
    )


def market_schema(name: str) -> str:
    """The PostgreSQL schema of market ``name`` (a valid identifier: names are checked)."""
    return "market_" + name.replace("-", "_")


def market_database_url(city: Settings, name: str) -> str:
    """Market ``name``'s SQLAlchemy URL: its schema of the city's PostgreSQL database, or
    SQLite in its data directory."""
    if city.database_url is None or not is_postgres(city.database_url):
        if city.database_url is not None:
            raise CityError(
                "a city's markets each keep SQLite in their own data directory: leave "
                "VOISIN_DATABASE_URL unset, or give a PostgreSQL URL (one schema per market)"
            )
        return f"sqlite:///{(market_dir(city, name) / 'voisin.db').resolve()}"
    return schema_url(city.database_url, name)


def schema_url(database_url: str, name: str) -> str:
    """The city's PostgreSQL URL ``database_url`` narrowed to market ``name``'s schema (its
    connections' ``search_path``)."""
    url = make_url(database_url)
    if "options" in url.query:
        raise CityError(
            "VOISIN_DATABASE_URL already sets connection options: a city sets each market's "
            "search_path there; remove ?options=... from the URL"
        )
    market = url.update_query_dict({"options": f"-csearch_path={market_schema(name)}"})
    return market.render_as_string(hide_password=False)


def market_settings(city: Settings, name: str, key_secret: str) -> Settings:
    """The settings market ``name`` is served with (see the module's docstring)."""
    return city.model_copy(
        update={
            "data_dir": market_dir(city, name),
            "database_url": market_database_url(city, name),
            "key_secret": SecretStr(key_secret),
            # Each market's own operator token is in its data directory; the city's holds all.
            "operator_token": None,
            "markets": "",
            "feeder_network": city.market_networks[name],
        }
    )


def create_schemas(city: Settings) -> None:
    """With PostgreSQL, the markets' schemas, created if missing (their tables are created by
    each market's first start, as a market alone creates its database's)."""
    if city.database_url is None or not is_postgres(city.database_url):
        return
    engine = create_engine(city.database_url)
    try:
        with engine.begin() as connection:
            for name in city.market_names:
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{market_schema(name)}"'))
    finally:
        engine.dispose()


def city_problem(city: Settings) -> str | None:
    """Why ``voisin serve`` cannot serve the city, or None: a database URL a city cannot split
    into markets, or a market's database at another schema revision (``voisin db upgrade
    --market NAME`` moves it). A database that does not answer is
    the server's start-up to report."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from api.schema import SchemaError, check

    for name in city.market_names:
        try:
            url = market_database_url(city, name)
        except CityError as exc:
            return str(exc)
        engine = create_engine(url)
        try:
            check(engine, f"of market {name!r}")
        except SchemaError as exc:
            return f"{exc} (for this market: voisin db upgrade --market {name})"
        except (OperationalError, ProgrammingError):
            pass
        finally:
            engine.dispose()
    return None


def market_meters(engine: Engine) -> set[str]:
    """Every meter key a market's contract registered or rotated to, as its mirror holds the
    contract's events (which the market's own audit checks against the chain)."""
    with Session(engine) as session:
        rows = session.exec(
            select(ChainEvent.name, ChainEvent.args_json).where(
                col(ChainEvent.name).in_(("HouseholdRegistered", "MeterRotated"))
            )
        ).all()
    field = {"HouseholdRegistered": "meter", "MeterRotated": "newMeter"}
    return {str(json.loads(args)[field[name]]).lower() for name, args in rows}


def meters_in_several_markets(meters: Mapping[str, Collection[str]]) -> list[dict[str, Any]]:
    """The meter keys held by more than one market (``meters``: each market's), each with its
    markets: a meter belongs to one market, so each is a finding of the city's audit (one
    meter's energy would be credited, and sold, in each)."""
    markets_of: dict[str, list[str]] = {}
    for market, held in meters.items():
        for meter in held:
            markets_of.setdefault(meter.lower(), []).append(market)
    return [
        {
            "meter": meter,
            "markets": sorted(markets),
            "message": f"meter {meter} is registered in {len(markets)} markets: "
            f"{', '.join(sorted(markets))} (a meter belongs to one market)",
        }
        for meter, markets in sorted(markets_of.items())
        if len(markets) > 1
    ]
