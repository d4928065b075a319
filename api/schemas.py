"""Request and response bodies, with the limits they enforce and examples for the OpenAPI.

Integers everywhere: energy in Wh, money in micro-euro (ueur), prices in ueur per kWh, slots
as ``unix_seconds // 900``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

# ───────────────────────────── Bounds ─────────────────────────────
# Every integer the API takes is bounded by the tighter of what the contract holds
# (contracts/IVoisin.sol) and what both databases hold, and refused with 422 beyond, before
# anything is written: a value the chain takes but the mirror cannot store would fail after an
# irreversible chain write.

UINT32 = 2**32 - 1
UINT64 = 2**64 - 1
#: PostgreSQL's INTEGER (the id columns: ``id: int`` in the SQLModel tables).
INT32_MAX = 2**31 - 1
#: BIGINT in SQLite and PostgreSQL (the energy, money, price and slot columns).
INT64_MAX = 2**63 - 1

#: Household ids: uint32 on chain, INTEGER in the tables (``api_household.id``, the fills'
#: ``seller`` and ``buyer``).
MAX_HOUSEHOLD_ID = min(UINT32, INT32_MAX)
#: The API's order ids: ``api_order.id``, an INTEGER (the chain's are uint32).
MAX_ORDER_ID = INT32_MAX
#: Slots: uint32 on chain, whose largest value marks a standing order's open end.
MAX_SLOT = UINT32 - 1
#: Energy (registers, baselines, caps, takes): uint64 on chain, BIGINT in the tables.
MAX_WH = min(UINT64, INT64_MAX)
#: Prices in ueur per kWh: uint64 on chain, BIGINT in the tables (the tariff band is tighter).
MAX_PRICE_UEUR_PER_KWH = min(UINT64, INT64_MAX)
#: Upper bound of a top-up: 1,000,000 EUR in one go is beyond any household's need (the
#: contract takes a uint256 under its supply cap, the tables a BIGINT).
MAX_TOPUP_UEUR = 10**12
MAX_READINGS_PER_REQUEST = 1000
#: Pagination: a page holds at most this many items, and skips at most MAX_OFFSET.
MAX_PAGE = 500
MAX_OFFSET = 10**9

# ───────────────────────────── Free text ─────────────────────────────

#: Characters refused in free text: the C0 and C1 controls and DEL (NUL truncates strings in C
#: and PostgreSQL refuses it; ESC starts terminal escape sequences), the line and paragraph
#: separators U+2028 and U+2029 (line breaks in disguise), and the bidirectional embeddings,
#: overrides and isolates U+202A-U+202E and U+2066-U+2069, which reorder what a reader sees
#: ("Trojan Source"). Lone surrogates never get this far: pydantic refuses them as invalid text.
UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")
#: The same rule as a JSON-schema pattern, for the OpenAPI document.
SAFE_TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069]*$"


def plain_text(value: str) -> str:
    """``value`` if it holds none of :data:`UNSAFE_TEXT`, else a ``ValueError`` naming the
    first such character and where it is."""
    bad = UNSAFE_TEXT.search(value)
    if bad is not None:
        raise ValueError(
            f"control and bidirectional-override characters are not allowed "
            f"(U+{ord(bad.group()):04X} at position {bad.start()})"
        )
    return value


#: Free text that is safe to store, log and show: :func:`plain_text`, with its pattern in the
#: OpenAPI document (the check is a validator, so that the message says which character).
PlainText = Annotated[
    str, AfterValidator(plain_text), Field(json_schema_extra={"pattern": SAFE_TEXT_PATTERN})
]
#: A household's display name.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=80),
    AfterValidator(plain_text),
    Field(json_schema_extra={"pattern": SAFE_TEXT_PATTERN}),
]

# ───────────────────────────── Shared field types ─────────────────────────────

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Word = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
Slot = Annotated[int, Field(ge=1, le=MAX_SLOT, strict=True)]
WattHours = Annotated[int, Field(ge=0, le=MAX_WH, strict=True)]
#: A household id in a path.
HouseholdPath = Annotated[int, Path(ge=1, le=MAX_HOUSEHOLD_ID, description="Household id")]
#: An order id in a path (the API's own id of the offer or bid).
OrderPath = Annotated[int, Path(ge=1, le=MAX_ORDER_ID, description="The API's id of the order")]
#: Optional filters and pagination in a query string.
HouseholdQuery = Annotated[int | None, Query(ge=1, le=MAX_HOUSEHOLD_ID)]
SlotQuery = Annotated[int | None, Query(ge=0, le=UINT32)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# Values shared by the examples below, so that they tell one story: household 1 (a prosumer,
# meter _METER) sells to household 2 in slot 1995000 at the tariffs of GET /market/tariffs.
_METER = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
_ACCOUNT = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
_TOKEN = "vsn_3q2-7wQxYh0aXk9mZr4tLcVb1NpEo6sUjGdFyHiKw8M"
_TX = "0x6f1c0a4e2b9d3f5a7c8e0b1d2f4a6c8e9b0d1f3a5c7e9b2d4f6a8c0e1b3d5f7a"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    """The config of a response model whose JSON schema shows ``examples``."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class Problem(BaseModel):
    """Every error: a machine code and a message saying what was wrong and what is allowed."""

    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["price_limit_ueur_per_kWh: must be between 40000 and 220000"])
    details: Any = None

    model_config = _examples(
        {
            "code": "invalid_input",
            "message": "price_limit_ueur_per_kWh: Input should be a valid integer",
            "details": [
                {
                    "field": "price_limit_ueur_per_kWh",
                    "problem": "Input should be a valid integer",
                }
            ],
        },
        {"code": "unauthorized", "message": "a valid bearer token is required"},
        {
            "code": "offer_not_open",
            "message": "offer 1 is cancelled: only open offers can be taken",
        },
    )


