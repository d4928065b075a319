"""ledger.chain.pyevm_speedups.trie_cache changes how fast py-trie works, never what it stores or
answers.

The tests in this process put the cache under py-trie through ``monkeypatch`` (so py-trie is
as it ships again after each), whether or not the speedups are installed or switched off here.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any

import pytest
import rlp
from rlp.codec import encode_raw

from ledger.chain.pyevm_speedups import trie_cache as _trie_cache


@pytest.fixture(autouse=True)
def _cache_under_py_trie(monkeypatch: pytest.MonkeyPatch) -> None:
    for target, name, replacement in _trie_cache.patches():
        monkeypatch.setattr(target, name, replacement)


# Builds tries from a seed, with or without the cache, and prints every root, read and proof.
# Keys are 32-byte hashes (as py-evm's storage and account tries use) or short and shared
# prefixes (which make extension nodes and nodes embedded in their parent); values are short
# (embedded leaves) or long. Deletes and overwrites prune nodes, as py-evm's storage tries do.
WORKLOAD = """
import json, random, sys
from eth_utils import keccak
from trie import HexaryTrie
if sys.argv[1] == "cached":
    from ledger.chain.pyevm_speedups import trie_cache as _trie_cache
    _trie_cache.patch()
rng = random.Random(int(sys.argv[2]))
out = []
for prune in (False, True):
    db = {}
    t = HexaryTrie(db, prune=prune)
    keys = []
    for step in range(1500):
        op = rng.random()
        if op < 0.6 or not keys:
            if rng.random() < 0.5:
                key = keccak(rng.randbytes(8))
            else:
                key = b"\\x01\\x02" + rng.randbytes(rng.randint(0, 3))
            value = rng.randbytes(rng.choice((1, 3, 20, 40, 70, 1500)))
            t[key] = value
            keys.append(key)
        elif op < 0.8:
            key = rng.choice(keys)
            t[key] = rng.randbytes(rng.choice((2, 33)))
        else:
            key = keys.pop(rng.randrange(len(keys)))
            del t[key]
        if step % 50 == 0:
            out.append(t.root_hash.hex())
    # A second trie object over the same database, as the next block's state opens it.
    again = HexaryTrie(db, root_hash=t.root_hash)
    for key in keys[::7]:
        out.append([key.hex(), again[key].hex(), [str(n) for n in again.get_proof(key)]])
    out.append(len(db))
