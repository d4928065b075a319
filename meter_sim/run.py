"""A neighbourhood run end to end, in process: the loop behind ``voisin simulate``.

:func:`run_simulation` opens the chain and the Voisin deployment in a data dir, registers the
scenario's households with their seeded meter and account keys and register baselines and
tops them up (in ``onboard`` batches), lets each household's agent post its default standing
orders, computes the flows and signs every reading, then goes slot by slot: the slot's
readings are pre-validated (:func:`ledger.readings.intake.classify`), then committed on chain
and the slot settled by :func:`ledger.market.slot_step.commit_and_settle`. At the end it
indexes the chain, builds each household's statement and returns the report
(:mod:`meter_sim.report`).

A run may cover a window of the scenario's period (``first_slot`` and ``slots``): the flows of
that window are metered from the registration baselines, as if the meters had been installed at
the window's start.

This module imports ``ledger``, never ``api``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select
from web3 import Web3

from ledger.chain.backends import Chain, open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import open_ledger
from ledger.files import write_durably
from ledger.localtime import local_date
from ledger.market.agent_orders import AgentHousehold, post_default_orders
from ledger.market.agents import AgentSettings
from ledger.market.clearing import MECHANISMS
from ledger.market.data import load_statements
from ledger.market.day_ahead import DEFAULT_COMMIT_PPM, DayAheadRule
from ledger.market.settlement import SettlementWorker, seal_gas
from ledger.market.slot_step import SlotStep, commit_and_settle
from ledger.market.statements import TradeLine
from ledger.market.strategies import (
    AGENT_MODES,
    SCARCITY_WH_PER_HOUSEHOLD,
    HouseholdInputs,
    assign_strategies,
    strategy_counts,
)
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import index
from ledger.mirror.models import FillRecord, ReadingRecord, SlotOutcomeRecord, plain_rows
from ledger.readings.eip712 import SignedReading
from ledger.readings.intake import MeterRecord, classify
from ledger.types import MeterState, Onboarding, Tariffs
from meter_sim.audit import add_ledger_audit
from meter_sim.day_ahead import (
    DAY_AHEAD,
    REAL_TIME,
    DayAheadMarket,
    check_market,
    day_ahead_figures,
    day_starts,
    household_forecaster,
)
from meter_sim.errors import SimulationError
from meter_sim.flows import (
    Flows,
    FlowsAhead,
    check_window,
    check_window_is_over,
    simulate,
    window,
)
from meter_sim.forecast import (
    ForecastAhead,
    HouseholdForecaster,
    add_forecast_report,
    forecast_report_ahead,
)
from meter_sim.meters import signed_slots
from meter_sim.report import (
    Gas,
    Money,
    SlotSeries,
    add_agents_figures,
    add_pilot_figures,
    build_report,
    slot_series,
)
from meter_sim.scenario import SLOTS_PER_DAY, Scenario

__all__ = [
    "Progress",
    "RunResult",
    "SimulationError",
    "agent_settings",
    "check_agents",
    "clock_text",
    "collect_result",
    "disk_bytes",
    "expected_net_Wh",
    "peak_rss_bytes",
    "progress_text",
    "run_flows",
    "run_simulation",
    "stderr_progress",
    "window",
]

#: Households registered and topped up per ``onboard`` transaction: 10,361,755 gas for a batch of
#: 100 on the embedded chain (measured), under the 2^24 per-transaction gas cap of Osaka-rules
#: chains; a test holds a full batch under that cap on every backend.
HOUSEHOLDS_PER_ONBOARDING = 100
#: What each household is topped up with on top of its worst-case bill (1 EUR).
TOP_UP_MARGIN_UEUR = 1_000_000


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run is, after each settled slot.

    ``elapsed_s`` counts from the run's start (set-up included); ``loop_s``, if given, only
    the slot loop's time, from which the rate and the ETA are taken (set-up does not repeat
    per slot). ``slot`` is the UTC slot number just settled; ``slots_before`` the slots a
    resumed run found settled already (they do not count in its rate).
    """

    slots_done: int
    slots_total: int
    elapsed_s: float
    fills: int
    local_Wh: int
    gas_used: int
    slot: int | None = None
    slots_before: int = 0
    loop_s: float | None = None

    @property
    def slots_per_s(self) -> float:
        spent = self.elapsed_s if self.loop_s is None else self.loop_s
        done = self.slots_done - self.slots_before
        return done / spent if spent > 0 and done > 0 else 0.0

    @property
    def percent(self) -> float:
        return 100.0 * self.slots_done / max(self.slots_total, 1)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (``None`` before the first slot of this run)."""
        rate = self.slots_per_s
        return (self.slots_total - self.slots_done) / rate if rate > 0 else None


@dataclass(frozen=True)
class RunResult:
    """A finished run: its report, the flows it metered and where it lives.

    ``series`` holds the neighbourhood's per-slot terms (for the plots), ``savings_ueur`` each
    household's savings against grid-only supply and ``prosumer`` whether it has PV (both in
    the order of ``household_ids``), ``tariffs`` the tariffs the run settled under and ``tz``
    the neighbourhood's IANA time zone (the scenario's), in which the report shows its times.
    """

    report: dict[str, Any]
    flows: Flows
    household_ids: tuple[int, ...]
    contract: str
    deployment_block: int
    data_dir: Path
    series: SlotSeries
    savings_ueur: tuple[int, ...]
    tariffs: Tariffs
    prosumer: tuple[bool, ...]
    tz: str


def check_mechanism(mechanism: str) -> None:
    if mechanism not in MECHANISMS:
        raise SimulationError(
            f"unknown mechanism {mechanism!r}; choose one of {', '.join(sorted(MECHANISMS))}"
        )


def run_flows(scenario: Scenario, mechanism: str, first_slot: int, slots: int | None) -> Flows:
    """A run's flows (the window of the scenario's period it covers), once its mechanism is
    known to exist and the window is over."""
    check_mechanism(mechanism)
    check_window_is_over(scenario, first_slot, slots)
    return window(simulate(scenario), first_slot, slots)


def clock_text(seconds: float | None) -> str:
    """A duration for a progress line: ``42s``, ``12m05s``, ``3h07m``, ``2d04h`` (``--``
    when unknown)."""
    if seconds is None:
        return "--"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def progress_text(p: Progress, tz: str | None = None) -> str:
    """One progress line: percent, slots, elapsed, ETA, and for a run longer than a day the
    simulated local date of the slot just settled (in ``tz``), then rate, fills, energy and
    gas."""
    parts = [
        f"{p.percent:5.1f} %",
        f"{p.slots_done:,}/{p.slots_total:,} slots",
        f"elapsed {clock_text(p.elapsed_s)}",
        f"ETA {clock_text(p.eta_s)}" if p.slots_done < p.slots_total else "done",
    ]
    if tz is not None and p.slot is not None and p.slots_total > SLOTS_PER_DAY:
        parts.append(f"at {local_date(p.slot, tz).isoformat()}")
    parts += [
        f"{p.slots_per_s:.1f} slots/s",
        f"{p.fills:,} fills",
        f"{p.local_Wh / 1000:,.1f} kWh local",
        f"{p.gas_used:,} gas",
    ]
    return "  ".join(parts)


def stderr_progress(
    stream: TextIO | None = None,
    *,
    tz: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    every_percent: int = 5,
    every_s: float = 30.0,
) -> Callable[[Progress], None]:
    """A progress display on ``stream`` (default: ``sys.stderr``; :func:`progress_text`).

    On a terminal it is one line, rewritten in place (carriage return) after every slot. Into
    a file or a pipe (a log) it writes a plain line at most each time the run passes another
    ``every_percent`` % or ``every_s`` seconds (of ``clock``) have gone by, and at the end,
    so that a year-long run logs a few hundred lines, not 35,040.
    """
    out = sys.stderr if stream is None else stream  # the stderr of the time of the call
    terminal = out.isatty()
    width, last_step, last_at = 0, -1, clock()

    def show(p: Progress) -> None:
        nonlocal width, last_step, last_at
        text = progress_text(p, tz)
        finished = p.slots_done >= p.slots_total
        if terminal:
            # Blanks over the rest of a longer previous line; a new line once done.
            out.write(f"\r{text}{' ' * max(0, width - len(text))}")
            width = len(text)
            if finished:
                out.write("\n")
            out.flush()
            return
        step = int(p.percent // every_percent)
        now = clock()
        if finished or step > last_step or now - last_at >= every_s:
            out.write(text + "\n")
            out.flush()
            last_step, last_at = step, now

    return show


def run_simulation(
    scenario: Scenario,
    mechanism: str = "pay-as-clear",
    chain_spec: str = "embedded",
    data_dir: Path | str = "data",
    *,
    operator_key: str | None = None,
    database_url: str | None = None,
    first_slot: int = 0,
    slots: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    say: Callable[[str], None] | None = None,
    before_audit: Callable[[RunResult], object] | None = None,
    flows_ahead: FlowsAhead | None = None,
    resume: bool = False,
    agents: str = "default",
    market: str = REAL_TIME,
    commit_ppm: int = DEFAULT_COMMIT_PPM,
    chain: Chain | None = None,
) -> RunResult:
    """Run ``scenario`` end to end on the chain ``chain_spec``; see the module docstring.

    ``chain``: an open chain to run on instead (``chain_spec`` then only names it, and the
    caller closes it), as a city's neighbourhoods share one: the neighbourhood's contract is
    deployed on it and recorded in ``data_dir``, with the run's record and its mirror.

    ``data_dir`` holds the chain (embedded), the deployment record, the run's record
    (:data:`RUN_STATE`) and, unless ``database_url`` is given, the SQLite mirror. It must not
    hold this scenario already (each meter's readings count once), unless ``resume``: then it
    must hold an unfinished run of the same scenario, seed, mechanism and window, which goes on
    from where the chain and the mirror stopped (:func:`_resume_point`) and ends with the
    report an uninterrupted run gives (but for ``wall_s``, this process's own time).
    On a chain of its own (embedded, memory) the operator key
    comes from the scenario's seed unless ``operator_key`` is given, so that the same scenario
    and seed give the same report (but for its wall time). ``first_slot``/``slots`` pick a
    window of the period.
    ``before_audit`` is called as in :func:`collect_result`. ``flows_ahead`` (from
    :func:`meter_sim.flows.simulate_ahead`, for the same scenario and window) gives the flows
    instead of computing them here; the run's wall time then counts from when they were asked
    for. ``agents`` chooses the households' pricing strategies (one of
    :data:`ledger.market.strategies.AGENT_MODES`, see :func:`agent_settings`); ``default``
    posts today's default standing orders. ``market`` is ``real-time`` (each slot cleared on
    its metered energy) or ``day-ahead`` (each day's slots cleared ahead into forward
    positions from the households' forecasts, ``commit_ppm`` of each forecast committed, then
    the deviations in the real-time market: :mod:`meter_sim.day_ahead`).
    """
    started = time.perf_counter() if flows_ahead is None else flows_ahead.started
    log = say or (lambda _message: None)
    check_agents(agents)
    check_market(market)
    rule = DayAheadRule(commit_ppm=commit_ppm)
    check_window_is_over(scenario, first_slot, slots)
    if flows_ahead is None:
        flows = run_flows(scenario, mechanism, first_slot, slots)
    else:
        check_mechanism(mechanism)
        _check_flows_ahead(flows_ahead, scenario, first_slot, slots)
    data = Path(data_dir)
    if operator_key is None and chain_spec in ("embedded", "memory"):
        operator_key = scenario.operator_key
    count = check_window(scenario.n_slots, first_slot, slots)
    wanted = RunState(
        scenario.name, scenario.seed, len(scenario.households), scenario.first_slot + first_slot,
        count, mechanism, scenario.identities[0].meter, agents=agents, market=market,
        commit_ppm=commit_ppm if market == DAY_AHEAD else None,
    )  # fmt: skip
    # The report's forecast figures, on the second core while the run goes on; forked before
    # the chain opens, so that the child never holds the chain's lock.
    forecast = forecast_report_ahead(
        scenario, first_slot, slots, flows if flows_ahead is None else None
    )
    shared = chain is not None
    opened: contextlib.AbstractContextManager[Chain] = (
        contextlib.nullcontext(chain) if chain is not None
        else open_chain(chain_spec, data, operator_key)
    )  # fmt: skip
    with opened as chain:
        # On a shared chain each neighbourhood's deployment is recorded in its own data dir.
        client, deployment = open_ledger(chain, data if shared else None)
        engine = make_engine(database_url or f"sqlite:///{(data / 'voisin.db').resolve()}")
        # Disposed at the end: a city runs one neighbourhood after another in this process.
        try:
            stored = RunState.read(data)
            if resume and stored is not None:
                _check_resumable(stored, wanted, data)
            else:
                # A run stopped before its first transaction starts again from the beginning.
                _refuse_a_used_data_dir(client, scenario, data)
            log(f"chain {chain.kind} (id {chain.chain_id}), Voisin at {deployment.address}")
            tariffs = client.tariffs()
            if stored is None:
                # Recorded before the first transaction of the run: what the chain held before.
                stored = dataclasses.replace(wanted, money_before=_MoneyBefore.read(client))
                stored.write(data)
            assert stored.money_before is not None
            before = stored.money_before
            # Gas money for every household account (on the embedded chain, in shared blocks);
            # a resumed run funds only the accounts the first part did not reach.
            accounts = [ident.account for ident in scenario.identities]
            if resume:
                accounts = [
                    a
                    for a in accounts
                    if chain.w3.eth.get_balance(Web3.to_checksum_address(a)) == 0
                ]
            chain.fund_many(accounts)
            if flows_ahead is not None:
                # Awaited only now: the flows were computed in a child while the chain was set up.
                flows = flows_ahead.result()
            household_ids, top_ups = _onboard(client, chain.operator, scenario, flows, tariffs)
            # One forecaster for the day-ahead market and the forecast-aware agents alike.
            forecaster = household_forecaster(scenario, flows) if market == DAY_AHEAD else None
            settings = agent_settings(scenario, flows, household_ids, agents, forecaster)
            _post_standing_orders(
                client, engine, scenario, household_ids, settings, flows.first_slot,
                deployment.block_number,
            )  # fmt: skip
            log(
                f"registered, topped up and posted the standing orders of "
                f"{len(scenario.households)} households"
            )
            worker = SettlementWorker(
                client,
                engine,
                chain.operator,
                mechanism,
                agents=settings,
                start_block=deployment.block_number,
            )
            day_ahead = (
                None
                if forecaster is None
                else DayAheadMarket(
                    client,
                    worker,
                    scenario,
                    flows,
                    household_ids,
                    [ident.account for ident in scenario.identities],
                    settings,
                    forecaster,
                    rule,
                )
            )
            gas = _commit_and_settle_slots(
                client, worker, scenario, flows, household_ids, started, progress, day_ahead
            )
            last_slot = flows.first_slot + flows.shape[1] - 1
            gas = dataclasses.replace(
                gas, seals=seal_gas(client, engine, flows.first_slot, last_slot)
            )
            return collect_result(
                client,
                engine,
                deployment.address,
                deployment.block_number,
                scenario,
                flows,
                household_ids,
                before.money(client, scenario, top_ups),
                gas,
                mechanism,
                chain.kind,
                data,
                started,
                before_audit,
                agents=strategy_counts(s.strategy for s in settings.values()),
                forecast=forecast,
                market=market,
                forward_tx_gas=worker.forward_gas.by_tx,
            )
        finally:
            engine.dispose()


#: The run's record in its data dir: what it runs and the chain's money before it.
RUN_STATE = "simulation.json"


@dataclass(frozen=True, slots=True)
class RunState:
    """What a data dir's run is (so that a resumed run is the same run) and the chain's money
    before its first transaction. Written to :data:`RUN_STATE` durably (fsync) before that
    transaction."""

    scenario: str
    seed: int
    households: int
    first_slot: int
    slots: int
    mechanism: str
    first_meter: str
    money_before: _MoneyBefore | None = None
    agents: str = "default"
    market: str = REAL_TIME
    commit_ppm: int | None = None

    def same_run(self) -> tuple[object, ...]:
        return dataclasses.astuple(dataclasses.replace(self, money_before=None))

    def write(self, data: Path) -> None:
        record = dataclasses.asdict(self)
        write_durably(data / RUN_STATE, json.dumps(record, indent=2) + "\n")

    @classmethod
    def read(cls, data: Path) -> RunState | None:
        path = data / RUN_STATE
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        money = record.pop("money_before")
        return cls(**record, money_before=None if money is None else _MoneyBefore(**money))


def _check_resumable(stored: RunState, wanted: RunState, data: Path) -> None:
    """A resumed run must be the run its data dir holds."""
    if stored.same_run() != wanted.same_run():
        theirs = dataclasses.replace(stored, money_before=None)
        raise SimulationError(
            f"{data} holds another run ({theirs}), not the one asked to resume ({wanted})"
        )


def _check_flows_ahead(
    flows_ahead: FlowsAhead, scenario: Scenario, first_slot: int, slots: int | None
) -> None:
    if (flows_ahead.scenario, flows_ahead.first_slot, flows_ahead.slots) != (
        scenario,
        first_slot,
        slots,
    ):
        raise SimulationError("flows_ahead was started for another scenario or window")


def _refuse_a_used_data_dir(client: VoisinClient, scenario: Scenario, data: Path) -> None:
    """Each meter's readings count once: a second run of a scenario needs a fresh data dir."""
    if (data / RUN_STATE).exists() or client.meter_state(scenario.identities[0].meter).household:
        raise SimulationError(
            f"{data} already holds a run of scenario {scenario.name!r} (seed "
            f"{scenario.seed}): use a fresh data dir"
        )


