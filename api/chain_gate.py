"""The chain gate: the one way into the chain for the API's requests and its background work.

:class:`ChainGate` owns what they share about the chain: the lock that serialises every use
of it (the embedded chain is one in-process EVM, and a JSON-RPC node's nonces want one sender
at a time), whether the node answered last time (``up``, and the error that said otherwise),
and when the last request started, so that background work can let requests go first.

The lock reaches beyond the process: :class:`ChainLock` takes a file lock
(``<data dir>/chain-writes.lock``, :data:`WRITES_LOCK`) whenever a thread first takes it, and
drops it when that thread lets go of it. ``voisin backup`` (:mod:`api.backup`) takes the same
file lock while it copies the chain and then the database, so that no chain write, nor the
database record of its outcome, happens between the two copies; the API's threads simply wait
for the copy (seconds) meanwhile.

:data:`CHAIN_DOWN` tells "the node is not answering" from "the node said no": the first marks
the chain down (requests get a 503, the outbox stops its pass and keeps its queue), the second
is a domain error. The gate knows nothing else of the API: the outbox, the intake and the
routes receive it, and :class:`api.services.Services` composes them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

from web3.exceptions import TimeExhausted

from api.cluster import AdvisoryLock
from api.errors import chain_unavailable, from_ledger
from ledger.errors import ChainUnavailable, LedgerError

log = logging.getLogger("voisin.api")
T = TypeVar("T")

#: Exceptions that mean "the node is not answering" rather than "the node said no".
CHAIN_DOWN: tuple[type[BaseException], ...] = (
    ChainUnavailable,
    OSError,
    TimeoutError,
    TimeExhausted,
)


#: The file in the data directory whose ``flock`` stands for "the chain is being written".
WRITES_LOCK: Final = "chain-writes.lock"
#: How often a timed acquisition of :class:`ChainLock` tries the file lock again (seconds).
_POLL_S: Final = 0.01
#: Among several workers, a wait for another process's chain writes this long (seconds) or
#: longer is logged as a warning; shorter ones (the other workers' writes) at debug level.
LONG_WAIT_S: Final = 1.0


def lock_file(path: Path) -> int:
    """Open (creating it) the lock file ``path``; the descriptor to ``flock``."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def flock_until(fd: int, deadline: float | None) -> bool:
    """Take the exclusive ``flock`` of ``fd``, waiting until ``deadline`` (monotonic seconds;
    ``None``: as long as it takes); whether it did."""
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)


