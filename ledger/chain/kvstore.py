"""Durable key-value store for py-evm, on LMDB, with explicit atomic flushes.

py-evm writes the chain (headers, bodies, receipts, trie nodes, the canonical head pointer)
through its ``DatabaseAPI``. :class:`LmdbStore` implements that interface with a write-back
buffer: writes and deletes accumulate in memory, reads see them immediately, and
:meth:`LmdbStore.flush` makes the whole buffer durable in ONE fsynced LMDB write
transaction. The caller decides where the durability points are (the embedded chain flushes
after each mined block), so a crash loses at most the unflushed suffix and never leaves a
half-written block behind: LMDB's copy-on-write B-tree is either at the old or the new root.

Not thread-safe: the embedded chain serialises every access under its own lock.
"""

from __future__ import annotations

from pathlib import Path
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
