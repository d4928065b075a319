"""Run ``voisin serve`` as a child process on a loopback port, and stop it cleanly.

``voisin simulate --via api`` drives its neighbourhood through such a server, and the
benchmarks and the durability tests start one the same way. The child gets its settings from
``VOISIN_*`` variables (:class:`api.settings.Settings`); the ones given here replace any
inherited from the caller's environment, and the chain, key and database variables are dropped
unless given, so a developer's shell cannot point a throwaway server at a real deployment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from ledger.chain.children import signal_when_parent_dies

__all__ = ["ServeProcess", "ServerStartError", "free_port"]

#: Inherited variables a child server never takes from the caller unless given explicitly.
_NOT_INHERITED = ("VOISIN_CHAIN", "VOISIN_CHAIN_KEY", "VOISIN_DATABASE_URL", "VOISIN_DATA_DIR")


class ServerStartError(RuntimeError):
    """The server exited or did not answer ``/health`` in time."""


def free_port() -> int:
    """A loopback TCP port the kernel says is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``voisin serve`` on ``127.0.0.1:port`` with ``env`` (``VOISIN_*`` settings).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Output goes to
    ``log_path`` when given (appended, so restarts keep the earlier lines), else nowhere.
    ``workers`` above 1 runs ``voisin serve --workers N`` (PostgreSQL and a node in ``env``).
    """

    def __init__(
        self,
        data_dir: Path | str,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        log_path: Path | str | None = None,
        start_timeout_s: float = 120.0,
        workers: int = 1,
        stop_with_parent: bool = False,
    ) -> None:
        """``stop_with_parent``: the server gets SIGTERM when the thread that started it ends
        (its process killed, say), so that none is left behind holding the data dir's chain;
        for a server started by the main thread of a command that owns it."""
        # Absolute, so that the child opens this directory whatever its working directory.
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else None
        self.start_timeout_s = start_timeout_s
        self.workers = workers
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        self.env.update(env)
        self.env["VOISIN_DATA_DIR"] = str(self.data_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.stop_with_parent = stop_with_parent

    def start(self) -> ServeProcess:
        """Start the child and wait until ``/health`` answers 200."""
        if self.proc is not None and self.proc.poll() is None:
            raise ServerStartError(f"the server on {self.base_url} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        port = str(self.port)
        try:
            self.proc = subprocess.Popen(
                (
                    *(sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1"),
                    *("--port", port, "--workers", str(self.workers)),
                ),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_stop_with_parent if self.stop_with_parent else None,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise ServerStartError(f"voisin serve exited with status {code}{where}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise ServerStartError(
            f"voisin serve did not answer {self.base_url}/health within {self.start_timeout_s} s"
        )

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (a graceful shutdown), then SIGKILL after ``timeout_s``; the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the crash a durability test or a chaos run wants."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _stop_with_parent() -> None:
    signal_when_parent_dies(signal.SIGTERM)