print(json.dumps(out))
"""


def _run(mode: str, seed: int) -> list[object]:
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD, mode, str(seed)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: list[object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("seed", [1, 2])
def test_tries_give_the_same_roots_reads_and_proofs_with_and_without_the_cache(seed: int) -> None:
    plain = _run("plain", seed)
    cached = _run("cached", seed)
    assert len(plain) > 60
    assert cached == plain


def _random_item(rng: random.Random, depth: int = 0) -> object:
    if depth < 3 and rng.random() < 0.35:
        return [_random_item(rng, depth + 1) for _ in range(rng.choice((0, 1, 2, 17, 30)))]
    length = rng.choice((0, 1, 1, 2, 31, 32, 55, 56, 57, 300, 70_000))
    if length == 1:
        return bytes((rng.randrange(256),))
    return rng.randbytes(length)


def test_the_node_encoder_gives_pyrlps_bytes() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        item = _random_item(rng)
        assert _trie_cache.encode_node(item) == encode_raw(item)
    # Tuples (py-trie's cached mapping passes nodes through tuples) and the edge lengths.
    assert _trie_cache.encode_node((b"\x01", [b""])) == rlp.encode([b"\x01", [b""]])
    for value in (b"\x00", b"\x7f", b"\x80", b"\xff", b"a" * 55, b"a" * 56, b"a" * 256):
        assert _trie_cache.encode_node(value) == encode_raw(value)


def test_answers_are_copies_so_editing_one_leaves_the_map_intact() -> None:
    from trie import HexaryTrie

    t = HexaryTrie({})
    for i in range(40):
        t[bytes([i]) * 32] = b"v" * 40
    root = t.get_node(t.root_hash)
    assert isinstance(root, list) and len(root) == 17
    root[0] = b"edited"
    assert t.get_node(t.root_hash)[0] != b"edited"
    assert t[bytes([0]) * 32] == b"v" * 40


def test_the_map_keeps_nodes_the_garbage_collector_stops_tracking() -> None:
    """Kept nodes are tuples of byte strings (and tuples, for embedded nodes): after one
    collection the collector no longer walks them, however many the map holds."""
    import gc

    from trie import HexaryTrie

    t = HexaryTrie({})
    for i in range(300):
        t[bytes([i % 256, i // 256]) * 16] = b"v" * (40 if i % 2 else 3)
    short = HexaryTrie({})
    for key in (b"\x01\x02", b"\x01\x03", b"\x01\x02\x04"):
        short[key] = b"x"  # embedded leaves under a branch: nested nodes
    kept = list(_trie_cache._nodes_by_hash.values())
    assert kept and any(type(item) is tuple for node in kept for item in node)
    # Each collection stops tracking the tuples whose items are all untracked: a nested node
    # one level at a time.
    for _ in range(4):
        gc.collect()
    assert not any(gc.is_tracked(node) for node in kept)
    # What py-trie gets is its own list to edit, the same node.
    for node_hash, node in list(_trie_cache._nodes_by_hash.items())[:50]:
        answer = t.get_node(node_hash)
        assert type(answer) is list and _trie_cache.encode_node(answer) == (
            _trie_cache.encode_node(node)
        )


def test_the_map_leaves_out_long_nodes_a_receipt_trie_holds() -> None:
    from eth_utils import keccak
    from trie import HexaryTrie

    _trie_cache._nodes_by_hash.clear()
    db: dict[bytes, bytes] = {}
    t = HexaryTrie(db)
    receipt = bytes(range(256)) * 12  # 3,072 bytes, as a settlement batch's receipt
    t[rlp.encode(0)] = receipt
    t[rlp.encode(1)] = b"short"
    long_nodes = {h for h, encoded in db.items() if len(encoded) > 1024}
    assert long_nodes and all(keccak(db[h]) == h for h in long_nodes)
    again = HexaryTrie(db, root_hash=t.root_hash)
    assert again[rlp.encode(0)] == receipt and again[rlp.encode(1)] == b"short"
    # Read and written, the long leaf is never kept; the trie's short nodes are.
    assert not long_nodes & set(_trie_cache._nodes_by_hash)
    assert _trie_cache.cached_nodes() > 0


def test_a_missing_node_still_raises() -> None:
    from trie import HexaryTrie
    from trie.exceptions import MissingTrieNode

    t = HexaryTrie({}, root_hash=b"\x11" * 32)
    with pytest.raises(MissingTrieNode):
        t[b"\x00" * 32]


def test_nibbles_are_py_tries_nibbles() -> None:
    import random

    from trie.utils.nibbles import _bytes_to_nibbles as plain

    rng = random.Random(9)
    for value in [
        b"",
        b"\x00",
        b"\xff",
        bytes(range(256)),
        *(rng.randbytes(33) for _ in range(50)),
    ]:
        assert _trie_cache.bytes_to_nibbles(value) == tuple(plain(value))
        assert _trie_cache.bytes_to_nibbles(bytearray(value)) == tuple(plain(value))


def _outcome(lookup: Any, *args: Any) -> Any:
    """A lookup's answer, or the class and message of what it raised."""
    try:
        return lookup(*args)
    except Exception as exc:  # py-trie refuses some lookups of keys of mixed lengths
        return (type(exc).__name__, str(exc))


def test_lookups_answer_as_py_tries_own_lookup() -> None:
    """Lookups walk the map's nodes uncopied; every answer, for keys present, absent, cut
    short or running past a stored key, equals py-trie's own lookup on the same trie."""
    from trie import HexaryTrie
    from trie.utils.nibbles import bytes_to_nibbles

    rng = random.Random(4)
    for _round in range(20):
        t = HexaryTrie({})
        keys: list[bytes] = []
        held: dict[bytes, bytes] = {}
        for _ in range(rng.randrange(1, 200)):
            if rng.random() < 0.5:
                key = rng.randbytes(32)
            else:
                key = b"\x01\x02" + rng.randbytes(rng.randint(0, 4))
            t[key] = held[key] = rng.randbytes(rng.choice((1, 3, 20, 40)))
            keys.append(key)
        probes = list(keys) + [rng.randbytes(32) for _ in range(20)]
        probes += [k[: rng.randrange(len(k) + 1)] for k in keys[:30]]
        probes += [k + rng.randbytes(rng.randint(1, 3)) for k in keys[:30]]
        probes += [b"\x01", b"\x01\x02", b""]
        for key in probes:
            nibbles = bytes_to_nibbles(key)
            ours = _outcome(t._get, t.root_hash, nibbles)
            theirs = _outcome(_trie_cache._original_get, t, t.root_hash, nibbles)
            assert ours == theirs, key.hex()
            if key in held or not isinstance(ours, tuple):
                assert ours == held.get(key, b"")
    assert _trie_cache.cached_nodes() > 0
