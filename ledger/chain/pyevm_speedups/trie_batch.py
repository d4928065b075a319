"""A block's storage writes applied to the storage trie in one pass, for the embedded chain.

py-evm computes a contract's storage root after every transaction by setting each changed
storage word into the contract's storage trie, one key at a time. Each set rebuilds the whole
path from the root to the word's leaf: every node on it is re-encoded, hashed, written and
its predecessor pruned. A commit of 100 readings changes 200 words, so the root node was
rebuilt 200 times, its children about 12 times each, and so on; that was a quarter of the
time of a ``commitReadings`` transaction.

:func:`set_many` applies a set of writes in one walk: each node on any written path is read
once and rebuilt once. A Merkle-Patricia trie's shape and root depend only on the keys and
values it holds, not on the order they were written, so the result is the trie that setting
the keys one by one gives: the same nodes, the same root. It handles the writes of a storage
trie (keys of one length, values not empty); anything else (an empty value, which deletes,
keys of another length, a shape it does not expect) goes through py-trie's own set and
delete, key by key.

:class:`BatchedStorageLookup` is py-evm's ``StorageLookup`` (the layer between a contract's
cached storage and its trie) keeping its writes until something needs the trie (a read, the
root, a commit, a storage reset), and then applying them with :func:`set_many`. It is reached
through subclasses, not by changing py-evm's classes: :class:`BatchedAccountDB` is the
``account_db_class`` of the fast VM's state (:mod:`ledger.chain.pyevm_speedups.vm`), and builds
each account's storage as a :class:`BatchedAccountStorageDB` on the batched lookup.
``tests/ledger/chain/test_trie_batch.py`` checks roots, reads and proofs against key-by-key sets
on random tries, and every block's state root against the same blocks run by py-evm's own
classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from eth.db.account import AccountDB
from eth.db.cache import CacheDB
from eth.db.journal import JournalDB
from eth.db.storage import AccountStorageDB, StorageLookup
from eth.vm.interrupt import MissingStorageTrieNode
from eth_hash.auto import keccak
from trie import exceptions as trie_exceptions
from trie.constants import (
    BLANK_NODE,
    NODE_TYPE_BLANK,
    NODE_TYPE_BRANCH,
    NODE_TYPE_EXTENSION,
    NODE_TYPE_LEAF,
)
from trie.utils.nodes import compute_extension_key, extract_key, get_node_type

from ledger.chain.pyevm_speedups.trie_cache import (
    HEX_DIGITS,
    NIBBLE_OF_HEX,
    encode_node,
    remember_node,
)

# The key's nibbles as its hex string (one character per nibble, sorted as the nibbles sort),
# the value, the key.
Item = tuple[str, bytes, bytes]


def _hex(nibbles: Sequence[int]) -> str:
    return "".join(HEX_DIGITS[n] for n in nibbles)


# py-trie's HexaryTrie is untyped; its node helpers are used as py-trie's own set uses them.


class _Unsupported(Exception):
    """A shape :func:`set_many` leaves to py-trie's key-by-key path."""


def _shared(a: str, b: str, depth: int) -> int:
    """How many nibbles ``a`` and ``b`` share from ``depth`` on."""
    n = depth
    end = min(len(a), len(b))
    while n < end and a[n] == b[n]:
        n += 1
    return n - depth


def _groups(items: list[Item], depth: int) -> list[tuple[int, list[Item]]]:
    """Sorted items grouped by their nibble at ``depth``."""
    groups: list[tuple[int, list[Item]]] = []
    for item in items:
        nibbles = item[0]
        if len(nibbles) <= depth:
            raise _Unsupported("a key ends at a branch")
        nibble = NIBBLE_OF_HEX[nibbles[depth]]
        if groups and groups[-1][0] == nibble:
            groups[-1][1].append(item)
        else:
            groups.append((nibble, [item]))
    return groups


def _leaf(item: Item, depth: int) -> list[bytes]:
    """The leaf node of ``item`` below ``depth`` nibbles: its path in hex-prefix form (flag
    nibble 2 for an even length, 3 and the first nibble for an odd one), from the key's
    bytes."""
    key, half = item[2], depth >> 1
    if depth & 1:
        return [bytes((0x30 | (key[half] & 0x0F),)) + key[half + 1 :], item[1]]
    return [b"\x20" + key[half:], item[1]]


