"""Chain backends: the embedded eth-tester chain on LMDB, its node process, and JSON-RPC nodes.

:func:`open_chain` (in :mod:`ledger.chain.backends`) is the one place that chooses a backend;
everything above it sees a :class:`Chain`. The private speedups of py-evm that the embedded
chain may install live in :mod:`ledger.chain.pyevm_speedups`.
"""

from ledger.chain.backends import Chain, open_chain

__all__ = ["Chain", "open_chain"]
