"""HTTP delivery against a small readings API defined here (the real one comes with the API
issue), served in process through httpx.ASGITransport: outcomes per fault, retries with backoff
on 503/429 and connection errors, idempotent retries, bounded concurrency."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import meter_sim.delivery
from ledger.readings.eip712 import SignedReading, domain_separator
from ledger.readings.intake import Code, MeterRecord, classify
from meter_sim import (
    DeliveryReport,
    Envelope,
    Fault,
    FaultRates,
    RetryPolicy,
    Scenario,
    Status,
    default_scenario,
    deliver_http,
    envelopes,
    sign_readings,
    simulate,
)

DOMAIN = domain_separator(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
BASE = "http://voisin.test"
FAST = RetryPolicy(attempts=5, backoff_s=0.001, max_backoff_s=0.01)


@dataclass
class ReadingsAPI:
    """An in-memory stand-in for the API's readings endpoint, built on ledger.readings.intake.

    ``failures`` requests are answered 503 (or ``failure_status``) before being looked at;
    ``lost_answers`` readings are stored and then answered 503, as if the answer were lost.
    """

    sc: Scenario
    failures: int = 0
    failure_status: int = 503
    retry_after: str | None = None
    lost_answers: int = 0
    delay_s: float = 0.0
    now_slot: int | None = None
    meters: dict[str, MeterRecord] = field(default_factory=dict)
    stored: list[SignedReading] = field(default_factory=list)
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        for i, ident in enumerate(self.sc.identities):
            self.meters[ident.meter] = MeterRecord(
                i + 1, 0, ident.import_baseline_Wh, ident.export_baseline_Wh
            )

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/readings")
        async def post_readings(request: Request) -> JSONResponse:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                return self._answer(await request.json())
            finally:
                self.in_flight -= 1

        return app

    def _answer(self, body: dict[str, Any]) -> JSONResponse:
        if self.failures > 0:
            self.failures -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return JSONResponse({"code": "busy"}, self.failure_status, headers=headers)
        result = classify(body["readings"], DOMAIN, self.meters, now_slot=self.now_slot)
        if result.rejected:
            verdict = result.rejected[0]
            status = 409 if verdict.code is Code.DUPLICATE else 422
            return JSONResponse({"code": verdict.code, "message": verdict.message}, status)
        self.meters = result.meters
        self.stored.extend(result.accepted)
        if self.lost_answers > 0:
            self.lost_answers -= 1
            return JSONResponse({"code": "gateway"}, 503)
        flags = [f.value for v in result.verdicts for f in v.flags]
        return JSONResponse({"accepted": len(result.accepted), "flags": flags}, 202)


def scenario(households: int = 4) -> Scenario:
    return default_scenario(households, days=1, start=date(2026, 6, 22), seed=23)


def genuine(sc: Scenario, slots: int = 96) -> list[Envelope]:
    readings = sign_readings(sc, simulate(sc), DOMAIN)
    return envelopes(sc, readings[: slots * len(sc.households)], DOMAIN)


def send(api: ReadingsAPI, items: list[Envelope], **kwargs: Any) -> DeliveryReport:
    async def run() -> DeliveryReport:
        transport = httpx.ASGITransport(app=api.app())
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await deliver_http(items, BASE, client=client, **kwargs)

    return asyncio.run(run())


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The backoff delays asked for (no real waiting)."""
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(meter_sim.delivery, "_sleep", record)
    yield asked


def test_each_fault_gets_its_outcome_over_http() -> None:
    sc = scenario(4)
    readings = sign_readings(sc, simulate(sc), DOMAIN)
    rates = FaultRates(
        dropped=0.04,
        tampered=0.05,
        wrong_key=0.05,
        clock_skew=0.04,
        late=0.05,
        duplicate=0.05,
        replay=0.05,
    )
    items = envelopes(sc, readings, DOMAIN, rates)
    assert all(Counter(e.fault for e in items)[f] >= 2 for f in Fault)
    api = ReadingsAPI(sc)

    def tick(send_slot: int) -> None:
        api.now_slot = send_slot + 1  # the API's clock: the slot just ended

    report = send(api, items, before_round=tick, retry=FAST)
    expected = {
        Fault.TAMPERED: (Status.REJECTED, "bad_signature"),
        Fault.WRONG_KEY: (Status.REJECTED, "bad_signature"),
        Fault.CLOCK_SKEW: (Status.REJECTED, "future_slot"),
        Fault.REPLAY: (Status.REJECTED, "stale_slot"),
        Fault.DUPLICATE: (Status.ALREADY_DELIVERED, "duplicate"),
    }
    for o in report.outcomes:
        fault = o.envelope.fault
        if fault is None:
            assert o.status is Status.ACCEPTED and o.attempts == 1, o
        elif fault is Fault.DROPPED:
            assert o.status is Status.NOT_SENT
        elif fault is Fault.LATE:
            assert (o.status, o.code) == (Status.REJECTED, "stale_slot") or "late" in o.flags
        else:
            assert (o.status, o.code) == expected[fault], o
            assert o.message
    accepted = [o.envelope.signed for o in report.outcomes if o.status is Status.ACCEPTED]
    assert sorted(api.stored, key=repr) == sorted(accepted, key=repr)
    assert report.requests == api.requests == sum(1 for e in items if e.sent)


