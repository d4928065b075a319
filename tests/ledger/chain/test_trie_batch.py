"""A block's storage writes applied in one pass (ledger.chain.pyevm_speedups.trie_batch) give the
same tries.

``set_many`` is compared with py-trie's key-by-key sets on random tries (roots, every read,
every node reachable from the root present), including keys that share long prefixes
(extension nodes split and extended), overwrites, deletes and the shapes it hands back to
py-trie. Then the same transactions run on two chains, one of py-evm's classes as they ship
and one running the fast VM (whose state keeps the writes in ``BatchedStorageLookup``), and
every block's state root and the storage read back must agree. The fast VM is built here
whether or not the speedups are installed or switched off in this process.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth.constants import BLANK_ROOT_HASH
from eth.db.backends.memory import MemoryDB
from eth.db.batch import BatchDB
from eth.db.storage import StorageLookup
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import to_checksum_address
from trie import HexaryTrie
from trie.utils.nodes import get_node_type

from ledger.chain.pyevm_speedups import trie_batch as _trie_batch
from ledger.chain.pyevm_speedups.vm import fast_chain_class


def _keys(rng: random.Random, n: int) -> list[bytes]:
    """32-byte keys; some share long prefixes, so extension nodes form and get split."""
    keys = []
    for _ in range(n):
        if keys and rng.random() < 0.3:
            base = rng.choice(keys)
            cut = rng.randrange(1, 31)
            keys.append(base[:cut] + rng.randbytes(32 - cut))
        else:
            keys.append(rng.randbytes(32))
    return keys


def _value(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([1, 2, 5, 20, 33]))


def _trie(prune: bool) -> HexaryTrie:
    db: Any = BatchDB(MemoryDB(), read_through_deletes=True) if prune else MemoryDB()
    return HexaryTrie(db, prune=prune)


def _reachable(t: HexaryTrie) -> int:
    """Walk every node from the root (each must be in the db); returns how many there are."""
    seen, todo = 0, [t.root_hash]
    while todo:
        ref = todo.pop()
        node = t.get_node(ref)
        seen += 1
        kind = get_node_type(node)
        if kind == 3:  # branch
            todo += [child for child in node[:16] if child]
        elif kind == 2:  # extension
            todo.append(node[1])
    return seen


@pytest.mark.parametrize("prune", [False, True])
def test_set_many_gives_the_trie_of_key_by_key_sets(prune: bool) -> None:
    rng = random.Random(11 + prune)
    for _round in range(20):
        one, other = _trie(prune), _trie(prune)
        held: dict[bytes, bytes] = {}
        known = _keys(rng, rng.randrange(0, 300))
        for key in known:
            value = _value(rng)
            one[key] = other[key] = held[key] = value
        for _batch in range(3):
            writes: dict[bytes, bytes] = {}
            for key in _keys(rng, rng.randrange(1, 200)) + rng.sample(known, min(len(known), 20)):
                writes[key] = b"" if rng.random() < 0.1 else _value(rng)
            for key, value in writes.items():
                one[key] = value
            _trie_batch.set_many(other, writes)
            for key, value in writes.items():
                if value:
                    held[key] = value
                else:
                    held.pop(key, None)
            known += list(writes)
            assert other.root_hash == one.root_hash
            if prune:
                # The same nodes are left stored: the replaced ones pruned, none missing.
                assert dict(other.db.diff().pending_items()) == dict(one.db.diff().pending_items())
            for key in set(known):
                assert other.get(key) == held.get(key, b"")
            _reachable(other)


def test_shapes_left_to_py_trie_still_end_right() -> None:
    rng = random.Random(3)
    one, other = _trie(True), _trie(True)
    # Keys of two lengths (never in a storage trie): key by key.
    writes = {rng.randbytes(32): b"a", rng.randbytes(20): b"b", rng.randbytes(32): b"c"}
    for key, value in writes.items():
        one[key] = value
    _trie_batch.set_many(other, writes)
    assert other.root_hash == one.root_hash
    # A single write, and a batch of deletes only.
    for batch in ({next(iter(writes)): b"z"}, {key: b"" for key in writes}):
        for key, value in batch.items():
            one[key] = value
        _trie_batch.set_many(other, batch)
        assert other.root_hash == one.root_hash
    assert other.root_hash == BLANK_ROOT_HASH


# A contract that stores each (slot, value) word pair of its call data:
#   i = 0; while i < calldatasize: sstore(calldataload(i), calldataload(i + 32)); i += 64
STORE_PAIRS = bytes.fromhex("60005b8036111560185780602001358135556040016002565b00")
CONTRACT = b"\x77" * 20


def _chain(storage: dict[int, int], fast: bool) -> tuple[EthereumTester, str]:
    genesis = PyEVMBackend.generate_genesis_state(num_accounts=1)
    genesis[CONTRACT] = {"balance": 0, "nonce": 1, "code": STORE_PAIRS, "storage": storage}
    backend = PyEVMBackend(genesis_state=genesis)
    if fast:
        # The same genesis, resumed by the chain class that runs the fast VM.
        backend.chain = fast_chain_class(type(backend.chain))(backend.chain.chaindb.db)
    state = backend.chain.get_vm().state
    assert isinstance(state._account_db, _trie_batch.BatchedAccountDB) == fast
    tester = EthereumTester(backend)
    return tester, tester.get_accounts()[0]


def _run(
    blocks: list[list[bytes]], storage: dict[int, int], fast: bool
) -> tuple[list[bytes], list[str]]:
    tester, sender = _chain(storage, fast)
    to = to_checksum_address(CONTRACT)
    roots = []
    tester.disable_auto_mine_transactions()
    for block in blocks:
        for data in block:
            tester.send_transaction(
                {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": 10_000_000}
            )
        (block_hash,) = tester.mine_blocks(1)
        roots.append(tester.get_block_by_hash(block_hash)["state_root"])
    slots = sorted(
        {
            int.from_bytes(d[i : i + 32], "big")
            for b in blocks
            for d in b
            for i in range(0, len(d), 64)
        }
        | set(storage)
    )
    values = [tester.get_storage_at(to, hex(slot)) for slot in slots[:400]]
    return roots, values


def test_blocks_have_the_state_roots_of_key_by_key_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    storage = {rng.randrange(1 << 256): rng.randrange(1, 1 << 64) for _ in range(300)}
    blocks = []
    for _ in range(6):
        block = []
        for _tx in range(rng.randrange(1, 4)):
            pairs = []
            for _pair in range(rng.randrange(1, 120)):
                roll = rng.random()
                slot = rng.choice(list(storage)) if roll < 0.3 else rng.randrange(1 << 256)
                value = 0 if roll < 0.1 or rng.random() < 0.05 else rng.randrange(1 << 200)
                pairs.append(slot.to_bytes(32, "big") + value.to_bytes(32, "big"))
            block.append(b"".join(pairs))
        blocks.append(block)
    batches: list[int] = []
    set_many = _trie_batch.set_many

    def counted(trie: Any, writes: Any) -> None:
        batches.append(len(writes))
        set_many(trie, writes)

    monkeypatch.setattr(_trie_batch, "set_many", counted)
    kept = _run(blocks, storage, fast=True)
    assert batches and max(batches) > 1, "the fast VM applied no kept writes"
    plain = _run(blocks, storage, fast=False)
    assert kept == plain
    assert len(set(kept[0])) == len(blocks)
    # py-evm's own StorageLookup was never changed.
    assert StorageLookup.__setitem__.__module__ == "eth.db.storage"
