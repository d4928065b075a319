"""The embedded chain: an in-process eth-tester (py-evm) chain persisted on disk.

This is the zero set-up backend of the scale path (DESIGN.md, "Scale path"). It gives the rest
of Voisin an ordinary :class:`web3.Web3` whose state survives a restart and a ``kill -9``:

* py-evm runs on :class:`ledger.chain.kvstore.LmdbStore`, which buffers writes and makes them
  durable in one fsynced LMDB transaction per flush.
* eth-tester auto-mines one block per transaction through ``backend.mine_blocks``; the
  backend here flushes the store right after mining, before control returns. So once
  ``w3.eth.send_raw_transaction`` returns, the block carrying the transaction is on disk.
  Inside the provider's ``shared_blocks`` (a run's set-up) several transactions share a block,
  which is on disk before any of their receipts can be read.
* eth-tester always builds a fresh chain from genesis, so the backend is built normally and
  then handed a py-evm chain of the same class on the durable store: ``from_genesis`` on the
  first start, ``ChainClass(db)`` (which resumes at the stored head) afterwards.
* One process owns a data directory at a time (``flock``); a second opener gets
  :class:`~ledger.errors.ChainLockedError` instead of two writers corrupting the store.
* Opening a chain installs the py-evm speedups (:func:`ledger.chain.pyevm_speedups.install`,
  gated on the versions tested, off with ``VOISIN_PYEVM_SPEEDUPS=0``); the chain then runs
  eth-tester's chain class with the fast VM, or as it ships when they are not installed.

:func:`open_embedded` opens the chain of a Voisin data directory with its operator account:
``open_chain`` and the node process (:mod:`ledger.chain.node`) both go through it.

Transactions must be signed by the caller (``send_raw_transaction``): the chain exposes no
unlocked accounts. For the same reason ``eth_call`` and ``eth_estimateGas`` need an explicit
funded ``from`` (or ``w3.eth.default_account``): eth-tester checks that the sender could pay
for the call as if it were a transaction.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NamedTuple, TypeVar, cast

import rlp
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound
from eth.exceptions import TransactionNotFound as EvmTransactionNotFound
from eth.typing import AccountDetails, AccountState
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_default_genesis_params
from eth_tester.backends.pyevm.serializers import (
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import TransactionNotFound as TesterTransactionNotFound
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.exceptions import ValidationError
from hexbytes import HexBytes
from trie.hexary import HexaryTrie
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from ledger.chain import pyevm_speedups
from ledger.chain.kvstore import DEFAULT_MAP_SIZE, LmdbSnapshot, LmdbStore
from ledger.chain.operator import OPERATOR_GENESIS_WEI, load_or_create_operator
from ledger.contract.event_codec import checksum_address
from ledger.errors import ChainLockedError, ChainUnavailable


def _transaction_by_hash(chain: Any, transaction_hash: bytes) -> tuple[Any, Any, int]:
    """Find a transaction through the chain database's hash index.

    eth-tester's own lookup walks back from the head block by block, so a receipt (and every
    ``eth_getLogs``, which reads the receipt of each transaction in its range) costs time in
    proportion to the chain's length. py-evm indexes canonical transactions by hash; the
    pending block is searched first, as eth-tester does.
    """
    head = chain.get_block()
    for index, transaction in enumerate(head.transactions):
        if transaction.hash == transaction_hash:
            return head, transaction, index
    try:
        number, index = chain.chaindb.get_transaction_index(transaction_hash)
    except EvmTransactionNotFound as exc:
        raise TesterTransactionNotFound(
            f"No transaction found for transaction hash: 0x{transaction_hash.hex()}"
        ) from exc
    block = chain.get_canonical_block_by_number(number)
    return block, block.transactions[index], index


class _PyEVMBackend(PyEVMBackend):  # type: ignore[misc]  # eth_tester is untyped
    """eth-tester's py-evm backend as both embedded chains run it.

    Its chain runs the VM with the py-evm speedups when they are installed
    (:func:`ledger.chain.pyevm_speedups.chain_class`), and transactions and receipts are found
    through the chain database's hash index (:func:`_transaction_by_hash`) instead of
    eth-tester's walk back from the head; each answer is serialized as eth-tester serializes
    it.
    """

    #: The py-evm MiningChain (eth-tester's chain class, or its subclass with the fast VM).
    chain: Any

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        super().reset_to_genesis(*args, **kwargs)
        chain_class = pyevm_speedups.chain_class(type(self.chain))
        if chain_class is not type(self.chain):
            # The same genesis, resumed by the class whose VM carries the speedups.
            self.chain = chain_class(self.chain.chaindb.db)

    # ─────────────── The chain's clock: block.timestamp follows the wall clock ───────────────
    #
    # py-evm stamps the pending block when its parent is mined, so after the chain sat idle
    # the next transaction would run with a timestamp as old as the last block: the contract
    # would refuse a reading of the slot just ended as ahead of its clock (FutureReading).
    # The pending block is restamped with the wall clock while it holds no transaction, and
    # calls and estimates run on it (its state is the head's then, or the head's plus the
    # transactions of a shared block not mined yet).

    def refresh_clock(self) -> None:
        """Stamp the pending block with the wall clock if it holds no transaction yet."""
        header = self.chain.header
        now = int(time.time())
        if header.gas_used == 0 and now > header.timestamp:
            self.chain.header = header.copy(timestamp=now)

    def send_raw_transaction(self, raw_transaction: bytes) -> Any:
        self.refresh_clock()
        return super().send_raw_transaction(raw_transaction)

    def call(self, transaction: Any, block_number: Any = "latest") -> Any:
        if block_number == "latest":
            self.refresh_clock()
            block_number = "pending"
        return super().call(transaction, block_number)

    def estimate_gas(self, transaction: Any, block_number: Any = "latest") -> Any:
        # At "latest" py-evm estimates on the pending block already.
        if block_number == "latest":
            self.refresh_clock()
        return super().estimate_gas(transaction, block_number)

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, transaction, index = _transaction_by_hash(self.chain, transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        return serialize_transaction(block, transaction, index, is_pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, transaction, index = _transaction_by_hash(self.chain, transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, transaction, index, is_pending, self.chain.get_vm()
        )


#: Mined blocks kept decoded with their receipts, by block hash (see _block_and_receipts).
RECENT_BLOCKS: Final = 64
_recent_blocks: OrderedDict[bytes, tuple[Any, Any]] = OrderedDict()
_recent_lock = threading.Lock()


class Log(NamedTuple):
    """A log as a mined receipt stores it: the address (20 bytes), topics (32 bytes each) and
    data."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


