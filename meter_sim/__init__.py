"""Voisin meter simulator: neighbourhood scenarios and signing smart meters.

A run in four steps::

    scenario = default_scenario(households=30, days=1, seed=7)   # or load_scenario("x.toml")
    flows = simulate(scenario)                  # integer Wh per household and slot
    readings = sign_readings(scenario, flows, client.domain_separator())
    sent = envelopes(scenario, readings, domain, FaultRates(dropped=0.01))  # faults optional
    report = deliver_in_process(client, operator, sent)   # or: await deliver_http(sent, url)

Modules: :mod:`~meter_sim.scenario` (scenarios as data, keys from the seed),
:mod:`~meter_sim.load` (BDEW H0 via demandlib), :mod:`~meter_sim.pv` (pvlib),
:mod:`~meter_sim.battery`, :mod:`~meter_sim.flows`, :mod:`~meter_sim.meters` (registers and
signatures), :mod:`~meter_sim.faults`, :mod:`~meter_sim.delivery`; a whole run on the chain and its
report: :func:`~meter_sim.run.run_simulation`, :mod:`~meter_sim.report`.

This package imports ``ledger``, never ``api``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meter_sim.battery import dispatch
    from meter_sim.delivery import (
        DeliveryReport,
        Outcome,
        RetryPolicy,
        Status,
        deliver_http,
        deliver_in_process,
        meter_records,
    )
    from meter_sim.errors import (
        DeliveryError,
        MeterSimError,
        ScenarioError,
        SimulationError,
        WeatherError,
    )
    from meter_sim.faults import Envelope, Fault, FaultRates, envelopes
    from meter_sim.flows import Flows, simulate
    from meter_sim.load import h0_year, load_Wh
    from meter_sim.meters import registers, sign_readings
    from meter_sim.pv import Sky, pv_Wh, sky_for, tmy_location
    from meter_sim.report import build_report
    from meter_sim.run import Progress, RunResult, run_simulation
    from meter_sim.scenario import (
        LYON,
        PV,
        WALENSTADT,
        Battery,
        HouseholdSpec,
        Identity,
        Location,
        Scenario,
        default_scenario,
        load_scenario,
        quartierstrom_scenario,
        scenario_from_dict,
    )

#: Where each name of the package lives: imported on first use (PEP 562), so that importing
#: one light module (the scenarios) does not load the load and PV models (pandas, pvlib,
#: scipy) or the ledger (web3, py-evm) with it.
_EXPORTS: dict[str, str] = {
    "Battery": "meter_sim.scenario",
    "build_report": "meter_sim.report",
    "default_scenario": "meter_sim.scenario",
    "deliver_http": "meter_sim.delivery",
    "deliver_in_process": "meter_sim.delivery",
    "DeliveryError": "meter_sim.errors",
    "DeliveryReport": "meter_sim.delivery",
    "dispatch": "meter_sim.battery",
    "Envelope": "meter_sim.faults",
    "envelopes": "meter_sim.faults",
    "Fault": "meter_sim.faults",
    "FaultRates": "meter_sim.faults",
    "Flows": "meter_sim.flows",
    "h0_year": "meter_sim.load",
    "HouseholdSpec": "meter_sim.scenario",
    "Identity": "meter_sim.scenario",
    "load_scenario": "meter_sim.scenario",
    "load_Wh": "meter_sim.load",
    "Location": "meter_sim.scenario",
    "LYON": "meter_sim.scenario",
    "meter_records": "meter_sim.delivery",
    "MeterSimError": "meter_sim.errors",
    "Outcome": "meter_sim.delivery",
    "Progress": "meter_sim.run",
    "PV": "meter_sim.scenario",
    "pv_Wh": "meter_sim.pv",
    "quartierstrom_scenario": "meter_sim.scenario",
    "registers": "meter_sim.meters",
    "RetryPolicy": "meter_sim.delivery",
    "run_simulation": "meter_sim.run",
    "RunResult": "meter_sim.run",
    "Scenario": "meter_sim.scenario",
    "scenario_from_dict": "meter_sim.scenario",
    "ScenarioError": "meter_sim.errors",
    "sign_readings": "meter_sim.meters",
    "simulate": "meter_sim.flows",
    "SimulationError": "meter_sim.errors",
    "Sky": "meter_sim.pv",
    "sky_for": "meter_sim.pv",
    "Status": "meter_sim.delivery",
    "tmy_location": "meter_sim.pv",
    "WALENSTADT": "meter_sim.scenario",
    "WeatherError": "meter_sim.errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "LYON",
    "PV",
    "WALENSTADT",
    "Battery",
    "DeliveryError",
    "DeliveryReport",
    "Envelope",
    "Fault",
    "FaultRates",
    "Flows",
    "HouseholdSpec",
    "Identity",
    "Location",
    "MeterSimError",
    "Outcome",
    "Progress",
    "RetryPolicy",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "Sky",
    "Status",
    "WeatherError",
    "build_report",
    "default_scenario",
    "deliver_http",
    "deliver_in_process",
    "dispatch",
    "envelopes",
    "h0_year",
    "load_Wh",
    "load_scenario",
    "meter_records",
    "pv_Wh",
    "quartierstrom_scenario",
    "registers",
    "run_simulation",
    "scenario_from_dict",
    "sign_readings",
    "simulate",
    "sky_for",
    "tmy_location",
]
