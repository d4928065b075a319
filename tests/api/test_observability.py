"""What an operator sees of a running server: JSON log lines that carry the id of the request
that caused them, the X-Request-ID round trip, /health telling its problems apart (each made
for real, with its status code), the gauges behind them on /metrics, and a Grafana dashboard
that only queries metrics the server exports."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlmodel import Session, select
from starlette.types import Message, Receive, Scope, Send

from api import logs
from api.app import RequestId, create_app
from api.keeper import Keeper
from api.logs import REQUEST_ID_MAX_CHARS, configure_logging
from api.models import IntakeReading, KeptAudit
from api.process import ServeProcess
from api.routes import health as health_route
from ledger.mirror.models import TopUpRecord
from tests.api.conftest import OP, OPERATOR_TOKEN, Api, _settings, past_slot

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "voisin-dashboard.json"

#: What a request id taken from a client may look like (api.logs.accept_request_id).
WELL_FORMED = "gateway-7f3a:9c1e/2026.12.06+meter=42~x"
GENERATED = re.compile(r"[0-9a-f]{32}")


# ───────────────────────────── Logs ─────────────────────────────


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging sets the process's root logger: put it back for the other tests."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    saved = [
        (lg, list(lg.handlers), lg.level, lg.propagate)
        for lg in (logging.getLogger(name) for name in names)
    ]
    yield
    for lg, handlers, level, propagate in saved:
        for handler in list(lg.handlers):
            lg.removeHandler(handler)
        for handler in handlers:
            lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.fixture
def json_log(restore_logging: None) -> io.StringIO:
    out = io.StringIO()
    configure_logging("json", stream=out)
    return out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_parse_and_carry_the_request_id_of_the_request_that_logged_them(
    embedded_api: Api, json_log: io.StringIO
) -> None:
    c = embedded_api.client
    m = embedded_api.register(prosumer=False)
    rotated = c.post(f"/households/{m.id}/rotate-key", headers={**OP, "X-Request-ID": "rot-1"})
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["X-Request-ID"] == "rot-1"
    again = c.post(f"/households/{m.id}/rotate-key", headers=OP)
    generated = again.headers["X-Request-ID"]
    assert GENERATED.fullmatch(generated)

    entries = lines(json_log)
    rotations = [e for e in entries if e["message"].endswith("account key rotated")]
    # The handler runs in a worker thread: the id follows it there.
    assert [(e["logger"], e["level"], e["request_id"]) for e in rotations] == [
        ("voisin.api", "INFO", "rot-1"),
        ("voisin.api", "INFO", generated),
    ]
    for entry in entries:
        stamp = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
        assert stamp.utcoffset() == timedelta(0) and entry["ts"].endswith("Z")
        assert {"level", "logger", "message"} <= entry.keys()
    # Nothing logged outside a request (start-up, the outbox) claims one.
    logging.getLogger("voisin.outbox").warning("between requests", extra={"slot_id": 7})
    last = lines(json_log)[-1]
    assert "request_id" not in last and last["slot_id"] == 7


def test_an_unexpected_error_is_answered_and_logged_with_its_request_id(
    embedded_api: Api, json_log: io.StringIO
) -> None:
    app = embedded_api.client.app

    def explode() -> None:
        raise RuntimeError("the meter table caught fire")

    app.router.add_api_route("/explode-for-test", explode)  # type: ignore[attr-defined]
    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/explode-for-test", headers={"X-Request-ID": "boom-1"})
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert r.headers["X-Request-ID"] == "boom-1"
    [failure] = [e for e in lines(json_log) if e["level"] == "ERROR"]
    assert failure["request_id"] == "boom-1"
    assert "RuntimeError: the meter table caught fire" in failure["exception"]


@pytest.mark.parametrize(
    "given",
    [
        "x" * (REQUEST_ID_MAX_CHARS + 1),
        "",
        "two words",
        'quote"d',
        "<script>alert(1)</script>",
        "tab\there",
        "line\nX-Injected: 1",
        'cr\r\n{"level": "ERROR"}',
        "nul\x00byte",
        "caf\u00e9",
    ],
)
def test_a_malformed_request_id_is_replaced_never_repeated(given: str) -> None:
    """At the ASGI level, where a header can hold what an HTTP parser would refuse."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("voisin.test.request_id")
    log.addHandler(handler)
    log.propagate = False
    sent: list[Message] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("inside")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "headers": [(b"x-request-id", given.encode("latin-1", "replace"))]}
    try:
        anyio.run(RequestId(inner), scope, receive, send)
    finally:
        log.removeHandler(handler)
    headers = dict(sent[0]["headers"])
    answered = headers[b"x-request-id"].decode()
    assert GENERATED.fullmatch(answered)
    [entry] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert entry["request_id"] == answered
    assert given not in out.getvalue() or not given


