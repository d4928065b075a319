"""Voisin's settings: one pydantic-settings class read from ``VOISIN_*`` environment variables.

The defaults run the embedded chain with SQLite in ``./data``, with no set-up.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the chain and the database are. Every field reads ``VOISIN_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="VOISIN_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Directory for the embedded chain, the operator key, deployments and SQLite.",
    )
    chain: str = Field(
        default="embedded",
        description="'embedded' (in-process, persisted in data_dir) or a JSON-RPC http(s) URL.",
    )
    chain_key: SecretStr | None = Field(
        default=None,
        description="Operator private key for an RPC chain (an account holding ether for gas).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the mirror database; default sqlite in data_dir.",
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'voisin.db').resolve()}"

    def chain_key_value(self) -> str | None:
        return self.chain_key.get_secret_value() if self.chain_key else None
