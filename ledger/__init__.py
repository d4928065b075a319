"""Voisin ledger: chain backends, deployment, the typed contract client, EIP-712 readings,
the event indexer, and (in later modules) clearing, settlement and audit.

This package imports neither ``api`` nor ``meter_sim``.
"""

# First: chooses the Keccak backend before any import below can hash (see the module).
from ledger import _keccak  # noqa: F401
from ledger.chain import Chain, open_chain
from ledger.client import Fill, Order, SlotEnergy, Tariffs, TxResult, VoisinClient
from ledger.deploy import DEFAULT_TARIFFS, Deployment, open_ledger
from ledger.eip712 import Reading, SignedReading, sign_reading
from ledger.errors import ContractError, LedgerError

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
