"""Decoded trie nodes kept in memory, and a leaner RLP encoder, under py-trie's HexaryTrie.

On the embedded chain every ``SLOAD`` walks the contract's storage trie from its root, and
every block rewrites the path to each storage word it changed (py-evm builds a fresh state, and
so fresh caches, for each block). py-trie reads each node on such a path from the database and
decodes it with pyrlp's pure-Python decoder, every time; and it encodes every new node with
pyrlp's general encoder, which checks each item against an abstract base class. Over a
100-household ``voisin simulate``, RLP decoding alone was 9.5 % of the run.

:func:`patch` changes three things in the process's py-trie, none of them a result. They are
process-wide because py-evm builds its ``HexaryTrie`` objects in many places (account and
storage tries, transaction and receipt tries, the chain database) and takes the class from
no setting a subclass could go through:

* **Decoded nodes by hash.** A node stored by hash is content-addressed: the same hash always
  decodes to the same node. :class:`~trie.HexaryTrie` keeps each node it encodes or decodes in
  one process-wide map from hash to node (cleared whole when it reaches
  :data:`MAX_CACHED_NODES`) and answers ``get_node`` from it. py-trie edits the node it gets
  in place, so every answer is a fresh copy (lists); the map's own nodes are never handed out.
  The map keeps each node as tuples, which hold only byte strings and tuples: Python's
  garbage collector stops tracking such a tuple at its first collection, so the map's
  hundreds of thousands of nodes are not walked again by every full collection.
  Nodes shorter than 32 bytes are embedded in their parent, not stored by hash, and are
  treated as before.
* **RLP encoding of nodes** by :func:`encode_node`, which gives the same bytes as pyrlp's
  ``encode_raw`` for the only shapes a trie node has (bytes, and lists of them, nested) and
  hands anything else to pyrlp.
* **Nibble conversions** (pure functions of a byte string, returning tuples) behind a bounded
  ``functools.lru_cache``; bytes are split into nibbles through their hex form.

State roots, node hashes and what is stored are unchanged; ``tests/ledger/chain/test_trie_cache.py``
checks roots, reads and proofs of random tries against a process where nothing is installed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, cast

import trie.hexary as _hexary
import trie.utils.nibbles as _nibbles
import trie.utils.nodes as _nodes
from rlp.codec import encode_raw as _rlp_encode_raw
from trie.constants import BLANK_NODE, BLANK_NODE_HASH, NIBBLE_TERMINATOR
from trie.utils.nibbles import decode_nibbles as _original_decode_nibbles

#: Nodes kept at most; the map is emptied when it is full. A branch node holds 17 short byte
#: strings, a leaf two; a 1,000-household day's peak RSS was about 200 MiB higher with the map
#: (BENCHMARKS.md).
MAX_CACHED_NODES: Final = 1 << 18
#: Nodes kept at most this long encoded. The state and storage tries' nodes are shorter (a
#: branch node is at most 532 bytes); the leaves of a block's receipt and transaction tries
#: hold whole receipts and transactions (kilobytes each for a settlement batch). Kept, they
#: made the map hold gigabytes at its 2^18 nodes when a long run's receipts were read back,
#: and they are read once, if at all.
MAX_CACHED_NODE_BYTES: Final = 1024
_NIBBLE_CACHE_SIZE: Final = 1 << 16

_nodes_by_hash: dict[bytes, tuple[Any, ...]] = {}
_installed = False

_original_get: Callable[..., Any] = _hexary.HexaryTrie._get

_original_create_mapping = cast(
    Callable[[_hexary.HexaryTrie, Any], tuple[Any, Any]],
    _hexary.HexaryTrie._create_node_to_db_mapping,
)


def _copy(node: list[Any] | tuple[Any, ...]) -> list[Any]:
    """A node as py-trie edits it: lists all the way down."""
    return [_copy(item) if type(item) is tuple or type(item) is list else item for item in node]


def _freeze(node: list[Any] | tuple[Any, ...]) -> tuple[Any, ...]:
    """A node as the map keeps it: tuples all the way down."""
    return tuple(
        _freeze(item) if type(item) is list or type(item) is tuple else item for item in node
    )


def _remember(node_hash: bytes, node: list[Any], size: int) -> None:
    """Keep ``node`` (``size`` bytes encoded) decoded under ``node_hash``, unless it is longer
    than :data:`MAX_CACHED_NODE_BYTES`."""
    if size > MAX_CACHED_NODE_BYTES:
        return
    if len(_nodes_by_hash) >= MAX_CACHED_NODES:
        _nodes_by_hash.clear()
    _nodes_by_hash[node_hash] = _freeze(node)


def remember_node(node_hash: bytes, node: list[Any], size: int) -> None:
    """Keep ``node``, just stored under ``node_hash`` (``size`` bytes encoded), decoded (for
    writers that encode and store nodes themselves, as ``ledger.chain.pyevm_speedups.trie_batch``
    does)."""
    if node_hash not in _nodes_by_hash:
        _remember(node_hash, node, size)


def _get_node(self: _hexary.HexaryTrie, node_hash: Any) -> Any:
    if node_hash in (BLANK_NODE, BLANK_NODE_HASH):
        return BLANK_NODE
    if len(node_hash) < 32:
        # An embedded node (already a list) or a short encoding: py-trie's own path.
        return _nodes.decode_node(node_hash)
    node = _nodes_by_hash.get(node_hash)
    if node is None:
        # A missing node raises KeyError here, as py-trie's own get_node does.
        encoded = self.db[node_hash]
        decoded = _nodes.decode_node(encoded)
        if type(decoded) is not list:
            return decoded
        _remember(node_hash, decoded, len(encoded))
        return decoded
    return _copy(node)


def _shared_node(ref: Any) -> Any:
    """The node ``ref`` points at, straight from the map and not copied (for reads only), or
    None when it is not there. An embedded node is the list or tuple itself."""
    if type(ref) is tuple or type(ref) is list:
        return ref
    if ref in (BLANK_NODE, BLANK_NODE_HASH):
        return BLANK_NODE
    return _nodes_by_hash.get(ref)


def _get(self: _hexary.HexaryTrie, root_hash: Any, trie_key: Any) -> Any:
    """py-trie's lookup of ``trie_key`` (nibbles), walking the map's nodes without copying
    them: a lookup only reads. A walk that ends at a leaf or a blank node answers here; any
    other shape (a key that ends at a branch or inside an extension, a node not in the map)
    goes through py-trie's own lookup, which also raises for a missing node."""
    node = _shared_node(root_hash)
    depth, length = 0, len(trie_key)
    while node is not None:
        if node == BLANK_NODE:
            return BLANK_NODE
        if len(node) == 17:
            if depth >= length:
                break
            node = _shared_node(node[trie_key[depth]])
            depth += 1
            continue
        if len(node) != 2:
            break
        path = _decode_nibbles(node[0])
        if path and path[-1] == NIBBLE_TERMINATOR:  # a leaf
            return node[1] if tuple(trie_key[depth:]) == path[:-1] else BLANK_NODE
        end = depth + len(path)
        if end >= length or tuple(trie_key[depth:end]) != path:
            break
        node = _shared_node(node[1])
        depth = end
    return _original_get(self, root_hash, trie_key)