def test_a_well_formed_request_id_comes_back_and_an_overlong_one_does_not(
    embedded_api: Api,
) -> None:
    c = embedded_api.client
    assert c.get("/health", headers={"X-Request-ID": WELL_FORMED}).headers["X-Request-ID"] == (
        WELL_FORMED
    )
    longest = "a" * REQUEST_ID_MAX_CHARS
    assert c.get("/health", headers={"X-Request-ID": longest}).headers["X-Request-ID"] == longest
    for bad in ("a" * (REQUEST_ID_MAX_CHARS + 1), "has space", "semi;colon", "caf\xe9".encode()):
        answered = c.get("/health", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert GENERATED.fullmatch(answered), bad
    # Each request without one gets its own; a refusal by the body guard carries one too.
    ids = {c.get("/health").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    refused = c.post("/readings", content=b"[" * 100, headers={"Content-Type": "application/json"})
    assert refused.status_code == 422 and GENERATED.fullmatch(refused.headers["X-Request-ID"])


def test_text_mode_is_the_terminal_format_as_before(restore_logging: None) -> None:
    out = io.StringIO()
    uvicorn_config = configure_logging("text", stream=out)
    logging.getLogger("voisin.outbox").warning("chain unreachable: %s", "node gone")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} voisin\.outbox WARNING chain unreachable: "
        r"node gone\n",
        out.getvalue(),
    )
    from uvicorn.config import LOGGING_CONFIG

    assert uvicorn_config == LOGGING_CONFIG  # uvicorn's own lines stay its own


