"""The paths the ``voisin`` commands take.

Every path a command takes is made absolute once, against the working directory the command
starts in, before any child process (the chain's node, a server) receives it. An output path is
checked before the work that fills it starts: one line and exit status 2, not a traceback after
the run.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The file in the data directory that holds a running ``voisin serve``'s URL.
SERVED_AT = "serve.url"


def absolute(path: str | Path) -> Path:
    """``path`` (``~`` expanded) as an absolute path, against the current working directory."""
    return Path(os.path.expanduser(path)).resolve()


def unwritable_dir(path: Path, option: str) -> str | None:
    """Create the folder ``path`` if needed; ``None`` if this process can write in it, else
    the one-line reason, naming ``option``."""
    reason: str | None = None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        reason = "it is a file, not a folder"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    else:
        if not os.access(path, os.W_OK | os.X_OK):
            reason = "Permission denied"
    return None if reason is None else f"cannot write to {option} {path}: {reason}"


def unwritable_file(path: str | Path | None, option: str) -> str | None:
    """``None`` if the file ``path`` can be written (its folder exists and is writable; the
    file, if there, is a writable file), else the one-line reason, naming ``option``."""
    if path is None:
        return None
    where = absolute(path)
    folder = where.parent
    reason: str | None = None
    if where.is_dir():
        reason = "it is a folder, not a file"
    elif not folder.is_dir():
        reason = f"{folder} is not a folder" if folder.exists() else f"no folder {folder}"
    elif not os.access(folder, os.W_OK | os.X_OK) or (
        where.exists() and not os.access(where, os.W_OK)
    ):
        reason = "Permission denied"
    return None if reason is None else f"cannot write to {option} {where}: {reason}"


def write_output(path: Path, text: str, option: str) -> str | None:
    """Write ``text`` to ``path``; ``None`` when done, else the one-line reason it failed."""
    try:
        path.write_text(text)
    except OSError as exc:
        return f"cannot write to {option} {absolute(path)}: {exc.strerror or type(exc).__name__}"
    return None
