"""eth-hash's C Keccak backend under every hash the process computes.

py-evm, py-trie, eth-utils, eth-account and web3 all hash through the one
``eth_hash.auto.keccak``, which on its first call picks the backend named by
``ETH_HASH_BACKEND``, else the first it can import: pycryptodome before pysha3. On the
embedded chain Keccak is the hottest primitive (trie nodes, storage keys, the SHA3 opcode,
transaction and reading hashes): 9.5 % of a 100-household ``voisin simulate`` under
pycryptodome, which takes about 14 us per 64-byte hash against about 2 us for safe-pysha3's
extension (both measured on this machine in the same run).

:func:`use_c_backend` sets the backend on that shared object directly, so it holds even if
something hashed before. It is process-wide by nature: there is one ``keccak`` object and every
library imported it by name. Both backends compute the same Keccak-256 (``tests/ledger/chain/
test_keccak.py`` hashes with each). A backend the user names in ``ETH_HASH_BACKEND`` is left
alone.
"""

from __future__ import annotations

import os
from importlib.util import find_spec


def use_c_backend() -> bool:
    """Put pysha3's backend under eth-hash's shared ``keccak``; False (nothing changed) when
    ``ETH_HASH_BACKEND`` names a backend or safe-pysha3 is not installed. Only
    :func:`ledger.chain.pyevm_speedups.install` calls this."""
    if "ETH_HASH_BACKEND" in os.environ or find_spec("sha3") is None:
        return False
    from eth_hash.auto import keccak
    from eth_hash.backends.pysha3 import backend as pysha3

    # Bound methods; eth-hash's stubs type them with their self parameter.
    keccak.hasher = pysha3.keccak256  # type: ignore[assignment]
    keccak.preimage = pysha3.preimage  # type: ignore[assignment]
    return True