class ChainLock:
    """A re-entrant lock (``threading.RLock``'s interface) that also holds a file lock while
    a thread holds it.

    The file lock is taken on a thread's outermost acquisition and dropped on its outermost
    release, so that it spans exactly the stretches where this process may write the chain;
    another process (a backup) holding it makes the first acquisition wait. ``flock`` belongs
    to the open file description, and the kernel drops it when the process dies, even by
    SIGKILL: no stale lock survives a crash. Without a ``path`` it is a plain ``RLock``.

    ``shared``, with a PostgreSQL database, is the advisory lock every process serving the
    market takes to write the chain (:mod:`api.cluster`): taken after the file lock on the
    outermost acquisition and released before it, so that one process at a time, on any
    machine, picks the operator's next nonce.
    """

    def __init__(self, path: Path | None = None, shared: AdvisoryLock | None = None) -> None:
        self.path = path
        self.shared = shared
        self._rlock = threading.RLock()
        self._fd: int | None = None
        #: Nesting depth of the owning thread, and which thread that is; only the owner
        #: changes them, while it holds ``_rlock``.
        self._depth = 0
        self._owner: int | None = None
        #: How many outermost acquisitions found the file lock taken by another process, and
        #: the seconds they waited for it in all.
        self.waits = 0
        self.waited_s = 0.0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """As ``RLock.acquire``; the timeout covers the file lock too."""
        deadline = None if timeout < 0 else time.monotonic() + timeout
        if not blocking:
            deadline = time.monotonic()
        if not self._rlock.acquire(blocking, timeout):
            return False
        if self._depth == 0:
            try:
                taken = self._take_file(deadline)
            except BaseException:
                self._rlock.release()
                raise
            if not taken:
                self._rlock.release()
                return False
            try:
                taken = self.shared is None or self.shared.acquire(deadline)
            except BaseException:
                self._drop_file()
                self._rlock.release()
                raise
            if not taken:
                self._drop_file()
                self._rlock.release()
                return False
            self._owner = threading.get_ident()
        self._depth += 1
        return True

    def release(self) -> None:
        """As ``RLock.release``: ``RuntimeError`` if this thread does not hold it."""
        if self._owner != threading.get_ident() or self._depth == 0:
            raise RuntimeError("cannot release un-acquired lock")
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            if self.shared is not None:
                self.shared.release()
            self._drop_file()
        self._rlock.release()

    def _drop_file(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _take_file(self, deadline: float | None) -> bool:
        if self.path is None:
            return True
        if self._fd is None:
            self._fd = lock_file(self.path)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        started = time.monotonic()
        taken = flock_until(self._fd, deadline)
        waited = time.monotonic() - started
        self.waits += 1
        self.waited_s += waited
        # Alone, only a backup holds it. Among workers, another's write lasts milliseconds.
        alone = self.shared is None
        log.log(
            logging.WARNING if alone or waited >= LONG_WAIT_S or not taken else logging.DEBUG,
            "chain writes %s %.2f s for %s (held by another process: another worker "
            "writing the chain, or a backup copying the data directory)",
            "waited" if taken else "gave up after",
            waited,
            self.path,
        )
        return taken

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class ChainGate:
    """The chain's lock and its up/down state, shared by requests and background work."""

    def __init__(
        self,
        writes_lock: Path | None = None,
        shared: AdvisoryLock | None = None,
        *,
        evm_here: bool = True,
    ) -> None:
        """``writes_lock``: the file whose ``flock`` the chain lock also holds
        (:data:`WRITES_LOCK` in the data directory); none for a gate of this process only.
        ``shared``: the processes' chain-writes lock in PostgreSQL (see :class:`ChainLock`).
        ``evm_here``: the chain's EVM runs in this process (an embedded chain without its node
        process), so background work waits for a quiet moment before each step."""
        self.evm_here = evm_here
        #: Held by whoever uses the chain: one request's :meth:`on_chain`, or a whole outbox
        #: pass (which hands it over while requests wait, see :meth:`yield_to_requests`).
        self.lock = ChainLock(writes_lock, shared)
        #: Threads blocked in :meth:`on_chain` waiting for :attr:`lock` (requests, mostly),
        #: and the condition that says when that number changes.
        self.waiters = 0
        self._waiters_changed = threading.Condition(threading.Lock())
        #: False from a :data:`CHAIN_DOWN` error until the chain next answers.
        self.up = True
        #: ``"<ExceptionType>: <message>"`` of the error that last marked the chain down.
        self.last_error: str | None = None
        #: When the last HTTP request started (monotonic seconds).
        self.last_request = 0.0

    def on_chain(self, action: Callable[[], T]) -> T:
        """Run ``action`` with the chain to ourselves; a dead node becomes a 503."""
        with self._waiters_changed:
            self.waiters += 1
        try:
            self.lock.acquire()
        finally:
            with self._waiters_changed:
                self.waiters -= 1
                self._waiters_changed.notify_all()
        try:
            result = action()
        except CHAIN_DOWN as exc:
            self.mark_down(exc)
            raise chain_unavailable(exc) from exc
        except LedgerError as exc:
            raise from_ledger(exc) from exc
        finally:
            self.lock.release()
        self.mark_up()
        return result

    def mark_down(self, exc: BaseException) -> None:
        """Record that the node did not answer (logged once per outage)."""
        if self.up:
            log.warning("chain unreachable: %s", exc)
        self.up = False
        self.last_error = f"{type(exc).__name__}: {exc}"

    def mark_up(self) -> None:
        """Record that the node answered."""
        self.up = True

    def yield_to_requests(self, quiet_s: float = 0.1, max_wait_s: float = 10.0) -> None:
        """Let requests go first. When the embedded chain's EVM runs in this process
        (:attr:`evm_here`), its work would hold the interpreter while clients wait: wait until
        no request started for ``quiet_s``, for at most ``max_wait_s``. Elsewhere (a node
        process, a JSON-RPC node) the EVM does not compete with the requests, and waiting
        would only starve the outbox under a steady load (one batch per ``max_wait_s``).

        The caller holds the chain lock once (an outbox pass). Requests blocked on that lock
        cannot run while it waits, so if any are, it hands the lock over to them instead, and
        takes it back once none waits: under a steady load of posts and takes, waiting for a
        quiet moment with the lock held would keep them out for tens of seconds.
        """
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline:
            if self.waiters:
                self._hand_over(deadline)
                return
            if not self.evm_here or time.monotonic() - self.last_request >= quiet_s:
                return
            time.sleep(quiet_s)

    def _hand_over(self, deadline: float) -> None:
        """Release the chain lock until no request waits for it (or ``deadline``)."""
        try:
            self.lock.release()
        except RuntimeError:  # not held by this thread: the requests are not waiting on us
            return
        try:
            with self._waiters_changed:
                self._waiters_changed.wait_for(
                    lambda: self.waiters == 0, timeout=max(0.0, deadline - time.monotonic())
                )
        finally:
            self.lock.acquire()
