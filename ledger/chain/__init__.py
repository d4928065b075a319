"""Chain backends: the embedded eth-tester chain on LMDB, its node process, and JSON-RPC nodes.

:func:`open_chain` (in :mod:`ledger.chain.backends`) is the one place that chooses a backend;
everything above it sees a :class:`Chain`. A data directory's embedded chain is opened by
:func:`ledger.chain.embedded.open_embedded`, in this process or in the node process
(:mod:`ledger.chain.node`); the modules import one way, from the chooser down. The private
speedups of py-evm that the embedded chain installs when it opens live in
:mod:`ledger.chain.pyevm_speedups` (``VOISIN_PYEVM_SPEEDUPS=0`` turns them off).
"""

from ledger.chain.backends import Chain, open_chain

__all__ = ["Chain", "open_chain"]
