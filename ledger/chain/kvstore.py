"""Durable key-value store for py-evm, on LMDB, with explicit atomic flushes.

py-evm writes the chain (headers, bodies, receipts, trie nodes, the canonical head pointer)
through its ``DatabaseAPI``. :class:`LmdbStore` implements that interface with a write-back
buffer: writes and deletes accumulate in memory, reads see them immediately, and
:meth:`LmdbStore.flush` makes the whole buffer durable in ONE fsynced LMDB write
transaction. The caller decides where the durability points are (the embedded chain flushes
after each mined block), so a crash loses at most the unflushed suffix and never leaves a
half-written block behind: LMDB's copy-on-write B-tree is either at the old or the new root.

Not thread-safe: the embedded chain serialises every access under its own lock.

:class:`LmdbSnapshot` reads a store from another process while its owner keeps it open (LMDB
is multi-process: the snapshot's read transaction holds its pages in LMDB's reader table), and
copies it with LMDB's own copy: a backup of the chain while ``voisin serve``'s node runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Final

import lmdb
from eth.db.backends.base import BaseDB

#: Address space reserved for the memory map. LMDB needs an upper bound up front; the file
#: itself is sparse and grows only with the data, so a generous bound costs nothing.
DEFAULT_MAP_SIZE: Final = 1 << 40  # 1 TiB


class LmdbStore(BaseDB):
    """A py-evm ``DatabaseAPI`` on LMDB whose writes become durable on :meth:`flush`."""

    def __init__(self, path: Path, *, map_size: int = DEFAULT_MAP_SIZE) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        # sync + metasync: commit returns only after data and meta pages are on disk.
        # readahead=False: access is random (trie nodes keyed by hash); readahead only
        # pollutes the page cache.
        self._env = lmdb.open(
            str(path),
            map_size=map_size,
            sync=True,
            metasync=True,
            readahead=False,
            max_dbs=0,
        )
        # Pending writes; None is a tombstone for a buffered delete.
        self._pending: dict[bytes, bytes | None] = {}
        # One long-lived read snapshot, replaced after each flush: beginning a transaction
        # per read would dominate the cost of py-evm's many small reads.
        self._reader = self._env.begin(buffers=False)
        self._closed = False

    @property
    def path(self) -> Path:
        """Directory holding the LMDB files."""
        return self._path

    @property
    def pending_count(self) -> int:
        """Number of buffered writes and deletes not yet flushed."""
        return len(self._pending)

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is None:
                raise KeyError(key)
            return value
        stored: bytes | None = self._reader.get(key)
        if stored is None:
            raise KeyError(key)
        return stored

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        # MutableMapping contract (and py-evm's MemoryDB) raise KeyError for a missing key.
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = None

    def _exists(self, key: bytes) -> bool:
        if key in self._pending:
            return self._pending[key] is not None
        return self._reader.get(key) is not None

    def flush(self) -> None:
        """Write every buffered change in one atomic, fsynced LMDB transaction.

        On failure nothing is written and the buffer is kept, so a retry is possible.
        """
        if not self._pending:
            return
        with self._env.begin(write=True) as txn:
            for key, value in self._pending.items():
                if value is None:
                    txn.delete(key)
                else:
                    txn.put(key, value)
        self._pending.clear()
        # Move the read snapshot forward so reads of flushed keys hit LMDB, not a stale view.
        self._reader.abort()
        self._reader = self._env.begin(buffers=False)

    def close(self) -> None:
        """Flush and close the environment. Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._reader.abort()
            self._env.close()


class LmdbSnapshot(BaseDB):
    """A read-only py-evm ``DatabaseAPI`` over one LMDB read transaction of the store at
    ``path``, which may be open in another process meanwhile (its writes stay invisible
    here); :meth:`copy_to` writes exactly this state as a new store.

    Never open it in the process that holds the store (LMDB forbids two opens of one
    environment in a process, and py-lmdb refuses the second). Use as a context manager.
    """

    def __init__(self, path: Path, *, map_size: int = DEFAULT_MAP_SIZE) -> None:
        if not (path / "data.mdb").is_file():
            raise FileNotFoundError(f"no LMDB store in {path} (data.mdb is missing)")
        self._path = path
        # readonly: no write transaction can begin; the lock file is still used, so that the
        # writer in the other process does not reuse the pages this snapshot reads.
        self._env = lmdb.open(
            str(path), map_size=map_size, readonly=True, create=False, readahead=False, max_dbs=0
        )
        self._txn = self._env.begin(buffers=False)

    def __getitem__(self, key: bytes) -> bytes:
        stored: bytes | None = self._txn.get(key)
        if stored is None:
            raise KeyError(key)
        return stored

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise TypeError(f"the snapshot of {self._path} is read-only")

    def __delitem__(self, key: bytes) -> None:
        raise TypeError(f"the snapshot of {self._path} is read-only")

    def _exists(self, key: bytes) -> bool:
        return self._txn.get(key) is not None

    def copy_to(self, dest: Path) -> Path:
        """Write this snapshot as a compacted store in the folder ``dest`` (created; it must
        not exist or be empty), fsynced; returns the path of its ``data.mdb``."""
        dest.mkdir(parents=True, exist_ok=True)
        # compact: free pages left out and the rest renumbered, so the copy holds the data
        # only; it is also the mode that copies from a given transaction (this snapshot).
        self._env.copy(str(dest), compact=True, txn=self._txn)
        copied = dest / "data.mdb"
        with open(copied, "rb") as f:
            os.fsync(f.fileno())
        return copied

    def close(self) -> None:
        """End the read transaction and close the environment. Idempotent."""
        if self._txn is not None:
            self._txn.abort()
            self._txn = None  # type: ignore[assignment]
            self._env.close()

    def __enter__(self) -> LmdbSnapshot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
