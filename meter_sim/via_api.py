"""A neighbourhood run through a running Voisin API: ``voisin simulate --via api``.

The same run as :func:`meter_sim.run.run_simulation`, but everything reaches the ledger over
HTTP, the way real meters and the grid operator reach it: the operator registers each household
(``POST /households``: the API holds the household's key and posts its agent's standing orders)
and tops it up (``POST /topups``); the meters send each slot's signed readings
(``POST /readings``, one batch per slot, as a concentrator would); then the operator settles the
slot (``POST /market/slots/{slot}/settle``), which first sends everything queued on chain.

The report is built like the in-process run's, from the chain and the mirror in the run's data
dir (:func:`meter_sim.run.collect_result`), once ``before_report`` has run (the caller stops a
server it started there, so the embedded chain can be opened). This module speaks HTTP only
and never imports ``api``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger.chain.backends import open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import open_ledger
from ledger.market.settlement import seal_gas
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import index
from ledger.mirror.models import HouseholdRecord, ReadingRecord
from ledger.readings.eip712 import domain_separator
from ledger.readings.intake import reading_to_json
from meter_sim.flows import Flows
from meter_sim.meters import sign_readings
from meter_sim.report import Gas, Money
from meter_sim.run import (
    TOP_UP_MARGIN_UEUR,
    Progress,
    RunResult,
    SimulationError,
    collect_result,
    run_flows,
)
from meter_sim.scenario import Scenario

__all__ = ["ApiCallError", "run_via_api"]

#: Readings per ``POST /readings`` (the API takes up to 1,000).
READINGS_PER_REQUEST = 500
#: Attempts of one call when the server answers 503 or cannot be reached.
ATTEMPTS = 8


class ApiCallError(SimulationError):
    """The API refused a call of the run (the message carries its code and message)."""


class _Api:
    def __init__(self, http: httpx.Client, operator_token: str) -> None:
        self.http = http
        self.operator = {"Authorization": f"Bearer {operator_token}"}

    def call(
        self, method: str, path: str, body: Any = None, *, expect: int = 200
    ) -> dict[str, Any]:
        """One call; retried with backoff while the server is unreachable or answers 503, and
        after the wait a 429 asks for."""
        delay = 0.25
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.http.request(method, path, json=body, headers=self.operator)
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS:
                    raise ApiCallError(
                        f"{method} {path}: the API cannot be reached: {exc}"
                    ) from exc
            else:
                if response.status_code == expect:
                    data: dict[str, Any] = response.json()
                    return data
                if response.status_code not in (429, 503) or attempt == ATTEMPTS:
                    raise ApiCallError(
                        f"{method} {path} answered {response.status_code}: {_problem(response)}"
                    )
                if response.status_code == 429:
                    # Rate limited: wait what the server asks (bounded), then try again.
                    try:
                        wait = float(response.headers.get("Retry-After", delay))
                    except ValueError:
                        wait = delay
                    time.sleep(min(max(wait, 0.0), 30.0))
                    continue
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "code" in body:
        return f"{body['code']}: {body.get('message', '')}"
    return str(body)[:300]


def run_via_api(
    scenario: Scenario,
    base_url: str,
    operator_token: str,
    *,
    chain_spec: str = "embedded",
    data_dir: Path | str,
    mechanism: str = "pay-as-clear",
    operator_key: str | None = None,
    database_url: str | None = None,
    first_slot: int = 0,
    slots: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    say: Callable[[str], None] | None = None,
    before_report: Callable[[], object] | None = None,
    before_audit: Callable[[RunResult], object] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RunResult:
    """Run ``scenario`` through the API at ``base_url``; see the module docstring.

    The API must run a fresh deployment (no household registered yet) with the clearing
    ``mechanism`` (``VOISIN_MECHANISM``) and without auto-settlement, on the chain
    ``chain_spec`` with its data in ``data_dir`` (or ``database_url``): the report reads them.
    ``before_audit`` is called as in :func:`meter_sim.run.collect_result`.
    """
    started = time.perf_counter()
    log = say or (lambda _message: None)
    flows = run_flows(scenario, mechanism, first_slot, slots)
    with httpx.Client(base_url=base_url, timeout=300, transport=transport) as http:
        api = _Api(http, operator_token)
        health = api.call("GET", "/health")
        contract = str(health["chain"]["contract"])
        domain = domain_separator(int(health["chain"]["chain_id"]), contract)
        log(f"API {base_url}: chain id {health['chain']['chain_id']}, Voisin at {contract}")
        household_ids = _register(api, scenario)
        top_ups = _top_up(api, flows, household_ids)
        log(f"registered and topped up {len(household_ids)} households through the API")
        gas_settlement = _send_and_settle_slots(api, scenario, flows, domain, started, progress)
    if before_report is not None:
        before_report()
    return _result_from_data_dir(
        scenario,
        flows,
        household_ids,
        contract,
        top_ups,
        gas_settlement,
        chain_spec=chain_spec,
        data=Path(data_dir),
        mechanism=mechanism,
        operator_key=operator_key,
        database_url=database_url,
        started=started,
        before_audit=before_audit,
    )


def _register(api: _Api, scenario: Scenario) -> list[int]:
    """Register every household (``POST /households``) with its meter and register baselines;
    returns their ids. The first must be household 1: the run needs a fresh deployment."""
    household_ids: list[int] = []
    for k, (spec, ident) in enumerate(zip(scenario.households, scenario.identities, strict=True)):
        created = api.call(
            "POST",
            "/households",
            {
                "meter": ident.meter,
                "prosumer": spec.prosumer,
                "name": spec.name,
                "import_baseline_Wh": ident.import_baseline_Wh,
                "export_baseline_Wh": ident.export_baseline_Wh,
            },
            expect=201,
        )
        if k == 0 and created["id"] != 1:
            raise SimulationError(
                f"the API already holds households (the first new one is {created['id']}): "
                "run against a fresh deployment"
            )
        household_ids.append(int(created["id"]))
    return household_ids


def _top_up(api: _Api, flows: Flows, household_ids: Sequence[int]) -> int:
    """Top each household up (``POST /topups``) as the in-process run does: every metered Wh at
    retail, plus a margin, so funds never bind. Returns the sum (micro-euro)."""
    retail = int(api.call("GET", "/market/tariffs")["retail_ueur_per_kWh"])
    top_ups = 0
    for h, hid in enumerate(household_ids):
        amount = int(flows.import_Wh[h].sum()) * retail // 1000 + TOP_UP_MARGIN_UEUR
        api.call("POST", "/topups", {"household": hid, "amount_ueur": amount}, expect=201)
        top_ups += amount
    return top_ups


def _send_and_settle_slots(
    api: _Api,
    scenario: Scenario,
    flows: Flows,
    domain: bytes,
    started: float,
    progress: Callable[[Progress], None] | None,
) -> int:
    """Slot by slot: the meters send the slot's signed readings, then the operator settles the
    slot (the API commits everything queued first). Returns the settlement gas, as the API
    reports it; the readings' gas is read from the chain afterwards (the API commits them in
    its own batches)."""
    n_h, n_t = flows.shape
    signed = sign_readings(scenario, flows, domain)
    fills = local_Wh = gas_settlement = 0
    for t, slot in enumerate(flows.slots.tolist()):
        _send_readings(api, slot, [reading_to_json(s) for s in signed[t * n_h : (t + 1) * n_h]])
        outcome = api.call("POST", f"/market/slots/{slot}/settle")
        fills += int(outcome["fills"])
        local_Wh += int(outcome["matched_Wh"])
        gas_settlement += int(outcome["gas_used"])
        if progress is not None:
            elapsed = time.perf_counter() - started
            progress(Progress(t + 1, n_t, elapsed, fills, local_Wh, gas_settlement, slot=slot))
    return gas_settlement


def _send_readings(api: _Api, slot: int, batch: list[dict[str, Any]]) -> None:
    """``POST /readings`` the slot's readings (wire form), :data:`READINGS_PER_REQUEST` at a
    time; a simulated meter never sends a bad reading, so any rejection stops the run."""
    for k in range(0, len(batch), READINGS_PER_REQUEST):
        answer = api.call(
            "POST", "/readings", {"readings": batch[k : k + READINGS_PER_REQUEST]}, expect=202
        )
        if answer["rejected"]:
            first = next(r for r in answer["results"] if r.get("status") == "rejected")
            raise ApiCallError(
                f"slot {slot}: the API rejected {answer['rejected']} readings; the first: {first}"
            )


def _result_from_data_dir(
    scenario: Scenario,
    flows: Flows,
    household_ids: Sequence[int],
    contract: str,
    top_ups_ueur: int,
    gas_settlement: int,
    *,
    chain_spec: str,
    data: Path,
    mechanism: str,
    operator_key: str | None,
    database_url: str | None,
    started: float,
    before_audit: Callable[[RunResult], object] | None,
) -> RunResult:
    """Open the server's chain and mirror (once it has stopped) and build the run's result
    from them, as the in-process run does (:func:`meter_sim.run.collect_result`)."""
    with open_chain(chain_spec, data, operator_key) as chain:
        client, deployment = open_ledger(chain)
        if deployment.address.lower() != contract.lower():
            raise SimulationError(
                f"{data} holds the deployment {deployment.address}, the API ran "
                f"{contract}: give the server's data dir"
            )
        engine = make_engine(database_url or f"sqlite:///{(data / 'voisin.db').resolve()}")
        index(client, engine, start_block=deployment.block_number)
        accounts = _accounts(engine, household_ids)
        first, last = flows.first_slot, flows.first_slot + flows.shape[1] - 1
        gas_readings = _readings_gas(client, engine, household_ids, first, last)
        # A fresh deployment: every fee and every token minted belong to this run.
        money = Money(
            top_ups_ueur=top_ups_ueur,
            balances_ueur=sum(client.balance_of(accounts[hid]) for hid in household_ids),
            fees_ueur=client.balance_of(client.fee_recipient()),
            supply_growth_ueur=client.total_supply(),
        )
        return collect_result(
            client,
            engine,
            deployment.address,
            deployment.block_number,
            scenario,
            flows,
            household_ids,
            money,
            Gas(gas_readings, gas_settlement, seal_gas(client, engine, first, last)),
            mechanism,
            chain.kind,
            data,
            started,
            before_audit,
        )


def _readings_gas(
    client: VoisinClient, engine: Engine, household_ids: Sequence[int], first: int, last: int
) -> int:
    """Gas of the commitReadings transactions that carried the run's readings (slots
    ``first..last``), each counted once, from their receipts."""
    with Session(engine) as session:
        tx_hashes = set(
            session.exec(
                select(ReadingRecord.tx_hash).where(
                    col(ReadingRecord.household).in_(household_ids),
                    ReadingRecord.slot >= first,
                    ReadingRecord.slot <= last,
                )
            ).all()
        )
    gas = 0
    for tx_hash in sorted(tx_hashes):
        receipt = client.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        gas += int(receipt["gasUsed"])
    return gas


def _accounts(engine: Engine, household_ids: Sequence[int]) -> dict[int, str]:
    with Session(engine) as session:
        rows = session.exec(
            select(HouseholdRecord).where(col(HouseholdRecord.id).in_(household_ids))
        ).all()
    accounts = {r.id: r.account for r in rows}
    missing = [h for h in household_ids if h not in accounts]
    if missing:
        raise SimulationError(f"households {missing} are not in the chain's mirror")
    return accounts