class Receipt(NamedTuple):
    """A mined receipt's fields the reads use: ``state_root`` (the status since Byzantium),
    the cumulative ``gas_used`` in its block, and its logs."""

    state_root: bytes
    gas_used: int
    logs: tuple[Log, ...]


def decode_receipt(encoded: bytes) -> Receipt:
    """A receipt as py-evm stores it in a block's receipt trie: legacy (an RLP list) or typed
    (EIP-2718: the type byte, then the RLP list).

    py-evm decodes each field into its serializable classes (a ``Log`` object per log, topics
    as integers), which took 2.3 to 3.2 times as long as the plain RLP decoding here (the 395
    receipts of a 100-household day, timed three times); the audit reads
    every receipt of the run. A test compares both decodings on every receipt of a chain.
    """
    payload = encoded if encoded[0] >= 0xC0 else encoded[1:]
    state_root, gas_used, _bloom, logs = rlp.decode(payload)
    return Receipt(
        state_root,
        int.from_bytes(gas_used, "big"),
        tuple(Log(address, tuple(topics), data) for address, topics, data in logs),
    )


def _block_and_receipts(chain: Any, number: int) -> tuple[Any, tuple[Receipt, ...]]:
    """The canonical block ``number`` and its receipts, decoded.

    A slot's transactions are read back twice: their receipts by the client, then their logs
    by the indexer, and py-evm decodes the block and every receipt from its database each
    time. A block is immutable and named by its hash, which covers its receipts, so the last
    :data:`RECENT_BLOCKS` blocks read are kept decoded, by hash.
    """
    block_hash = chain.chaindb.get_canonical_block_hash(number)
    with _recent_lock:
        hit = _recent_blocks.get(block_hash)
        if hit is not None:
            _recent_blocks.move_to_end(block_hash)
            return hit
    block = chain.get_block_by_hash(block_hash)
    # The receipt trie's keys are the RLP-encoded indices 0, 1, ... (as ChainDB.get_receipts).
    trie = HexaryTrie(chain.chaindb.db, block.header.receipt_root)
    receipts = tuple(
        decode_receipt(trie[rlp.encode(index)]) for index in range(len(block.transactions))
    )
    hit = (block, receipts)
    with _recent_lock:
        _recent_blocks[block_hash] = hit
        while len(_recent_blocks) > RECENT_BLOCKS:
            _recent_blocks.popitem(last=False)
    return hit