def _persist(trie: Any, node: list[Any]) -> Any:
    """What the parent holds for a new ``node``: its hash, once stored (as py-trie's
    ``_persist_node`` stores it), or the node itself if its encoding is under 32 bytes."""
    encoded = encode_node(node)
    if len(encoded) < 32:
        return node
    node_hash = keccak(encoded)
    trie._set_db_value(node_hash, encoded)
    remember_node(node_hash, node, len(encoded))
    return node_hash


def _prune(trie: Any, ref: Any) -> None:
    """Prune the node ``ref`` points at when the walk succeeds, as py-trie's ``_prune_node``
    does for a node stored by hash (an embedded node, or a blank one, is not stored)."""
    if trie.is_pruning and type(ref) is bytes and len(ref) == 32:
        trie._pending_prune_keys[ref] += 1


def _build(trie: Any, items: list[Item], depth: int) -> Any:
    """A new subtree holding ``items`` (sorted, distinct keys of one length) below
    ``depth``."""
    if len(items) == 1:
        return _leaf(items[0], depth)
    shared = _shared(items[0][0], items[-1][0], depth)
    if shared:
        branch = _build_branch(trie, items, depth + shared)
        prefix = items[0][0][depth : depth + shared]
        return [
            compute_extension_key(tuple(NIBBLE_OF_HEX[c] for c in prefix)),
            _persist(trie, branch),
        ]
    return _build_branch(trie, items, depth)


def _build_branch(trie: Any, items: list[Item], depth: int) -> list[Any]:
    node: list[Any] = [BLANK_NODE] * 17
    for nibble, group in _groups(items, depth):
        node[nibble] = _persist(trie, _build(trie, group, depth + 1))
    return node


def _apply(trie: Any, node: Any, items: list[Item], depth: int) -> Any:
    """``node`` (below ``depth`` nibbles) with ``items`` set under it."""
    kind = get_node_type(node)
    if kind == NODE_TYPE_BLANK:
        return _build(trie, items, depth)
    if kind == NODE_TYPE_LEAF:
        nibbles = items[0][0][:depth] + _hex(extract_key(node))
        if len(nibbles) != len(items[0][0]) or len(nibbles) & 1:
            raise _Unsupported("a leaf's key has another length")
        if all(item[0] != nibbles for item in items):
            items = sorted([*items, (nibbles, node[1], bytes.fromhex(nibbles))])
        return _build(trie, items, depth)
    if kind == NODE_TYPE_EXTENSION:
        path = tuple(extract_key(node))
        prefix = _hex(path)
        shared = min(_shared(prefix, item[0][depth:], 0) for item in items)
        if shared == len(prefix):
            child = _apply_at(trie, node[1], items, depth + shared)
            return [node[0], _persist(trie, child)]
        # Some key leaves the extension at nibble `shared`: a branch there, holding the rest
        # of the extension (or its child) and those keys.
        rest = path[shared + 1 :]
        below = node[1] if not rest else _persist(trie, [compute_extension_key(rest), node[1]])
        branch: list[Any] = [BLANK_NODE] * 17
        branch[path[shared]] = below
        branch = _apply_branch(trie, branch, items, depth + shared)
        if not shared:
            return branch
        return [compute_extension_key(path[:shared]), _persist(trie, branch)]
    if kind == NODE_TYPE_BRANCH:
        if node[16]:
            raise _Unsupported("a branch holds a value")
        return _apply_branch(trie, list(node), items, depth)
    raise _Unsupported(f"node type {kind}")


def _apply_at(trie: Any, ref: Any, items: list[Item], depth: int) -> Any:
    """The node ``ref`` points at, with ``items`` set under it; the old node is pruned."""
    node = trie.get_node(ref)
    _prune(trie, ref)
    return _apply(trie, node, items, depth)


def _apply_branch(trie: Any, node: list[Any], items: list[Item], depth: int) -> list[Any]:
    for nibble, group in _groups(items, depth):
        node[nibble] = _persist(trie, _apply_at(trie, node[nibble], group, depth + 1))
    return node


