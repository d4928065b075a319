"""``voisin purge-readings``: delete raw signed readings past their retention (registered by
:func:`api.cli.build_parser`).

The retention is ``VOISIN_SIGNED_READING_RETENTION_DAYS`` (unset: kept for good, and the
command does nothing). Readings of slots sealed on chain and older than the retention are
deleted from the evidence store and the intake (:func:`api.privacy.purge`); the audit then
checks signatures within the window that is left, and says so in its report. Database only:
it may run beside ``voisin serve`` (a daily timer is the intended use). Exit codes: 0 done (or
nothing to do), 2 bad settings, no database, or a schema not at this release's revision.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """Add the ``purge-readings`` subcommand to ``sub``."""
    purge = sub.add_parser(
        "purge-readings",
        help="delete signed readings older than VOISIN_SIGNED_READING_RETENTION_DAYS",
        description=(
            "Delete the raw signed meter readings older than "
            "VOISIN_SIGNED_READING_RETENTION_DAYS whose slots are sealed on chain (unset: they "
            "are kept for good and nothing is done). The committed readings that statements "
            "and bills use stay. See docs/privacy.md."
        ),
    )
    purge.add_argument("--data-dir", help="data directory (default: VOISIN_DATA_DIR or ./data)")
    purge.set_defaults(func=_purge)


def _purge(args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from api.paths import absolute
    from api.privacy import purge
    from api.schema import inspect_schema
    from api.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"voisin purge-readings: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if args.data_dir:
        settings = settings.model_copy(update={"data_dir": absolute(args.data_dir)})
    days = settings.signed_reading_retention_days
    if days is None:
        print(
            "VOISIN_SIGNED_READING_RETENTION_DAYS is not set: signed readings are kept for "
            "good; nothing to purge"
        )
        return 0
    if not settings.database_url and not (settings.data_dir / "voisin.db").is_file():
        print(
            f"voisin purge-readings: no database at {settings.data_dir / 'voisin.db'}",
            file=sys.stderr,
        )
        return 2
    engine = create_engine(settings.resolved_database_url())
    try:
        status = inspect_schema(engine)
        if status.state != "current":
            print(f"voisin purge-readings: the database is {status.describe()}", file=sys.stderr)
            return 2
        done = purge(engine, days, time.time())
    except SQLAlchemyError as exc:  # one transaction: nothing was deleted
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"voisin purge-readings: cannot use the database: {reason}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(
        f"deleted {done.signed_readings} signed reading(s) and {done.intake_readings} intake "
        f"reading(s) of sealed slots before slot {done.before_slot} ({days} days' retention); "
        f"the audit checks signatures from slot {done.evidence_from_slot} on"
    )
    return 0