def _mined_logs(
    chain: Any, low: int, high: int, addresses: set[bytes] | None
) -> Iterator[tuple[Any, int, Any, int, Any]]:
    """(block, transaction index, transaction, log index in its block, log) for every log of
    mined blocks ``low..high`` from ``addresses`` (all if ``None``), in chain order.

    Reads each block's receipts once, straight from py-evm's database. The log index counts
    the block's logs, as JSON-RPC nodes count them. eth-tester counts within each receipt
    instead; the two agree on a block of one transaction, which every block is but those of
    ``shared_blocks``, where eth-tester's numbering would give two logs the same index.
    """
    for number in range(low, high + 1):
        block, receipts = _block_and_receipts(chain, number)
        log_index = 0
        for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
            for log in receipt.logs:
                if addresses is None or log.address in addresses:
                    yield block, tx_index, tx, log_index, log
                log_index += 1


def _logs_in_range(chain: Any, params: Any) -> list[dict[str, Any]] | None:
    """``eth_getLogs`` for a mined block range and optional addresses, from py-evm's receipts.

    eth-tester answers by serializing every block and receipt in the range and normalizing
    each log three times, which made log queries the largest cost of indexing a busy chain.
    This reads each block's receipts once and yields the same entries (the same fields; the
    log index counted in the block, see :func:`_mined_logs`). Filters it does not cover
    (topics, block tags, a range beyond the head) return ``None``: eth-tester answers those.
    """
    query = params[0] if isinstance(params, list | tuple) and len(params) == 1 else None
    if not isinstance(query, dict) or set(query) - {"address", "from_block", "to_block"}:
        return None
    low, high = query.get("from_block"), query.get("to_block")
    if type(low) is not int or type(high) is not int or low < 0:
        return None
    if high > chain.get_canonical_head().block_number:
        return None
    wanted = query.get("address")
    if isinstance(wanted, str):
        wanted = [wanted]
    if wanted is not None and not (
        isinstance(wanted, list) and all(isinstance(a, str) for a in wanted)
    ):
        return None
    addresses = None if wanted is None else {bytes.fromhex(a[2:]) for a in wanted}
    return [
        {
            "type": "mined",
            "log_index": log_index,
            "transaction_index": tx_index,
            "transaction_hash": "0x" + tx.hash.hex(),
            "block_hash": "0x" + block.hash.hex(),
            "block_number": block.number,
            "address": to_checksum_address(log.address),
            "data": "0x" + log.data.hex(),
            "topics": ["0x" + t.hex() for t in log.topics],
        }
        for block, tx_index, tx, log_index, log in _mined_logs(chain, low, high, addresses)
    ]