def test_auto_is_text_on_a_terminal_and_json_anywhere_else(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as tty:
            assert logs.resolve_format("auto", tty) == "text"
    finally:
        os.close(leader)
        os.close(follower)
    with open(tmp_path / "serve.log", "w") as file:
        assert logs.resolve_format("auto", file) == "json"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("text", io.StringIO()) == "text"
    with pytest.raises(ValueError, match="'auto', 'text' or 'json'"):
        logs.resolve_format("yaml")


def test_no_line_shows_a_bearer_token_or_a_url_password(json_log: io.StringIO) -> None:
    log = logging.getLogger("voisin.test.secrets")
    log.warning("refused Authorization: Bearer %s", OPERATOR_TOKEN)
    log.warning("a bearer token is missing")
    try:
        raise ConnectionError("postgresql+psycopg://voisin:hunter2@db.local/voisin is down")
    except ConnectionError:
        log.exception("database gone")
    text = json_log.getvalue()
    assert OPERATOR_TOKEN not in text and "hunter2" not in text
    first, plain, second = lines(json_log)
    assert first["message"] == "refused Authorization: Bearer [redacted]"
    assert plain["message"] == "a bearer token is missing"
    assert "postgresql+psycopg://voisin:[redacted]@db.local/voisin" in second["exception"]


def test_voisin_serve_logs_json_lines_uvicorns_included(tmp_path: Path) -> None:
    """The real server: every stderr line is JSON (stdout keeps its start-up banner), the access
    line of a request carries its id, and the operator's token appears nowhere."""
    log_path = tmp_path / "serve.log"
    env = {"VOISIN_LOG_FORMAT": "json", "VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN}
    with ServeProcess(tmp_path / "data", env, log_path=log_path) as server:
        r = httpx.get(
            f"{server.base_url}/health",
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "X-Request-ID": "probe-1"},
            timeout=30,
        )
        assert r.status_code == 200 and r.headers["X-Request-ID"] == "probe-1"
    text = log_path.read_text()
    assert OPERATOR_TOKEN not in text
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    banner = [line for line in text.splitlines() if not line.startswith("{")]
    assert all(
        line.startswith(("Voisin API on", "Dashboard:", "Operator token:")) for line in banner
    )
    loggers = {e["logger"] for e in entries}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers
    [access] = [e for e in entries if e.get("request_id") == "probe-1"]
    assert (access["logger"], access["method"], access["path"], access["status"]) == (
        "uvicorn.access",
        "GET",
        "/health",
        200,
    )
    assert any(e["message"] == "Application startup complete." for e in entries)


# ───────────────────────────── Health ─────────────────────────────


def metric_values(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def gauge(
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return values[(name, tuple(sorted(labels.items())))]


def problem_gauges(api: Api) -> dict[str, float]:
    values = metric_values(api)
    return {
        code: gauge(values, "voisin_health_problem", problem=code) for code in health_route.PROBLEMS
    }


def test_a_healthy_server_says_ok_with_the_facts(embedded_api: Api) -> None:
    r = embedded_api.client.get("/health")
    body = r.json()
    assert r.status_code == 200
    assert (body["ok"], body["status"], body["problems"], body["why"]) == (True, "ok", [], {})
    assert body["backlog"] == {"readings": 0, "orders": 0}
    assert body["backlog_oldest_s"] == {"readings": 0, "orders": 0}
    assert body["audit"] == {"kept": False}
    assert {"ok", "kind", "chain_id", "contract", "block"} <= body["chain"].keys()
    assert body["chain"]["contract_current"] is True
    values = metric_values(embedded_api)
    assert gauge(values, "voisin_health_status") == 0
    assert (
        gauge(values, "voisin_audit_ok") == -1 and gauge(values, "voisin_audit_age_seconds") == -1
    )
    assert gauge(values, "voisin_outbox_backlog_oldest_seconds", kind="readings") == 0
    assert set(problem_gauges(embedded_api).values()) == {0}


def test_a_contract_deployed_by_another_release_is_named_and_keeps_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The deployment record names the bytecode it was deployed from: a server of a release
    whose contract differs says so at start and in /health, and serves as before."""
    settings = _settings(tmp_path)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        address = client.get("/health").json()["chain"]["contract"]
    records = settings.data_dir / "deployments.json"
    entries = json.loads(records.read_text())
    (entry,) = entries.values()
    entry["bytecode_sha256"] = "0" * 64  # as an older release's contract would be recorded
    records.write_text(json.dumps(entries))
    caplog.set_level(logging.WARNING, logger="voisin.api")
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        body = client.get("/health").json()
        assert (body["status"], body["chain"]["contract"]) == ("ok", address)
        assert body["chain"]["contract_current"] is False
        assert client.get("/market/tariffs").status_code == 200
    assert any(
        "another release's bytecode" in r.getMessage() and address in r.getMessage()
        for r in caplog.records
    )


def test_a_dead_chain_node_is_chain_down_and_503(tmp_path: Path) -> None:
    """As in the durability tests: the embedded chain's node process is killed."""
    app = create_app(_settings(tmp_path, chain_process=True), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        node = api.services.chain.node
        assert node is not None and client.get("/health").status_code == 200
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=30)
        r = client.get("/health")
        body = r.json()
        assert r.status_code == 503
        assert (body["ok"], body["status"], body["problems"]) == (False, "down", ["chain_down"])
        assert not body["chain"]["ok"] and body["chain"]["error"]
        assert body["database"] == {"ok": True}
        values = metric_values(api)
        assert gauge(values, "voisin_chain_up") == 0 and gauge(values, "voisin_health_status") == 2
        assert problem_gauges(api)["chain_down"] == 1


def test_a_database_that_cannot_be_opened_is_database_down_and_503(embedded_api: Api) -> None:
    """The SQLite file is replaced by a directory, which SQLite cannot open: every new
    connection fails, as with a database server that went away."""
    services = embedded_api.services
    path = services.settings.data_dir / "voisin.db"
    services.engine.dispose()
    path.rename(path.with_name("voisin.db.away"))
    path.mkdir()
    try:
        r = embedded_api.client.get("/health")
        body = r.json()
        assert r.status_code == 503
        assert (body["ok"], body["status"], body["problems"]) == (False, "down", ["database_down"])
        assert not body["database"]["ok"] and "OperationalError" in body["database"]["error"]
        assert body["chain"]["ok"]
        assert (body["backlog_oldest_s"], body["backlog_trend"], body["audit"]) == (None,) * 3
        values = metric_values(embedded_api)
        assert gauge(values, "voisin_database_up") == 0
        assert gauge(values, "voisin_health_problem", problem="database_down") == 1
    finally:
        services.engine.dispose()
        shutil.rmtree(path)
        path.with_name("voisin.db.away").rename(path)
    assert embedded_api.client.get("/health").json()["status"] == "ok"


def test_a_reading_queued_too_long_is_backlog_growing_but_still_200(api: Api) -> None:
    """On both backends: PostgreSQL gives the time back as it stored it, SQLite naive."""
    m = api.register(prosumer=False)
    r = api.client.post("/readings", json={"readings": [api.reading(m, past_slot(3), import_Wh=4)]})
    assert r.status_code == 202
    fresh = api.client.get("/health").json()
    assert fresh["status"] == "ok" and fresh["backlog_oldest_s"]["readings"] < 60
    # The outbox did not run for six minutes (a paused ledger, a node that refuses).
    late = datetime.now(UTC) - timedelta(seconds=health_route.BACKLOG_OLDEST_MAX_S + 60)
    with Session(api.services.engine) as session, session.begin():
        session.execute(update(IntakeReading).values(received_at=late))
    r = api.client.get("/health")
    body = r.json()
    assert r.status_code == 200
    assert (body["ok"], body["status"], body["problems"]) == (True, "degraded", ["backlog_growing"])
    assert body["backlog_oldest_s"]["readings"] >= health_route.BACKLOG_OLDEST_MAX_S + 60
    assert body["why"]["backlog_growing"].startswith("the oldest queued reading was accepted")
    values = metric_values(api)
    assert gauge(values, "voisin_readings_total", verdict="accepted") == 1
    assert gauge(values, "voisin_outbox_backlog_oldest_seconds", kind="readings") >= 360
    assert gauge(values, "voisin_health_status") == 1
    assert problem_gauges(api)["backlog_growing"] == 1
    api.flush()
    assert api.client.get("/health").json()["status"] == "ok"


@pytest.mark.postgres
def test_the_oldest_age_holds_on_a_postgresql_session_in_another_time_zone(
    tmp_path: Path, postgres_url: str
) -> None:
    """The ages are the same whatever zone the database session is in."""
    url = f"{postgres_url}?options=-c%20TimeZone%3DAmerica%2FNew_York"
    app = create_app(_settings(tmp_path, database_url=url), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        m = api.register(prosumer=False)
        reading = api.reading(m, past_slot(3), import_Wh=4)
        assert client.post("/readings", json={"readings": [reading]}).status_code == 202
        body = client.get("/health").json()
        assert body["status"] == "ok" and 0 <= body["backlog_oldest_s"]["readings"] < 60
        late = datetime.now(UTC) - timedelta(seconds=health_route.BACKLOG_OLDEST_MAX_S + 60)
        with Session(api.services.engine) as session, session.begin():
            session.execute(update(IntakeReading).values(received_at=late))
        body = client.get("/health").json()
        assert body["problems"] == ["backlog_growing"]
        assert 360 <= body["backlog_oldest_s"]["readings"] < 420


def test_a_backlog_rising_at_every_sample_for_a_minute_is_backlog_growing(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = embedded_api
    clock = [time.monotonic()]
    monkeypatch.setattr(health_route, "_monotonic", lambda: clock[0])
    m = api.register(prosumer=False)
    first = past_slot(20)
    seen = []
    for k in range(health_route.BACKLOG_RISES + 1):
        reading = api.reading(m, first + k, import_Wh=3)
        assert api.client.post("/readings", json={"readings": [reading]}).status_code == 202
        seen.append(api.client.get("/health").json())
        clock[0] += 15
    assert [s["backlog"]["readings"] for s in seen] == list(range(1, 7))
    assert all(s["status"] == "ok" for s in seen[:-1])
    last = seen[-1]
    assert (last["status"], last["problems"]) == ("degraded", ["backlog_growing"])
    assert last["backlog_trend"] == {"window_s": 75, "samples": 6, "change": 5, "rises": 5}
    assert (
        last["why"]["backlog_growing"]
        == "the backlog rose at each of the last 5 samples, over 75 s"
    )
    api.flush()  # a fall ends the rise
    body = api.client.get("/health").json()
    assert body["backlog_trend"]["rises"] == 0 and body["status"] == "ok"


def test_the_trend_keeps_ten_minutes_of_samples_ten_seconds_apart() -> None:
    from api.metrics import BacklogTrend

    trend = BacklogTrend()
    for second in range(0, 1200, 5):
        trend.add(float(second), second // 5)
    t = trend.trend()
    assert t.samples == 61 and t.window_s == 600  # every other call kept, the oldest dropped
    assert t.rises == 60 and t.change == 120


def test_a_failing_kept_audit_is_audit_failing_but_still_200(embedded_api: Api) -> None:
    api = embedded_api
    member = api.register(prosumer=False, topup_ueur=5_000_000)
    keeper: Keeper = api.services.keeper
    assert keeper.run_once(force_audit=True).problem is None
    passed = api.client.get("/health").json()
    assert passed["status"] == "ok" and passed["audit"]["ok"] is True
    assert passed["audit"]["block"] == passed["chain"]["block"]
    values = metric_values(api)
    assert gauge(values, "voisin_audit_ok") == 1 and gauge(values, "voisin_audit_findings") == 0
    assert 0 <= gauge(values, "voisin_audit_age_seconds") < 60

    # A database changed behind the ledger's back: the mirror's top-up no longer says what
    # the chain minted, and the next audit finds it.
    with Session(api.services.engine) as session, session.begin():
        topup = session.exec(select(TopUpRecord)).one()
        topup.amount_ueur += 1
        session.add(topup)
    keeper.audit()
    r = api.client.get("/health")
    body = r.json()
    assert r.status_code == 200
    assert (body["ok"], body["status"], body["problems"]) == (True, "degraded", ["audit_failing"])
    assert body["audit"]["ok"] is False and body["audit"]["findings"] >= 1
    assert body["why"]["audit_failing"].startswith("the latest audit has")
    values = metric_values(api)
    assert gauge(values, "voisin_audit_ok") == 0 and gauge(values, "voisin_audit_findings") >= 1
    assert problem_gauges(api)["audit_failing"] == 1
    assert member.id  # the household the top-up was for


def test_an_audit_that_could_not_run_is_audit_failing_without_secrets(
    embedded_api: Api,
) -> None:
    api = embedded_api
    keeper: Keeper = api.services.keeper

    def unreachable() -> None:
        raise ConnectionError("cannot reach http://operator:s3cret-pw@10.0.0.7:8545")

    api.services.mirror = unreachable  # type: ignore[method-assign]
    assert keeper.audit() is not None
    body = api.client.get("/health").json()
    assert (body["status"], body["problems"]) == ("degraded", ["audit_failing"])
    assert body["audit"]["error"] == (
        "ApiError: the chain cannot be reached: cannot reach "
        "http://operator:[redacted]@10.0.0.7:8545; try again"
    )
    assert "findings" not in body["audit"] and "block" not in body["audit"]
    assert "s3cret-pw" not in json.dumps(body)
    assert body["why"]["audit_failing"] == "the latest audit could not run"
    values = metric_values(api)
    assert gauge(values, "voisin_audit_ok") == 0
    assert gauge(values, "voisin_audit_block") == gauge(values, "voisin_audit_findings") == -1


def test_an_audit_kept_too_long_ago_is_audit_stale(embedded_api: Api) -> None:
    api = embedded_api
    assert api.services.keeper.run_once(force_audit=True).problem is None
    long_ago = int(datetime.now(UTC).timestamp()) - health_route.AUDIT_STALE_S - 60
    with Session(api.services.engine) as session, session.begin():
        session.execute(update(KeptAudit).values(started_s=long_ago - 1, finished_s=long_ago))
    body = api.client.get("/health").json()
    assert (body["status"], body["problems"]) == ("degraded", ["audit_stale"])
    assert body["audit"]["ok"] is True and body["audit"]["age_s"] >= health_route.AUDIT_STALE_S
    values = metric_values(api)
    assert gauge(values, "voisin_audit_age_seconds") >= health_route.AUDIT_STALE_S
    assert problem_gauges(api)["audit_stale"] == 1


# ───────────────────────────── The dashboard ─────────────────────────────


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


#: PromQL identifiers that are labels Prometheus adds or that histograms carry.
_SCRAPE_LABELS = {"instance", "job", "le"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


@pytest.fixture
def exported(embedded_api: Api) -> tuple[set[str], set[str]]:
    """The series names and the label names /metrics exports, once every labelled metric has
    a sample (a reading posted, a scrape taken)."""
    api = embedded_api
    m = api.register(prosumer=False)
    api.client.post("/readings", json={"readings": [api.reading(m, past_slot(2), import_Wh=1)]})
    api.client.get("/metrics")
    names: set[str] = set()
    labels: set[str] = set(_SCRAPE_LABELS)
    for family in text_string_to_metric_families(api.client.get("/metrics").text):
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
        for sample in family.samples:
            labels |= sample.labels.keys()
    return names, labels


def check_queries(exprs: list[str], exported: tuple[set[str], set[str]]) -> set[str]:
    """Every metric and label the PromQL expressions name is exported; the metrics named."""
    names, labels = exported
    named: set[str] = set()
    for expr in exprs:
        metrics = set(re.findall(r"\bvoisin_[a-z0-9_]+", expr))
        assert metrics, expr
        assert metrics <= names, (expr, metrics - names)
        named |= metrics
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            used = {label.strip() for label in group.split(",") if label.strip()}
            assert used <= labels, (expr, used - labels)
        for matchers in re.findall(r"\{([^}]*)\}", expr):
            used = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
            assert used <= labels, (expr, used - labels)
    return named


def test_the_grafana_dashboard_queries_only_what_metrics_exports(
    exported: tuple[set[str], set[str]],
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    exprs = [variables["instance"]["definition"]]
    panel_ids = []
    for panel in _panels(dashboard["panels"]):
        panel_ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["targets"], panel["title"]
        exprs += [target["expr"] for target in panel["targets"]]
    assert len(panel_ids) == len(set(panel_ids))
    named = check_queries(exprs, exported)
    # Every metric an operator needs is on it.
    for needed in (
        "voisin_http_requests_total",
        "voisin_http_request_seconds_bucket",
        "voisin_readings_total",
        "voisin_outbox_backlog",
        "voisin_outbox_backlog_oldest_seconds",
        "voisin_chain_block",
        "voisin_chain_up",
        "voisin_database_up",
        "voisin_audit_ok",
        "voisin_health_problem",
    ):
        assert needed in named, needed


def rule_exprs(rules: str) -> list[str]:
    """The ``expr`` of each rule in a Prometheus rules file: one line, or a folded block."""
    lines = rules.splitlines()
    exprs = []
    for i, line in enumerate(lines):
        found = re.match(r"(\s*)expr: (.*)$", line)
        if found is None:
            continue
        if found[2].strip() not in (">", "|"):
            exprs.append(found[2])
            continue
        block = []
        for more in lines[i + 1 :]:
            if len(more) - len(more.lstrip()) <= len(found[1]):
                break
            block.append(more.strip())
        exprs.append(" ".join(block))
    return exprs


def test_the_alert_rules_of_the_operations_guide_query_only_what_metrics_exports(
    exported: tuple[set[str], set[str]],
) -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    section = guide.split("## Health and metrics", 1)[1].split("\n## ", 1)[0]
    [rules] = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    exprs = rule_exprs(rules)
    assert len(exprs) == rules.count("- alert: ") >= 5
    check_queries(exprs, exported)
    # Every metric the guide's tables name is exported too.
    names, _ = exported
    for metric in set(re.findall(r"`(voisin_[a-z0-9_]+)`", section)):
        assert metric in names or f"{metric}_bucket" in names, metric


def test_health_reads_a_node_s_head_while_another_thread_writes(api: Api) -> None:
    """Beside a node (here anvil), the head block is read without the chain lock, so a health
    check never waits for another worker's chain writes; the EVM inside the API process is
    used by one thread at a time, so there the check gives up on the block after 2 s."""
    import threading

    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with api.services.chain_lock:
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        answer = api.client.get("/health").json()
    finally:
        release.set()
        holder.join()
    in_process = api.services.chain.kind == "embedded" and api.services.chain.node is None
    assert api.services.gate.evm_here is in_process
    assert ("block" in answer["chain"]) is not in_process
    # This app runs no background work (background=False): it does not lead.
    assert answer["process"] == {"pid": os.getpid(), "leader": False}
