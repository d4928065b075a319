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

:func:`install` makes py-evm's ``StorageLookup`` (the layer between a contract's cached
storage and its trie) keep its writes until something needs the trie (a read, the root, a
commit, a storage reset), and then apply them with :func:`set_many`.
``tests/ledger/test_trie_batch.py`` checks roots, reads and proofs against key-by-key sets
on random tries, and a block's state root against a process where nothing is installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from eth.db.storage import StorageLookup
from eth.vm.interrupt import MissingStorageTrieNode
from trie import exceptions as trie_exceptions
from trie.constants import (
    BLANK_NODE,
    NODE_TYPE_BLANK,
    NODE_TYPE_BRANCH,
    NODE_TYPE_EXTENSION,
    NODE_TYPE_LEAF,
)
from trie.utils.nibbles import bytes_to_nibbles
from trie.utils.nodes import (
    compute_extension_key,
    compute_leaf_key,
    extract_key,
    get_node_type,
)

Item = tuple[tuple[int, ...], bytes]
# py-trie's HexaryTrie is untyped; its node helpers are used as py-trie's own set uses them.


class _Unsupported(Exception):
    """A shape :func:`set_many` leaves to py-trie's key-by-key path."""


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _groups(items: list[Item]) -> list[tuple[int, list[Item]]]:
    """Sorted items grouped by their first nibble, each key without it."""
    groups: list[tuple[int, list[Item]]] = []
    for key, value in items:
        if not key:
            raise _Unsupported("a key ends at a branch")
        if groups and groups[-1][0] == key[0]:
            groups[-1][1].append((key[1:], value))
        else:
            groups.append((key[0], [(key[1:], value)]))
    return groups


def _build(trie: Any, items: list[Item]) -> Any:
    """A new subtree holding ``items`` (sorted, distinct keys of one length)."""
    if len(items) == 1:
        key, value = items[0]
        return [compute_leaf_key(key), value]
    shared = _common_prefix(items[0][0], items[-1][0])
    if shared:
        branch = _build_branch(trie, [(key[shared:], value) for key, value in items])
        return [compute_extension_key(items[0][0][:shared]), trie._persist_node(branch)]
    return _build_branch(trie, items)


def _build_branch(trie: Any, items: list[Item]) -> list[Any]:
    node: list[Any] = [BLANK_NODE] * 17
    for nibble, group in _groups(items):
        node[nibble] = trie._persist_node(_build(trie, group))
    return node


def _apply(trie: Any, node: Any, items: list[Item]) -> Any:
    """``node`` with ``items`` set under it (sorted, distinct keys of one length)."""
    kind = get_node_type(node)
    if kind == NODE_TYPE_BLANK:
        return _build(trie, items)
    # Every node on a written path is replaced, and pruned as py-trie prunes it.
    trie._prune_node(node)
    if kind == NODE_TYPE_LEAF:
        path = tuple(extract_key(node))
        if len(path) != len(items[0][0]):
            raise _Unsupported("a leaf's key has another length")
        if all(key != path for key, _ in items):
            items = sorted([*items, (path, node[1])])
        return _build(trie, items)
    if kind == NODE_TYPE_EXTENSION:
        prefix = tuple(extract_key(node))
        shared = min(_common_prefix(prefix, key) for key, _ in items)
        if shared == len(prefix):
            child = _apply(trie, trie.get_node(node[1]), [(k[shared:], v) for k, v in items])
            return [node[0], trie._persist_node(child)]
        # Some key leaves the extension at nibble `shared`: a branch there, holding the rest
        # of the extension (or its child) and those keys.
        rest = prefix[shared + 1 :]
        below = node[1] if not rest else trie._persist_node([compute_extension_key(rest), node[1]])
        branch: list[Any] = [BLANK_NODE] * 17
        branch[prefix[shared]] = below
        branch = _apply_branch(trie, branch, [(k[shared:], v) for k, v in items])
        if not shared:
            return branch
        return [compute_extension_key(prefix[:shared]), trie._persist_node(branch)]
    if kind == NODE_TYPE_BRANCH:
        if node[16]:
            raise _Unsupported("a branch holds a value")
        return _apply_branch(trie, list(node), items)
    raise _Unsupported(f"node type {kind}")


