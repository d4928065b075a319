"""Voisin's value types: what the contract, the market, the mirror and the audit pass around.

Plain frozen dataclasses with units in their field names (Wh, micro-euro, micro-euro per kWh),
apart from the web3 client (:mod:`ledger.contract.client`) so that pure code such as clearing
and statements can use them without loading web3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from eth_account.signers.local import LocalAccount

from ledger.errors import InvalidArgument

SLOT_SECONDS: Final = 900
"""A slot is 15 minutes, the EU settlement period: ``slot = unix_seconds // SLOT_SECONDS``."""

OPEN_END = 2**32 - 1
"""``lastSlot`` of a standing order."""

KEPT_SLOTS: Final = 4
"""The words of a household's ring of kept slots on chain (the contract's ``KEPT_SLOTS``): a
slot's energy stays in word ``slot % KEPT_SLOTS`` until a reading for a later slot of that
word overwrites it, so a slot can be traded until the household's reading for the slot
``KEPT_SLOTS`` later is committed (longer when the meter skipped that slot)."""

MAX_SLOT_ENERGY_WH: Final = 2**56 - 1
"""The most Wh one reading may meter in one slot, each way (a kept slot holds 56 bits)."""


def check_uint(name: str, value: object, bits: int) -> int:
    """``value`` as an int if it is one in [0, 2**bits), else :class:`InvalidArgument`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value < 2**bits:
        raise InvalidArgument(f"{name} must be between 0 and {2**bits - 1}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Tariffs:
    """Tariffs in micro-euro per kWh."""

    feed_in_ueur_per_kWh: int
    retail_ueur_per_kWh: int
    grid_fee_ueur_per_kWh: int


@dataclass(frozen=True, slots=True)
class Household:
    id: int
    account: str
    active: bool
    prosumer: bool
    balance_ueur: int
    meter: str


@dataclass(frozen=True, slots=True)
class MeterState:
    household: int
    last_slot: int
    import_Wh: int
    export_Wh: int
    retired: bool
    active: bool


@dataclass(frozen=True, slots=True)
class SlotEnergy:
    """A household's metered and locally traded energy in one slot (Wh)."""

    import_Wh: int
    export_Wh: int
    bought_Wh: int
    sold_Wh: int

    @property
    def credits_Wh(self) -> int:
        return self.export_Wh - self.sold_Wh

    @property
    def deficit_left_Wh(self) -> int:
        return self.import_Wh - self.bought_Wh


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    household: int
    price_limit_ueur_per_kWh: int
    max_Wh_per_slot: int
    first_slot: int
    last_slot: int
    open: bool


@dataclass(frozen=True, slots=True)
class Onboarding:
    """A household to register (and optionally top up) in :meth:`VoisinClient.onboard`."""

    account: str
    meter: str
    prosumer: bool
    import_baseline_Wh: int = 0
    export_baseline_Wh: int = 0
    top_up_ueur: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    """A sale of ``energy_Wh`` from the owner of ``offer_id`` to the owner of ``bid_id``."""

    offer_id: int
    bid_id: int
    energy_Wh: int
    price_ueur_per_kWh: int

    def __post_init__(self) -> None:
        check_uint("offer_id", self.offer_id, 32)
        check_uint("bid_id", self.bid_id, 32)
        check_uint("energy_Wh", self.energy_Wh, 64)
        check_uint("price_ueur_per_kWh", self.price_ueur_per_kWh, 64)

    def as_contract_tuple(self) -> tuple[int, int, int, int]:
        return (self.offer_id, self.bid_id, self.energy_Wh, self.price_ueur_per_kWh)


@dataclass(frozen=True, slots=True)
class Forward:
    """A day-ahead position to clear: ``energy_Wh`` of a slot sold by household ``seller`` to
    household ``buyer`` at ``price_ueur_per_kWh`` (:meth:`VoisinClient.clear_forwards`)."""

    seller: int
    buyer: int
    energy_Wh: int
    price_ueur_per_kWh: int

    def __post_init__(self) -> None:
        check_uint("seller", self.seller, 32)
        check_uint("buyer", self.buyer, 32)
        check_uint("energy_Wh", self.energy_Wh, 64)
        check_uint("price_ueur_per_kWh", self.price_ueur_per_kWh, 64)

    def as_contract_tuple(self) -> tuple[int, int, int, int]:
        return (self.seller, self.buyer, self.energy_Wh, self.price_ueur_per_kWh)


@dataclass(frozen=True, slots=True)
class ForwardPosition:
    """A cleared day-ahead position, as its ``ForwardCleared`` event gave it: the buyer's
    ``reserved_ueur`` (cost and grid fee at clearing) is held in the contract's escrow until
    :meth:`VoisinClient.settle_forwards` settles it against the slot's metered energy."""

    forward_id: int
    slot: int
    seller: int
    buyer: int
    energy_Wh: int
    price_ueur_per_kWh: int
    reserved_ueur: int

    def __post_init__(self) -> None:
        check_uint("forward_id", self.forward_id, 32)
        check_uint("slot", self.slot, 32)
        check_uint("seller", self.seller, 32)
        check_uint("buyer", self.buyer, 32)
        check_uint("energy_Wh", self.energy_Wh, 64)
        check_uint("price_ueur_per_kWh", self.price_ueur_per_kWh, 64)
        check_uint("reserved_ueur", self.reserved_ueur, 256)

    def as_contract_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (
            self.forward_id,
            self.seller,
            self.buyer,
            self.energy_Wh,
            self.price_ueur_per_kWh,
            self.reserved_ueur,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded contract event."""

    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class TxResult:
    """A mined, successful transaction and the events it emitted.

    The events are decoded from the receipt's ``logs`` by ``decode`` when first asked for:
    the settlement worker and the simulator need only the hash and the gas of what they send
    (a batch of 100 readings carries 100 events)."""

    tx_hash: str
    block_number: int
    gas_used: int
    logs: tuple[Any, ...] = ()
    decode: Callable[[Iterable[Any]], list[Event]] | None = field(
        default=None, repr=False, compare=False
    )
    _events: list[Event] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def events(self) -> list[Event]:
        if self._events is None:
            decoded = [] if self.decode is None else self.decode(self.logs)
            object.__setattr__(self, "_events", decoded)
            return decoded
        return self._events

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to post, ``side`` ``"offer"`` or ``"bid"``: see :meth:`VoisinClient.post_offer`."""

    household: LocalAccount
    side: str
    price_limit_ueur_per_kWh: int
    first_slot: int
    last_slot: int = OPEN_END
    max_Wh_per_slot: int = 0

    def __post_init__(self) -> None:
        if self.side not in ("offer", "bid"):
            raise InvalidArgument(f"side must be 'offer' or 'bid', got {self.side!r}")
