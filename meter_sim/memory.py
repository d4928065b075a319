"""The memory a run holds of its own, apart from the files it maps.

A process's resident set (``ru_maxrss``, the report's ``peak_rss_bytes``) counts the pages of
the files it maps. The embedded chain maps its LMDB store whole, and every page the chain
reads back stays resident until the kernel wants the memory for something else: they are
clean pages of a file, dropped at no cost and read again if needed. Over a long run that is
most of the store (gigabytes for a simulated year) while the run's own memory stays at some
hundreds of megabytes. Linux reports that own memory apart, as ``RssAnon`` in
``/proc/self/status``; :class:`AnonPeak` samples it while a run goes on and keeps the largest.
"""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["AnonPeak", "anon_bytes", "read_anon_bytes"]

STATUS = Path("/proc/self/status")


def anon_bytes(status: str) -> int | None:
    """The ``RssAnon`` figure of a ``/proc/<pid>/status`` text, in bytes (None if absent)."""
    for line in status.splitlines():
        if line.startswith("RssAnon:"):
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2] == "kB":
                return int(parts[1]) * 1024
    return None


def read_anon_bytes() -> int | None:
    """This process's anonymous resident memory now (None where the system does not say)."""
    try:
        return anon_bytes(STATUS.read_text())
    except OSError:
        return None


class AnonPeak:
    """The largest anonymous resident memory of this process while it runs: read every
    ``every_s`` seconds by a daemon thread from :meth:`start` to :meth:`stop`, and once more
    at each end (a peak between two readings can be missed by at most that interval's
    growth)."""

    def __init__(self, every_s: float = 0.5) -> None:
        if every_s <= 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        self.every_s = every_s
        self._peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = read_anon_bytes()
        if now is not None and (self._peak is None or now > self._peak):
            self._peak = now

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def start(self) -> AnonPeak:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="anon-peak", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int | None:
        """Stop sampling; the peak in bytes (None where the system does not say)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return self._peak