#: An error body per status, as the API answers it (the OpenAPI example of each documented error).
PROBLEM_EXAMPLES: dict[int, dict[str, Any]] = {
    401: {"code": "unauthorized", "message": "a valid bearer token is required"},
    403: {"code": "forbidden", "message": "only the grid operator may do this"},
    404: {"code": "unknown_household", "message": "household 7 is not registered"},
    409: {
        "code": "offer_not_open",
        "message": "offer 1 is cancelled: only open offers can be taken",
    },
    413: {"code": "payload_too_large", "message": "request bodies are limited to 1000000 bytes"},
    422: {
        "code": "invalid_input",
        "message": "price_limit_ueur_per_kWh: Input should be a valid integer",
        "details": [
            {"field": "price_limit_ueur_per_kWh", "problem": "Input should be a valid integer"}
        ],
    },
    429: {
        "code": "rate_limited",
        "message": "too many requests for household 1's token: at most 600 at once and "
        "10 per second after that; retry after 1 s",
        "details": {"retry_after_s": 1, "limit": "token"},
    },
    503: {
        "code": "chain_unavailable",
        "message": "the chain cannot be reached: connection refused; try again",
    },
}


# ───────────────────────────── Households ─────────────────────────────


class HouseholdIn(Strict):
    meter: Address = Field(description="The meter's address (its signing key's).")
    prosumer: bool = Field(description="Whether the household has PV and may sell.")
    name: Name | None = None
    import_baseline_Wh: WattHours = 0
    export_baseline_Wh: WattHours = 0

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

    model_config = _examples(
        {
            "id": 1,
            "account": _ACCOUNT,
            "meter": _METER,
            "prosumer": True,
            "name": "Amélie",
            "token": _TOKEN,
        }
    )


class KeyRotated(BaseModel):
    id: int
    account: str = Field(description="The household's new account (its key is held here).")
    previous_account: str = Field(description="The retired account: it no longer acts.")

    model_config = _examples(
        {
            "id": 1,
            "account": "0x4B20993Bc481177ec7E8f571ceCaE8A9e22C02db",
            "previous_account": _ACCOUNT,
        }
    )


