"""One job in a forked child process: how ``voisin simulate`` puts work on the second core.

The run itself is one Python process executing the chain; the flows (before the ledger is
imported, :func:`meter_sim.flows.simulate_ahead`) and the plots (during the audit,
:class:`meter_sim.plots.BackgroundPlots`) are computed beside it. A forked child starts with
everything its parent has imported and needs no imports but its job's own.

Every such child, and every worker of :func:`helper_pool`, dies with the process that started
it: forked after the chain was opened, it holds the chain's lock file too, so a child left
behind by a run killed on its own (``kill PID``, the OOM killer) would keep ``--resume`` and
``voisin audit`` out of the run's data for good.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from ledger.chain.children import signal_when_parent_dies

__all__ = ["helper_pool", "in_forked_child"]

T = TypeVar("T")


def in_forked_child(function: Callable[..., T], *args: Any) -> Future[T]:
    """Start ``function(*args)`` in a child forked from this process; the child ends once the
    job is done. The future gives the job's answer or raises its exception, and raises
    :class:`concurrent.futures.process.BrokenProcessPool` if the child died. ``function`` and
    ``args`` are pickled (a module-level function, plain data) here, before this returns.

    The pool would otherwise pickle them later, in a thread of its own, while the caller goes
    on and may change them: a cached property filled in meanwhile changes the size of the
    ``__dict__`` being pickled. Pickled here, the child computes with the arguments as they
    were at the call.
    """
    job = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
    pool = helper_pool(1, multiprocessing.get_context("fork"))
    try:
        return pool.submit(_run_pickled, job)
    finally:
        pool.shutdown(wait=False)  # the job still runs; the child exits after it


def _run_pickled(job: bytes) -> Any:
    function, args = pickle.loads(job)
    return function(*args)


def helper_pool(workers: int, context: BaseContext | None = None) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that die with this one (see the module's docstring)."""
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_die_with, initargs=(os.getpid(),)
    )


def _die_with(parent: int) -> None:
    """In a worker: SIGKILL when ``parent`` dies; gone already, exit now."""
    signal_when_parent_dies(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