class DirectReads:
    """Receipts and logs of the embedded chain read straight from py-evm, in web3's shape.

    :class:`ledger.contract.client.VoisinClient` reads through this when its provider has one (the
    provider's ``direct_reads``). Through ``w3.eth``, eth-tester serializes each receipt and
    log and web3 then formats every field of the answer again: about 8 % of a 100-household
    ``voisin simulate``. The dicts here carry the keys and values the client reads from web3's
    answer (``status``, ``blockNumber``, ``gasUsed``, ``logs``; for a log ``address``
    checksummed, ``topics`` and ``data`` as bytes, ``blockNumber``, ``logIndex`` counted in
    the block (see :func:`_mined_logs`), ``transactionHash``); the tests hold them equal.
    """

    def __init__(self, backend: PyEVMBackend, lock: threading.RLock) -> None:
        self._backend = backend
        self._lock = lock

    def receipt(self, tx_hash: bytes) -> dict[str, Any] | None:
        """The mined transaction's receipt, or ``None`` if it is unknown or still pending."""
        with self._lock:
            chain = self._backend.chain
            try:
                number, index = chain.chaindb.get_transaction_index(tx_hash)
            except EvmTransactionNotFound:
                return None
            block, receipts = _block_and_receipts(chain, number)
            tx = block.transactions[index]
            receipt = receipts[index]
            before = receipts[index - 1].gas_used if index else 0
            # Logs are numbered in the block (see _mined_logs).
            first = sum(len(earlier.logs) for earlier in receipts[:index])
            return {
                "status": int.from_bytes(receipt.state_root, "big"),
                "blockNumber": number,
                "gasUsed": receipt.gas_used - before,
                "logs": [
                    _web3_log(block, tx, first + k, log) for k, log in enumerate(receipt.logs)
                ],
            }

    def call(self, sender: str, to: str, data: bytes) -> bytes | None:
        """``eth_call`` of ``data`` at the head, executed as eth-tester executes web3's; None if
        it reverts (the caller then asks ``w3.eth``, whose error carries the revert data)."""
        transaction = {
            "from": bytes(to_canonical_address(sender)),
            "to": bytes(to_canonical_address(to)),
            "data": data,
            "value": 0,
        }
        with self._lock:
            try:
                return bytes(self._backend.call(transaction, "latest"))
            except TransactionFailed:
                return None

    def logs(self, address: str, from_block: int, to_block: int) -> list[dict[str, Any]] | None:
        """The logs of ``address`` in mined blocks ``from_block..to_block``; ``None`` if the
        range reaches beyond the head (the caller then asks ``w3.eth``)."""
        with self._lock:
            chain = self._backend.chain
            if from_block < 0 or to_block > chain.get_canonical_head().block_number:
                return None
            wanted: set[bytes] = {bytes(to_canonical_address(address))}
            return [
                _web3_log(block, tx, log_index, log)
                for block, _, tx, log_index, log in _mined_logs(chain, from_block, to_block, wanted)
            ]


def _web3_log(block: Any, tx: Any, log_index: int, log: Any) -> dict[str, Any]:
    return {
        "address": checksum_address(log.address),
        "topics": list(log.topics),
        "data": log.data,
        "blockNumber": block.number,
        "logIndex": log_index,
        "transactionHash": tx.hash,
    }


__all__ = [
    "CHAIN_ID",
    "ChainLockedError",
    "DirectReads",
    "EmbeddedChain",
    "OperatedChain",
    "copy_chain",
    "in_memory_chain",
    "open_embedded",
]

#: Chain id of eth-tester's chain class; kept so signatures made for eth-tester stay valid.
CHAIN_ID: Final = 131277322940537

#: The embedded chain's directory inside a Voisin data directory (see open_embedded).
CHAIN_DIR_NAME: Final = "chain"
LOCK_FILE_NAME: Final = "chain.lock"
STORE_DIR_NAME: Final = "chain.lmdb"

_CALL_METHODS: Final = frozenset({"eth_call", "eth_estimateGas"})

_AddressT = TypeVar("_AddressT", bound=str | bytes)


class _DurablePyEVMBackend(_PyEVMBackend):
    """The backend whose mining makes each block durable before returning.

    Everything that moves the canonical head (mining, withdrawals, snapshot revert) runs
    under ``lock`` and ends with a flush of ``store``.
    """

    def __init__(self, store: LmdbStore, lock: threading.RLock) -> None:
        self._store = store
        self._lock = lock
        self._durable = False
        # Builds eth-tester's in-memory chain; only its class is reused (see attach_chain).
        super().__init__()
        # No unlocked accounts: eth-tester's defaults are keys 1..10, public knowledge and
        # unfunded here. Everything is signed by the caller.
        self.account_keys = ()

    def attach_chain(self, chain: MiningChain) -> None:
        """Swap eth-tester's in-memory chain for ``chain`` on the durable store."""
        self.chain = chain
        self._durable = True

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        if self._durable:
            # Resetting would silently swap the ledger for a throwaway in-memory chain.
            raise NotImplementedError(
                "a durable embedded chain cannot be reset; open a new data dir instead"
            )
        super().reset_to_genesis(*args, **kwargs)

    def mine_blocks(self, *args: Any, **kwargs: Any) -> tuple[bytes, ...]:
        with self._lock:
            try:
                block_hashes: tuple[bytes, ...] = super().mine_blocks(*args, **kwargs)
            finally:
                # Also after a failure: blocks mined before it are complete (py-evm persists
                # each block in one atomic batch) and already visible to readers.
                self._store.flush()
        return block_hashes

    def apply_withdrawals(self, *args: Any, **kwargs: Any) -> None:
        # Mines a block through chain.mine_all, bypassing mine_blocks.
        with self._lock:
            try:
                super().apply_withdrawals(*args, **kwargs)
            finally:
                self._store.flush()

    def revert_to_snapshot(self, snapshot: bytes) -> None:
        # Rewrites the canonical head pointer.
        with self._lock:
            try:
                super().revert_to_snapshot(snapshot)
            finally:
                self._store.flush()


