"""Files a crash leaves whole: the deployment records, and the records ``voisin simulate``
resumes from."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_durably"]


def write_durably(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash (even ``kill -9`` or a power cut) leaves
    the old file or the new one whole: written beside it, fsynced, renamed over it, and the
    folder fsynced so that the rename itself is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
