"""``voisin backup`` and ``voisin restore``: a data directory in one archive, and back.

**What a backup holds.** One tar file (gzip-compressed unless its name says otherwise, see
:func:`compression_of`), written beside its destination, fsynced and renamed into place, so
that a crash never leaves half an archive under that name. Its first member is
``manifest.json`` (:class:`Manifest`): the format version, Voisin's version, when, the chain
(kind, id, contract, head block), the database (dialect, schema revision) and the sha256 of
every other member. The members keep the data directory's layout: the embedded chain's LMDB
store (``chain/chain.lmdb/data.mdb``), the SQLite database (``voisin.db``) or a ``pg_dump`` of
the PostgreSQL one (``database.pgdump``, custom format), ``deployments.json``,
``operator.key`` and the generated secrets (``operator.token``, ``key.secret``) when they are
files.

**Why it is consistent.** A backup taken while ``voisin serve`` runs is a state the server
could have crashed in, which its crash recovery already converges from. Every chain write of
the API runs under the chain gate's lock (:mod:`api.chain_gate`), and that lock also holds the
data directory's ``chain-writes.lock`` (``flock``) from a thread's first acquisition to its
last release: around each intent's drive (recorded, sent, confirmed) and each outbox step
(evidence stored, batch sent, outcome recorded). The backup takes that file lock, copies the
chain and then the database, and lets go (:func:`writes_paused`). So:

- the database copy is never ahead of the chain copy: no transaction is sent between the two
  copies, and every outcome the database records is of a transaction sent before the lock
  was taken, hence in the chain copy;
- every intent and queued reading or order whose transaction the chain copy holds is in the
  database copy: it was recorded before its transaction was sent.

What the database copy holds beyond the chain copy (readings and orders accepted meanwhile,
intents recorded and not yet sent) is what a crash leaves; the outbox and the intent runner
finish it after a restore. The API's requests and its outbox wait for the copy (the lock),
they do not fail; readings are still accepted meanwhile (the intake needs no chain).

**A city** (a data directory with ``markets/<name>/``, :mod:`api.city`) goes into one archive
the same way, under the city's one chain-writes lock: the chain, each market's folder
(``markets/<name>/deployments.json``, its operator token, its SQLite database when the city has
no PostgreSQL), the city's secrets, and one ``pg_dump`` of the city's database (every market's
schema) when it has PostgreSQL. The manifest lists the markets with their contracts and schema
revisions.

**Restore** verifies the manifest and every checksum before it writes anything
(:func:`verify_archive`), unpacks into a new folder beside the target and renames it into
place (a non-empty target is moved aside, with ``--force`` only), after restoring the
PostgreSQL dump with ``pg_restore`` in one transaction. One market of a city's archive
restores on its own into the running city's folder (:func:`restore_market`): its folder and
its schema only, onto the chain it was backed up from. A restore whose chain went on after the
backup (a JSON-RPC node's, or the city's for one market) marks each database it restored, so
that its next start settles once what the backup had queued (:mod:`api.recovery`).

Pure parts (the manifest, names, sizes, URLs) are kept apart from the I/O (the lock, the
copies, the archive); :mod:`api.backup_cli` is the command line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final

from api.city import MARKETS_DIR, city_markets, market_schema, schema_url
from api.settings import MARKET_NAME

__all__ = [
    "BackupError",
    "BackupResult",
    "Manifest",
    "Refused",
    "RestoreResult",
    "backup",
    "restore",
    "restore_market",
    "verify_archive",
]

#: The archive format this module writes and reads.
FORMAT_VERSION: Final = 1
MANIFEST_NAME: Final = "manifest.json"
#: Members, named as the files of a data directory (but the PostgreSQL dump).
CHAIN_MEMBER: Final = "chain/chain.lmdb/data.mdb"
SQLITE_MEMBER: Final = "voisin.db"
PG_DUMP_MEMBER: Final = "database.pgdump"
DEPLOYMENTS: Final = "deployments.json"
#: Files of the data directory copied as they are, when present.
DATA_FILES: Final = (DEPLOYMENTS, "operator.key", "operator.token", "key.secret")
SECRET_FILES: Final = frozenset({"operator.key", "operator.token", "key.secret"})
EMBEDDED, JSON_RPC = "embedded", "json-rpc"
SQLITE, POSTGRESQL = "sqlite", "postgresql"
#: How long a backup waits for the chain writes in progress before giving up (seconds).
DEFAULT_WAIT_S: Final = 300.0

Say = Callable[[str], None]


class BackupError(Exception):
    """A backup or a restore that failed; nothing was written under the target's name."""


class Refused(BackupError, ValueError):
    """Refused before anything was written: what was wrong, and what is allowed."""


