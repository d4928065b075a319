"""The pragmas every connection of the server's SQLite database gets, in the server and in its
helper processes (:mod:`api.feeder_process`) alike, and how a transaction takes SQLite's write
lock from its start (:func:`begin_writing`)."""

from __future__ import annotations

from sqlalchemy import Engine, event, text
from sqlmodel import Session

__all__ = ["begin_writing", "sqlite_pragmas"]


def sqlite_pragmas(engine: Engine) -> None:
    """On SQLite (nothing elsewhere): WAL lets readers run beside the writer; FULL fsyncs every
    commit (an accepted reading survives a power cut); busy_timeout queues writers instead of
    failing."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def begin_writing(session: Session) -> None:
    """Open ``session``'s transaction now, holding SQLite's write lock (``BEGIN IMMEDIATE``),
    as the first thing it does.

    SQLite's Python driver begins a transaction only before the first write, so reads before it
    would see the database before another writer's commit and the write after them fail; a
    SAVEPOINT issued before it opens a transaction of its own, which its RELEASE then commits.
    Taking the lock first serialises the transaction with every other writer, as a row lock
    (``SELECT … FOR UPDATE``) does on PostgreSQL, whose driver has already begun.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))
