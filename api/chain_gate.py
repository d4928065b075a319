"""The chain gate: the one way into the chain for the API's requests and its background work.

:class:`ChainGate` owns what they share about the chain: the lock that serialises every use
of it (the embedded chain is one in-process EVM, and a JSON-RPC node's nonces want one sender
at a time), whether the node answered last time (``up``, and the error that said otherwise),
and when the last request started, so that background work can let requests go first.

:data:`CHAIN_DOWN` tells "the node is not answering" from "the node said no": the first marks
the chain down (requests get a 503, the outbox stops its pass and keeps its queue), the second
is a domain error. The gate knows nothing else of the API: the outbox, the intake and the
routes receive it, and :class:`api.services.Services` composes them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from web3.exceptions import TimeExhausted

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


class ChainGate:
    """The chain's lock and its up/down state, shared by requests and background work."""

    def __init__(self) -> None:
        #: Held by whoever uses the chain: one request's :meth:`on_chain`, or a whole outbox
        #: pass (which hands it over while requests wait, see :meth:`yield_to_requests`).
        self.lock = threading.RLock()
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
        """Let requests go first: the embedded chain runs in this process, and its EVM work
        would hold the interpreter while clients wait. Waits until no request started for
        ``quiet_s``, for at most ``max_wait_s`` (so a steady load cannot starve the outbox).

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
            if time.monotonic() - self.last_request >= quiet_s:
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
