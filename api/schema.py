"""The database's schema revision: what ``voisin serve`` checks and ``voisin db upgrade`` moves.

The migrations live in :mod:`api.migrations` (Alembic). A database is in one of these states
(:func:`inspect_schema`):

- ``empty``: none of Voisin's tables; :func:`prepare` creates the whole schema by running
  every revision, and records the head revision;
- ``current``: at the head revision this release knows;
- ``behind``: at an older revision, or made without a revision recorded (Voisin's tables
  there: by a release before migrations, or with the models' tables created whole, as
  ``voisin simulate`` once did; :func:`unversioned_revision` finds where it is):
  ``voisin db upgrade`` brings it to the head;
- ``unknown``: at a revision this release does not know, written by a newer release: this
  release must not touch it.

:func:`prepare` is what a server runs at start: it creates an empty database and refuses any
other state but ``current`` with :class:`SchemaError`, whose message names the command that
fixes it. Migrations run in one transaction, so a failed or interrupted one changes nothing:
on PostgreSQL under an advisory lock (two servers starting on one empty database create it
once), on SQLite in a ``BEGIN IMMEDIATE`` transaction around the DDL too (Python's sqlite3
leaves DDL outside its transactions unless told). On SQLite, :func:`upgrade` also copies the
database file beside it first, with SQLite's online backup API: the way back to the previous
release.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import api.models  # noqa: F401  (the API's tables, on SQLModel.metadata)
import ledger.mirror.models  # noqa: F401  (the mirror's tables)

#: Where the revisions are: the ``api.migrations`` package.
SCRIPT_LOCATION: Final = str(Path(__file__).resolve().parent / "migrations")
#: The PostgreSQL advisory lock key migrations hold (any constant; this one spells "voisindb").
_PG_LOCK_KEY: Final = 0x766F6973696E6462 - 2**63

State = Literal["empty", "current", "behind", "unknown"]


class SchemaError(RuntimeError):
    """The database is not at the schema revision this release runs on."""


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema stands against this release's migrations."""

    state: State
    #: The recorded revision (None: none recorded).
    revision: str | None
    #: The newest revision this release knows.
    head: str
    #: Voisin's tables found in the database.
    tables: int

    def describe(self) -> str:
        if self.state == "empty":
            return f"empty: no Voisin tables yet (this release creates revision {self.head})"
        if self.state == "current":
            return f"at revision {self.revision}, the newest this release knows"
        if self.state == "behind":
            at = self.revision or "the schema of a release before migrations (no revision)"
            return f"at {at}; this release runs on {self.head}"
        return (
            f"at revision {self.revision}, which this release does not know (its newest is "
            f"{self.head}): a newer Voisin wrote it"
        )


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for Voisin's migrations, from code (no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always holds revisions
        raise SchemaError("no migrations found in api/migrations/versions")
    return head


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def _status(connection: Connection) -> SchemaStatus:
    head = head_revision()
    names = set(inspect(connection).get_table_names())
    ours = len(names & set(SQLModel.metadata.tables))
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        state: State = "behind" if ours else "empty"
    elif revision == head:
        state = "current"
    elif revision in _known_revisions():
        state = "behind"
    else:
        state = "unknown"
    return SchemaStatus(state, revision, head, ours)


def inspect_schema(engine: Engine) -> SchemaStatus:
    """The database's schema state (reads only)."""
    with engine.connect() as connection:
        return _status(connection)


def _refusal(status: SchemaStatus, where: str) -> SchemaError:
    if status.state == "unknown":
        return SchemaError(
            f"the database {where} is {status.describe()}. Run the release that wrote it, or "
            "restore a backup taken before it was upgraded (voisin restore)."
        )
    return SchemaError(
        f"the database {where} is {status.describe()}. Back it up (voisin backup), then "
        "upgrade it: voisin db upgrade"
    )