#: Transactions per shared block. py-evm rebuilds the pending block's transaction and receipt
#: tries for each transaction added, and a receipt is read by decoding its block's receipts, so
#: the cost per transaction grows with the block (about 0.2 ms per transaction already in it)
#: while mining costs about 11 ms per block: 8 is near the least total (2 x sqrt(11 x 0.2)).
SHARED_BLOCK_TRANSACTIONS: Final = 8


class SharedBlocks:
    """Transactions sent while this is open go into shared blocks (see
    ``_SerializedEthereumTesterProvider.shared_blocks``)."""

    def __init__(self, tester: EthereumTester) -> None:
        self._tester = tester
        self.pending = 0

    def send(self, raw_transaction: bytes) -> bytes:
        """Apply a signed transaction to the pending block, first mining that block if it is
        full or the transaction's gas limit would not fit in it; returns the transaction hash."""
        if not self.pending:
            self._tester.backend.refresh_clock()
        chain = self._tester.backend.chain
        # Decoded once, and applied as eth-tester's backend applies a non-blob transaction.
        transaction = chain.get_transaction_builder().decode(raw_transaction)
        header = chain.header
        full = self.pending >= SHARED_BLOCK_TRANSACTIONS
        if self.pending and (full or header.gas_used + transaction.gas > header.gas_limit):
            self.mine()
        chain.apply_transaction(transaction)
        self.pending += 1
        return bytes(transaction.hash)

    def mine(self) -> None:
        """Mine the pending transactions into one block (made durable before it returns)."""
        if self.pending:
            self._tester.mine_blocks(1)
            self.pending = 0


class _SerializedEthereumTesterProvider(EthereumTesterProvider):
    """eth-tester provider that runs one request at a time.

    py-evm's chain object is not thread-safe, and a reader must not observe a block that is
    half-applied; API threads may share one Web3.
    """

    def __init__(self, tester: EthereumTester, lock: threading.RLock) -> None:
        super().__init__(ethereum_tester=tester)
        self._lock = lock
        self.direct_reads = DirectReads(tester.backend, lock)
        self._sharing: SharedBlocks | None = None

    @contextlib.contextmanager
    def shared_blocks(self) -> Iterator[SharedBlocks]:
        """While open, ``eth_sendRawTransaction`` adds to a pending block that is mined when
        it holds :data:`SHARED_BLOCK_TRANSACTIONS` or the next transaction would not fit, and
        on leaving; each transaction is executed once, as when mined alone.

        eth-tester mines one block per transaction, and each block costs a state commit, a
        header, and an fsync of the store (about 11 ms here): most of the cost of a batch of
        small set-up transactions such as gas top-ups and standing orders. A transaction sent
        here has no receipt until its block is mined, so the sender reads receipts after
        leaving. Its block is durable before any receipt can be read, as with single blocks.
        Other threads wait while it is open: its transactions stay alone in their blocks.
        """
        with self._lock:
            if self._sharing is not None:
                yield self._sharing
                return
            sharing = SharedBlocks(self.ethereum_tester)
            self._sharing = sharing
            try:
                yield sharing
            finally:
                self._sharing = None
                sharing.mine()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if (
            method in _CALL_METHODS
            and params
            and isinstance(params[0], dict)
            and params[0].get("from") is None
        ):
            # eth-tester executes a call as a real transaction (max fee 1 gwei x up to the
            # block gas limit, checked against the sender's balance), and there is no funded
            # unlocked account to default to. Say so, instead of its "address: None" error.
            raise ValueError(
                f"{method} on the embedded chain needs a funded 'from' "
                "(pass it, or set w3.eth.default_account)"
            )
        with self._lock:
            if method == "eth_sendRawTransaction" and self._sharing is not None:
                raw = HexBytes(params[0])
                try:
                    tx_hash = self._sharing.send(bytes(raw))
                except ValidationError as exc:
                    raise ValueError(f"transaction refused: {exc}") from exc
                self._current_request_id += 1
                return cast(
                    RPCResponse,
                    {
                        "id": repr(self._current_request_id),
                        "jsonrpc": "2.0",
                        "result": "0x" + tx_hash.hex(),
                    },
                )
            if method == "eth_getLogs" and self.ethereum_tester is not None:
                logs = _logs_in_range(self.ethereum_tester.backend.chain, params)
                if logs is not None:
                    self._current_request_id += 1
                    return cast(
                        RPCResponse,
                        {"id": repr(self._current_request_id), "jsonrpc": "2.0", "result": logs},
                    )
            try:
                return super().make_request(method, params)
            except TransactionFailed as exc:
                raise _as_contract_error(exc) from exc


