"""Alembic's environment for Voisin: migrate the connection :mod:`api.schema` hands over.

Voisin runs Alembic from code only (``voisin db upgrade``), never from an ``alembic.ini``:
:func:`api.schema.alembic_config` puts the open connection in the configuration's attributes.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

# The tables the migrations bring the database to: the mirror's and the API's.
import api.models  # noqa: F401
import ledger.mirror.models  # noqa: F401


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Voisin's migrations run through api.schema, with a connection")
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # SQLite alters a table by copying it (Alembic's batch mode); PostgreSQL in place.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
