"""``voisin backup`` and ``voisin restore`` from the command line (registered by
:func:`api.cli.build_parser`; the work is in :mod:`api.backup`).

``voisin backup --data-dir DIR --to FILE`` writes a consistent archive of a data directory,
while ``voisin serve`` runs on it or not. ``voisin restore FILE --data-dir DIR`` checks an
archive whole, then brings it back into a new (or, with ``--force``, replaced) data directory
and, for a PostgreSQL backup, into the database of ``VOISIN_DATABASE_URL``.

Exit codes: 0 done; 1 failed on the way (nothing written under the target's name); 2 refused
before anything was written (bad arguments or settings, a target that exists, a folder with
no Voisin data, a damaged archive). Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_parser", "run_backup", "run_restore"]


def add_parser(sub: Any) -> None:
    """Add the ``backup`` and ``restore`` subcommands to ``sub`` (the parser's subparsers)."""
    backup = sub.add_parser(
        "backup",
        help="write a consistent backup of a data directory (while voisin serve runs, or not)",
        description=(
            "Back up a Voisin data directory into one archive: the embedded chain, the "
            "database (SQLite, or PostgreSQL through pg_dump), deployments.json and the "
            "secrets kept as files, with a manifest of checksums. A running voisin serve "
            "pauses its chain writes for the seconds of the copy. Exit code 0: written; "
            "1: failed (nothing written); 2: refused."
        ),
    )
    backup.add_argument("--data-dir", help="data directory (default: VOISIN_DATA_DIR or ./data)")
    backup.add_argument(
        "--to",
        required=True,
        metavar="FILE",
        help="the archive to write (.tar.gz by default; .tar, .tar.xz and .tar.bz2 by name)",
    )
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    backup.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for a chain write in progress to finish (default 300)",
    )
    backup.set_defaults(func=run_backup)
    restore = sub.add_parser(
        "restore",
        help="restore a backup into a new data directory (and its PostgreSQL database)",
        description=(
            "Restore a voisin backup archive: its manifest and checksums are verified before "
            "anything is written; the data directory must be new or empty (--force moves its "
            "contents aside); a PostgreSQL backup goes into the (empty) database of "
            "VOISIN_DATABASE_URL. Exit code 0: restored; 1: failed; 2: refused."
        ),
    )
    restore.add_argument("archive", metavar="FILE", help="the archive voisin backup wrote")
    restore.add_argument(
        "--data-dir", help="data directory to restore into (default: VOISIN_DATA_DIR or ./data)"
    )
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore over a non-empty data directory (moved aside whole) or database",
    )
    restore.add_argument(
        "--market",
        metavar="NAME",
        help=(
            "restore only this market of a city's backup into the city at the data directory, "
            "leaving its chain and its other markets as they are (--force moves the market's "
            "folder aside)"
        ),
    )
    restore.set_defaults(func=run_restore)


def _say(message: str) -> None:
    print(message, flush=True)


def _fail(command: str, message: str, code: int) -> int:
    print(f"voisin {command}: {message}", file=sys.stderr)
    return code


def run_backup(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.backup import BackupError, Refused, backup, locate, summary
    from api.paths import absolute
    from api.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        return _fail("backup", f"invalid settings:\n{exc}", 2)
    if args.wait < 0:
        return _fail("backup", f"--wait must be 0 or more seconds, got {args.wait}", 2)
    data_dir = absolute(args.data_dir) if args.data_dir else settings.data_dir
    try:
        source = locate(
            data_dir,
            chain=settings.chain,
            chain_key=settings.chain_key_value(),
            database_url=settings.database_url,
        )
        result = backup(source, absolute(args.to), force=args.force, wait_s=args.wait, say=_say)
    except Refused as exc:
        return _fail("backup", str(exc), 2)
    except (BackupError, OSError) as exc:
        return _fail("backup", f"failed, nothing written: {exc}", 1)
    _say(summary(result))
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.backup import (
        BackupError,
        Refused,
        after_restore,
        restore,
        restore_market,
        restore_summary,
    )
    from api.paths import absolute
    from api.settings import MARKET_NAME, Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        return _fail("restore", f"invalid settings:\n{exc}", 2)
    data_dir = absolute(args.data_dir) if args.data_dir else settings.data_dir
    if args.market is not None and not MARKET_NAME.fullmatch(args.market):
        return _fail(
            "restore",
            f"--market {args.market!r} is not a market's name (lowercase letters, digits and "
            "inner hyphens, at most 32)",
            2,
        )
    try:
        if args.market is not None:
            result = restore_market(
                absolute(args.archive),
                data_dir,
                args.market,
                chain=settings.chain,
                chain_key=settings.chain_key_value(),
                database_url=settings.database_url,
                force=args.force,
                say=_say,
            )
        else:
            result = restore(
                absolute(args.archive),
                data_dir,
                database_url=settings.database_url,
                force=args.force,
                say=_say,
            )
    except Refused as exc:
        return _fail("restore", str(exc), 2)
    except (BackupError, OSError) as exc:
        return _fail("restore", f"failed, {data_dir} left as it was: {exc}", 1)
    _say(restore_summary(result))
    for line in after_restore(result, os.environ):
        _say(f"  {line}")
    return 0