def _as_contract_error(exc: TransactionFailed) -> Exception:
    """web3's eth-tester provider flattens a revert into a message and drops custom-error
    data; the original exception (its context) still holds the raw revert bytes. Re-raise them
    the way web3 does for a JSON-RPC node, so one client decodes errors on every backend.
    (``ast.literal_eval`` only ever parses a bytes literal here, never code.)"""
    seen: BaseException | None = exc
    while seen is not None:
        raw: object = seen.args[0] if seen.args else None
        if isinstance(raw, Exception) and raw.args:
            raw = raw.args[0]
        if isinstance(raw, str) and raw[:2] in ('b"', "b'"):
            # eth_call's path hands the revert bytes on as their repr.
            with contextlib.suppress(ValueError, SyntaxError):
                raw = ast.literal_eval(raw)
        if isinstance(raw, bytes) and len(raw) >= 4:
            return ContractCustomError(str(exc), data="0x" + raw.hex())
        seen = seen.__context__
    return ContractLogicError(str(exc))


def in_memory_chain(funded_accounts: Mapping[_AddressT, int]) -> Web3:
    """A throwaway eth-tester chain with the same behaviour as the durable one, in memory.

    For tests and benchmarks. ``funded_accounts`` (address -> wei) are funded at genesis.
    """
    genesis_state: AccountState = {}
    for address, wei in funded_accounts.items():
        key: str | bytes = address
        genesis_state[to_canonical_address(key)] = AccountDetails(
            balance=wei, nonce=0, code=b"", storage={}
        )
    pyevm_speedups.install()
    backend = _PyEVMBackend(genesis_state=genesis_state)
    backend.account_keys = ()
    return Web3(_SerializedEthereumTesterProvider(EthereumTester(backend), threading.RLock()))