def set_many(trie: Any, writes: Mapping[bytes, bytes]) -> None:
    """Set each key of ``writes`` to its value in ``trie`` (an empty value deletes the key).

    The trie ends as ``trie[key] = value`` for each item would leave it.
    """
    sets = sorted((k.hex(), v, k) for k, v in writes.items() if v)
    deletes = [k for k, v in writes.items() if not v]
    if len({len(item[0]) for item in sets}) > 1 or len(sets) < 2:
        deletes = list(writes)  # key by key, through py-trie
        sets = []
    if sets:
        try:
            with trie._prune_on_success():
                root = trie.get_node(trie.root_hash)
                # The root as py-trie's own set prunes it (a short root is handled by
                # _set_root_node).
                trie._prune_node(root)
                trie._set_root_node(_apply(trie, root, sets, 0))
        except _Unsupported:
            # Nothing was pruned (pruning completes on success only) and the root is
            # unchanged; nodes already written stay unreferenced in the batch.
            deletes = list(writes)
    for key in deletes:
        trie[key] = writes[key]


# ───────────────────────── py-evm's StorageLookup, with writes kept ─────────────────────────


class BatchedStorageLookup(StorageLookup):
    """py-evm's ``StorageLookup`` (the layer between a contract's cached storage and its trie)
    keeping its writes until something needs the trie: a read, the root, a commit, a storage
    reset or its rollback. Those apply the kept writes with :func:`set_many` first."""

    def __init__(self, db: Any, storage_root: Any, address: Any) -> None:
        super().__init__(db, storage_root, address)
        # Hashed slot -> RLP value, b"" to delete; applied in one pass by _apply_kept_writes.
        self._kept_writes: dict[bytes, bytes] = {}

    def _apply_kept_writes(self) -> None:
        if not self._kept_writes:
            return
        writes, self._kept_writes = self._kept_writes, {}
        write_trie = self._get_write_trie()
        try:
            set_many(write_trie, writes)
        except trie_exceptions.MissingTrieNode as exc:
            raise MissingStorageTrieNode(
                cast(Any, exc.missing_node_hash),
                self._starting_root_hash,
                cast(Any, exc.requested_key),
                exc.prefix,
                self._address,
            ) from exc

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._kept_writes[self._decode_key(key)] = value

    def __delitem__(self, key: bytes) -> None:
        self._kept_writes[self._decode_key(key)] = b""

    def __getitem__(self, key: bytes) -> bytes:
        self._apply_kept_writes()
        return super().__getitem__(key)

    def _exists(self, key: bytes) -> bool:
        self._apply_kept_writes()
        return super()._exists(key)

    @property
    def has_changed_root(self) -> bool:
        self._apply_kept_writes()
        return bool(super().has_changed_root)

    def get_changed_root(self) -> Any:
        self._apply_kept_writes()
        return super().get_changed_root()

    def commit_to(self, db: Any) -> None:
        self._apply_kept_writes()
        super().commit_to(db)

    def new_trie(self) -> int:
        self._apply_kept_writes()
        return super().new_trie()

    def rollback_trie(self, trie_index: int) -> None:
        self._apply_kept_writes()
        super().rollback_trie(trie_index)


class BatchedAccountStorageDB(AccountStorageDB):
    """py-evm's ``AccountStorageDB`` on a :class:`BatchedStorageLookup`."""

    def __init__(self, db: Any, storage_root: Any, address: Any) -> None:
        super().__init__(db, storage_root, address)
        # The pipeline py-evm's __init__ builds (db -> lookup -> cache -> locked changes ->
        # journal), rebuilt on the batched lookup; nothing has gone through it yet.
        self._storage_lookup = BatchedStorageLookup(db, storage_root, address)
        self._storage_cache = CacheDB(self._storage_lookup)
        self._locked_changes = JournalDB(self._storage_cache)
        self._journal_storage = JournalDB(self._locked_changes)


class BatchedAccountDB(AccountDB):
    """py-evm's ``AccountDB`` whose accounts keep their storage in
    :class:`BatchedAccountStorageDB` (a state's ``account_db_class``)."""

    def _get_address_store(self, address: Any) -> Any:
        # py-evm's own method, with the batched storage class.
        store = self._account_stores.get(address)
        if store is None:
            storage_root = self._get_storage_root(address)
            store = BatchedAccountStorageDB(self._raw_store_db, storage_root, address)
            self._account_stores[address] = store
        return store
