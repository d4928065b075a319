"""Child processes a chain backend starts (the embedded chain's node, a local anvil): stopped
the same way, and never left behind by a parent that dies."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from typing import Any, Final

__all__ = ["signal_when_parent_dies", "stop"]

#: prctl(2) option: the signal the kernel sends this process when its parent thread dies.
_PR_SET_PDEATHSIG: Final = 1


def signal_when_parent_dies(sig: signal.Signals) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux; kept across
    exec, so a child can call it before exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def stop(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``process`` is still running after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