class EmbeddedChain:
    """A persistent eth-tester chain in ``data_dir``, reached through :attr:`w3`.

    ``funded_accounts`` (address -> wei) funds the genesis state on the first start only;
    on reopen the chain continues from its stored head and the argument is ignored.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        data_dir: Path,
        funded_accounts: Mapping[_AddressT, int] | None = None,
        *,
        map_size: int = DEFAULT_MAP_SIZE,
    ) -> None:
        # Before eth-tester builds its chain: its class then runs the fast VM when installed.
        pyevm_speedups.install()
        self._data_dir = Path(data_dir)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._closed = False
        # The OS lock comes first: LMDB must never be opened twice on the same files.
        self._lock_fd = _acquire_dir_lock(self._data_dir)
        try:
            self._store = LmdbStore(self._data_dir / STORE_DIR_NAME, map_size=map_size)
            try:
                self._backend = _DurablePyEVMBackend(self._store, self._lock)
                self._created = self._attach_durable_chain(dict(funded_accounts or {}))
                tester = EthereumTester(backend=self._backend)
                self._w3 = Web3(_SerializedEthereumTesterProvider(tester, self._lock))
            except BaseException:
                self._store.close()
                raise
        except BaseException:
            _release_dir_lock(self._lock_fd)
            raise

    def _attach_durable_chain(self, funded_accounts: Mapping[_AddressT, int]) -> bool:
        """Give the backend a chain on the store; return True if genesis was written now."""
        chain_class: type[MiningChain] = type(self._backend.chain)
        if chain_class.chain_id != CHAIN_ID:  # guards against an eth-tester upgrade
            raise RuntimeError(f"eth-tester chain id changed to {chain_class.chain_id}")
        base_db = AtomicDB(wrapped_db=self._store)
        try:
            chain_class.get_chaindb_class()(base_db).get_canonical_head()
        except CanonicalHeadNotFound:
            genesis_state: AccountState = {}
            for address, wei in funded_accounts.items():
                # Widened from the caller's address type (e.g. ChecksumAddress) for eth_utils.
                key: str | bytes = address
                genesis_state[to_canonical_address(key)] = AccountDetails(
                    balance=wei, nonce=0, code=b"", storage={}
                )
            genesis = chain_class.from_genesis(base_db, get_default_genesis_params(), genesis_state)
            # from_genesis is typed as returning BaseChain; it is an instance of chain_class.
            assert isinstance(genesis, MiningChain)
            chain: MiningChain = genesis
            created = True
        else:
            chain = chain_class(base_db)
            created = False
        # Genesis lands in one transaction: a crash here leaves an empty store, not half a
        # genesis, and the next start simply writes it again.
        self._store.flush()
        self._backend.attach_chain(chain)
        return created

    @property
    def w3(self) -> Web3:
        """Web3 connected to this chain; send signed transactions with send_raw_transaction."""
        return self._w3

    @property
    def chain_id(self) -> int:
        """EIP-155 chain id (eth-tester's, 131277322940537)."""
        return CHAIN_ID

    @property
    def data_dir(self) -> Path:
        """The directory holding the store and the lock file."""
        return self._data_dir

    @property
    def created(self) -> bool:
        """True if this open wrote the genesis block; False if it resumed a stored chain."""
        return self._created

    def close(self) -> None:
        """Flush, close the store and release the directory lock. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._store.close()
            finally:
                _release_dir_lock(self._lock_fd)

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class OperatedChain(NamedTuple):
    """An embedded chain opened for Voisin: the chain, and the operator account that its
    ``w3`` sends and calls from by default."""

    chain: EmbeddedChain
    operator: LocalAccount


def open_embedded(data_dir: Path | str, key: str | None = None) -> OperatedChain:
    """The embedded chain of the data directory ``data_dir``, as Voisin runs it.

    The chain lives in ``<data_dir>/chain``. Its operator is ``key`` when given, else the key in
    ``<data_dir>/operator.key``, created on the first start
    (:func:`ledger.chain.operator.load_or_create_operator`); a new chain funds the operator
    with :data:`~ledger.chain.operator.OPERATOR_GENESIS_WEI` at genesis. ``open_chain`` (in
    this process) and the node process (``ledger.chain.node``) both open it here. Raises
    :class:`~ledger.errors.ChainLockedError` (a ``ChainUnavailable``) while another opener
    holds the directory.
    """
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    operator = load_or_create_operator(data, key)
    chain = EmbeddedChain(data / CHAIN_DIR_NAME, {operator.address: OPERATOR_GENESIS_WEI})
    chain.w3.eth.default_account = operator.address
    return OperatedChain(chain, operator)


def copy_chain(data_dir: Path | str, dest: Path) -> int:
    """Copy the embedded chain of the data directory ``data_dir`` into the folder ``dest``
    (``dest/chain.lmdb/data.mdb``), from a read-only snapshot that coexists with the process
    holding the chain (its node); returns the head block number of the copy.

    The copy is one LMDB read transaction: a state the store was in between two flushes, so
    whole blocks only. The caller keeps writers away for a copy that must match other data
    (``voisin backup`` holds the chain-writes lock).
    """
    store = Path(data_dir) / CHAIN_DIR_NAME / STORE_DIR_NAME
    with LmdbSnapshot(store) as snapshot:
        try:
            head = ChainDB(AtomicDB(wrapped_db=snapshot)).get_canonical_head()
        except CanonicalHeadNotFound:
            raise ChainUnavailable(f"the chain store {store} holds no block yet") from None
        snapshot.copy_to(dest / STORE_DIR_NAME)
    return int(head.block_number)


def _acquire_dir_lock(data_dir: Path) -> int:
    lock_path = data_dir / LOCK_FILE_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # flock (not fcntl/lockf): owned by the open file description, so it also refuses a
        # second open from this very process, and the kernel drops it when the owner dies,
        # even by SIGKILL, leaving no stale lock behind.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise ChainLockedError(
            f"chain data dir {data_dir} is already open (lock {lock_path} held by pid {holder})"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    # The pid is only a hint for the error message above; the flock is the lock.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release_dir_lock(fd: int) -> None:
    # Closing the descriptor releases the flock.
    os.close(fd)
