"""Voisin ledger: everything that touches the chain, and the pure logic around it.

One room per idea:

- :mod:`ledger.types`: the value types (tariffs, fills, orders, events) and the slot length;
- :mod:`ledger.errors`: :class:`LedgerError` and its typed subclasses, one per contract error;
- :mod:`ledger.chain`: chain backends (embedded eth-tester on LMDB, its node process, JSON-RPC);
- :mod:`ledger.contract`: compilation, deployment, the typed web3 client, the event codec;
- :mod:`ledger.readings`: EIP-712 readings, the intake's checks, the evidence store;
- :mod:`ledger.mirror`: the database mirror of the chain and its indexer;
- :mod:`ledger.market`: clearing, agents, settlement, statements;
- :mod:`ledger.audit`: the operator's audit.

This package imports neither ``api`` nor ``meter_sim``. The names below are loaded on first use
(PEP 562), so that importing a pure module (``ledger.types``, ``ledger.market.clearing``) does
not load web3 and py-evm with it.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.chain.backends import Chain, open_chain
    from ledger.contract.client import VoisinClient
    from ledger.contract.deploy import DEFAULT_TARIFFS, Deployment, open_ledger
    from ledger.errors import ContractError, LedgerError
    from ledger.readings.eip712 import Reading, SignedReading, sign_reading
    from ledger.types import Fill, Order, SlotEnergy, Tariffs, TxResult

_EXPORTS: dict[str, str] = {
    "Chain": "ledger.chain.backends",
    "ContractError": "ledger.errors",
    "DEFAULT_TARIFFS": "ledger.contract.deploy",
    "Deployment": "ledger.contract.deploy",
    "Fill": "ledger.types",
    "LedgerError": "ledger.errors",
    "Order": "ledger.types",
    "Reading": "ledger.readings.eip712",
    "SignedReading": "ledger.readings.eip712",
    "SlotEnergy": "ledger.types",
    "Tariffs": "ledger.types",
    "TxResult": "ledger.types",
    "VoisinClient": "ledger.contract.client",
    "open_chain": "ledger.chain.backends",
    "open_ledger": "ledger.contract.deploy",
    "sign_reading": "ledger.readings.eip712",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_TARIFFS",
    "Chain",
    "ContractError",
    "Deployment",
    "Fill",
    "LedgerError",
    "Order",
    "Reading",
    "SignedReading",
    "SlotEnergy",
    "Tariffs",
    "TxResult",
    "VoisinClient",
    "open_chain",
    "open_ledger",
    "sign_reading",
]