def _apply_branch(trie: Any, node: list[Any], items: list[Item]) -> list[Any]:
    for nibble, group in _groups(items):
        node[nibble] = trie._persist_node(_apply(trie, trie.get_node(node[nibble]), group))
    return node


def set_many(trie: Any, writes: Mapping[bytes, bytes]) -> None:
    """Set each key of ``writes`` to its value in ``trie`` (an empty value deletes the key).

    The trie ends as ``trie[key] = value`` for each item would leave it.
    """
    sets = sorted((tuple(bytes_to_nibbles(k)), v) for k, v in writes.items() if v)
    deletes = [k for k, v in writes.items() if not v]
    if len({len(key) for key, _ in sets}) > 1 or len(sets) < 2:
        deletes = list(writes)  # key by key, through py-trie
        sets = []
    if sets:
        try:
            with trie._prune_on_success():
                root = trie.get_node(trie.root_hash)
                trie._set_root_node(_apply(trie, root, sets))
        except _Unsupported:
            # Nothing was pruned (pruning completes on success only) and the root is
            # unchanged; nodes already written stay unreferenced in the batch.
            deletes = list(writes)
    for key in deletes:
        trie[key] = writes[key]


# ───────────────────────── py-evm's StorageLookup, with writes kept ─────────────────────────

_PENDING = "_voisin_pending_writes"
_original = {
    name: getattr(StorageLookup, name)
    for name in (
        "__setitem__",
        "__getitem__",
        "__delitem__",
        "_exists",
        "has_changed_root",
        "get_changed_root",
        "commit_to",
        "new_trie",
        "rollback_trie",
    )
}


def _pending(lookup: StorageLookup) -> dict[bytes, bytes]:
    pending: dict[bytes, bytes] | None = lookup.__dict__.get(_PENDING)
    if pending is None:
        pending = {}
        lookup.__dict__[_PENDING] = pending
    return pending


def _flush(lookup: StorageLookup) -> None:
    pending = lookup.__dict__.get(_PENDING)
    if not pending:
        return
    writes = dict(pending)
    pending.clear()
    write_trie = lookup._get_write_trie()
    try:
        set_many(write_trie, writes)
    except trie_exceptions.MissingTrieNode as exc:
        raise MissingStorageTrieNode(
            cast(Any, exc.missing_node_hash),
            lookup._starting_root_hash,
            cast(Any, exc.requested_key),
            exc.prefix,
            lookup._address,
        ) from exc


def _set(self: StorageLookup, key: bytes, value: bytes) -> None:
    _pending(self)[self._decode_key(key)] = value


def _delete(self: StorageLookup, key: bytes) -> None:
    _pending(self)[self._decode_key(key)] = b""


def _flushing(name: str) -> Any:
    original = _original[name]

    def method(self: StorageLookup, *args: Any) -> Any:
        _flush(self)
        return original(self, *args)

    method.__name__ = name
    return method


_installed = False


def install() -> None:
    """Keep py-evm's storage writes until the trie is needed, then apply them at once."""
    global _installed
    if _installed:
        return
    StorageLookup.__setitem__ = _set  # type: ignore[method-assign]
    StorageLookup.__delitem__ = _delete  # type: ignore[method-assign]
    changed = _original["has_changed_root"].fget

    def has_changed_root(self: StorageLookup) -> bool:
        _flush(self)
        return bool(changed(self))

    StorageLookup.has_changed_root = property(has_changed_root)  # type: ignore[method-assign,assignment]
    for name in (
        "__getitem__",
        "_exists",
        "get_changed_root",
        "commit_to",
        "new_trie",
        "rollback_trie",
    ):
        setattr(StorageLookup, name, _flushing(name))
    _installed = True