# ───────────────────────────── The manifest (pure) ─────────────────────────────


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One member of the archive: its sha256 (hex), size in bytes and file mode."""

    sha256: str
    size: int
    mode: int


@dataclass(frozen=True, slots=True)
class MarketEntry:
    """One market of a city's archive: its contract and its database's schema revision."""

    contract: str
    schema_revision: str | None


@dataclass(frozen=True)
class Manifest:
    """What an archive holds, and the checksums that prove it is whole."""

    voisin_version: str
    created_utc: str
    chain_kind: str
    chain_id: int
    contract: str
    #: The chain's head block when the copy was taken (on a JSON-RPC node: the node's head
    #: while the database was copied).
    head_block: int
    database_dialect: str
    #: The Alembic revision of the database (its ``alembic_version`` table), if it has one.
    schema_revision: str | None
    files: dict[str, FileEntry] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    #: A city's markets by name (empty for one market); a city's ``contract`` is empty and
    #: its ``schema_revision`` the one its markets share, if they do.
    markets: dict[str, MarketEntry] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        # Modes in octal, as people read them ("600").
        data["files"] = {
            name: {**asdict(entry), "mode": f"{entry.mode:o}"}
            for name, entry in sorted(self.files.items())
        }
        if not self.markets:
            del data["markets"]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """The manifest ``text`` describes; :class:`Refused` saying what is wrong with it."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(f"its {MANIFEST_NAME} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise Refused(f"its {MANIFEST_NAME} is not a JSON object")
        version = data.get("format")
        if version != FORMAT_VERSION:
            raise Refused(
                f"its format is {version!r}; this Voisin reads backup format {FORMAT_VERSION}"
            )
        try:
            files = {
                str(name): FileEntry(str(e["sha256"]), int(e["size"]), int(str(e["mode"]), 8))
                for name, e in dict(data["files"]).items()
            }
            manifest = cls(
                voisin_version=str(data["voisin_version"]),
                created_utc=str(data["created_utc"]),
                chain_kind=str(data["chain_kind"]),
                chain_id=int(data["chain_id"]),
                contract=str(data["contract"]),
                head_block=int(data["head_block"]),
                database_dialect=str(data["database_dialect"]),
                schema_revision=(
                    None if data.get("schema_revision") is None else str(data["schema_revision"])
                ),
                files=files,
                markets={
                    str(name): MarketEntry(
                        str(m["contract"]),
                        None if m.get("schema_revision") is None else str(m["schema_revision"]),
                    )
                    for name, m in dict(data.get("markets") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Refused(f"its {MANIFEST_NAME} lacks or garbles a field: {exc!r}") from exc
        problem = manifest.problem()
        if problem:
            raise Refused(f"its {MANIFEST_NAME} is inconsistent: {problem}")
        return manifest

    def problem(self) -> str | None:
        """What makes this manifest unusable, or None."""
        if self.chain_kind not in (EMBEDDED, JSON_RPC):
            return f"unknown chain kind {self.chain_kind!r}"
        if self.database_dialect not in (SQLITE, POSTGRESQL):
            return f"unknown database dialect {self.database_dialect!r}"
        for name, entry in self.files.items():
            if not safe_member(name) or name == MANIFEST_NAME:
                return f"member name {name!r} is not a plain relative path"
            if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256) or entry.size < 0:
                return f"member {name} has no valid sha256 or size"
        bad = [n for n in self.markets if not MARKET_NAME.fullmatch(n)]
        if bad:
            return f"market name {bad[0]!r} is not a market's name"
        needed = [DEPLOYMENTS, SQLITE_MEMBER if self.database_dialect == SQLITE else PG_DUMP_MEMBER]
        if self.markets:
            needed = [f"{MARKETS_DIR}/{n}/{DEPLOYMENTS}" for n in sorted(self.markets)]
            if self.database_dialect == SQLITE:
                needed += [f"{MARKETS_DIR}/{n}/{SQLITE_MEMBER}" for n in sorted(self.markets)]
            else:
                needed.append(PG_DUMP_MEMBER)
        if self.chain_kind == EMBEDDED:
            needed.append(CHAIN_MEMBER)
        missing = [n for n in needed if n not in self.files]
        return f"it lists no {', '.join(missing)}" if missing else None

    @property
    def secrets(self) -> list[str]:
        return sorted(n for n in self.files if PurePosixPath(n).name in SECRET_FILES)

    @property
    def database_members(self) -> list[str]:
        """The members that hold the database: the dump, or each SQLite file."""
        if self.database_dialect == POSTGRESQL:
            return [PG_DUMP_MEMBER]
        if not self.markets:
            return [SQLITE_MEMBER]
        return [f"{MARKETS_DIR}/{n}/{SQLITE_MEMBER}" for n in sorted(self.markets)]

    @property
    def data_members(self) -> list[str]:
        """The members that go into the data directory (all but the PostgreSQL dump)."""
        return sorted(n for n in self.files if n != PG_DUMP_MEMBER)


def safe_member(name: str) -> bool:
    """Whether ``name`` is a relative path that stays inside the folder it is unpacked in."""
    path = PurePosixPath(name)
    return (
        bool(name)
        and not path.is_absolute()
        and "\\" not in name
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


def compression_of(path: Path) -> str:
    """The tarfile compression the archive's name asks for: ``.tar`` none, ``.tar.xz`` or
    ``.txz`` xz, ``.tar.bz2`` bz2, anything else (``.tar.gz``, ``.tgz``, …) gzip."""
    name = path.name.lower()
    if name.endswith(".tar"):
        return ""
    if name.endswith((".tar.xz", ".txz")):
        return "xz"
    if name.endswith((".tar.bz2", ".tbz2")):
        return "bz2"
    return "gz"


def human_size(size: int) -> str:
    """``size`` bytes for people: ``812 B``, ``3.4 kB``, ``12.0 MB``, ``1.2 GB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def dialect_of(database_url: str) -> str:
    """``sqlite`` or ``postgresql`` for a SQLAlchemy URL; :class:`Refused` for another."""
    scheme = database_url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in (SQLITE, POSTGRESQL, "postgres"):
        return SQLITE if scheme == SQLITE else POSTGRESQL
    raise Refused(f"cannot back up a {scheme} database: Voisin backs up SQLite and PostgreSQL")


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """The libpq connection URL ``pg_dump`` and ``pg_restore`` take for a SQLAlchemy URL
    (driver dropped), and the environment that carries its password (``PGPASSWORD``), so
    that no password shows in the process list."""
    from sqlalchemy.engine import URL, make_url

    url = make_url(database_url)
    env = {"PGPASSWORD": str(url.password)} if url.password else {}
    plain = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return plain.render_as_string(hide_password=False), env


def sqlite_path(database_url: str) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise Refused(f"{database_url} is not a SQLite file")
    return Path(database).resolve()


# ───────────────────────────── The chain-writes lock ─────────────────────────────


@contextmanager
def writes_paused(data_dir: Path, say: Say, wait_s: float = DEFAULT_WAIT_S) -> Iterator[None]:
    """Hold the data directory's chain-writes lock (:data:`api.chain_gate.WRITES_LOCK`): a
    ``voisin serve`` on it finishes the chain write it is in (and the database record of its
    outcome) and starts no other until this ends; its threads wait meanwhile."""
    from api.chain_gate import WRITES_LOCK, flock_until, lock_file

    fd = lock_file(data_dir / WRITES_LOCK)
    try:
        started = time.monotonic()
        if not flock_until(fd, started):
            say("  waiting for the chain write in progress to finish…")
            if not flock_until(fd, started + wait_s):
                raise BackupError(
                    f"the chain writes of {data_dir} did not pause within {wait_s:g} s "
                    f"({data_dir / WRITES_LOCK} stayed locked); try again, or raise --wait"
                )
        try:
            yield
        finally:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ───────────────────────────── Backup ─────────────────────────────


@dataclass(frozen=True)
class Source:
    """Where a data directory's parts are, as the settings say."""

    data_dir: Path
    chain_kind: str
    chain: str
    chain_key: str | None
    database_url: str
    dialect: str
    #: A city's markets (folders of ``markets/``); empty for one market.
    markets: tuple[str, ...] = ()

    def sqlite_files(self) -> dict[str, Path]:
        """Each SQLite database of the source by its member name (none with PostgreSQL)."""
        if self.dialect != SQLITE:
            return {}
        if not self.markets:
            return {SQLITE_MEMBER: sqlite_path(self.database_url)}
        return {
            f"{MARKETS_DIR}/{n}/{SQLITE_MEMBER}": self.data_dir / MARKETS_DIR / n / SQLITE_MEMBER
            for n in self.markets
        }


@dataclass
class BackupResult:
    target: Path
    manifest: Manifest
    archive_bytes: int
    #: How long the chain writes were paused (the lock held), and the whole backup took.
    paused_s: float
    took_s: float
    #: How long the backup waited for a chain write in progress before it could pause them.
    waited_s: float


def locate(
    data_dir: Path, *, chain: str, chain_key: str | None, database_url: str | None
) -> Source:
    """What to back up in ``data_dir``; :class:`Refused` if it holds no Voisin data."""
    if not data_dir.is_dir():
        raise Refused(f"{data_dir} is not a folder: no Voisin data to back up")
    markets: tuple[str, ...] = ()
    if not (data_dir / DEPLOYMENTS).is_file():
        markets = city_markets(data_dir)
        if not markets:
            raise Refused(
                f"{data_dir} holds no Voisin data ({data_dir / DEPLOYMENTS} is missing, and "
                f"no market under {data_dir / MARKETS_DIR} has one)"
            )
    kind = EMBEDDED if chain == "embedded" else JSON_RPC
    if kind == JSON_RPC and not chain.startswith(("http://", "https://")):
        raise Refused(f"cannot back up chain {chain!r}: 'embedded' or a JSON-RPC http(s) URL")
    if kind == EMBEDDED and not (data_dir / CHAIN_MEMBER).is_file():
        raise Refused(f"{data_dir} holds no embedded chain ({data_dir / CHAIN_MEMBER} is missing)")
    url = database_url or f"sqlite:///{data_dir / SQLITE_MEMBER}"
    dialect = dialect_of(url)
    if markets and dialect == SQLITE and database_url:
        raise Refused(
            f"{data_dir} holds a city, whose markets keep SQLite in their own folders or one "
            "PostgreSQL database: leave VOISIN_DATABASE_URL unset, or give the city's "
            "PostgreSQL URL"
        )
    source = Source(data_dir, kind, chain, chain_key, url, dialect, markets)
    for path in source.sqlite_files().values():
        if not path.is_file():
            raise Refused(f"{data_dir} holds no database ({path} is missing)")
    return source


def check_target(target: Path, *, force: bool) -> None:
    """Refuse a destination that exists (without ``force``) or cannot be written."""
    from api.paths import unwritable_file

    if target.exists() and not force:
        raise Refused(f"{target} exists; choose another name, or --force to replace it")
    problem = unwritable_file(target, "--to")
    if problem:
        raise Refused(problem)


def backup(
    source: Source,
    target: Path,
    *,
    force: bool = False,
    wait_s: float = DEFAULT_WAIT_S,
    say: Say = print,
) -> BackupResult:
    """Write the backup of ``source`` to ``target`` (see the module's docstring)."""
    started = time.monotonic()
    check_target(target, force=force)
    records = {name: _deployments(source.data_dir / MARKETS_DIR / name) for name in source.markets}
    deployments = records if source.markets else {"": _deployments(source.data_dir)}
    city = f"city of {len(source.markets)} markets, " if source.markets else ""
    say(
        f"voisin backup: {source.data_dir} ({city}chain {source.chain_kind}, database "
        f"{source.dialect}) to {target}"
    )
    rpc = _open_rpc(source) if source.chain_kind == JSON_RPC else None
    staging: Path | None = None
    try:
        chain_id = _chain_id(rpc)
        contracts = {
            name: _contract(source.data_dir, name, record, chain_id)
            for name, record in deployments.items()
        }
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent)
        )
        waiting = time.monotonic()
        with writes_paused(source.data_dir, say, wait_s):
            paused = time.monotonic()
            head = _copy_chain(source, staging, rpc)
            revisions = _copy_database(source, staging)
            _copy_files(source.data_dir, staging)
            for name in source.markets:
                (staging / MARKETS_DIR / name).mkdir(parents=True, exist_ok=True)
                _copy_files(source.data_dir / MARKETS_DIR / name, staging / MARKETS_DIR / name)
            resumed = time.monotonic()
        say(
            f"  chain writes paused {resumed - paused:.2f} s while the chain and the database "
            "were copied"
        )
        for member in source.sqlite_files():
            _finish_sqlite_copy(staging / member)
        shared = set(revisions.values())
        manifest = Manifest(
            voisin_version=voisin_version(),
            created_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            chain_kind=source.chain_kind,
            chain_id=chain_id,
            contract=contracts.get("", ""),
            head_block=head,
            database_dialect=source.dialect,
            schema_revision=shared.pop() if len(shared) == 1 else None,
            files=checksums(staging),
            markets={
                name: MarketEntry(contracts[name], revisions[name]) for name in source.markets
            },
        )
        _say_contents(manifest, source, say)
        size = write_archive(staging, manifest, target)
    finally:
        if rpc is not None:
            rpc.close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(
        target,
        manifest,
        size,
        paused_s=resumed - paused,
        took_s=time.monotonic() - started,
        waited_s=paused - waiting,
    )


def voisin_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("voisin")
    except PackageNotFoundError:
        return "unknown"


def _deployments(data_dir: Path) -> dict[str, Any]:
    try:
        records = json.loads((data_dir / DEPLOYMENTS).read_text())
    except (OSError, ValueError) as exc:
        raise Refused(f"{data_dir / DEPLOYMENTS} cannot be read: {exc}") from exc
    if not isinstance(records, dict):
        raise Refused(f"{data_dir / DEPLOYMENTS} is not an object keyed by chain id")
    return records


def _contract(data_dir: Path, market: str, records: dict[str, Any], chain_id: int) -> str:
    """The contract address ``records`` (a deployments.json) holds for ``chain_id``."""
    entry = records.get(str(chain_id))
    if not isinstance(entry, dict) or "address" not in entry:
        folder = data_dir / MARKETS_DIR / market if market else data_dir
        raise Refused(f"{folder / DEPLOYMENTS} records no deployment on chain {chain_id}")
    return str(entry["address"])


def _open_rpc(source: Source) -> Any:
    from ledger.chain.backends import open_chain
    from ledger.errors import LedgerError

    try:
        return open_chain(source.chain, source.data_dir, source.chain_key)
    except LedgerError as exc:
        raise BackupError(f"cannot reach the chain: {exc}") from exc


def _chain_id(rpc: Any) -> int:
    if rpc is not None:
        return int(rpc.chain_id)
    from ledger.chain.embedded import CHAIN_ID

    return CHAIN_ID


def _copy_chain(source: Source, staging: Path, rpc: Any) -> int:
    """Copy the embedded chain into ``staging`` (a JSON-RPC node's chain stays the node's);
    the head block."""
    if rpc is not None:
        return int(rpc.w3.eth.block_number)
    from ledger.chain.embedded import CHAIN_DIR_NAME, copy_chain

    return copy_chain(source.data_dir, staging / CHAIN_DIR_NAME)


def _copy_database(source: Source, staging: Path) -> dict[str, str | None]:
    """Copy the database into ``staging``; its schema revision by market name (``""`` for
    one market)."""
    names = source.markets or ("",)
    if source.dialect == SQLITE:
        revisions = {}
        for name, (member, path) in zip(names, source.sqlite_files().items(), strict=True):
            dest = staging / member
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = sqlite3.connect(path, timeout=30)
            try:
                dst = sqlite3.connect(dest)
                try:
                    # SQLite's online backup, in one step: one read transaction, so a
                    # consistent state, while the API's writers go on in the write-ahead log.
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
            revisions[name] = _sqlite_revision(dest)
        return revisions
    revisions = {
        name: _postgres_revision(
            schema_url(source.database_url, name) if name else source.database_url
        )
        for name in names
    }
    # One dump of the whole database: a city's every market schema with it.
    _pg_dump(source.database_url, staging / PG_DUMP_MEMBER)
    return revisions


def _finish_sqlite_copy(path: Path) -> None:
    """Make the copy one self-contained file (no write-ahead log) and check it."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=DELETE")
        (verdict,) = db.execute("PRAGMA quick_check").fetchone()
    finally:
        db.close()
    if verdict != "ok":
        raise BackupError(f"the copy of the SQLite database failed its check: {verdict}")
    _fsync(path)


def _sqlite_revision(path: Path) -> str | None:
    db = sqlite3.connect(path)
    try:
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone()
        row = db.execute("SELECT version_num FROM alembic_version").fetchone() if found else None
    finally:
        db.close()
    return None if row is None else str(row[0])


def _postgres_revision(database_url: str) -> str | None:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    return None if value is None else str(value)


def pg_tool(name: str) -> Path:
    """The PostgreSQL client program ``name`` (``pg_dump``, ``pg_restore``): on the PATH, else
    the newest under ``/usr/lib/postgresql/*/bin`` (where Debian's packages put them)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / name).is_file()),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
    )
    if not versions:
        raise BackupError(f"{name} is not installed (the PostgreSQL client programs)")
    return versions[-1] / name


def _run_pg(name: str, args: list[str], database_url: str) -> None:
    target, env = libpq_target(database_url)
    done = subprocess.run(
        [str(pg_tool(name)), *args, f"--dbname={target}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"{name} failed (exit {done.returncode}): {done.stderr.strip()}")


def _pg_dump(database_url: str, dest: Path) -> None:
    # Custom format: compressed, and pg_restore can restore it in one transaction. Owners and
    # grants are left out: the restored database belongs to whoever restores it.
    _run_pg(
        "pg_dump",
        ["--format=custom", "--no-owner", "--no-privileges", f"--file={dest}"],
        database_url,
    )


def _copy_files(data_dir: Path, staging: Path) -> None:
    for name in DATA_FILES:
        path = data_dir / name
        if path.is_file():
            shutil.copyfile(path, staging / name)
            os.chmod(staging / name, path.stat().st_mode & 0o777)
    from ledger.contract.upgrade import ARCHIVE_DIR

    # The database mirrors of deployments a contract upgrade froze: their audit reads them.
    # Written once by the upgrade, never by a running server.
    for path in sorted((data_dir / ARCHIVE_DIR).glob("*.db")):
        (staging / ARCHIVE_DIR).mkdir(exist_ok=True)
        shutil.copyfile(path, staging / ARCHIVE_DIR / path.name)
        os.chmod(staging / ARCHIVE_DIR / path.name, path.stat().st_mode & 0o777)


def checksums(folder: Path) -> dict[str, FileEntry]:
    """Every file under ``folder``, by its relative name: sha256, size and mode."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            entries[name] = FileEntry(
                _sha256(path), path.stat().st_size, path.stat().st_mode & 0o777
            )
    return entries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _say_contents(manifest: Manifest, source: Source, say: Say) -> None:
    files = manifest.files
    if manifest.chain_kind == EMBEDDED:
        say(f"  chain: block {manifest.head_block}, {human_size(files[CHAIN_MEMBER].size)}")
    else:
        say(
            f"  chain: not in the archive: on a JSON-RPC node the chain is the node's to back "
            f"up ({source.chain}, chain {manifest.chain_id}, head block {manifest.head_block})"
        )
    size = sum(files[m].size for m in manifest.database_members)
    revision = manifest.schema_revision or "no Alembic revision"
    if manifest.markets and manifest.schema_revision is None:
        revision = ", ".join(
            f"{name} {m.schema_revision or 'no Alembic revision'}"
            for name, m in sorted(manifest.markets.items())
        )
    say(f"  database: {manifest.database_dialect}, {human_size(size)} ({revision})")
    if manifest.markets:
        say(f"  markets: {', '.join(sorted(manifest.markets))}")
    plain = [
        n
        for n in sorted(files)
        if PurePosixPath(n).name in DATA_FILES and PurePosixPath(n).name not in SECRET_FILES
    ]
    say(f"  files: {', '.join(plain + manifest.secrets)}")
    if manifest.secrets:
        say(
            f"  the archive holds secrets ({', '.join(manifest.secrets)}): it is written mode "
            "0600; keep it where the data directory's secrets may be"
        )


def write_archive(staging: Path, manifest: Manifest, target: Path) -> int:
    """Write ``manifest`` and the files of ``staging`` as one tar at ``target``, atomically:
    into a temporary file beside it (mode 0600), fsynced, renamed over it, the folder
    fsynced. Returns the archive's size in bytes."""
    compression = compression_of(target)
    # tarfile's stubs type the mode as literals; it is one of "w", "w:gz", "w:xz", "w:bz2".
    mode: Any = f"w:{compression}" if compression else "w"
    fd, part_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    part = Path(part_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode=mode) as tar:
                _add(tar, MANIFEST_NAME, io.BytesIO(manifest.to_json().encode()), 0o600)
                for name, entry in sorted(manifest.files.items()):
                    with open(staging / name, "rb") as f:
                        _add(tar, name, f, entry.mode, entry.size)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target.stat().st_size


def _add(tar: tarfile.TarFile, name: str, data: Any, mode: int, size: int | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.size = size if size is not None else len(data.getbuffer())
    info.mode = mode
    info.mtime = int(time.time())
    # No owner names or ids: the restored files belong to whoever restores them.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, data)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    folder = os.open(path, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


# ───────────────────────────── Restore ─────────────────────────────


@dataclass
class RestoreResult:
    data_dir: Path
    manifest: Manifest
    #: Where the data directory's former contents went (``--force`` on a non-empty one), or
    #: the market's former folder (a market's restore).
    moved_aside: Path | None
    took_s: float
    #: The one market restored into a city, or None (the whole archive was restored).
    market: str | None = None


#: Errors of a damaged archive, as tarfile and its decompressors raise them.
_DAMAGED = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError)


def verify_archive(archive: Path) -> Manifest:
    """Read ``archive`` whole and check it against its manifest (every member listed, whole
    and unaltered, nothing else in it); the manifest, or :class:`Refused` naming the problem.
    Writes nothing."""
    if not archive.is_file():
        raise Refused(f"{archive} is not a file")
    try:
        with tarfile.open(archive, "r:*") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST_NAME or not first.isfile():
                raise Refused(f"{archive} is not a Voisin backup (no {MANIFEST_NAME} first)")
            manifest = Manifest.from_json(_read_member(tar, first))
            seen: set[str] = set()
            for member in tar:
                if member is first:  # iterating starts over from the first member
                    continue
                entry = _expected(manifest, member, seen)
                stream = tar.extractfile(member)
                assert stream is not None
                digest, size = _hash_stream(stream)
                if (digest, size) != (entry.sha256, entry.size):
                    raise Refused(
                        f"{archive} is damaged: {member.name} does not match its checksum "
                        f"(sha256 {digest[:12]}…, {size} bytes; the manifest says "
                        f"{entry.sha256[:12]}…, {entry.size} bytes)"
                    )
    except Refused:
        raise
    except _DAMAGED as exc:
        raise Refused(f"{archive} is damaged or not a tar archive: {exc}") from exc
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise Refused(f"{archive} is incomplete: {', '.join(missing)} missing")
    return manifest


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(member)
    assert stream is not None
    return stream.read()


def _expected(manifest: Manifest, member: tarfile.TarInfo, seen: set[str]) -> FileEntry:
    name = member.name
    if not member.isfile() or not safe_member(name):
        raise Refused(f"the archive holds {name!r}, which is not a plain file inside it")
    entry = manifest.files.get(name)
    if entry is None or name in seen:
        raise Refused(f"the archive holds {name!r} twice or unlisted in its manifest")
    seen.add(name)
    return entry


def _hash_stream(stream: Any, out: Any = None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest(), size


def entries_of(folder: Path, ignore: Iterable[str] = ()) -> list[str]:
    """The names in ``folder`` (none if it does not exist), but ``ignore``."""
    if not folder.exists():
        return []
    skip = set(ignore)
    return sorted(p.name for p in folder.iterdir() if p.name not in skip)


def in_use(data_dir: Path) -> str | None:
    """Why ``data_dir`` is in use by a running Voisin (its chain held, or a server answering
    at its ``serve.url``), or None."""
    import fcntl

    from api.paths import SERVED_AT

    lock = data_dir / "chain" / "chain.lock"
    if lock.is_file():
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f"another process holds its chain ({lock}): stop voisin serve first"
        finally:
            os.close(fd)
    served = data_dir / SERVED_AT
    if served.is_file():
        import httpx

        url = served.read_text().strip()
        try:
            httpx.get(f"{url}/health", timeout=2)
        except (httpx.HTTPError, ValueError):
            return None
        return f"a voisin serve answers at {url} on it: stop it first"
    return None


def restore(
    archive: Path,
    data_dir: Path,
    *,
    database_url: str | None = None,
    force: bool = False,
    say: Say = print,
) -> RestoreResult:
    """Restore ``archive`` into ``data_dir`` (and the PostgreSQL database of
    ``database_url`` when the backup holds one). Everything is checked before anything is
    written; then the data directory is built beside its place and renamed into it."""
    started = time.monotonic()
    say(f"voisin restore: {archive} to {data_dir}")
    manifest = verify_archive(archive)
    say(
        f"  archive verified: {len(manifest.files)} files, chain {manifest.chain_kind} "
        f"{manifest.chain_id} block {manifest.head_block}, database {manifest.database_dialect}"
        f", taken {manifest.created_utc} by Voisin {manifest.voisin_version}"
    )
    target_url = _restore_target(manifest, data_dir, database_url, force=force)
    busy = in_use(data_dir)
    if busy:
        raise Refused(f"{data_dir} is in use: {busy}")
    present = entries_of(data_dir)
    if present and not force:
        raise Refused(
            f"{data_dir} is not empty ({', '.join(present[:5])}{'…' if len(present) > 5 else ''}"
            "); restore into a new or empty folder, or --force to move its contents aside"
        )
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{data_dir.name}.", suffix=".restore", dir=data_dir.parent)
    )
    try:
        _unpack(archive, manifest, staging)
        with _restoring(data_dir, archive) as restoring:
            if target_url is not None:
                say("  restoring the PostgreSQL database with pg_restore…")
                _pg_restore(staging / PG_DUMP_MEMBER, target_url, clean=force)
                restoring.written = True
                (staging / PG_DUMP_MEMBER).unlink()
            if manifest.chain_kind == JSON_RPC:
                # The node's chain went on after the backup: its next start must know.
                for url in _restored_databases(manifest, staging, target_url):
                    _mark_restored(url, manifest.head_block)
            restoring.written = True
            moved = _put_in_place(staging, data_dir, aside=bool(present))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(data_dir, manifest, moved, time.monotonic() - started)


def _put_in_place(staged: Path, folder: Path, *, aside: bool) -> Path | None:
    """Rename the restored ``staged`` folder to ``folder``, its mode following the umask as
    `mkdir` would make it; ``aside``: the folder there is moved aside first (to
    :func:`set_aside_name`), and where it went is returned."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staged, 0o777 & ~umask)
    moved = None
    if aside:
        moved = folder.with_name(set_aside_name(folder.name, datetime.now(UTC)))
        os.rename(folder, moved)
    os.replace(staged, folder)
    _fsync_dir(folder.parent)
    return moved


@dataclass
class _Restoring:
    """A restore under way into a folder: whether it has written outside its staging folder
    (from then on a stop leaves the folder to be restored again)."""

    written: bool = False


@contextmanager
def _restoring(folder: Path, archive: Path) -> Iterator[_Restoring]:
    """Mark ``folder`` as being restored (:func:`restoring_mark`) for the block's length: the
    mark goes when the block ends, or when it fails before it had written anything."""
    mark = _begin_restoring(folder, archive)
    state = _Restoring()
    try:
        yield state
    except BaseException:
        if not state.written:
            _end_restoring(mark)  # nothing changed: nothing to finish
        raise
    _end_restoring(mark)


def restoring_mark(folder: Path) -> Path:
    """The file beside ``folder`` (a data directory, or a city's market folder) that says a
    restore into it began and has not finished."""
    return folder.with_name(f".{folder.name}.restoring")


def _begin_restoring(folder: Path, archive: Path) -> Path:
    """Say, durably, that a restore into ``folder`` begins: from the first write that cannot
    be undone until the restored folder is in place, a server must not start on it."""
    mark = restoring_mark(folder)
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(
        f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {archive.resolve()}\n", encoding="utf-8"
    )
    _fsync(mark)
    _fsync_dir(mark.parent)
    return mark


def _end_restoring(mark: Path) -> None:
    mark.unlink(missing_ok=True)
    _fsync_dir(mark.parent)


def unfinished_restore(folder: Path) -> str | None:
    """Why a server must not start on ``folder``: a restore into it began and did not finish
    (it stopped, or failed after it had written); None if none did."""
    mark = restoring_mark(folder)
    try:
        began = mark.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    when, _, archive = began.partition(" ")
    again = f"voisin restore {archive or 'ARCHIVE'} --data-dir … --force"
    return (
        f"a restore into {folder} began at {when} and did not finish ({mark} says so): its "
        f"database and folder may not belong together. Run the restore again ({again}); it "
        "removes that file once it is done"
    )


def set_aside_name(name: str, when: datetime) -> str:
    """The name a folder ``name`` is moved aside to before a restore replaces it (UTC time;
    never a market's name, so a city never serves what was set aside)."""
    return f"{name}.before-restore-{when:%Y%m%dT%H%M%SZ}"


def restore_market(
    archive: Path,
    data_dir: Path,
    market: str,
    *,
    chain: str = "embedded",
    chain_key: str | None = None,
    database_url: str | None = None,
    force: bool = False,
    say: Say = print,
) -> RestoreResult:
    """Restore market ``market`` of the city backup ``archive`` into the city at ``data_dir``,
    leaving its chain and its other markets as they are: the market's folder (and, in a
    PostgreSQL city, the market's schema of the database of ``database_url``) become the
    backup's. The chain must be the one the backup was taken from, holding the market's
    contract and at or beyond the backup's head; the market's mirror then catches up with it
    as after a crash. Everything is checked before anything is written; the market's former
    folder is moved aside (``force`` only)."""
    started = time.monotonic()
    say(f"voisin restore: market {market} of {archive} into the city at {data_dir}")
    manifest = verify_archive(archive)
    if not manifest.markets:
        raise Refused(
            f"{archive} holds one market's data directory, not a city: restore it whole, "
            "without --market"
        )
    if market not in manifest.markets:
        raise Refused(
            f"the backup holds no market {market!r}; its markets are "
            f"{', '.join(sorted(manifest.markets))}"
        )
    if not (data_dir / MARKETS_DIR).is_dir():
        raise Refused(
            f"{data_dir} is not a city (no {MARKETS_DIR} folder): restore the whole backup into "
            "a new folder instead, without --market"
        )
    busy = in_use(data_dir)
    if busy:
        raise Refused(f"{data_dir} is in use: {busy}")
    folder = data_dir / MARKETS_DIR / market
    schema_target = _market_restore_target(manifest, market, data_dir, database_url)
    if not force:
        present = entries_of(folder)
        if present or (schema_target is not None and _schema_tables(schema_target, market)):
            raise Refused(
                f"market {market} already has data in {data_dir}: --force moves its folder "
                f"aside (to {folder.with_name(set_aside_name(market, datetime.now(UTC)))}) and "
                "puts the backup's in its place"
            )
    contract = manifest.markets[market].contract
    _check_market_chain(archive, manifest, market, contract, data_dir, chain, chain_key)
    say(
        f"  archive verified: market {market}, contract {contract}, backed up at block "
        f"{manifest.head_block} on {manifest.created_utc}; the chain holds it"
    )
    prefix = f"{MARKETS_DIR}/{market}/"
    members = [n for n in manifest.files if n.startswith(prefix)]
    staging = Path(tempfile.mkdtemp(prefix=f".{market}.", suffix=".restore", dir=folder.parent))
    try:
        _unpack(archive, manifest, staging, only=(*members, PG_DUMP_MEMBER))
        with _restoring(folder, archive) as restoring:
            if schema_target is not None:
                say(f"  restoring the schema {market_schema(market)} with pg_restore…")
                _pg_restore_schema(staging / PG_DUMP_MEMBER, schema_target, market_schema(market))
                restoring.written = True
            market_files = staging / MARKETS_DIR / market
            # The city's chain went on after the backup: the market's next start must know.
            _mark_restored(
                schema_url(schema_target, market)
                if schema_target is not None
                else f"sqlite:///{(market_files / SQLITE_MEMBER).resolve()}",
                manifest.head_block,
            )
            restoring.written = True
            moved = _put_in_place(market_files, folder, aside=folder.exists())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(data_dir, manifest, moved, time.monotonic() - started, market=market)


def _restored_databases(manifest: Manifest, staging: Path, target_url: str | None) -> list[str]:
    """The URLs of the databases a restore put in place (in ``staging`` for SQLite)."""
    names = sorted(manifest.markets)
    if target_url is not None:
        return [schema_url(target_url, n) for n in names] if names else [target_url]
    if names:
        return [f"sqlite:///{(staging / MARKETS_DIR / n / SQLITE_MEMBER).resolve()}" for n in names]
    return [f"sqlite:///{(staging / SQLITE_MEMBER).resolve()}"]


def _mark_restored(database_url: str, head_block: int) -> None:
    """Mark a restored database with the backup's block (:mod:`api.recovery`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from api.recovery import mark_restored

    try:
        mark_restored(database_url, head_block)
    except SQLAlchemyError as exc:
        raise BackupError(
            f"cannot mark the restored database {_shown(database_url)}: {exc}"
        ) from exc


def _market_restore_target(
    manifest: Manifest, market: str, data_dir: Path, database_url: str | None
) -> str | None:
    """The city database whose schema of ``market`` is restored (None: SQLite, in the
    market's folder); :class:`Refused` if the settings name another kind of database."""
    if manifest.database_dialect == SQLITE:
        if database_url:
            raise Refused(
                f"the backup holds a city whose markets keep SQLite in their folders under "
                f"{data_dir / MARKETS_DIR}; VOISIN_DATABASE_URL names {_shown(database_url)}: "
                "unset it to restore"
            )
        return None
    if not database_url or dialect_of(database_url) != POSTGRESQL:
        raise Refused(
            "the backup holds a city on PostgreSQL: set VOISIN_DATABASE_URL to the city's "
            f"database, whose schema {market_schema(market)} is restored"
        )
    return database_url


def _check_market_chain(
    archive: Path,
    manifest: Manifest,
    market: str,
    contract: str,
    data_dir: Path,
    chain: str,
    chain_key: str | None,
) -> None:
    """Refuse a chain that is not the one the backup of ``market`` was taken from: another
    chain id, no deployment of ``contract`` where the backup's records put it, or a head
    behind the backup's (its mirror would be ahead of the chain)."""
    from ledger.chain.backends import open_chain
    from ledger.errors import LedgerError

    kind = EMBEDDED if chain == "embedded" else JSON_RPC
    if kind == JSON_RPC and not chain.startswith(("http://", "https://")):
        raise Refused(f"cannot restore onto chain {chain!r}: 'embedded' or a JSON-RPC http(s) URL")
    if kind != manifest.chain_kind:
        raise Refused(
            f"the backup's chain is {manifest.chain_kind}, the city's settings name "
            f"{'the embedded chain' if kind == EMBEDDED else chain}: a market restores onto "
            "the chain it was backed up from"
        )
    if kind == EMBEDDED and not (data_dir / CHAIN_MEMBER).is_file():
        raise Refused(f"{data_dir} holds no embedded chain ({data_dir / CHAIN_MEMBER} is missing)")
    record = _archived_deployment(archive, manifest, market)
    try:
        with open_chain(chain, data_dir, chain_key) as opened:
            chain_id = int(opened.chain_id)
            head = int(opened.w3.eth.block_number)
            deployed = _deployment_on_chain(opened.w3, str(record.get("tx_hash", "")))
    except LedgerError as exc:
        raise BackupError(f"cannot open the city's chain: {exc}") from exc
    where = f"the city's chain (id {chain_id})"
    if chain_id != manifest.chain_id:
        raise Refused(
            f"the backup was taken on chain {manifest.chain_id}, {where} is another: a market "
            "restores onto the chain it was backed up from"
        )
    if deployed is None or deployed.lower() != contract.lower():
        raise Refused(
            f"{where} has no deployment of market {market}'s contract {contract} (transaction "
            f"{record.get('tx_hash')}): a market restores onto the chain it was backed up from"
        )
    if head < manifest.head_block:
        raise Refused(
            f"{where} is at block {head}, behind the backup's block {manifest.head_block}: the "
            "market's database would be ahead of its chain"
        )


def _archived_deployment(archive: Path, manifest: Manifest, market: str) -> dict[str, Any]:
    """The backup's deployment record of ``market`` on its chain, read from ``archive`` and
    checked against the manifest's checksum once more."""
    name = f"{MARKETS_DIR}/{market}/{DEPLOYMENTS}"
    try:
        with tarfile.open(archive, "r:*") as tar:
            data = _read_member(tar, tar.getmember(name))
    except (KeyError, *_DAMAGED) as exc:
        raise Refused(f"{archive} changed since it was verified ({name}): {exc}") from exc
    if hashlib.sha256(data).hexdigest() != manifest.files[name].sha256:
        raise Refused(f"{archive} changed since it was verified ({name})")
    try:
        record = json.loads(data)[str(manifest.chain_id)]
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(
            f"the backup's {name} records no deployment on chain {manifest.chain_id}"
        ) from exc
    if not isinstance(record, dict):
        raise Refused(f"the backup's {name} records no deployment on chain {manifest.chain_id}")
    return record


def _deployment_on_chain(w3: Any, tx_hash: str) -> str | None:
    """The address of the contract transaction ``tx_hash`` created on ``w3``'s chain, or None
    (no such transaction, or one that created no contract)."""
    from web3.exceptions import TransactionNotFound

    if not re.fullmatch(r"0x[0-9a-fA-F]{64}", tx_hash):
        return None
    try:
        receipt = w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None
    address = receipt.get("contractAddress")
    return None if address is None else str(address)


def _schema_tables(database_url: str, market: str) -> list[str]:
    """The tables of ``market``'s schema in the city database of ``database_url``."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names(schema=market_schema(market)))
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot reach the database {_shown(database_url)}: {exc}") from exc
    finally:
        engine.dispose()


def _pg_restore_schema(dump: Path, database_url: str, schema: str) -> None:
    """Restore ``schema`` alone from a city's dump into the database of ``database_url``,
    replacing its tables there, in one transaction (the other schemas are not touched)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    # pg_restore --schema restores the schema's objects, not the schema itself.
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot reach the database {_shown(database_url)}: {exc}") from exc
    finally:
        engine.dispose()
    args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    args += ["--clean", "--if-exists", f"--schema={schema}"]
    _run_pg("pg_restore", [*args, str(dump)], database_url)


def _restore_target(
    manifest: Manifest, data_dir: Path, database_url: str | None, *, force: bool
) -> str | None:
    """The PostgreSQL database to restore into (None for SQLite, which goes into the data
    directory); :class:`Refused` if the settings name another kind of database, or a
    PostgreSQL database that is not empty (without ``force``)."""
    if manifest.database_dialect == SQLITE:
        if database_url and manifest.markets:
            raise Refused(
                f"the backup holds a city whose markets keep SQLite in their folders under "
                f"{data_dir / MARKETS_DIR}; VOISIN_DATABASE_URL names {_shown(database_url)}: "
                "unset it to restore"
            )
        if database_url and (
            dialect_of(database_url) != SQLITE
            or sqlite_path(database_url) != (data_dir / SQLITE_MEMBER).resolve()
        ):
            raise Refused(
                f"the backup holds a SQLite database, restored as {data_dir / SQLITE_MEMBER}; "
                f"VOISIN_DATABASE_URL names {_shown(database_url)}: unset it to restore"
            )
        return None
    if not database_url or dialect_of(database_url) != POSTGRESQL:
        raise Refused(
            "the backup holds a PostgreSQL database: set VOISIN_DATABASE_URL to the (empty) "
            "PostgreSQL database to restore it into"
        )
    tables = _postgres_tables(database_url)
    if tables and not force:
        raise Refused(
            f"the database {_shown(database_url)} is not empty ({len(tables)} tables: "
            f"{', '.join(tables[:3])}…); restore into an empty database, or --force to "
            "replace the backup's tables in it"
        )
    return database_url


def _shown(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)


def _postgres_tables(database_url: str) -> list[str]:
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot reach the database {_shown(database_url)}: {exc}") from exc
    finally:
        engine.dispose()


def _unpack(
    archive: Path, manifest: Manifest, dest: Path, only: Iterable[str] | None = None
) -> None:
    """Write every member (or those named in ``only``) into ``dest`` with its mode, fsynced,
    checking each against the manifest again as it is written (the archive could have
    changed since it was verified)."""
    wanted = None if only is None else set(only)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if member.name == MANIFEST_NAME or (wanted is not None and member.name not in wanted):
                continue
            entry = manifest.files[member.name]
            path = dest / member.name
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = tar.extractfile(member)
            assert stream is not None
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                digest, size = _hash_stream(stream, out)
                out.flush()
                os.fsync(out.fileno())
            if (digest, size) != (entry.sha256, entry.size):
                raise Refused(f"{archive} changed while it was restored ({member.name})")
            os.chmod(path, entry.mode & 0o777)
    for folder in sorted({p for p in dest.rglob("*") if p.is_dir()} | {dest}):
        _fsync_dir(folder)


def _pg_restore(dump: Path, database_url: str, *, clean: bool) -> None:
    # One transaction: the database gets the whole dump or nothing.
    args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    if clean:
        args += ["--clean", "--if-exists"]
    _run_pg("pg_restore", [*args, str(dump)], database_url)


def summary(result: BackupResult) -> str:
    """The one-line summary of a backup."""
    m = result.manifest
    parts = [f"backup ok: {result.target}, {human_size(result.archive_bytes)}"]
    if CHAIN_MEMBER in m.files:
        parts.append(f"chain {human_size(m.files[CHAIN_MEMBER].size)} at block {m.head_block}")
    else:
        parts.append(f"chain not included (JSON-RPC node, head block {m.head_block})")
    size = sum(m.files[member].size for member in m.database_members)
    parts.append(f"database {m.database_dialect} {human_size(size)}")
    if m.markets:
        parts.append(f"{len(m.markets)} markets")
    parts.append(f"in {result.took_s:.1f} s (chain writes paused {result.paused_s:.2f} s)")
    return ", ".join(parts)


def restore_summary(result: RestoreResult) -> str:
    m = result.manifest
    if result.market is not None:
        return (
            f"restore ok: market {result.market} of {result.data_dir} holds its backup of "
            f"{m.created_utc} (taken at block {m.head_block}, database {m.database_dialect}); "
            f"the chain and the other markets are as they were, in {result.took_s:.1f} s"
        )
    city = f"a city of {len(m.markets)} markets, " if m.markets else ""
    return (
        f"restore ok: {result.data_dir} holds the backup of {m.created_utc} ({city}chain "
        f"{m.chain_kind} at block {m.head_block}, database {m.database_dialect}) in "
        f"{result.took_s:.1f} s"
    )


def after_restore(result: RestoreResult, settings_env: Mapping[str, str]) -> list[str]:
    """What to do next, as lines: start the server on the directory, the settings it needs."""
    m = result.manifest
    if result.market is not None:
        lines = [
            f"start the city again (VOISIN_DATA_DIR={result.data_dir} voisin serve --markets "
            "..., as before): the market's mirror catches up with the chain from the backup's "
            "block, and its outbox finishes what the backup had queued",
        ]
        if result.moved_aside is not None:
            lines.append(f"the market's former folder is in {result.moved_aside}")
        return lines
    lines = [f"start it: VOISIN_DATA_DIR={result.data_dir} voisin serve"]
    if m.markets:
        lines = [
            f"start it: VOISIN_DATA_DIR={result.data_dir} voisin serve --markets "
            f"{','.join(sorted(m.markets))} (with each market's feeder network, name:network, "
            "as before)"
        ]
    if result.moved_aside is not None:
        lines.append(f"its former contents are in {result.moved_aside}")
    if m.chain_kind == JSON_RPC:
        contracts = m.contract or ", ".join(c.contract for _, c in sorted(m.markets.items()))
        lines.append(
            f"the chain is not in the backup: point VOISIN_CHAIN at a node of chain "
            f"{m.chain_id} that holds {'contract' if m.contract else 'contracts'} {contracts} "
            "(and VOISIN_CHAIN_KEY)"
        )
    if "key.secret" not in m.files and "VOISIN_KEY_SECRET" not in settings_env:
        lines.append(
            "the backup holds no key.secret (its server had VOISIN_KEY_SECRET set): set the "
            "same VOISIN_KEY_SECRET here, or the household keys cannot be decrypted"
        )
    if "operator.token" not in m.files and "VOISIN_OPERATOR_TOKEN" not in settings_env:
        lines.append(
            "the backup holds no operator.token (its server had VOISIN_OPERATOR_TOKEN set): "
            "set VOISIN_OPERATOR_TOKEN here"
        )
    return lines
