"""The keeper's power flows in a worker process, so that the server's memory stays flat.

A power flow (pandapower on the feeder network, :func:`api.keeper.compute_feeder`) leaves a
little memory behind in the process that runs it: pandapower, pandas and scipy keep caches and
their allocations fragment the heap. Run in the server after every settled slot, that came to
about 0.05 MiB a slot with 20 households, slot after slot, while the server without power
flows stayed flat. The worker runs them instead: one long-lived child process (pandapower is
imported once, not per slot), fed the slots to compute over its stdin, which writes the kept
rows to the database itself and answers which slots it kept. After :data:`SLOTS_PER_WORKER`
slots it is replaced by a fresh one, so what it keeps is bounded too.

One worker serves every market of the process: each request names its market's database
(over stdin, never the command line) and feeder network with its slots, so a city of many
markets keeps one worker, not one per market. A worker that dies is started again at the next
pass; the slots it did not answer for stay due.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

from api.child_lines import ChildError, read_answer, send

log = logging.getLogger("voisin.keeper")

__all__ = ["SLOTS_PER_WORKER", "FeederProcessError", "FeederWorker", "main"]

#: Power flows one worker runs before a fresh one replaces it.
SLOTS_PER_WORKER: Final = 2_000
#: Seconds a worker may take to start, or to answer one batch of slots.
TIMEOUT_S: Final = 600.0


class FeederProcessError(ChildError):
    """The worker failed: it could not start, stopped, or answered with an error."""


class FeederWorker:
    """Runs :func:`api.keeper.compute_feeder` in a child process (see the module)."""

    def __init__(self, slots_per_worker: int = SLOTS_PER_WORKER):
        self.slots_per_worker = slots_per_worker
        self._proc: subprocess.Popen[bytes] | None = None
        self._done = 0
        self._lock = threading.Lock()
        #: Workers started so far (the first included).
        self.started = 0

    def for_market(self, database_url: str, network: str) -> Callable[[list[int]], list[int]]:
        """The keeper's ``feeder`` for the market of ``database_url`` on ``network``."""
        return lambda slots: self.compute(slots, database_url, network)

    def compute(self, slots: list[int], database_url: str, network: str) -> list[int]:
        """Compute and keep the power flows of ``slots`` of the market whose database is
        ``database_url``, on ``network``; the slots kept."""
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            request = {
                "database_url": database_url,
                "network": network,
                "slots": [int(s) for s in slots],
            }
            try:
                send(proc.stdin, request)
                answer = _read(proc, TIMEOUT_S)
            except BaseException:
                self._end(kill=True)
                raise
            if "error" in answer:
                raise FeederProcessError(str(answer["error"]))
            kept = [int(s) for s in answer["kept"]]
            self._done += len(kept)
            if self._done >= self.slots_per_worker:
                self._end(kill=False)  # a fresh worker for the next slots
            return kept

    def close(self) -> None:
        with self._lock:
            self._end(kill=False)

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "api.feeder_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # its log lines go where the server's go
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.started += 1
        self._done = 0
        assert self._proc.stdin is not None
        try:
            send(self._proc.stdin, {})
            ready = _read(self._proc, TIMEOUT_S)
        except BaseException:
            self._end(kill=True)
            raise
        if ready.get("say") != "ready":
            self._end(kill=True)
            raise FeederProcessError(str(ready.get("error") or f"the worker answered {ready}"))
        return self._proc

    def _end(self, *, kill: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        else:
            try:
                assert proc.stdin is not None
                proc.stdin.close()  # end of input: the worker exits
            except OSError:
                proc.kill()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read(proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    return read_answer(proc, "the power-flow worker", timeout_s, FeederProcessError)


# ───────────────────────────── The worker ─────────────────────────────


def main() -> int:
    """The worker: read the set-up, say ready, then compute each batch of slots asked, in the
    database and on the network each request names (the last database's engine is kept)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        json.loads(stdin.readline())
        from api.keeper import compute_feeder
        from api.sqlite_pragmas import sqlite_pragmas
        from ledger.mirror.engine import make_engine
    except Exception as exc:
        send(stdout, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    send(stdout, {"say": "ready"})
    engine: Any = None
    url = None
    for line in stdin:
        try:
            request = json.loads(line)
            if request["database_url"] != url:
                if engine is not None:
                    engine.dispose()
                engine, url = None, None
                engine = make_engine(request["database_url"], create=False)
                sqlite_pragmas(engine)  # writes wait for the server's instead of failing
                url = request["database_url"]
            slots = [int(s) for s in request["slots"]]
            kept = [row.slot for row in compute_feeder(engine, slots, str(request["network"]))]
        except Exception as exc:
            send(stdout, {"error": f"{type(exc).__name__}: {exc}"})
            continue
        send(stdout, {"kept": kept})
    if engine is not None:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
