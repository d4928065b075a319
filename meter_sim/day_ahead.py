"""The day-ahead market in a simulated run (``voisin simulate --market day-ahead``).

Before each day of the run, counted from its first slot (the days of the forecast-aware
agents' forecasts, :func:`meter_sim.run.expected_net_Wh`), and before that day's first readings
are committed, :meth:`DayAheadMarket.clear_day`:

1. forecasts every household's net position (export minus import, Wh) for each slot of the day
   with one :class:`meter_sim.forecast.HouseholdForecaster`, issued at the end of the slot
   before the day: it reads nothing metered after that slot;
2. reads each household's funds: its balance on chain, plus what positions of this day already
   on chain reserve (none, but in a run resumed while the day was being sent; the day before
   is settled, so nothing else is reserved);
3. clears the day's slots ahead (:func:`ledger.market.day_ahead.clear_day_ahead`: a share of
   each forecast, the households' own price limits, the run's mechanism, the buyers' funds);
4. sends each slot's forwards through the settlement worker
   (:meth:`ledger.market.settlement.SettlementWorker.clear_forwards`, idempotent by slot and
   batch), which reserves the buyers' funds on chain.

The slot loop then runs as in the real-time market: the worker settles each slot's forwards
first (delivered as far as the metered energy allows), then clears the real-time market on
what is left. A run resumed on the first slot of a day clears that day again, from the same
forecasts and the same funds, so to the same positions: batches the chain already holds are
kept as they are, the others sent.

:func:`day_ahead_figures` reads the report's ``day_ahead`` entry from the mirror's forward
positions (``forward_position``, from the ``ForwardCleared`` and ``ForwardSettled`` events) and
the receipts of their transactions, so a resumed run reports what an uninterrupted one does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger.contract.client import VoisinClient
from ledger.market.agents import AgentSettings
from ledger.market.day_ahead import DayAheadRule, clear_day_ahead
from ledger.mirror.indexer import index
from ledger.mirror.models import ForwardRecord
from meter_sim.errors import SimulationError
from meter_sim.scenario import SLOTS_PER_DAY, Scenario

if TYPE_CHECKING:
    from ledger.market.settlement import SettlementWorker
    from meter_sim.flows import Flows
    from meter_sim.forecast import HouseholdForecaster

__all__ = [
    "DAY_AHEAD",
    "MARKETS",
    "REAL_TIME",
    "DayAheadMarket",
    "check_market",
    "day_ahead_figures",
    "household_forecaster",
]

REAL_TIME: Final = "real-time"
DAY_AHEAD: Final = "day-ahead"
#: The markets ``voisin simulate --market`` chooses between.
MARKETS: Final = (REAL_TIME, DAY_AHEAD)


def check_market(market: str) -> str:
    """``market`` if it is one of :data:`MARKETS`, else :class:`SimulationError`."""
    if market not in MARKETS:
        raise SimulationError(f"unknown market {market!r}; choose one of {', '.join(MARKETS)}")
    return market


def household_forecaster(scenario: Scenario, flows: Flows) -> HouseholdForecaster:
    """The run's forecaster: load from the metered history, PV from the simulated weather
    forecast, through the batteries (:class:`meter_sim.forecast.HouseholdForecaster`); the
    window ``flows`` is preceded by the history days the load model learns from."""
    # Loaded only when forecasts are wanted: a default run keeps the forecast models out.
    from meter_sim.forecast import (
        HouseholdForecaster,
        SimulatedWeather,
        SolarGeometry,
        metered_with_history,
    )

    weather = SimulatedWeather(scenario, flows.first_slot)
    geometry = SolarGeometry.of(scenario, weather.first_slot, len(weather.kc))
    return HouseholdForecaster(scenario, metered_with_history(scenario, flows), weather, geometry)


def day_starts(n_slots: int) -> range:
    """The indexes (from the run's first slot) of the first slot of each of its days."""
    return range(0, n_slots, SLOTS_PER_DAY)


class DayAheadMarket:
    """Clears a run's days ahead and sends the forwards (see the module docstring).

    ``accounts`` are the households' accounts in the order of ``household_ids`` (the
    scenario's); ``settings`` their agent settings, as the worker has them; ``rule`` how much
    of its forecast a household commits.
    """

    def __init__(
        self,
        client: VoisinClient,
        worker: SettlementWorker,
        scenario: Scenario,
        flows: Flows,
        household_ids: Sequence[int],
        accounts: Sequence[str],
        settings: Mapping[int, AgentSettings],
        forecaster: HouseholdForecaster,
        rule: DayAheadRule | None = None,
    ) -> None:
        self.client = client
        self.worker = worker
        self.first_slot = flows.first_slot
        self.n_slots = flows.shape[1]
        self.household_ids = tuple(household_ids)
        self.accounts = tuple(accounts)
        self.settings = dict(settings)
        self.forecaster = forecaster
        self.rule = rule or DayAheadRule()
        self.mechanism = worker.mechanism_name
        if len(self.accounts) != len(self.household_ids):
            raise SimulationError("one account per household is needed")

    def forecasts(self, day_start: int) -> dict[int, dict[int, int]]:
        """``{slot: {household: net Wh}}`` of the day that starts at index ``day_start``,
        issued at the end of the slot before it."""
        made_at = self.first_slot + day_start - 1
        horizon = min(SLOTS_PER_DAY, self.n_slots - day_start)
        net = self.forecaster.forecast(made_at, horizon).net_Wh
        return {
            made_at + 1 + k: {hid: int(net[h, k]) for h, hid in enumerate(self.household_ids)}
            for k in range(horizon)
        }

    def funds(self, day_start: int) -> dict[int, int]:
        """Each household's funds before any position of the day that starts at index
        ``day_start`` (micro-euro): its balance, plus what the day's positions already on
        chain hold in escrow for it."""
        engine = self.worker.engine
        index(self.client, engine, start_block=self.worker.start_block)
        first = self.first_slot + day_start
        last = first + min(SLOTS_PER_DAY, self.n_slots - day_start) - 1
        with Session(engine) as session:
            sent = session.exec(
                select(ForwardRecord).where(ForwardRecord.slot >= first, ForwardRecord.slot <= last)
            ).all()
        funds = {
            hid: self.client.balance_of(account)
            for hid, account in zip(self.household_ids, self.accounts, strict=True)
        }
        for p in sent:
            if p.settled_tx is None and p.buyer in funds:
                funds[p.buyer] += p.reserved_ueur
        return funds

    def clear_day(self, day_start: int) -> int:
        """Clear the day that starts at index ``day_start`` and send its forwards; returns
        the gas of the ``clearForwards`` transactions sent."""
        funds = self.funds(day_start)
        result = clear_day_ahead(
            self.forecasts(day_start),
            self.client.tariffs(),
            self.mechanism,
            settings=self.settings,
            funds_ueur=funds,
            rule=self.rule,
        )
        gas = 0
        for day in result.slots:
            if day.forwards:
                gas += self.worker.clear_forwards(day.slot, day.forwards)
        return gas


def _gas(client: VoisinClient, tx_hashes: set[str], known: Mapping[str, int]) -> int:
    """The gas of the transactions ``tx_hashes`` (each once): from ``known`` (what this
    process sent), else from the receipt (what a run stopped before a resume sent)."""
    total = 0
    for tx in sorted(tx_hashes):
        gas = known.get(tx)
        if gas is None:
            gas = client.gas_used(tx)
        total += gas
    return total


def day_ahead_figures(
    client: VoisinClient,
    engine: Engine,
    first_slot: int,
    last_slot: int,
    local_traded_Wh: int,
    known_gas: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The report's ``day_ahead`` entry for slots ``first_slot..last_slot`` (energy in Wh,
    money in micro-euro, gas in gas units), from the mirror's forward positions (indexed
    already):

    - ``positions``, ``cleared_Wh``, ``reserved_ueur``: the forward positions cleared ahead;
    - ``delivered_Wh``, ``shortfall_Wh``, ``refund_ueur``: what their settlement delivered,
      could not deliver (the metered energy fell short) and gave back to the buyers;
      ``delivered_Wh + shortfall_Wh == cleared_Wh`` once every position is settled;
    - ``settled_positions``: the positions settled;
    - ``real_time_Wh``: the deviation traded in the real-time market (the local trades that
      are not forward deliveries);
    - ``delivered_share``: ``delivered_Wh / cleared_Wh``;
    - ``gas_clearing``, ``gas_settling``: the gas of the transactions that cleared the
      positions ahead and that settled them (each transaction once);
    - ``gas_per_position``: both over the positions cleared.

    ``known_gas`` maps the hashes of the forward transactions this process sent to their gas
    (:attr:`ledger.market.forwards.ForwardGas.by_tx`); the others' receipts are read.
    """
    with Session(engine) as session:
        positions = session.exec(
            select(ForwardRecord).where(
                ForwardRecord.slot >= first_slot, ForwardRecord.slot <= last_slot
            )
        ).all()
    settled = [p for p in positions if p.settled_tx is not None]
    cleared_Wh = sum(p.energy_Wh for p in positions)
    delivered_Wh = sum(p.delivered_Wh or 0 for p in settled)
    known = known_gas or {}
    gas_clearing = _gas(client, {p.cleared_tx for p in positions}, known)
    gas_settling = _gas(client, {p.settled_tx for p in settled if p.settled_tx is not None}, known)
    return {
        "positions": len(positions),
        "cleared_Wh": cleared_Wh,
        "reserved_ueur": sum(p.reserved_ueur for p in positions),
        "settled_positions": len(settled),
        "delivered_Wh": delivered_Wh,
        "shortfall_Wh": sum(p.shortfall_Wh or 0 for p in settled),
        "refund_ueur": sum(p.refund_ueur or 0 for p in settled),
        "real_time_Wh": local_traded_Wh - delivered_Wh,
        "delivered_share": None if cleared_Wh == 0 else round(delivered_Wh / cleared_Wh, 4),
        "gas_clearing": gas_clearing,
        "gas_settling": gas_settling,
        "gas_per_position": (
            (gas_clearing + gas_settling) // len(positions) if positions else None
        ),
    }
