"""Voisin's settings: one pydantic-settings class read from ``VOISIN_*`` environment variables.

The defaults run the embedded chain with SQLite in ``./data``, with no set-up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.localtime import LocalTimeError, zone

#: The largest integer both databases store (signed 64-bit BIGINT); the contract's uint64
#: tariffs are held to it too, as the mirror keeps them in BIGINT columns.
INT64_MAX = 2**63 - 1

#: A market's name in a city: its path segment (/markets/<name>) and its PostgreSQL schema.
MARKET_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
#: Markets one server serves: each holds a database pool and background threads.
MAX_MARKETS = 200


def _network(name: str) -> str:
    from ledger.audit.feeder import NETWORKS

    if name not in NETWORKS:
        raise ValueError(f"unknown feeder network {name!r}; choose one of {', '.join(NETWORKS)}")
    return name


#: Operator tokens that must never guard a real deployment.
PLACEHOLDER_TOKENS = frozenset({"", "change-me", "changeme", "secret", "operator", "token"})


class Settings(BaseSettings):
    """Where the chain and the database are. Every field reads ``VOISIN_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="VOISIN_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        validate_default=True,
        description=(
            "Directory for the embedded chain, the operator key, deployments and SQLite; a "
            "relative path is resolved once, against the working directory at start."
        ),
    )
    chain: str = Field(
        default="embedded",
        description="'embedded' (eth-tester, persisted in data_dir) or a JSON-RPC http(s) URL.",
    )
    chain_process: bool = Field(
        default=True,
        description=(
            "Run the embedded chain in its own node process on loopback (ledger/chain/node.py), so "
            "that its EVM work never holds up requests; false runs it inside the API process."
        ),
    )
    chain_key: SecretStr | None = Field(
        default=None,
        description="Operator private key for an RPC chain (an account holding ether for gas).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the mirror database; default sqlite in data_dir.",
    )
    markets: str = Field(
        default="",
        description=(
            "A city: its neighbourhood markets, comma-separated, each a name (lowercase "
            "letters, digits and '-', at most 32 characters) and optionally ':' and its feeder "
            "network (e.g. north:kerber_dorfnetz), each served under /markets/<name> with its "
            "own contract on the one chain (docs/city.md). Empty: one market at the root."
        ),
    )
    feeder_network: str = Field(
        default="kerber_vorstadtnetz_kabel_1",
        description=(
            "The pandapower Kerber low-voltage network the market's power flows run on "
            "(ledger/audit/feeder.py); in a city, each market's own from VOISIN_MARKETS."
        ),
    )

    environment: Literal["development", "production"] = Field(
        default="development",
        description="'production' refuses placeholder secrets and requires VOISIN_OPERATOR_TOKEN.",
    )
    operator_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token of the grid operator. In development, if unset, one is generated and "
            "kept in data_dir/operator.token (mode 0600)."
        ),
    )
    key_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Secret that encrypts the household keys the API holds. In development, if unset, "
            "one is generated and kept in data_dir/key.secret (mode 0600)."
        ),
    )
    feed_in_ueur_per_kWh: int = Field(default=40_000, ge=0, le=INT64_MAX)
    retail_ueur_per_kWh: int = Field(default=250_000, ge=0, le=INT64_MAX)
    grid_fee_ueur_per_kWh: int = Field(default=30_000, ge=0, le=INT64_MAX)
    timezone: str = Field(
        default="Europe/Paris",
        description=(
            "The neighbourhood's IANA time zone: pages, bills and CSVs show its local time "
            "(ISO 8601 with the offset); the ledger stores UTC."
        ),
    )
    slot_seconds: int = Field(
        default=900, description="Slot length; readings are signed for unix_seconds // 900."
    )
    auto_settle: bool = Field(
        default=True,
        description="Settle each slot automatically once it has been closed for settle_after_s.",
    )
    settle_after_s: int = Field(default=120, ge=0)
    mechanism: Literal["pay-as-clear", "midpoint", "pay-as-offer"] = Field(
        default="pay-as-clear", description="The clearing mechanism the settlement worker runs."
    )
    outbox_interval_s: float = Field(default=0.5, gt=0, le=60)
    log_format: Literal["auto", "text", "json"] = Field(
        default="auto",
        description=(
            "How `voisin serve` logs on stderr (api/logs.py): 'text' for a person, 'json' (one "
            "object per line, with the request id) for a machine; 'auto' is text when stderr "
            "is a terminal, json otherwise (a supervisor, a container, a file)."
        ),
    )
    # Abuse limits (api/ratelimit.py): token buckets answered with 429 and Retry-After.
    token_rate_per_s: float = Field(
        default=10.0,
        ge=0,
        description="Household writes (orders, cancels, takes) per second per token; 0: no limit.",
    )
    token_burst: int = Field(
        default=600, ge=1, description="Household writes a token may make at once."
    )
    meter_rate_per_s: float = Field(
        default=5.0, ge=0, description="Readings per second per meter after the burst; 0: no limit."
    )
    meter_burst: int = Field(
        default=5_000,
        ge=1,
        description="Readings a meter may deliver at once (5,000: 52 days of 15-minute slots).",
    )

    # The public API (api/apikeys.py): third-party apps' keys and the public reads' limits.
    api_key_rate_per_s: float = Field(
        default=20.0,
        ge=0,
        description=(
            "Requests per second per API key after its burst, unless the operator gave the "
            "key its own; 0: no limit."
        ),
    )
    api_key_burst: int = Field(
        default=600, ge=1, description="Requests an API key may make at once, by default."
    )
    public_rate_per_s: float = Field(
        default=2.0,
        ge=0,
        description=(
            "Public market reads (/market/...) per second per client address without an API "
            "key, after the burst; 0: no limit."
        ),
    )
    public_burst: int = Field(
        default=120, ge=1, description="Public market reads a client without a key makes at once."
    )

    # Request bodies (api/body_guard.py): refused before anything parses them.
    max_body_bytes: int = Field(
        default=1_000_000,
        ge=4_096,
        le=100_000_000,
        description=(
            "Largest request body in bytes, chunked or not (413 beyond). A batch of 1,000 "
            "readings, the largest the API takes, is about 283 kB of JSON."
        ),
    )
    max_json_depth: int = Field(
        default=32,
        ge=4,
        le=1_000,
        description=(
            "Deepest nesting of arrays and objects in a JSON body (422 beyond). The API's "
            "bodies nest 3 levels at most; Python's parser recurses once per level."
        ),
    )

    # Webhooks (api/webhooks.py, docs/webhooks.md): events POSTed to the operator's systems.
    webhook_max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="Attempts per delivery before it is marked failed (then retried by hand).",
    )
    webhook_backoff_s: float = Field(
        default=5.0,
        gt=0,
        le=3_600,
        description=(
            "Wait before the first retry, in seconds; doubled after each failed attempt up to "
            "webhook_backoff_max_s, each wait drawn between half and all of it (jitter)."
        ),
    )
    webhook_backoff_max_s: float = Field(
        default=3_600.0, gt=0, le=86_400, description="Longest wait between two attempts (s)."
    )
    webhook_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Timeout of each step of an attempt (connect, send, each read), in seconds.",
    )
    webhook_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Attempts under way at once (at most one per subscription).",
    )
    webhook_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the webhooks' worker looks for new events and due retries (s).",
    )

    # Privacy (api/privacy.py, docs/privacy.md): how long raw signed readings are kept.
    signed_reading_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description=(
            "Days raw signed meter readings (with their signatures) are kept; unset keeps them "
            "for good. `voisin purge-readings` deletes older ones of slots sealed on chain; "
            "the committed readings that bills need stay."
        ),
    )

    # The live feed (api/feed.py, docs/feed.md): Server-Sent Events from the database mirror.
    feed_max_subscribers: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Feed streams one process serves at once; one more is refused with 503.",
    )
    feed_max_lag_events: int = Field(
        default=10_000,
        ge=8,
        le=1_000_000,
        description=(
            "Events the feed keeps in memory for its subscribers (shared by all); a stream "
            "further behind is closed, and resumes from the database with Last-Event-ID."
        ),
    )
    feed_poll_s: float = Field(
        default=0.5, gt=0, le=10, description="How often the feed looks for new mirrored events."
    )
    feed_ping_s: float = Field(
        default=15.0, gt=0, le=300, description="Keep-alive comment on an idle feed stream."
    )
    feed_send_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="A feed stream whose client takes no bytes for this long is closed.",
    )

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        """The data directory as an absolute path, resolved here once: every process that
        receives it (the chain's node, which runs in another working directory, a server
        that ``voisin simulate --via api`` starts) then opens the same directory."""
        return Path(os.path.expanduser(value)).resolve()

    @field_validator("feeder_network", mode="after")
    @classmethod
    def _known_network(cls, value: str) -> str:
        return _network(value)

    @field_validator("markets", mode="after")
    @classmethod
    def _market_names(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")] if value.strip() else []
        names = []
        for entry in entries:
            name, _, network = entry.partition(":")
            if not MARKET_NAME.fullmatch(name):
                raise ValueError(
                    f"market name {name!r}: use 1 to 32 lowercase letters, digits and '-', "
                    "starting and ending with a letter or digit"
                )
            if network:
                _network(network)
            names.append(name)
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"market {', '.join(twice)} is named more than once")
        if len(names) > MAX_MARKETS:
            raise ValueError(f"{len(names)} markets: one server serves at most {MAX_MARKETS}")
        return ",".join(entries)

    @property
    def market_names(self) -> tuple[str, ...]:
        """The city's markets (empty: one market at the server's root)."""
        return tuple(self.market_networks)

    @property
    def market_networks(self) -> dict[str, str]:
        """Each market of the city and its feeder network (the city's by default)."""
        entries = self.markets.split(",") if self.markets else []
        return {
            name: network or self.feeder_network
            for name, _, network in (entry.partition(":") for entry in entries)
        }

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.slot_seconds != 900:
            raise ValueError(
                "slot_seconds must be 900: meters sign readings for unix_seconds // 900 "
                "(the EU 15-minute settlement period)"
            )
        try:
            zone(self.timezone)
        except LocalTimeError as exc:
            raise ValueError(f"VOISIN_TIMEZONE: {exc}") from exc
        if self.retail_ueur_per_kWh < self.feed_in_ueur_per_kWh + self.grid_fee_ueur_per_kWh:
            raise ValueError("tariffs need feed_in + grid_fee <= retail, or nothing can trade")
        if self.environment == "production":
            for name in ("operator_token", "key_secret"):
                value: SecretStr | None = getattr(self, name)
                if value is None or value.get_secret_value().strip().lower() in PLACEHOLDER_TOKENS:
                    raise ValueError(
                        f"VOISIN_{name.upper()} must be set to a real secret in production "
                        "(at least 24 characters, not a placeholder)"
                    )
                if len(value.get_secret_value()) < 24:
                    raise ValueError(f"VOISIN_{name.upper()} must be at least 24 characters")
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'voisin.db').resolve()}"

    def chain_key_value(self) -> str | None:
        return self.chain_key.get_secret_value() if self.chain_key else None
