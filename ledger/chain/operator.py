"""The operator's account on the chains Voisin opens: a given key, or one kept on disk.

The operator deploys the contract, registers households and pays their gas money
(:meth:`ledger.chain.backends.Chain.fund`). On a JSON-RPC node its key must be given; on the
embedded chain it may be, or else it is created on the first start in
``<data_dir>/operator.key`` (mode 0600, fsynced before use) and funded at genesis with
:data:`OPERATOR_GENESIS_WEI`. The backend chooser and the embedded chain's node process both
read that file here, so the two sides of a node agree on the operator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.errors import ConfigError

#: Ether (wei) the embedded chain gives the operator at genesis: gas for a very long time.
OPERATOR_GENESIS_WEI: Final = 10**9 * 10**18
#: The operator key's file in a data directory: one line of 0x-hex.
OPERATOR_KEY_FILE: Final = "operator.key"


def operator_account(key: str) -> LocalAccount:
    """The account of ``key`` (32 bytes of hex); :class:`ConfigError` if it is not one."""
    try:
        account: LocalAccount = Account.from_key(key)
        return account
    except (ValueError, TypeError) as exc:
        raise ConfigError("the operator key must be 32 bytes of hex (0x...)") from exc


def load_or_create_operator(data_dir: Path, given: str | None) -> LocalAccount:
    """The operator of ``data_dir``: ``given`` if set, else the key in its
    :data:`OPERATOR_KEY_FILE`, created there (durably, readable by the owner only) when absent.

    A ``given`` key is written there too when the data dir has none yet: the chain's genesis
    funds the operator it is first opened with, so a later opening without the key must find
    the same one.
    """
    path = data_dir / OPERATOR_KEY_FILE
    if given:
        account = operator_account(given)
        if not path.exists():
            _write_key(path, account)
        return account
    if path.exists():
        return operator_account(path.read_text().strip())
    created: LocalAccount = Account.create()
    _write_key(path, created)
    return created


def _write_key(path: Path, account: LocalAccount) -> None:
    """Write ``account``'s key to ``path`` durably, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(account.key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