@dataclass(frozen=True, slots=True)
class _MoneyBefore:
    """The chain's money before the run (micro-euro), so that the report counts the run's own."""

    supply_ueur: int
    fee_recipient: str
    fees_ueur: int

    @classmethod
    def read(cls, client: VoisinClient) -> _MoneyBefore:
        supply = client.total_supply()
        recipient = client.fee_recipient()
        return cls(supply, recipient, client.balance_of(recipient))

    def money(self, client: VoisinClient, scenario: Scenario, top_ups_ueur: int) -> Money:
        return Money(
            top_ups_ueur=top_ups_ueur,
            balances_ueur=sum(client.balance_of(i.account) for i in scenario.identities),
            fees_ueur=client.balance_of(self.fee_recipient) - self.fees_ueur,
            supply_growth_ueur=client.total_supply() - self.supply_ueur,
        )


def _onboard(
    client: VoisinClient,
    operator: LocalAccount,
    scenario: Scenario,
    flows: Flows,
    tariffs: Tariffs,
) -> tuple[list[int], int]:
    """Register every household with its meter and register baselines and top it up, in
    ``onboard`` batches of :data:`HOUSEHOLDS_PER_ONBOARDING`; returns the household ids (in
    scenario order) and the sum of the top-ups (micro-euro)."""
    newcomers: list[Onboarding] = []
    for h, (spec, ident) in enumerate(zip(scenario.households, scenario.identities, strict=True)):
        # Enough to buy every metered Wh at retail, plus a margin: funds never bind.
        amount = int(flows.import_Wh[h].sum()) * tariffs.retail_ueur_per_kWh // 1000
        newcomers.append(
            Onboarding(
                ident.account,
                ident.meter,
                spec.prosumer,
                ident.import_baseline_Wh,
                ident.export_baseline_Wh,
                amount + TOP_UP_MARGIN_UEUR,
            )
        )
    # A resumed run finds the batches an earlier part onboarded (each batch is all or none).
    household_ids = [client.meter_state(n.meter).household for n in newcomers]
    registered = sum(1 for hid in household_ids if hid)
    if household_ids[registered:] and any(household_ids[registered:]):
        raise SimulationError("the scenario's households are registered out of order")
    household_ids = household_ids[:registered]
    for k in range(registered, len(newcomers), HOUSEHOLDS_PER_ONBOARDING):
        # Set-up inputs come from the scenario, and the data dir was checked: no dry run
        # before each transaction. A revert still raises its typed error.
        batch = newcomers[k : k + HOUSEHOLDS_PER_ONBOARDING]
        household_ids += client.onboard(operator, batch, check_first=False)
    return household_ids, sum(n.top_up_ueur for n in newcomers)


