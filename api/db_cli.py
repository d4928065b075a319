"""``voisin db``: the database's schema revision (registered by :func:`api.cli.build_parser`).

- ``voisin db current`` says where the database's schema stands (:mod:`api.schema`);
- ``voisin db upgrade`` brings it to the revision this release runs on.

The database is ``VOISIN_DATABASE_URL``, or the SQLite file in the data directory
(``--data-dir``, else ``VOISIN_DATA_DIR``). Exit codes: 0 done (``current``: at the head), 1 the
schema is not at the head (``current``) or the upgrade failed (nothing changed: PostgreSQL
rolls it back, SQLite's file was copied first), 2 bad settings, a running server on the data
directory, or a revision this release does not know. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """Add the ``db`` subcommand, with ``current`` and ``upgrade``, to ``sub``."""
    db = sub.add_parser(
        "db",
        help="the database's schema: where it stands (current), bring it up to date (upgrade)",
        description=(
            "The database's schema revision. The database is VOISIN_DATABASE_URL, or voisin.db "
            "in the data directory."
        ),
    )
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    current = actions.add_parser(
        "current",
        help="print the schema revision and whether this release runs on it (exit 1 if not)",
    )
    upgrade = actions.add_parser(
        "upgrade",
        help="upgrade the schema to this release's revision (stop voisin serve first)",
        description=(
            "Upgrade the database's schema to the revision this release runs on. Stop every "
            "voisin serve on the database first. On SQLite the file is copied beside itself "
            "before anything changes; on PostgreSQL the upgrade is one transaction."
        ),
    )
    for action in (current, upgrade):
        action.add_argument(
            "--data-dir", help="data directory (default: VOISIN_DATA_DIR or ./data)"
        )
        action.add_argument(
            "--market",
            metavar="NAME",
            help="in a city, this market's database (its schema, or its SQLite file)",
        )
    current.set_defaults(func=_current)
    upgrade.set_defaults(func=_upgrade)


def _engine(args: argparse.Namespace, name: str) -> Any:
    """The data directory a server of the database records itself in, and the database's
    engine; or an exit status 2 after saying why."""
    from pydantic import ValidationError
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError

    from api.paths import absolute
    from api.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"voisin db {name}: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if args.data_dir:
        settings = settings.model_copy(update={"data_dir": absolute(args.data_dir)})
    city_dir = settings.data_dir
    if args.market is not None:
        from api.city import CityError, market_database_url, market_dir
        from api.settings import MARKET_NAME

        if not MARKET_NAME.fullmatch(args.market):
            print(
                f"voisin db {name}: --market {args.market!r} is not a market's name",
                file=sys.stderr,
            )
            return 2
        try:
            url = market_database_url(settings, args.market)
        except CityError as exc:
            print(f"voisin db {name}: {exc}", file=sys.stderr)
            return 2
        settings = settings.model_copy(
            update={"data_dir": market_dir(settings, args.market), "database_url": url}
        )
    url = settings.resolved_database_url()
    if url.startswith("sqlite") and (args.market is not None or not settings.database_url):
        database = settings.data_dir / "voisin.db"
        if not database.is_file():
            print(f"voisin db {name}: no database at {database}", file=sys.stderr)
            return 2
    try:
        return city_dir, create_engine(url)
    except (ArgumentError, ImportError) as exc:  # no such dialect or driver
        print(f"voisin db {name}: cannot use the database {url!r}: {exc}", file=sys.stderr)
        return 2


def _running_server(served: Path) -> str | None:
    """The URL of the server that wrote ``served`` if it still answers there, else None (no
    file, or one a killed server left behind)."""
    import httpx

    try:
        url = served.read_text().strip()
    except OSError:
        return None
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=2.0)
    except (httpx.HTTPError, ValueError):
        return None
    return url


def _first_line(exc: Exception) -> str:
    """A database error's own message, without the statement and the link to its docs."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _current(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from api.schema import inspect_schema

    opened = _engine(args, "current")
    if isinstance(opened, int):
        return opened
    _served_in, engine = opened
    try:
        status = inspect_schema(engine)
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        print(f"voisin db current: cannot read {where}: {_first_line(exc)}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"{engine.url.render_as_string(hide_password=True)}: {status.describe()}")
    if status.state == "behind":
        print("Upgrade it with: voisin db upgrade (back it up first: voisin backup)")
    return 0 if status.state == "current" else (2 if status.state == "unknown" else 1)


def _upgrade(args: argparse.Namespace) -> int:
    from api.paths import SERVED_AT
    from api.schema import SchemaError, upgrade

    opened = _engine(args, "upgrade")
    if isinstance(opened, int):
        return opened
    served_in, engine = opened
    running = _running_server(served_in / SERVED_AT)
    if running:
        print(
            f"voisin db upgrade: a voisin serve is running on {served_in} (it answers "
            f"at {running}): stop it first",
            file=sys.stderr,
        )
        engine.dispose()
        return 2
    try:
        done = upgrade(engine)
    except SchemaError as exc:
        print(f"voisin db upgrade: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # One transaction: a failed upgrade leaves the database as it was.
        print(
            f"voisin db upgrade: failed, nothing changed: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if done.before.state == "current":
        print(f"{where}: already {done.after.describe()}; nothing to do")
        return 0
    if done.copy is not None:
        print(f"Copied the database to {done.copy} first")
    print(
        f"{where}: upgraded from {done.before.revision or 'no revision'} to "
        f"{done.after.revision} ({done.after.tables} tables)"
    )
    return 0
