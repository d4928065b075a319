"""Several ``voisin serve`` processes over one PostgreSQL database and one chain node.

Requests can go to any process: what a request reads or writes lives in the database or on the
chain, and each process keeps only caches that it checks against the database. Two things must
still happen in one place at a time, and PostgreSQL's session advisory locks say where:

- **Chain writes** (:class:`AdvisoryLock` named by :func:`chain_writes_lock_name`). The
  operator's account sends every transaction, and a transaction takes the account's next
  nonce, read from the node just before. The chain gate's lock (:mod:`api.chain_gate`) takes
  this lock on its outermost acquisition, so a registration in one process and the settlement
  worker in another never pick the same nonce: across the processes there is one chain writer
  at a time.
- **The market's background work** (:class:`Leadership`): draining the outbox (readings and
  orders to the chain), the settlement worker, the keeper's audits and power flows, the
  webhooks. One process, the leader, runs them; the others answer requests only. Every
  process asks for the leader's lock every :data:`ELECTION_POLL_S`; PostgreSQL releases a
  session's locks the moment its connection ends, so when the leader dies (even by SIGKILL,
  its socket closes) another process holds the lock within a poll. A leader whose session
  ends (the database restarted, or the connection broke) asks for the lock again as soon as
  the database answers, and goes on leading if it gets it, as a single server must through a
  database restart. If another process holds it by then, the old leader stops (its
  supervisor, ``voisin serve --workers N`` or systemd, starts it again, as a follower until
  elected) rather than run the background work beside the new one. Until it knows, its chain
  writes wait: they need the chain-writes lock, in the same database.

Each lock lives on a connection of its own, outside the request pool, with TCP keepalives on
both ends so that the server notices a leader whose host vanished within seconds
(:data:`KEEPALIVE_S`), not after the kernel's default two hours.

With SQLite (one process by construction: the database is a file in the data directory)
there is nothing to elect: :class:`Leadership` without a lock leads at once, and the chain
gate keeps its process-local lock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger("voisin.cluster")

#: How often a follower asks for the leader's lock, and the leader checks it still holds it.
ELECTION_POLL_S: Final = 1.0
#: How often a timed acquisition of :class:`AdvisoryLock` tries again (seconds).
_RETRY_S: Final = 0.01
#: TCP keepalive idle time, probe interval and probe count on the locks' connections (both
#: ends): a peer that vanished without closing its socket is noticed within about 11 s.
KEEPALIVE_S: Final = (5, 2, 3)


def is_postgres(url: str) -> bool:
    """Whether the SQLAlchemy ``url`` names a PostgreSQL database."""
    return make_url(url).get_backend_name() == "postgresql"


def connections_shortfall(url: str, needed: int) -> str | None:
    """Why PostgreSQL at ``url`` may refuse connections to processes that hold up to
    ``needed`` at once (its ``max_connections`` less the superusers' reserve is lower), or
    None: enough, not PostgreSQL, or not answering (the server's start-up reports that)."""
    if not is_postgres(url):
        return None
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            limit = int(connection.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(
                connection.execute(text("SHOW superuser_reserved_connections")).scalar_one()
            )
    except SQLAlchemyError:  # a database that does not answer: the start-up says so
        return None
    finally:
        engine.dispose()
    if limit - reserved >= needed:
        return None
    return (
        f"PostgreSQL takes {limit - reserved} connections (max_connections {limit}, "
        f"{reserved} reserved) and these processes may open up to {needed} at once: raise "
        "max_connections, or serve with fewer workers or markets; beyond it PostgreSQL refuses "
        "connections and requests fail with 503 database_unavailable"
    )


def advisory_key(name: str) -> int:
    """The signed 64-bit key PostgreSQL's advisory locks take, for the lock called ``name``."""
    return int.from_bytes(
        hashlib.sha256(f"voisin:{name}".encode()).digest()[:8], "big", signed=True
    )


def chain_writes_lock_name(chain_id: int, sender: str) -> str:
    """The lock every process takes to write the chain as ``sender`` (nonces are per account
    and chain)."""
    return f"chain-writes/{chain_id}/{sender.lower()}"


def leader_lock_name(chain_id: int, contract: str) -> str:
    """The lock whose holder runs the background work of the market at ``contract``."""
    return f"leader/{chain_id}/{contract.lower()}"


class AdvisoryLock:
    """A PostgreSQL session advisory lock, held on a connection of its own.

    Not thread-safe: one holder at a time, which is how :class:`api.chain_gate.ChainLock` and
    :class:`Leadership` use it (each from under their own lock, or from one thread).
    """

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.key = advisory_key(name)
        idle, interval, count = KEEPALIVE_S
        server_side = (
            f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval} "
            f"-c tcp_keepalives_count={count}"
        )
        self._engine: Engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "keepalives": 1,
                "keepalives_idle": idle,
                "keepalives_interval": interval,
                "keepalives_count": count,
                "options": server_side,
                "application_name": f"voisin {name.split('/', 1)[0]}",
            },
        )
        self._conn: Connection | None = None
        self.held = False

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop_connection(self) -> None:
        """Close the connection (the server then releases whatever it held)."""
        conn, self._conn = self._conn, None
        self.held = False
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # already broken: nothing to release
                pass

    def try_acquire(self) -> bool:
        """Take the lock if no other session holds it; whether this one holds it now."""
        try:
            got = bool(
                self._connection()
                .execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
                .scalar()
            )
        except Exception:
            self._drop_connection()
            raise
        self.held = got
        return got

    def acquire(self, deadline: float | None = None) -> bool:
        """Take the lock, waiting until ``deadline`` (monotonic seconds; ``None``: as long as
        it takes); whether it did. A database error propagates, holding nothing."""
        if deadline is None:
            try:
                self._connection().execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
            except Exception:
                self._drop_connection()
                raise
            self.held = True
            return True
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_RETRY_S)
        return True

    def release(self) -> None:
        """Let go of the lock. If the database cannot be told, the connection is dropped,
        which releases it too."""
        if not self.held:
            return
        try:
            self._connection().execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.held = False
        except Exception:
            log.warning(
                "could not release the advisory lock %s; dropping its connection", self.name
            )
            self._drop_connection()

    def still_held(self) -> bool:
        """Whether the session holding the lock is still alive (its lock goes with it)."""
        if not self.held or self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception:
            self._drop_connection()
            return False

    def close(self) -> None:
        self._drop_connection()
        self._engine.dispose()


