"""The database engine factory: one place that opens the mirror's database.

Any SQLAlchemy URL works: SQLite (the embedded default, ``<data_dir>/voisin.db``) or
PostgreSQL (``postgresql+psycopg://...``) beyond one machine.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import SQLModel, create_engine

# Registers the mirror's tables on SQLModel.metadata before create_all runs.
from ledger.mirror import models as _models  # noqa: F401


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for ``url`` with the ledger's tables created.

    ``pool_size`` keeps that many connections open (none beyond it): a server whose threads
    outnumber SQLAlchemy's default pool of 5 would otherwise open and close a connection per
    request past the fifteenth, or wait for one.
    """
    connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
    pool: dict[str, int] = {}
    if pool_size is not None:
        pool = {"pool_size": pool_size, "max_overflow": 0}
    engine = create_engine(url, connect_args=connect_args, **pool)
    SQLModel.metadata.create_all(engine)
    return engine