def test_a_flaky_api_answering_503_is_retried_until_every_reading_is_accepted(
    delays: list[float],
) -> None:
    sc = scenario(3)
    items = genuine(sc, slots=4)
    api = ReadingsAPI(sc, failures=5)
    report = send(api, items, retry=RetryPolicy(attempts=6, backoff_s=0.001))
    assert report.count(Status.ACCEPTED) == len(items) == 12
    assert report.requests == api.requests == 12 + 5
    assert sum(o.attempts - 1 for o in report.outcomes) == 5
    assert len(api.stored) == 12 and len(delays) == 5


def test_a_retry_after_a_lost_answer_counts_as_already_delivered(delays: list[float]) -> None:
    sc = scenario(2)
    items = genuine(sc, slots=3)
    api = ReadingsAPI(sc, lost_answers=2)
    report = send(api, items, retry=FAST)
    statuses = Counter(o.status for o in report.outcomes)
    assert statuses == {Status.ACCEPTED: 4, Status.ALREADY_DELIVERED: 2}
    assert len(api.stored) == len(set(map(repr, api.stored))) == 6  # each stored exactly once


def test_a_rejection_is_reported_and_never_retried(delays: list[float]) -> None:
    sc = scenario(2)
    items = genuine(sc, slots=2)
    api = ReadingsAPI(sc)
    api.meters.pop(sc.identities[0].meter)  # the API does not know meter 0
    report = send(api, items, retry=FAST)
    rejected = [o for o in report.outcomes if o.status is Status.REJECTED]
    assert len(rejected) == 2
    assert all(o.code == "unknown_meter" and "not registered" in o.message for o in rejected)
    assert all(o.attempts == 1 for o in report.outcomes)
    assert report.requests == 4 and delays == []


def test_backoff_doubles_and_gives_up_after_the_last_attempt(delays: list[float]) -> None:
    sc = scenario(1)
    items = genuine(sc, slots=1)
    api = ReadingsAPI(sc, failures=100)
    policy = RetryPolicy(attempts=4, backoff_s=0.1, max_backoff_s=10.0)
    (outcome,) = send(api, items, retry=policy).outcomes
    assert (outcome.status, outcome.code, outcome.attempts) == (Status.FAILED, "unreachable", 4)
    assert "HTTP 503" in outcome.message
    assert api.requests == 4 and api.stored == []
    assert len(delays) == 3
    for n, delay in enumerate(delays):
        assert 0.1 * 2**n * 0.5 <= delay <= 0.1 * 2**n


def test_429_waits_as_long_as_retry_after_asks(delays: list[float]) -> None:
    sc = scenario(1)
    api = ReadingsAPI(sc, failures=2, failure_status=429, retry_after="3")
    report = send(api, genuine(sc, slots=1), retry=RetryPolicy(backoff_s=0.01))
    assert report.outcomes[0].status is Status.ACCEPTED
    assert delays == [3.0, 3.0]


def test_connection_errors_are_retried(delays: list[float]) -> None:
    sc = scenario(2)
    items = genuine(sc, slots=2)
    api = ReadingsAPI(sc)
    inner = httpx.ASGITransport(app=api.app())
    refusals = [3]

    class Unreliable(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if refusals[0] > 0:
                refusals[0] -= 1
                raise httpx.ConnectError("connection refused", request=request)
            return await inner.handle_async_request(request)

    async def run() -> DeliveryReport:
        async with httpx.AsyncClient(transport=Unreliable(), base_url=BASE) as client:
            return await deliver_http(items, BASE, client=client, retry=FAST)

    report = asyncio.run(run())
    assert report.count(Status.ACCEPTED) == 4
    assert report.requests == 7 and api.requests == 4 and len(delays) == 3


def test_other_client_errors_fail_without_retry(delays: list[float]) -> None:
    sc = scenario(1)
    api = ReadingsAPI(sc, failures=1, failure_status=400)
    (outcome,) = send(api, genuine(sc, slots=1), retry=FAST).outcomes
    assert (outcome.status, outcome.code, outcome.attempts) == (Status.FAILED, "http_400", 1)
    assert delays == []


def test_requests_in_flight_stay_within_the_concurrency_bound() -> None:
    sc = scenario(12)
    items = genuine(sc, slots=2)
    api = ReadingsAPI(sc, delay_s=0.01)
    report = send(api, items, concurrency=3, retry=FAST)
    assert report.count(Status.ACCEPTED) == 24
    assert 2 <= api.max_in_flight <= 3
    # Each meter's readings arrive in slot order.
    for ident in sc.identities:
        slots = [s.reading.slot for s in api.stored if s.reading.meter == ident.meter]
        assert slots == sorted(slots) and len(slots) == 2


def test_duplicate_answers_of_either_form_count_as_delivered_and_conflicts_as_rejected() -> None:
    sc = scenario(1)
    items = genuine(sc, slots=3)
    answers = iter(
        [
            JSONResponse({"accepted": 0, "duplicates": 1, "flags": []}, 202),
            JSONResponse({"code": "duplicate", "message": "held"}, 409),
            JSONResponse({"code": "conflicting_reading", "message": "differs"}, 409),
        ]
    )
    app = FastAPI()

    @app.post("/readings")
    async def post_readings() -> JSONResponse:
        return next(answers)

    async def run() -> DeliveryReport:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await deliver_http(items, BASE, client=client, retry=FAST)

    report = asyncio.run(run())
    assert [(o.status, o.code) for o in report.outcomes] == [
        (Status.ALREADY_DELIVERED, "duplicate"),
        (Status.ALREADY_DELIVERED, "duplicate"),
        (Status.REJECTED, "conflicting_reading"),
    ]