def check(engine: Engine, where: str = "") -> SchemaStatus:
    """The database's state if a server may start on it (``empty`` or ``current``), else
    :class:`SchemaError` saying which command fixes it. Reads only."""
    status = inspect_schema(engine)
    if status.state in ("empty", "current"):
        return status
    raise _refusal(status, where or _where(engine))


def _locked(connection: Connection) -> None:
    """On PostgreSQL, wait for the migrations' advisory lock (released at commit)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _migrating(engine: Engine) -> Engine:
    """An engine whose transactions hold DDL too: ``engine`` itself, except on SQLite, where a
    separate engine drives sqlite3 in autocommit mode and opens each transaction itself."""
    if engine.dialect.name != "sqlite":
        return engine
    migrating = create_engine(engine.url, poolclass=NullPool)

    @event.listens_for(migrating, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(migrating, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrating


def unversioned_revision(connection: Connection) -> str | None:
    """The revision a database without a recorded one was made at: the newest revision whose
    tables (its ``CREATES``), and those of every revision before it, are all there. Such a
    database was made by creating the models' tables whole (as ``voisin simulate`` did before
    it ran the migrations); None: no later revision's tables, so the baseline's (r0001 checks
    and keeps the tables it finds)."""
    names = set(inspect(connection).get_table_names())
    found = None
    revisions = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())
    for revision in reversed(revisions):  # oldest first
        creates = set(getattr(revision.module, "CREATES", ()))
        if not creates <= names:
            break
        if creates:
            found = revision.revision
    return found


def _migrate(engine: Engine, *, only_if_empty: bool) -> SchemaStatus:
    """Run every revision up to the head in one transaction (``only_if_empty``: only on a
    database without Voisin's tables); the state found before."""
    migrating = _migrating(engine)
    try:
        with migrating.begin() as connection:
            _locked(connection)
            status = _status(connection)
            if status.state == "empty" or (not only_if_empty and status.state == "behind"):
                made_at = None if status.revision else unversioned_revision(connection)
                if made_at is not None:
                    command.stamp(alembic_config(connection), made_at)
                command.upgrade(alembic_config(connection), "head")
    finally:
        if migrating is not engine:
            migrating.dispose()
    return status


def prepare(engine: Engine, where: str = "") -> SchemaStatus:
    """Make an empty database Voisin's, at the head revision; accept one already there; refuse
    (:class:`SchemaError`) one behind or ahead of this release, without touching it."""
    status = _migrate(engine, only_if_empty=True)
    if status.state == "empty":
        return inspect_schema(engine)
    if status.state != "current":
        raise _refusal(status, where or _where(engine))
    return status


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What :func:`upgrade` did."""

    before: SchemaStatus
    after: SchemaStatus
    #: The copy of the SQLite database taken before upgrading (None: PostgreSQL, or nothing
    #: to upgrade).
    copy: Path | None


def upgrade(engine: Engine, where: str = "") -> Upgrade:
    """Bring the database to the head revision: from any older revision, from a release
    before migrations, or from empty. Refuses (:class:`SchemaError`) a revision it does not
    know. On SQLite the database is first copied beside itself (``<name>.before-<revision>-
    <UTC time>``)."""
    where = where or _where(engine)
    before = inspect_schema(engine)
    if before.state == "unknown":
        raise _refusal(before, where)
    if before.state == "current":
        return Upgrade(before, before, None)
    copy = _sqlite_copy(engine, before) if before.state == "behind" else None
    _migrate(engine, only_if_empty=False)
    return Upgrade(before, inspect_schema(engine), copy)


def _sqlite_file(engine: Engine) -> Path | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    return Path(str(database))


def _sqlite_copy(engine: Engine, status: SchemaStatus) -> Path | None:
    """A consistent copy of the SQLite database file, taken with SQLite's online backup API."""
    source = _sqlite_file(engine)
    if source is None:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = source.with_name(f"{source.name}.before-{status.revision or 'unversioned'}-{stamp}")
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dst.close()
    src.close()
    return target


def _where(engine: Engine) -> str:
    """The database's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)
