"""The pragmas every connection of the server's SQLite database gets, in the server and in its
helper processes (:mod:`api.feeder_process`) alike."""

from __future__ import annotations

from sqlalchemy import Engine, event

__all__ = ["sqlite_pragmas"]


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
