"""Voisin ledger: chain backends, deployment, the typed contract client, EIP-712 readings,
the event indexer, and (in later modules) clearing, settlement and audit.

This package imports neither ``api`` nor ``meter_sim``.
"""

# First: chooses the Keccak backend before any import below can hash (see the module).
from ledger.chain.backends import Chain, open_chain
from ledger.chain.pyevm_speedups import keccak as _keccak  # noqa: F401
from ledger.contract.client import Fill, Order, SlotEnergy, Tariffs, TxResult, VoisinClient
from ledger.contract.deploy import DEFAULT_TARIFFS, Deployment, open_ledger
from ledger.errors import ContractError, LedgerError
from ledger.readings.eip712 import Reading, SignedReading, sign_reading

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