def _post_standing_orders(
    client: VoisinClient,
    engine: Engine,
    scenario: Scenario,
    household_ids: Sequence[int],
    settings: Mapping[int, AgentSettings],
    first_slot: int,
    start_block: int,
) -> None:
    """Each household's agent posts its default standing orders from ``first_slot``, priced
    by its ``settings``."""
    accounts: list[LocalAccount] = [Account.from_key(i.account_key) for i in scenario.identities]
    agents = {
        hid: AgentHousehold(acct, spec.prosumer, settings[hid])
        for hid, acct, spec in zip(household_ids, accounts, scenario.households, strict=True)
    }
    post_default_orders(
        client, engine, agents, first_slot, start_block=start_block, check_first=False
    )


def check_agents(agents: str) -> None:
    """Refuse an unknown ``--agents`` mode with the ones allowed."""
    if agents not in AGENT_MODES:
        raise SimulationError(f"unknown agents {agents!r}; choose one of {', '.join(AGENT_MODES)}")


def expected_net_Wh(
    scenario: Scenario, flows: Flows, forecaster: HouseholdForecaster | None = None
) -> dict[int, int]:
    """The expected neighbourhood net position (export minus import, Wh) of each slot of the
    window ``flows``, for the forecast-aware agents: day-ahead forecasts of every household's
    net position (:class:`meter_sim.forecast.HouseholdForecaster`: load from the metered
    history, PV from the simulated weather forecast, through the batteries), one made at the
    end of the slot before each day of the window (counted from its first slot) for that day,
    summed over the households. A forecast reads nothing after the slot it is made in, so the agents
    price with what they could know when the day's gate opened; the same seed gives the same
    forecast. ``forecaster`` is the run's (:func:`meter_sim.day_ahead.household_forecaster`)
    if it has one already.
    """
    if forecaster is None:
        forecaster = household_forecaster(scenario, flows)
    n_t = flows.shape[1]
    expected: dict[int, int] = {}
    for day_start in day_starts(n_t):
        made_at = flows.first_slot + day_start - 1
        horizon = min(SLOTS_PER_DAY, n_t - day_start)
        net = forecaster.forecast(made_at, horizon).net_Wh.sum(axis=0)
        for k, wh in enumerate(net):
            expected[made_at + 1 + k] = int(wh)
    return expected