class Leadership:
    """Which of the processes serving one market runs its background work.

    ``on_elected`` runs once, in this object's thread, when this process becomes the leader;
    ``on_lost`` once if another process holds the lock after this one's session ended (see
    :meth:`step`). Without a lock (SQLite: one process) :meth:`start` makes this process the
    leader at once.
    """

    def __init__(
        self,
        lock: AdvisoryLock | None,
        *,
        on_elected: Callable[[], None],
        on_lost: Callable[[], None],
        poll_s: float = ELECTION_POLL_S,
    ) -> None:
        self.lock = lock
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.poll_s = poll_s
        self.leader = False
        #: Set once another process took the lock from this one (it then never leads again).
        self.stepped_down = False
        self._following = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.lock is None:
            self._elected()
            return
        self._thread = threading.Thread(target=self._run, name="voisin-election", daemon=True)
        self._thread.start()

    def _elected(self) -> None:
        self.leader = True
        self.on_elected()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.stepped_down:
            self.step()
            self._stop.wait(self.poll_s)

    def step(self) -> None:
        """One look (the thread's, every ``poll_s``): a follower asks for the lock; a leader
        checks that the session holding it is alive, and if not asks for it again, waiting
        while the database does not answer (a restart). It goes on leading if it gets the lock
        back, and steps down (``on_lost``) only if another process holds it by then."""
        assert self.lock is not None
        if self.stepped_down:
            return
        if not self.leader:
            try:
                if self.lock.try_acquire():
                    log.info(
                        "elected: this process (%s) leads the market's background work",
                        self.lock.name,
                    )
                    self._elected()
                    return
            except Exception as exc:  # the database is away: try again next poll
                log.warning("could not ask for the leader's lock: %s", exc)
            if not self._following:
                log.info("another process leads the market's background work; following")
                self._following = True
            return
        if self.lock.still_held() or self._regained() or self._stop.is_set():
            return
        self.leader = False
        self.stepped_down = True
        log.error("another process holds the leader's lock now: stepping down")
        self.on_lost()

    def _regained(self) -> bool:
        """After the leader's session ended: whether this process holds the lock again."""
        assert self.lock is not None
        log.warning("the database session holding the leader's lock ended; asking again")
        while not self._stop.is_set():
            try:
                got = self.lock.try_acquire()
            except Exception as exc:  # the database is away (restarting): ask again soon
                log.warning("could not ask for the leader's lock again: %s", exc)
                self._stop.wait(self.poll_s)
                continue
            if got:
                log.info("holding the leader's lock again: still leading")
            return got
        return False

    def close(self) -> None:
        """Stop asking; release the lock if held (the caller stopped the background work)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.poll_s + 5)
        if self.lock is not None:
            self.lock.release()
            self.lock.close()
        self.leader = False
