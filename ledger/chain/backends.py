"""Chain backends, chosen by one string: the only place that knows which backend is in use.

- ``embedded`` (default): the persistent eth-tester chain in ``<data_dir>/chain``, opened by
  :func:`ledger.chain.embedded.open_embedded`. The operator key is created on first start in
  ``<data_dir>/operator.key`` (mode 0600) and funded in genesis (:mod:`ledger.chain.operator`).
  It runs in this process, or, with ``process=True``, in a child node process reached over
  loopback JSON-RPC (:mod:`ledger.chain.node`, which opens it the same way): same files, same
  behaviour, but its EVM work runs beside the caller.
- ``memory``: the same chain without persistence, for tests and benchmarks.
- ``anvil``: a local anvil node started for this chain and stopped when it closes, with its
  state in ``<data_dir>/anvil/state.json`` and the operator as for ``embedded``, funded with
  ``anvil_setBalance`` (:mod:`ledger.chain.anvil`).
- ``http://...`` or ``https://...``: any Ethereum JSON-RPC node; the operator key must be given
  (``VOISIN_CHAIN_KEY``) and hold ether for gas.

A node on this machine (anvil, or any ``http://`` loopback URL) is reached through
:class:`ledger.chain.rpc.LoopbackProvider`, a lean JSON-RPC provider that also carries the
typed client's direct reads and sends; a remote node through web3's ``HTTPProvider``.

Every backend returns a :class:`Chain`: a ``Web3`` whose ``default_account`` is the operator
(eth-tester executes calls as transactions and needs a funded sender), the operator's local
account, and a way to fund other accounts with gas money.

The embedded and node modules are imported only when their backend is chosen, so a process
that talks to a JSON-RPC node never loads py-evm. Neither imports this module: the import
graph runs one way, from here down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from ledger.chain import pyevm_speedups
from ledger.chain.operator import (
    OPERATOR_GENESIS_WEI,
    load_or_create_operator,
    operator_account,
)
from ledger.chain.rpc import LoopbackProvider, NodeLink, is_loopback
from ledger.errors import ChainUnavailable, ConfigError

if TYPE_CHECKING:
    from ledger.chain.anvil import AnvilProcess
    from ledger.chain.node import NodeProcess

#: Gas money the operator sends a household account so it can post orders and take offers.
HOUSEHOLD_GAS_WEI = 10**18


@dataclass
class Chain:
    """An open chain backend."""

    w3: Web3
    kind: str
    operator: LocalAccount
    data_dir: Path | None
    _close: Callable[[], None] = field(repr=False)
    #: The node process when an embedded chain runs in one (``open_chain(process=True)``).
    node: NodeProcess | None = field(default=None, repr=False)
    #: The anvil process of an ``anvil`` chain (``open_chain("anvil")``).
    anvil: AnvilProcess | None = field(default=None, repr=False)
    _fund_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def estimates_gas(self) -> bool:
        """Whether transactions should be gas-estimated (see VoisinClient's estimate_gas)."""
        return self.kind == "rpc"

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def fund(self, address: str, wei: int = HOUSEHOLD_GAS_WEI) -> None:
        """Send ``wei`` from the operator to ``address`` so it can pay for gas."""
        with self._fund_lock:
            nonce = self.w3.eth.get_transaction_count(self.operator.address, "pending")
            tx_hash = self._send_transfer(address, wei, nonce, 2 * int(self.w3.eth.gas_price) + 1)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise ChainUnavailable(f"funding {address} with gas money failed")

    def fund_many(self, addresses: Sequence[str], wei: int = HOUSEHOLD_GAS_WEI) -> None:
        """:meth:`fund` each of ``addresses``; on the embedded chain the transfers share
        blocks (its provider's ``shared_blocks``), on a loopback node they are sent in one
        JSON-RPC batch (its provider's ``direct_sends``); all are mined when this returns."""
        sends = getattr(self.w3.provider, "direct_sends", None)
        if sends is not None and addresses:
            self._fund_batched(sends, addresses, wei)
            return
        shared = getattr(self.w3.provider, "shared_blocks", None)
        if shared is None:
            for address in addresses:
                self.fund(address, wei)
            return
        sent = []
        with self._fund_lock, shared():
            nonce = self.w3.eth.get_transaction_count(self.operator.address, "pending")
            max_fee = 2 * int(self.w3.eth.gas_price) + 1
            for k, address in enumerate(addresses):
                sent.append((address, self._send_transfer(address, wei, nonce + k, max_fee)))
        for address, tx_hash in sent:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)
            if receipt["status"] != 1:
                raise ChainUnavailable(f"funding {address} with gas money failed")

    def _fund_batched(self, sends: Any, addresses: Sequence[str], wei: int) -> None:
        with self._fund_lock:
            prepared = sends.prepare(self.operator.address, self.operator.address, b"")
            raws = [
                self._signed_transfer(address, wei, prepared.nonce + k, prepared.max_fee_per_gas)
                for k, address in enumerate(addresses)
            ]
            hashes = sends.send_many(raws)
        receipts = self.w3.provider.direct_reads.receipts(  # type: ignore[attr-defined]
            [bytes(h) for h in hashes]
        )
        for address, receipt in zip(addresses, receipts, strict=True):
            if receipt["status"] != 1:
                raise ChainUnavailable(f"funding {address} with gas money failed")

    def _send_transfer(self, address: str, wei: int, nonce: int, max_fee: int) -> Any:
        """Sign and send ``wei`` from the operator to ``address``; returns the hash."""
        return self.w3.eth.send_raw_transaction(self._signed_transfer(address, wei, nonce, max_fee))

    def _signed_transfer(self, address: str, wei: int, nonce: int, max_fee: int) -> bytes:
        """The operator's signed transfer of ``wei`` to ``address``."""
        tx: dict[str, Any] = {
            "to": Web3.to_checksum_address(address),
            "value": wei,
            "nonce": nonce,
            "gas": 21_000,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": 1,
            "chainId": self.chain_id,
        }
        return bytes(self.operator.sign_transaction(tx).raw_transaction)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_chain(
    spec: str = "embedded",
    data_dir: Path | str = "data",
    operator_key: str | None = None,
    *,
    process: bool = False,
) -> Chain:
    """Open the backend named by ``spec`` (``embedded``, ``memory``, ``anvil`` or an RPC URL).

    ``process=True`` runs an ``embedded`` chain in its own node process (ignored otherwise).
    """
    # The process that opens a chain hashes too (EIP-712 digests, recovered signers), whichever
    # backend runs the EVM: the speedups' C Keccak serves it as well (a no-op when they are
    # switched off or the versions are not the tested ones).
    pyevm_speedups.install()
    data = Path(data_dir)
    if spec == "embedded" and process:
        from ledger.chain.node import start_node

        # The key file is settled here first, so that the node opens the same operator.
        data.mkdir(parents=True, exist_ok=True)
        operator = load_or_create_operator(data, operator_key)
        node = start_node(data, operator_key)
        try:
            provider = HTTPProvider(
                node.url, request_kwargs={"timeout": 120, "headers": node.headers}
            )
            w3 = Web3(provider)
            w3.eth.default_account = operator.address
        except BaseException:
            node.stop()
            raise
        return Chain(w3, "embedded", operator, data, node.stop, node=node)
    if spec == "embedded":
        from ledger.chain.embedded import open_embedded

        opened = open_embedded(data, operator_key)
        return Chain(opened.chain.w3, "embedded", opened.operator, data, opened.chain.close)
    if spec == "memory":
        from ledger.chain.embedded import in_memory_chain

        operator = Account.from_key(operator_key) if operator_key else Account.create()
        w3 = in_memory_chain({operator.address: OPERATOR_GENESIS_WEI})
        w3.eth.default_account = operator.address
        return Chain(w3, "memory", operator, None, lambda: None)
    if spec == "anvil":
        from ledger.chain.anvil import open_anvil

        started = open_anvil(data, operator_key)
        try:
            w3 = Web3(LoopbackProvider(NodeLink(started.node.url)))
            w3.eth.default_account = started.operator.address
        except BaseException:
            started.node.stop()
            raise
        return Chain(w3, "anvil", started.operator, data, started.node.stop, anvil=started.node)
    if spec.startswith(("http://", "https://")):
        if not operator_key:
            raise ConfigError(
                f"chain {spec} needs the operator's private key (VOISIN_CHAIN_KEY), "
                "an account holding ether for gas"
            )
        operator = operator_account(operator_key)
        if is_loopback(spec):
            w3 = Web3(LoopbackProvider(NodeLink(spec, timeout=60)))
        else:
            w3 = Web3(HTTPProvider(spec, request_kwargs={"timeout": 60}))
        try:
            w3.eth.chain_id  # noqa: B018  (a cheap round trip that proves the node answers)
        except Exception as exc:
            raise ChainUnavailable(f"cannot reach the chain node at {spec}: {exc}") from exc
        w3.eth.default_account = operator.address
        return Chain(w3, "rpc", operator, data, lambda: None)
    raise ConfigError(
        f"unknown chain {spec!r}: use 'embedded', 'memory', 'anvil' or an http(s):// JSON-RPC URL"
    )
