"""Trading agents: plain settings plus pure functions that price a household's orders.

A household that sets no order of its own gets a **default standing order** from its
:class:`AgentSettings`:

- a prosumer sells at ``feed-in + sell_markup`` micro-euro per kWh (or more);
- every household buys at ``retail - buy_discount`` *all in*, that is the bid's price limit is
  ``retail - grid fee - buy_discount`` (the buyer pays the grid fee on top of the price).

Both limits are clamped into the tradeable band ``[feed-in, retail - grid fee]``.

An optional :class:`DailyRamp` (in the spirit of gsy-e's rate strategies) moves the limit across
the hours of the local day, linearly from ``initial`` at ``start_hour`` to ``final`` at
``end_hour`` and flat outside. A seller typically starts high and comes down as the PV day
goes on; a buyer starts low and goes up. The limit the ramp gives for a slot never loosens the
order posted on chain, which is what the contract checks:

- an offer's effective limit is ``max(on-chain limit, ramp limit)``;
- a bid's effective limit is ``min(on-chain limit, ramp limit)``.

So the default standing orders are posted with the most permissive limit the ramp reaches, and
clearing tightens them per slot (:func:`effective_limit`).

An agent may instead follow a :class:`PricingStrategy` (``AgentSettings.strategy``; the
strategies live in :mod:`ledger.market.strategies`). A strategy replaces the markups and the
ramps: it names the loosest limits to post on chain, and the limit it wants for each slot and
each step of the slot's gate (clearing may run a slot's gate in several steps, see
:func:`ledger.market.strategies.clear_over_gate`). The same tightening rule holds, so the
contract's checks of the posted order still bound every fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import LedgerError
from ledger.types import SLOT_SECONDS, Tariffs

__all__ = [
    "AgentSettings",
    "AgentSettingsError",
    "DailyRamp",
    "DefaultOrder",
    "PricingStrategy",
    "default_orders",
    "effective_limit",
    "local_hour",
    "standing_limits",
]

_PRICE_MAX = 2**64 - 1


class AgentSettingsError(LedgerError, ValueError):
    """Agent settings that cannot price an order (negative markups, bad hours, unknown zone)."""


def _check_price(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AgentSettingsError(f"{name} must be an integer (ueur/kWh), got {value!r}")
    if not 0 <= value <= _PRICE_MAX:
        raise AgentSettingsError(f"{name} must be between 0 and 2^64 - 1 ueur/kWh, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class DailyRamp:
    """A price limit that moves linearly across the hours of the local day.

    ``initial`` holds until ``start_hour``, ``final`` from ``end_hour`` on, and in between the
    limit is interpolated (rounded down) by the slot's local time. Hours are in ``[0, 24]``
    with ``start_hour < end_hour``.
    """

    initial_ueur_per_kWh: int
    final_ueur_per_kWh: int
    start_hour: float = 6.0
    end_hour: float = 20.0

    def __post_init__(self) -> None:
        _check_price("initial_ueur_per_kWh", self.initial_ueur_per_kWh)
        _check_price("final_ueur_per_kWh", self.final_ueur_per_kWh)
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise AgentSettingsError(
                "a ramp needs 0 <= start_hour < end_hour <= 24, "
                f"got {self.start_hour} and {self.end_hour}"
            )

    def limit_at(self, hour: float) -> int:
        """The limit at ``hour`` (local time of day, 0 <= hour < 24)."""
        if hour <= self.start_hour:
            return self.initial_ueur_per_kWh
        if hour >= self.end_hour:
            return self.final_ueur_per_kWh
        # Integer interpolation on minutes keeps the result exact and reproducible.
        done = round((hour - self.start_hour) * 60)
        span = round((self.end_hour - self.start_hour) * 60)
        step = (self.final_ueur_per_kWh - self.initial_ueur_per_kWh) * done
        return self.initial_ueur_per_kWh + step // span

    @property
    def loosest_sell(self) -> int:
        """The lowest limit the ramp reaches (what a standing offer is posted with)."""
        return min(self.initial_ueur_per_kWh, self.final_ueur_per_kWh)

    @property
    def loosest_buy(self) -> int:
        """The highest limit the ramp reaches (what a standing bid is posted with)."""
        return max(self.initial_ueur_per_kWh, self.final_ueur_per_kWh)


class PricingStrategy(Protocol):
    """How a strategy prices a household's orders (see :mod:`ledger.market.strategies`).

    Limits are micro-euro per kWh; :func:`standing_limits` and :func:`effective_limit` clamp
    them into the tariff band, and the per-slot limit only ever tightens the posted one.
    """

    @property
    def name(self) -> str:
        """A short name for reports (``"drawn"``, ``"adaptive"``, ...)."""
        ...

    @property
    def gate_steps(self) -> int:
        """In how many steps the strategy wants a slot's gate cleared (1: once, at its close)."""
        ...

    def standing_limits(self, tariffs: Tariffs) -> tuple[int, int]:
        """The (offer, bid) limits to post on chain: the loosest the strategy ever wants."""
        ...

    def limit(self, side: str, slot: int, tariffs: Tariffs, step: int, steps: int) -> int:
        """The limit wanted for ``side`` in ``slot`` at step ``step`` of a gate of ``steps``."""
        ...


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How a household's agent prices its default orders.

    By default an agent sells 0.02 EUR/kWh above feed-in and buys 0.02 EUR/kWh below retail,
    grid fee included. ``sell_ramp`` and ``buy_ramp`` replace the fixed limits when set;
    ``strategy`` replaces both when set.
    """

    sell_markup_ueur_per_kWh: int = 20_000
    buy_discount_ueur_per_kWh: int = 20_000
    sell_ramp: DailyRamp | None = None
    buy_ramp: DailyRamp | None = None
    timezone: str = "Europe/Paris"
    strategy: PricingStrategy | None = None

    def __post_init__(self) -> None:
        _check_price("sell_markup_ueur_per_kWh", self.sell_markup_ueur_per_kWh)
        _check_price("buy_discount_ueur_per_kWh", self.buy_discount_ueur_per_kWh)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise AgentSettingsError(f"unknown time zone {self.timezone!r}") from exc


@dataclass(frozen=True, slots=True)
class DefaultOrder:
    """A standing order an agent posts for a household that has none on that side."""

    household_id: int
    side: str  # "offer" or "bid"
    price_limit_ueur_per_kWh: int


def _band(tariffs: Tariffs) -> tuple[int, int]:
    return tariffs.feed_in_ueur_per_kWh, (
        tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh
    )


def _clamp(value: int, tariffs: Tariffs) -> int:
    floor, ceiling = _band(tariffs)
    return max(floor, min(value, ceiling))


def standing_limits(settings: AgentSettings, tariffs: Tariffs) -> tuple[int, int]:
    """The (offer, bid) price limits the agent posts on chain, clamped into the band."""
    if settings.strategy is not None:
        sell, buy = settings.strategy.standing_limits(tariffs)
        return _clamp(sell, tariffs), _clamp(buy, tariffs)
    if settings.sell_ramp is not None:
        sell = settings.sell_ramp.loosest_sell
    else:
        sell = tariffs.feed_in_ueur_per_kWh + settings.sell_markup_ueur_per_kWh
    if settings.buy_ramp is not None:
        buy = settings.buy_ramp.loosest_buy
    else:
        buy = (
            tariffs.retail_ueur_per_kWh
            - tariffs.grid_fee_ueur_per_kWh
            - settings.buy_discount_ueur_per_kWh
        )
    return _clamp(sell, tariffs), _clamp(buy, tariffs)


def default_orders(
    households: dict[int, tuple[bool, AgentSettings]],
    has_offer: set[int],
    has_bid: set[int],
    tariffs: Tariffs,
) -> list[DefaultOrder]:
    """The standing orders to post so that every household trades.

    ``households`` maps a household id to ``(prosumer, settings)``. A prosumer without an open
    offer gets one, and any household without an open bid gets one (a prosumer buys too when its
    PV falls short). The result is sorted by household id, offers first.
    """
    offers: list[DefaultOrder] = []
    bids: list[DefaultOrder] = []
    for household in sorted(households):
        prosumer, settings = households[household]
        sell, buy = standing_limits(settings, tariffs)
        if prosumer and household not in has_offer:
            offers.append(DefaultOrder(household, "offer", sell))
        if household not in has_bid:
            bids.append(DefaultOrder(household, "bid", buy))
    return offers + bids


def local_hour(slot: int, timezone: str) -> float:
    """The local time of day (hours) at the start of ``slot``."""
    moment = datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).astimezone(ZoneInfo(timezone))
    return moment.hour + moment.minute / 60


def effective_limit(
    side: str,
    posted_limit: int,
    settings: AgentSettings | None,
    slot: int,
    tariffs: Tariffs,
    step: int = 0,
    steps: int = 1,
) -> int:
    """The limit an order trades at in ``slot``: the posted one, tightened by a strategy or a
    ramp if any. ``step`` of ``steps`` is where clearing is in the slot's gate (one step by
    default: the gate's close)."""
    if settings is None:
        return posted_limit
    if settings.strategy is not None:
        wanted = _clamp(settings.strategy.limit(side, slot, tariffs, step, steps), tariffs)
        return max(posted_limit, wanted) if side == "offer" else min(posted_limit, wanted)
    ramp = settings.sell_ramp if side == "offer" else settings.buy_ramp
    if ramp is None:
        return posted_limit
    wanted = _clamp(ramp.limit_at(local_hour(slot, settings.timezone)), tariffs)
    return max(posted_limit, wanted) if side == "offer" else min(posted_limit, wanted)