def _create_node_to_db_mapping(self: _hexary.HexaryTrie, node: Any) -> tuple[Any, Any]:
    key, encoded = _original_create_mapping(self, node)
    # A node stored by hash is kept as it is written: the next block's reads start at it.
    if encoded is not None and type(node) is list and key not in _nodes_by_hash:
        _remember(key, node, len(encoded))
    return key, encoded


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(length_bytes),)) + length_bytes


def encode_node(item: Any) -> bytes:
    """RLP-encode a trie node: the bytes pyrlp's ``encode_raw`` gives, for bytes and lists."""
    kind = type(item)
    if kind is bytes:
        data = cast(bytes, item)
        if len(data) == 1 and data[0] < 0x80:
            return data
        return _length_prefix(len(data), 0x80) + data
    if kind is list or kind is tuple:
        payload = b"".join([encode_node(child) for child in item])
        return _length_prefix(len(payload), 0xC0) + payload
    return bytes(_rlp_encode_raw(item))


HEX_DIGITS: Final = "0123456789abcdef"
#: A nibble's value by its hex digit (a key's hex string holds one digit per nibble).
NIBBLE_OF_HEX: Final = {c: int(c, 16) for c in HEX_DIGITS}


def bytes_to_nibbles(value: Any) -> tuple[int, ...]:
    """py-trie's ``bytes_to_nibbles`` (each byte's high nibble, then its low one), through
    the byte string's hex form: a C-level loop instead of a generator per byte. Storage keys
    are hashes, so most are converted once: the cache below rarely helps them."""
    return tuple(map(NIBBLE_OF_HEX.__getitem__, value.hex()))


_cached_bytes_to_nibbles = functools.lru_cache(maxsize=_NIBBLE_CACHE_SIZE)(bytes_to_nibbles)
_cached_decode_nibbles = functools.lru_cache(maxsize=_NIBBLE_CACHE_SIZE)(_original_decode_nibbles)


def _bytes_to_nibbles(value: Any) -> tuple[int, ...]:
    try:
        return _cached_bytes_to_nibbles(value)
    except TypeError:  # unhashable (a bytearray): convert without the cache
        return bytes_to_nibbles(value)


def _decode_nibbles(value: Any) -> tuple[int, ...]:
    try:
        return _cached_decode_nibbles(value)
    except TypeError:
        return _original_decode_nibbles(value)


def patches() -> list[tuple[Any, str, Any]]:
    """What :func:`patch` sets: (object, attribute, replacement) for each change to py-trie.

    The differential tests apply these through pytest's ``monkeypatch``, so that each test
    puts py-trie back as it ships afterwards.
    """
    return [
        (_hexary.HexaryTrie, "get_node", _get_node),
        (_hexary.HexaryTrie, "_get", _get),
        (_hexary.HexaryTrie, "_create_node_to_db_mapping", _create_node_to_db_mapping),
        # py-trie imported these by name, so they are replaced where it looks them up.
        (_hexary, "encode_raw", encode_node),
        (_hexary, "bytes_to_nibbles", _bytes_to_nibbles),
        (_hexary, "decode_nibbles", _decode_nibbles),
        (_nodes, "decode_nibbles", _decode_nibbles),
        # decode_nibbles itself splits the bytes with it.
        (_nibbles, "bytes_to_nibbles", bytes_to_nibbles),
    ]


def patch() -> None:
    """Put the node map, the node encoder and the nibble caches under py-trie, for the whole
    process (idempotent). Only :func:`ledger.chain.pyevm_speedups.install` calls this."""
    global _installed
    if _installed:
        return
    for target, name, replacement in patches():
        setattr(target, name, replacement)
    _installed = True


def cached_nodes() -> int:
    """How many decoded nodes the map holds now."""
    return len(_nodes_by_hash)
