"""Custody of household keys: the API signs orders and takes for the households it serves.

Each household's account key is generated at registration and stored only as an eth-account
keystore (scrypt, AES-128-CTR), encrypted under the server's key secret. Decrypted keys live in
memory only, and never appear in logs or responses.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

#: scrypt work factor: about 50 ms per key on this class of machine (decrypted once per process).
SCRYPT_N = 2**14


log = logging.getLogger("voisin.api")


def given_or_kept_secret(given: SecretStr | None, path: Path) -> str:
    """The secret the settings give (a ``SecretStr``), else the one kept in ``path``, made
    on first use (development only: Settings refuses a missing secret in production)."""
    value = given.get_secret_value() if given is not None else None
    if value:
        return str(value)
    secret = load_or_create_secret(path)
    log.warning("using the development secret in %s", path)
    return secret


def load_or_create_secret(path: Path) -> str:
    """A random secret kept in ``path`` (mode 0600), created on first use (development only)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return value


class KeyVault:
    """Encrypts new household keys and decrypts stored ones (cached per process)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._cache: dict[str, LocalAccount] = {}
        self._lock = threading.Lock()

    def new_account(self) -> tuple[LocalAccount, str]:
        """A fresh account and its encrypted keystore JSON."""
        account: LocalAccount = Account.create()
        keystore = Account.encrypt(account.key, self._secret, kdf="scrypt", iterations=SCRYPT_N)
        with self._lock:
            self._cache[account.address] = account
        return account, json.dumps(keystore)

    def account(self, key_json: str) -> LocalAccount:
        """The account a stored keystore holds."""
        keystore = json.loads(key_json)
        address = "0x" + str(keystore["address"]).removeprefix("0x")
        with self._lock:
            for known, cached in self._cache.items():
                if known.lower() == address.lower():
                    return cached
        account: LocalAccount = Account.from_key(Account.decrypt(keystore, self._secret))
        with self._lock:
            self._cache[account.address] = account
        return account
