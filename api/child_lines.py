"""The line protocol between the server and its helper processes (the audit's child,
:mod:`api.audit_process`; the power-flow worker, :mod:`api.feeder_process`): one JSON object
per line over the child's stdin and stdout."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import IO, Any

__all__ = ["ChildError", "read_answer", "send"]


class ChildError(RuntimeError):
    """A helper process failed: it could not start, stopped, or answered with an error."""


def send(stream: IO[bytes], value: object) -> None:
    """Write ``value`` as one JSON line and flush it."""
    stream.write(json.dumps(value, default=str).encode() + b"\n")
    stream.flush()


def decode(line: bytes, who: str, error: type[ChildError] = ChildError) -> dict[str, Any]:
    """The JSON object on ``line`` (what ``who`` answered), or ``error``."""
    try:
        value = json.loads(line)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise error(
            f"{who} answered {line[:200]!r}"
            if line
            else f"{who} stopped without answering (see the log above)"
        )
    return value


def read_answer(
    proc: subprocess.Popen[bytes],
    who: str,
    timeout_s: float | None,
    error: type[ChildError] = ChildError,
) -> dict[str, Any]:
    """The child's next line as a JSON object, waiting at most ``timeout_s`` (``None``: as long
    as it takes); a silence, an end or a line that is not an object raises ``error``."""
    assert proc.stdout is not None
    stdout = proc.stdout
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if reader.is_alive():
        raise error(f"{who} did not answer in {timeout_s:.0f} s")
    return decode(got[0] if got else b"", who, error)
