"""The API's own tables, next to the ledger's mirror (:mod:`ledger.mirror.models`) in one database.

- ``api_household``: a household registered through the API: its bearer token (hashed), its
  account key (encrypted, :mod:`api.custody`), its meter and the meter's intake state (the last
  accepted reading's slot and registers, which the next reading must follow).
- ``intake_reading``: every accepted signed reading, stored before the API answers 202, then
  committed on chain by the outbox (``queued`` -> ``committed``, or ``rejected`` with a reason
  if the chain refuses it).
- ``api_order``: every offer or bid accepted by the API, posted on chain by the outbox
  (``queued`` -> ``open`` -> ``cancelled``), with its on-chain id once posted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class ApiHousehold(SQLModel, table=True):
    __tablename__ = "api_household"

    id: int = Field(primary_key=True)  # the household's id on chain
    name: str | None = None
    account: str = Field(index=True)
    meter: str = Field(unique=True)
    prosumer: bool
    token_hash: str = Field(unique=True)
    key_json: str
    meter_last_slot: int = Field(default=0, sa_type=BigInteger)
    meter_import_Wh: int = Field(default=0, sa_type=BigInteger)
    meter_export_Wh: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=_now)


class IntakeReading(SQLModel, table=True):
    __tablename__ = "intake_reading"
    __table_args__ = (UniqueConstraint("meter", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    household: int = Field(index=True)
    meter: str = Field(index=True)
    slot: int = Field(sa_type=BigInteger, index=True)
    import_Wh: int = Field(sa_type=BigInteger)
    export_Wh: int = Field(sa_type=BigInteger)
    v: int
    r: str
    s: str
    flags: str = ""
    status: str = Field(default="queued", index=True)
    reason: str | None = None
    tx_hash: str | None = None
    received_at: datetime = Field(default_factory=_now)


class ApiOrder(SQLModel, table=True):
    __tablename__ = "api_order"

    id: int | None = Field(default=None, primary_key=True)
    side: str = Field(index=True)  # "offer" or "bid"
    household: int = Field(index=True)
    price_limit_ueur_per_kWh: int = Field(sa_type=BigInteger)
    max_Wh_per_slot: int = Field(default=0, sa_type=BigInteger)
    first_slot: int = Field(sa_type=BigInteger)
    last_slot: int = Field(sa_type=BigInteger)
    status: str = Field(default="queued", index=True)
    cancel_requested: bool = False
    chain_id: int | None = None
    reason: str | None = None
    source: str = "household"  # "household" or "agent" (a default standing order)
    created_at: datetime = Field(default_factory=_now)
