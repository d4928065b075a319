"""The operator's audit in a child process (api/audit_process.py) and the keeper's power flows
in a worker process (api/feeder_process.py): the same results as in the server, the findings
of a tampered database included; failures that say what went wrong and leave the chain lock
free; workers replaced after their share and restarted after a crash."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from sqlmodel import Session, select

from api.audit_process import AuditProcessError, run_in_process, run_isolated
from api.feeder_process import FeederProcessError, FeederWorker
from api.keeper import compute_feeder
from api.models import KeptFeederSlot
from ledger.audit.feeder import DEFAULT_NETWORK
from ledger.mirror.models import FillRecord
from tests.api.conftest import OP, Api, past_slot

#: A chain other processes reach: the embedded chain's node process, or anvil (the shared
#: ``api`` fixture of tests/api/conftest.py, given these backends).
reachable_chains = pytest.mark.parametrize(
    "api",
    [
        "embedded-node-sqlite",
        pytest.param("anvil-postgres", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ],
    indirect=True,
)


def _trade_three_slots(api: Api) -> list[int]:
    """Three slots traded and settled; returns them (read once: a quarter hour may turn
    while the test runs)."""
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=3_000_000)
    first = past_slot(6)
    for slot in range(first, first + 3):
        batch = [api.reading(seller, slot, export_Wh=600), api.reading(buyer, slot, import_Wh=500)]
        assert api.client.post("/readings", json={"readings": batch}).status_code == 202
    api.flush()
    for slot in range(first, first + 3):
        assert api.client.post(f"/market/slots/{slot}/settle", headers=OP).status_code == 200
    return list(range(first, first + 3))


def _free(services: Any) -> bool:
    """Whether another thread can take the chain lock now."""
    got: list[bool] = []

    def attempt() -> None:
        got.append(services.chain_lock.acquire(blocking=False))
        if got[0]:
            services.chain_lock.release()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return got == [True]


def _same(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the time it was made."""
    return {**report, "summary": {**report["summary"], "generated_at": None}}


def _here(api: Api, **kwargs: Any) -> dict[str, Any]:
    s = api.services
    report = run_in_process(
        client=s.client,
        engine=s.engine,
        deployment_block=s.deployment.block_number,
        on_chain=s.on_chain,
        mirror=s.mirror,
        **kwargs,
    ).report
    return _same(report)


@reachable_chains
def test_the_child_answers_the_same_report_as_the_server(api: Api) -> None:
    slots = _trade_three_slots(api)
    services = api.services
    assert services.chain_access() is not None
    children = []
    run = services.audit(started=children.append)
    assert len(children) == 1 and children[0].returncode == 0
    assert run.peak_rss_kib is not None and run.peak_rss_kib > 10_000  # a real process
    assert run.report["ok"] is True, run.report["findings"]
    assert _same(run.report) == _here(api)
    assert run.head_block == int(services.chain.w3.eth.block_number)
    assert run.last_settled_slot == slots[2]
    # The route answers the child's report, slot bounds and the feeder included.
    body = api.client.get("/audit/report", params={"from": slots[1]}, headers=OP).json()
    assert _same(body) == _here(api, from_slot=slots[1])
    assert body["summary"]["sealed_slots"] == 3

    # A tampered fill: the child finds it as the server would.
    with Session(services.engine) as session, session.begin():
        fill = session.exec(select(FillRecord).limit(1)).one()
        fill.cost_ueur += 1
        session.add(fill)
    tampered = services.audit()
    assert tampered.report["ok"] is False
    assert _same(tampered.report) == _here(api)
    # The keeper keeps the child's report for the operator's page.
    kept = services.keeper.run_once(force_audit=True)
    assert kept.audited and kept.problem is None


@reachable_chains
def test_a_child_that_fails_says_why_and_leaves_the_chain_free(api: Api) -> None:
    services = api.services
    access = services.chain_access()
    assert access is not None
    common: dict[str, Any] = {
        "database_url": services.settings.resolved_database_url(),
        "contract": services.client.address,
        "abi": [dict(item) for item in services.client.contract.abi],
        "deployment_block": services.deployment.block_number,
        "on_chain": services.on_chain,
        "mirror": services.mirror,
    }
    # A node that does not answer.
    gone = replace(access, url="http://127.0.0.1:9")
    with pytest.raises(AuditProcessError, match=r"(?i)connect|refused"):
        run_isolated(access=gone, **common)
    assert _free(services)
    # A database the child cannot open.
    with pytest.raises(AuditProcessError) as caught:
        run_isolated(access=access, **{**common, "database_url": "sqlite:////nonexistent/x.db"})
    assert str(caught.value) and "Traceback" not in str(caught.value)
    assert _free(services)
    # The server's own audit still runs afterwards.
    assert services.audit().report["ok"] is True


@reachable_chains
def test_the_power_flows_run_in_a_worker_that_is_replaced_and_restarted(api: Api) -> None:
    slots = _trade_three_slots(api)
    services = api.services
    worker = services.feeder_worker
    assert worker is not None
    kept = services.keeper.run_once()
    assert sorted(kept.feeder_slots) == slots and worker.started == 1
    with Session(services.engine) as session:
        rows = {r.slot: r for r in session.exec(select(KeptFeederSlot))}
    assert sorted(rows) == slots
    # The same figures as the power flows computed here.
    here = {r.slot: r for r in compute_feeder(services.engine, slots)}
    for slot in slots:
        assert (rows[slot].vm_min_pu, rows[slot].trafo_loading_percent, rows[slot].findings) == (
            here[slot].vm_min_pu,
            here[slot].trafo_loading_percent,
            here[slot].findings,
        )
    if services.engine.dialect.name != "sqlite":
        return  # the worker's life cycle does not depend on the backend: once is enough
    # A worker is replaced after its share of slots, and one that died is started again.
    short = FeederWorker(slots_per_worker=2)
    compute = short.for_market(services.settings.resolved_database_url(), DEFAULT_NETWORK)
    try:
        assert compute(slots[:2]) == slots[:2] and short.started == 1
        assert compute(slots[2:]) == slots[2:] and short.started == 2
        assert short._proc is not None
        short._proc.kill()
        short._proc.wait()
        assert compute(slots[:1]) == slots[:1] and short.started == 3
    finally:
        short.close()
    assert short._proc is None


def test_a_worker_that_cannot_open_the_database_says_why() -> None:
    worker = FeederWorker()
    with pytest.raises(FeederProcessError) as caught:
        worker.compute([1], "sqlite:////nonexistent/dir/voisin.db", DEFAULT_NETWORK)
    assert "Traceback" not in str(caught.value) and str(caught.value)
    worker.close()
