"""Puts eth-hash's C Keccak backend under every hash the process computes.

py-evm, py-trie, eth-utils, eth-account and web3 all hash through the one
``eth_hash.auto.keccak``, which on its first call picks the backend named by
``ETH_HASH_BACKEND``, else the first it can import: pycryptodome before pysha3. On the
embedded chain Keccak is the hottest primitive (trie nodes, storage keys, the SHA3 opcode,
transaction and reading hashes): 9.5 % of a 100-household ``voisin simulate`` under
pycryptodome, which takes about 14 us per 64-byte hash against about 2 us for safe-pysha3's
extension (both measured on this machine in the same run).

:mod:`ledger` imports this first. The backend is set on that shared object directly, so it
holds even if something hashed before ``ledger`` was imported. A backend the user names in
``ETH_HASH_BACKEND`` is left alone.
"""

from __future__ import annotations

import os
from importlib.util import find_spec

from eth_hash.auto import keccak

if "ETH_HASH_BACKEND" not in os.environ and find_spec("sha3") is not None:
    from eth_hash.backends.pysha3 import backend as _pysha3

    # Bound methods; eth-hash's stubs type them with their self parameter.
    keccak.hasher = _pysha3.keccak256  # type: ignore[assignment]
    keccak.preimage = _pysha3.preimage  # type: ignore[assignment]