def _state_of_charge_ppm(
    flows: Flows, index: int, capacity_Wh: int, initial_Wh: int
) -> dict[int, int]:
    """A battery's charge at each slot's start (the end of the slot before), ppm of capacity;
    the window's first slot takes the battery's initial charge (a window cut from a longer
    period keeps no charge from before it)."""
    ends = [int(x) for x in flows.battery_mWh[index]]
    starts = [initial_Wh * 1000, *ends[:-1]]
    first = flows.first_slot
    return {first + t: mwh * 1000 // capacity_Wh for t, mwh in enumerate(starts)}


def agent_settings(
    scenario: Scenario,
    flows: Flows,
    household_ids: Sequence[int],
    agents: str,
    forecaster: HouseholdForecaster | None = None,
) -> dict[int, AgentSettings]:
    """Each household's agent settings for the ``agents`` mode
    (:func:`ledger.market.strategies.assign_strategies`, seeded by the scenario's seed), in the
    neighbourhood's time zone. ``default`` gives every household today's default settings.
    ``forecaster``, if given, makes the forecast-aware agents' forecasts."""
    check_agents(agents)
    tz = scenario.location.tz
    if agents == "default":
        return {hid: AgentSettings(timezone=tz) for hid in household_ids}
    inputs = [
        HouseholdInputs(
            spec.prosumer,
            None
            if spec.battery is None
            else _state_of_charge_ppm(flows, i, spec.battery.capacity_Wh, spec.battery.initial_Wh),
        )
        for i, spec in enumerate(scenario.households)
    ]
    scale_Wh = max(1, SCARCITY_WH_PER_HOUSEHOLD * len(scenario.households))
    strategies = assign_strategies(
        agents, scenario.seed, inputs, expected_net_Wh(scenario, flows, forecaster), scale_Wh
    )
    return {
        hid: AgentSettings(timezone=tz, strategy=strategy)
        for hid, strategy in zip(household_ids, strategies, strict=True)
    }


@dataclass
class _Tally:
    """Running sums over the slots settled so far (gas units, fills, Wh)."""

    readings_gas: int = 0
    settlement_gas: int = 0
    fills: int = 0
    local_Wh: int = 0

    def add(self, step: SlotStep) -> None:
        self.readings_gas += step.readings_gas
        self.settlement_gas += step.settlement_gas
        self.fills += step.fills
        self.local_Wh += step.matched_Wh


def _commit_and_settle_slots(
    client: VoisinClient,
    worker: SettlementWorker,
    scenario: Scenario,
    flows: Flows,
    household_ids: Sequence[int],
    started: float,
    progress: Callable[[Progress], None] | None,
    day_ahead: DayAheadMarket | None = None,
) -> Gas:
    """Slot by slot: pre-validate the slot's signed readings, commit them and settle the slot
    (:func:`ledger.market.slot_step.commit_and_settle`); returns the gas of those steps.
    With a ``day_ahead`` market, each day's slots are cleared ahead before the day's first
    readings are committed (:meth:`meter_sim.day_ahead.DayAheadMarket.clear_day`).

    Starts where the chain and the mirror stand (:func:`_resume_point`): at the run's first
    slot on a fresh ledger, else after the last slot settled, with the tally of the slots
    before it read back from the mirror and the chain.
    """
    domain = client.domain_separator()
    n_t = flows.shape[1]
    meters = {
        ident.meter: _meter_record(client.meter_state(ident.meter)) for ident in scenario.identities
    }
    start, tally = _resume_point(client, worker, flows, household_ids)
    # Links a stop left sealed in the database but not on chain are anchored first.
    if start and worker.anchor_seals():
        index(client, worker.engine, start_block=worker.start_block)
    # Signed by a background process a few slots ahead of this loop (the second core).
    slot_readings = signed_slots(scenario, flows, domain, start=start)
    loop_started = time.perf_counter()
    try:
        for t in range(start, n_t):
            slot = flows.first_slot + t
            if day_ahead is not None and t % SLOTS_PER_DAY == 0:
                # Before the day's first reading: the contract refuses a forward for a slot
                # that a party's meter has metered.
                day_ahead.clear_day(t)
            # Readings the chain has already (a run stopped while committing this slot).
            readings = [r for r in next(slot_readings) if meters[r.reading.meter].last_slot < slot]
            accepted, meters = _prevalidate(readings, domain, meters, slot)
            # The operator (the worker's settler) commits the readings and settles the slot;
            # pre-validated just above, they are sent without a dry run (the default).
            step = commit_and_settle(client, worker.settler, accepted, worker=worker, settle=[slot])
            tally.add(step)
            if progress is not None:
                now = time.perf_counter()
                gas = tally.readings_gas + tally.settlement_gas
                progress(
                    Progress(
                        t + 1,
                        n_t,
                        now - started,
                        tally.fills,
                        tally.local_Wh,
                        gas,
                        slot=slot,
                        slots_before=start,
                        loop_s=now - loop_started,
                    )
                )
    finally:
        # Stops the signing process at once if a slot fails.
        slot_readings.close()
    return Gas(tally.readings_gas, tally.settlement_gas)


def _meter_record(state: MeterState) -> MeterRecord:
    return MeterRecord(state.household, state.last_slot, state.import_Wh, state.export_Wh)


def _resume_point(
    client: VoisinClient, worker: SettlementWorker, flows: Flows, household_ids: Sequence[int]
) -> tuple[int, _Tally]:
    """The index of the run's first slot not settled yet, and the tally of the slots before
    it: fills, energy and settlement gas from the worker's outcomes, reading gas from the
    receipts of the readings' transactions (those of the next slot too, if some of its
    readings are on chain already). Each transaction is counted once: the slot loop sends
    again only what the chain does not have, and the worker adopts a batch the chain settled
    before it could record it."""
    first, last = flows.first_slot, flows.first_slot + flows.shape[1] - 1
    with Session(worker.engine) as session:
        settled = session.exec(
            select(SlotOutcomeRecord).where(
                SlotOutcomeRecord.slot >= first,
                SlotOutcomeRecord.slot <= last,
                SlotOutcomeRecord.status == "settled",
            )
        ).all()
        tx_hashes = session.exec(
            select(ReadingRecord.tx_hash)
            .distinct()
            .where(
                col(ReadingRecord.household).in_(household_ids),
                ReadingRecord.slot >= first,
                ReadingRecord.slot <= last,
            )
        ).all()
    start = len(settled)
    if {o.slot for o in settled} != set(range(first, first + start)):
        raise SimulationError(
            f"the slots settled in the data dir are not the run's first {start}: "
            "it was not made by voisin simulate"
        )
    tally = _Tally()
    for o in settled:
        tally.settlement_gas += o.gas_used
        tally.fills += o.fills
        tally.local_Wh += o.matched_Wh
    for tx in tx_hashes:
        tally.readings_gas += client.gas_used(tx)
    return start, tally


def _prevalidate(
    readings: list[SignedReading], domain: bytes, meters: dict[str, MeterRecord], slot: int
) -> tuple[list[SignedReading], dict[str, MeterRecord]]:
    """The readings of ``slot`` the intake accepts (all of them, or the run stops: a simulated
    meter never sends a bad reading) and the meters' state after them. The signatures are the
    meters' own, made by the run's signing process, and the contract checks each: they are not
    recovered a second time here."""
    checked = classify(readings, domain, meters, now_slot=slot + 1, check_signatures=False)
    refused = checked.rejected
    if refused:
        raise SimulationError(
            f"slot {slot}: {len(refused)} readings refused by the intake check, "
            f"first: {refused[0].code}: {refused[0].message}"
        )
    return checked.accepted, checked.meters


def collect_result(
    client: VoisinClient,
    engine: Engine,
    contract: str,
    deployment_block: int,
    scenario: Scenario,
    flows: Flows,
    household_ids: Sequence[int],
    money: Money,
    gas: Gas,
    mechanism: str,
    chain_kind: str,
    data: Path,
    started: float,
    before_audit: Callable[[RunResult], object] | None = None,
    agents: Mapping[str, int] | None = None,
    forecast: ForecastAhead | None = None,
    market: str = REAL_TIME,
    forward_tx_gas: Mapping[str, int] | None = None,
) -> RunResult:
    """Index the chain, then build the run's statements, report and plot series, then audit.

    Shared by the in-process run and the run through the API (:mod:`meter_sim.via_api`):
    both read the fills, the committed readings and the statements from the mirror.

    ``before_audit``, if given, gets the result once everything but the audit is in it, and
    before the audit's fields are added to its report (``voisin simulate`` starts drawing the
    plots then, in another process, while the audit runs here). ``forecast``, if given, is
    the report's forecast entry already being computed
    (:func:`meter_sim.forecast.forecast_report_ahead`); else it is computed here.
    ``market`` is the run's (:data:`meter_sim.day_ahead.MARKETS`); a day-ahead run's report
    gets its ``day_ahead`` entry (:func:`meter_sim.day_ahead.day_ahead_figures`, with the gas
    of the forward transactions this process sent, ``forward_tx_gas``), and the gas of
    clearing its forward positions ahead and of settling them counts in ``gas_used``.
    """
    index(client, engine, start_block=deployment_block)
    n_t = flows.shape[1]
    first, last = flows.first_slot, flows.first_slot + n_t - 1
    with Session(engine) as session:
        # Plain rows, not ORM objects: a year's fills as objects would hold hundreds of
        # megabytes through the audit that follows.
        fill_rows = plain_rows(
            session,
            FillRecord,
            col(FillRecord.slot) >= first,
            col(FillRecord.slot) <= last,
            order=(FillRecord.block_number, FillRecord.log_index),
        )
        readings = session.exec(
            select(func.count())
            .select_from(ReadingRecord)
            .where(
                col(ReadingRecord.household).in_(household_ids),
                ReadingRecord.slot >= first,
                ReadingRecord.slot <= last,
            )
        ).one()
    trades = [
        TradeLine(
            f.slot, f.seller, f.buyer, f.energy_Wh, f.price_ueur_per_kWh, f.cost_ueur, f.fee_ueur
        )
        for f in fill_rows
    ]
    del fill_rows
    statements = load_statements(engine, household_ids, first, last)
    prosumer = tuple(h.prosumer for h in scenario.households)
    tz = scenario.location.tz
    day_ahead: dict[str, Any] | None = None
    if market == DAY_AHEAD:
        local_Wh = sum(t.energy_Wh for t in trades)
        day_ahead = day_ahead_figures(client, engine, first, last, local_Wh, forward_tx_gas)
        forward_gas = day_ahead["gas_clearing"] + day_ahead["gas_settling"]
        gas = dataclasses.replace(gas, forwards=forward_gas)
    report = build_report(
        flows,
        household_ids,
        prosumer,
        trades,
        statements,
        money,
        gas,
        int(readings),
        time.perf_counter() - started,
        tz=tz,
    )
    report["scenario"] = scenario.name
    report["mechanism"] = mechanism
    report["market"] = market
    if day_ahead is not None:
        report["day_ahead"] = day_ahead
    report["chain"] = chain_kind
    report["contract"] = contract
    add_agents_figures(report, agents or {"default": len(household_ids)}, trades)
    add_pilot_figures(report)
    add_forecast_report(report, scenario, flows, forecast)
    result = RunResult(
        report,
        flows,
        tuple(household_ids),
        contract,
        deployment_block,
        data,
        slot_series(flows, trades),
        tuple(s.savings_ueur for s in statements),
        client.tariffs(),
        prosumer,
        tz,
    )
    # What the report and the result need of the statements (every household's metered slots)
    # and of the trade lines is in them by now: let both go before the audit reads the run
    # again, so that a long run's end never holds them at once (a year's statements alone
    # take over a gigabyte).
    del statements, trades
    if before_audit is not None:
        before_audit(result)
    add_ledger_audit(report, client, engine, deployment_block, flows)
    report["disk_bytes"] = disk_bytes(data)
    report["peak_rss_bytes"] = peak_rss_bytes()
    return result


def disk_bytes(folder: Path) -> int:
    """The size of every file under ``folder`` (bytes; links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # a temporary file gone meanwhile
                continue
    return total


def peak_rss_bytes() -> int:
    """This process's peak resident memory plus that of its largest child that has ended
    (the signing process, the flows' child; bytes, from :func:`resource.getrusage`).

    The children ran beside the run, so the sum bounds what the run held at once from above
    (a forked child's pages shared with this process count in both)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) * 1024  # kilobytes on Linux
