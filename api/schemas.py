"""Request and response bodies, with the limits they enforce and examples for the OpenAPI.

Integers everywhere: energy in Wh, money in micro-euro (ueur), prices in ueur per kWh, slots
as ``unix_seconds // 900``.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")
UINT32 = 2**32 - 1
UINT64 = 2**64 - 1
#: Upper bound of a top-up: 1,000,000 EUR in one go is beyond any household's need.
MAX_TOPUP_UEUR = 10**12
MAX_READINGS_PER_REQUEST = 1000

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Word = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
Slot = Annotated[int, Field(ge=1, le=UINT32 - 1, strict=True)]
#: A household id in a path (ids are uint32 on chain).
HouseholdPath = Annotated[int, Path(ge=1, le=UINT32, description="Household id")]
#: An order id in a path (the API's own id of the offer or bid).
OrderPath = Annotated[int, Path(ge=1, le=2**62, description="The API's id of the order")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(BaseModel):
    """Every error: a machine code and a message saying what was wrong and what is allowed."""

    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["price_limit_ueur_per_kWh: must be between 40000 and 220000"])
    details: Any = None


# ───────────────────────────── Households ─────────────────────────────


class HouseholdIn(Strict):
    meter: Address = Field(description="The meter's address (its signing key's).")
    prosumer: bool = Field(description="Whether the household has PV and may sell.")
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)] | None = None
    import_baseline_Wh: int = Field(default=0, ge=0, le=UINT64, strict=True)
    export_baseline_Wh: int = Field(default=0, ge=0, le=UINT64, strict=True)

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "meter": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
                    "prosumer": True,
                    "name": "Amélie",
                }
            ]
        },
    )


class HouseholdCreated(BaseModel):
    id: int = Field(examples=[1])
    account: str = Field(description="The household's account on chain (its key is held here).")
    meter: str
    prosumer: bool
    name: str | None
    token: str = Field(description="Bearer token of the household. Shown once, stored hashed.")


class KeyRotated(BaseModel):
    id: int
    account: str = Field(description="The household's new account (its key is held here).")
    previous_account: str = Field(description="The retired account: it no longer acts.")


class TokenRotated(BaseModel):
    id: int
    token: str = Field(description="The new bearer token. Shown once; the old one stops working.")


class MeterIn(Strict):
    meter: Address = Field(description="The new meter's address (its signing key's).")
    import_baseline_Wh: int = Field(default=0, ge=0, le=UINT64, strict=True)
    export_baseline_Wh: int = Field(default=0, ge=0, le=UINT64, strict=True)


class MeterRotated(BaseModel):
    id: int
    meter: str
    previous_meter: str
    import_baseline_Wh: int
    export_baseline_Wh: int
    last_slot: int = Field(description="The new meter's readings must come after this slot.")


class CreditLine(BaseModel):
    slot: int
    export_Wh: int
    sold_Wh: int
    credits_Wh: int


class Balance(BaseModel):
    household: int
    balance_ueur: int = Field(description="Payment token held (micro-euro).")
    as_of_block: int = Field(description="Last block mirrored into the database.")
    credits: list[CreditLine] = Field(description="Credits per metered slot with export.")


class TopUpIn(Strict):
    household: int = Field(ge=1, le=UINT32, strict=True)
    amount_ueur: int = Field(gt=0, le=MAX_TOPUP_UEUR, strict=True)

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"household": 1, "amount_ueur": 5_000_000}]},
    )


class TopUpOut(BaseModel):
    household: int
    amount_ueur: int
    tx_hash: str


# ───────────────────────────── Readings ─────────────────────────────


class ReadingIn(Strict):
    meter: Address
    slot: Slot
    import_Wh: int = Field(ge=0, le=UINT64, strict=True)
    export_Wh: int = Field(ge=0, le=UINT64, strict=True)
    v: int = Field(ge=27, le=28, strict=True)
    r: Word
    s: Word


class ReadingsIn(Strict):
    readings: list[ReadingIn] = Field(min_length=1, max_length=MAX_READINGS_PER_REQUEST)

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "readings": [
                        {
                            "meter": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
                            "slot": 1995000,
                            "import_Wh": 1200345,
                            "export_Wh": 804511,
                            "v": 27,
                            "r": "0x" + "1" * 64,
                            "s": "0x" + "2" * 64,
                        }
                    ]
                }
            ]
        },
    )


class ReadingVerdict(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected", "conflict"]
    code: str | None = None
    message: str = ""
    flags: list[str] = []


class ReadingsAccepted(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    flags: list[str] = Field(default=[], description="Flags of the accepted readings (gap, late).")
    results: list[ReadingVerdict]


# ───────────────────────────── Orders ─────────────────────────────


class OrderIn(Strict):
    price_limit_ueur_per_kWh: int = Field(ge=0, le=UINT64, strict=True)
    first_slot: Slot
    last_slot: Slot | None = Field(
        default=None, description="Last slot (inclusive); omit for a standing order."
    )
    max_Wh_per_slot: int | None = Field(default=None, gt=0, le=UINT64, strict=True)

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "price_limit_ueur_per_kWh": 120_000,
                    "first_slot": 1995000,
                    "max_Wh_per_slot": 2000,
                }
            ]
        },
    )


class OrderOut(BaseModel):
    id: int
    side: Literal["offer", "bid"]
    household: int
    price_limit_ueur_per_kWh: int
    first_slot: int
    last_slot: int | None
    max_Wh_per_slot: int | None
    status: Literal["queued", "open", "cancelled", "rejected"]
    cancel_requested: bool
    chain_id: int | None = Field(description="The order's id on chain once posted.")
    reason: str | None = None
    source: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class TakeIn(Strict):
    slot: Slot
    max_Wh: int = Field(gt=0, le=UINT64, strict=True)

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"slot": 1995000, "max_Wh": 500}]},
    )


class TakeOut(BaseModel):
    offer: int
    slot: int
    energy_Wh: int
    price_ueur_per_kWh: int
    cost_ueur: int
    fee_ueur: int
    tx_hash: str


class Trade(BaseModel):
    slot: int
    seller: int
    buyer: int
    offer_chain_id: int
    bid_chain_id: int = Field(description="0 for a direct take")
    energy_Wh: int
    price_ueur_per_kWh: int
    cost_ueur: int
    fee_ueur: int
    tx_hash: str


class TariffsOut(BaseModel):
    """The tariffs every local price is bounded by (micro-euro per kWh)."""

    feed_in_ueur_per_kWh: int = Field(
        examples=[40_000], description="What the grid pays for exported energy: the floor."
    )
    retail_ueur_per_kWh: int = Field(
        examples=[250_000], description="What the grid charges for imported energy: the cap."
    )
    grid_fee_ueur_per_kWh: int = Field(
        examples=[30_000], description="Paid by the buyer of a local kWh to the grid operator."
    )
    current_slot: int = Field(description="The slot now (unix_seconds // 900).")