class TokenRotated(BaseModel):
    id: int
    token: str = Field(description="The new bearer token. Shown once; the old one stops working.")

    model_config = _examples({"id": 1, "token": _TOKEN})


class MeterIn(Strict):
    meter: Address = Field(description="The new meter's address (its signing key's).")
    import_baseline_Wh: WattHours = 0
    export_baseline_Wh: WattHours = 0


class MeterRotated(BaseModel):
    id: int
    meter: str
    previous_meter: str
    import_baseline_Wh: int
    export_baseline_Wh: int
    last_slot: int = Field(description="The new meter's readings must come after this slot.")

    model_config = _examples(
        {
            "id": 1,
            "meter": "0x78731D3Ca6b7E34aC0F824c42a7cC18A495cabaB",
            "previous_meter": _METER,
            "import_baseline_Wh": 0,
            "export_baseline_Wh": 0,
            "last_slot": 1995000,
        }
    )


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

    model_config = _examples(
        {
            "household": 1,
            "balance_ueur": 192000,
            "as_of_block": 14,
            "credits": [{"slot": 1995000, "export_Wh": 1500, "sold_Wh": 1200, "credits_Wh": 300}],
        }
    )


class TopUpIn(Strict):
    household: int = Field(ge=1, le=MAX_HOUSEHOLD_ID, strict=True)
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

    model_config = _examples({"household": 2, "amount_ueur": 5_000_000, "tx_hash": _TX})


# ───────────────────────────── Readings ─────────────────────────────


class ReadingIn(Strict):
    meter: Address
    slot: Slot
    import_Wh: WattHours
    export_Wh: WattHours
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

    model_config = _examples(
        {
            "accepted": 1,
            "duplicates": 1,
            "rejected": 0,
            "flags": ["late"],
            "results": [
                {"index": 0, "status": "accepted", "code": None, "message": "", "flags": ["late"]},
                {
                    "index": 1,
                    "status": "duplicate",
                    "code": None,
                    "message": "already accepted",
                    "flags": [],
                },
            ],
        }
    )


# ───────────────────────────── Orders ─────────────────────────────


class OrderIn(Strict):
    price_limit_ueur_per_kWh: int = Field(ge=0, le=MAX_PRICE_UEUR_PER_KWH, strict=True)
    first_slot: Slot
    last_slot: Slot | None = Field(
        default=None, description="Last slot (inclusive); omit for a standing order."
    )
    max_Wh_per_slot: int | None = Field(default=None, gt=0, le=MAX_WH, strict=True)

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

    model_config = _examples(
        {
            "id": 4,
            "side": "offer",
            "household": 1,
            "price_limit_ueur_per_kWh": 120_000,
            "first_slot": 1995000,
            "last_slot": None,
            "max_Wh_per_slot": 2000,
            "status": "queued",
            "cancel_requested": False,
            "chain_id": None,
            "reason": None,
            "source": "household",
        }
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class TakeIn(Strict):
    slot: Slot
    max_Wh: int = Field(gt=0, le=MAX_WH, strict=True)

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

    model_config = _examples(
        {
            "offer": 4,
            "slot": 1995000,
            "energy_Wh": 500,
            "price_ueur_per_kWh": 120_000,
            "cost_ueur": 60_000,
            "fee_ueur": 15_000,
            "tx_hash": _TX,
        }
    )


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

    model_config = _examples(
        {
            "slot": 1995000,
            "seller": 1,
            "buyer": 2,
            "offer_chain_id": 2,
            "bid_chain_id": 2,
            "energy_Wh": 1200,
            "price_ueur_per_kWh": 160_000,
            "cost_ueur": 192_000,
            "fee_ueur": 36_000,
            "tx_hash": _TX,
        }
    )


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

    model_config = _examples(
        {
            "feed_in_ueur_per_kWh": 40_000,
            "retail_ueur_per_kWh": 250_000,
            "grid_fee_ueur_per_kWh": 30_000,
            "current_slot": 1995000,
        }
    )
