"""``GET /health`` (what is wrong, if anything) and ``GET /metrics`` (Prometheus).

Health tells four problems apart, each a stable code in ``problems`` with the facts behind it
in the body, and a sentence in ``why``:

- ``chain_down``: the chain node does not answer. Nothing reaches the chain, and the requests
  that write it (registration, top-up, take) answer 503.
- ``database_down``: the database does not answer. Nothing can be accepted.
- ``backlog_growing``: accepted readings or orders are not reaching the chain: the oldest
  queued one was accepted more than :data:`BACKLOG_OLDEST_MAX_S` ago, or the backlog rose at
  each of the last :data:`BACKLOG_RISES` samples, over :data:`BACKLOG_RISING_MIN_S` at least
  (a ledger the operator paused, a node that refuses, an outbox that cannot keep up).
- ``audit_failing``: the keeper's latest kept audit (:mod:`api.keeper`) found a problem or
  could not run; ``audit_stale``: no audit was kept for :data:`AUDIT_STALE_S` (nor four times
  the last run's duration, if longer), so nothing is checking the ledger.

The first two are ``down``: 503, so that a load balancer takes the server out (it cannot do
its work). The others are ``degraded``: 200, because the server still accepts readings and
orders durably and answers queries; taking it out would only stop meters from delivering.
Monitoring alerts on them (the ``voisin_health_problem`` gauge, docs/operations.md).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, text
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from api.deps import Svc
from api.keeper import REFRESH_S
from api.logs import redact
from api.models import ApiOrder, IntakeReading, KeptAudit
from api.services import Services

router = APIRouter(tags=["service"])

CHAIN_DOWN = "chain_down"
DATABASE_DOWN = "database_down"
BACKLOG_GROWING = "backlog_growing"
AUDIT_FAILING = "audit_failing"
AUDIT_STALE = "audit_stale"
#: Every problem code, in the order ``problems`` lists them.
PROBLEMS = (CHAIN_DOWN, DATABASE_DOWN, BACKLOG_GROWING, AUDIT_FAILING, AUDIT_STALE)
#: The problems that make the server ``down`` (503); any other makes it ``degraded`` (200).
DOWN = frozenset({CHAIN_DOWN, DATABASE_DOWN})

#: An item queued longer than this (seconds) is late: the outbox sends what it accepted within
#: a second or two while the chain answers, and a slot settles ``settle_after_s`` (120 s by
#: default) after it ends, so a reading queued five minutes may miss its slot's settlement.
BACKLOG_OLDEST_MAX_S = 300
#: Consecutive rises of the backlog, across samples at least ten seconds apart
#: (:data:`api.metrics.TREND_SAMPLE_EVERY_S`), that make it growing, and the seconds they must
#: span at least: readings arrive in a burst at each slot's end and leave within seconds, so a
#: backlog that rose for a minute is arriving faster than it leaves.
BACKLOG_RISES = 5
BACKLOG_RISING_MIN_S = 60.0
#: A kept audit older than this (seconds) is stale: the keeper runs one at least every
#: :data:`api.keeper.REFRESH_S` (a long run waits twice its duration before the next).
AUDIT_STALE_S = 4 * REFRESH_S
#: Longest error text /health repeats (the log has the whole of it).
ERROR_CHARS = 500


def _wall() -> float:
    return time.time()


def _monotonic() -> float:
    return time.monotonic()


def _age_s(moment: datetime | None) -> int:
    """Whole seconds since ``moment``, 0 if None. PostgreSQL's columns carry the time zone
    (api/migrations); SQLite gives the UTC time back without one."""
    if moment is None:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int((datetime.now(UTC) - moment).total_seconds()))


def _oldest(session: Session) -> dict[str, int]:
    """Seconds since the oldest queued reading was accepted, and the oldest order not yet
    posted, 0 if none (a cancellation asked of an open order has no time of its own: the
    trend sees it)."""
    reading = session.exec(
        select(func.min(IntakeReading.received_at)).where(IntakeReading.status == "queued")
    ).one()
    order = session.exec(
        select(func.min(ApiOrder.created_at)).where(ApiOrder.status == "queued")
    ).one()
    return {"readings": _age_s(reading), "orders": _age_s(order)}


def _audit(session: Session, now: float) -> dict[str, Any]:
    """The keeper's latest kept audit: whether it passed, when it finished, what it read."""
    # SQLAlchemy's select: sqlmodel's types a select of at most four columns. The report's
    # columns stay unread (the whole report is large).
    row = session.execute(
        select_columns(
            col(KeptAudit.started_s),
            col(KeptAudit.finished_s),
            col(KeptAudit.head_block),
            col(KeptAudit.ok),
            col(KeptAudit.findings),
            col(KeptAudit.problem),
        ).order_by(col(KeptAudit.id).desc())
    ).first()
    # A key without a value is left out, as ``chain.error`` is while the chain answers.
    if row is None:
        return {"kept": False}
    started, finished, block, ok, findings, problem = row
    answer: dict[str, Any] = {
        "kept": True,
        "ok": bool(ok) and problem is None,
        "finished_s": finished,
        "age_s": max(0, int(now - finished)),
        "duration_s": max(0, finished - started),
    }
    if block is not None:
        answer["block"] = block
    if problem is None:
        answer["findings"] = findings
    else:
        # /health answers anyone: no password of a URL in it, and no novel.
        answer["error"] = redact(problem)[:ERROR_CHARS]
    return answer


def status(services: Services) -> dict[str, Any]:
    """What ``GET /health`` answers (see the module), and what ``GET /metrics`` sets its gauges
    from. Takes a sample of the backlog for its trend."""
    now = _wall()
    why: dict[str, str] = {}
    database: dict[str, Any] = {"ok": True}
    backlog: dict[str, int] = {}
    oldest: dict[str, int] = {}
    audit: dict[str, Any] | None = None
    try:
        with Session(services.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            oldest = _oldest(session)
            audit = _audit(session, now)
        backlog = services.outbox.backlog()
    except Exception as exc:
        database = {"ok": False, "error": redact(f"{type(exc).__name__}: {exc}")[:ERROR_CHARS]}
        why[DATABASE_DOWN] = f"the database does not answer ({type(exc).__name__})"
    chain: dict[str, Any] = {
        "ok": services.chain_up,
        "kind": services.chain.kind,
        "chain_id": services.chain_id,
        "contract": services.client.address,
        "contract_current": services.contract_current,
    }
    # The in-process EVM is used by one thread at a time; a node answers reads beside the
    # writes, so that a health check never waits for another worker's outbox pass.
    here = services.gate.evm_here
    if not here or services.chain_lock.acquire(timeout=2):
        try:
            chain["block"] = int(services.chain.w3.eth.block_number)
            services.chain_up = True
        except Exception as exc:
            services.mark_down(exc)
        finally:
            if here:
                services.chain_lock.release()
    chain["ok"] = services.chain_up
    if not services.chain_up:
        chain["error"] = redact(services.last_chain_error or "")[:ERROR_CHARS]
        why[CHAIN_DOWN] = "the chain node does not answer"

    # What only the database knows stays null while it does not answer.
    answer: dict[str, Any] = {
        "chain": chain,
        "database": database,
        # Which process answered, and whether it runs the background work (api/cluster.py).
        "process": {"pid": os.getpid(), "leader": services.leader},
        "backlog": backlog,
        "backlog_oldest_s": None,
        "backlog_trend": None,
        "audit": None,
    }
    if database["ok"]:
        samples = services.metrics.backlog_trend
        samples.add(_monotonic(), sum(backlog.values()))
        trend = samples.trend()
        answer["backlog_oldest_s"] = oldest
        answer["backlog_trend"] = {
            "window_s": round(trend.window_s),
            "samples": trend.samples,
            "change": trend.change,
            "rises": trend.rises,
        }
        kind, age = max(oldest.items(), key=lambda item: item[1], default=("", 0))
        if age > BACKLOG_OLDEST_MAX_S:
            why[BACKLOG_GROWING] = (
                f"the oldest queued {kind[:-1]} was accepted {age} s ago "
                f"(more than {BACKLOG_OLDEST_MAX_S} s)"
            )
        elif trend.rises >= BACKLOG_RISES and trend.rising_s >= BACKLOG_RISING_MIN_S:
            why[BACKLOG_GROWING] = (
                f"the backlog rose at each of the last {trend.rises} samples, "
                f"over {round(trend.rising_s)} s"
            )
        answer["audit"] = audit
        why.update(_audit_problems(audit or {}, _monotonic() - services.metrics.started))

    problems = [code for code in PROBLEMS if code in why]
    down = any(code in DOWN for code in problems)
    return {
        "ok": not down,
        "status": "down" if down else "degraded" if problems else "ok",
        "problems": problems,
        "why": {code: why[code] for code in problems},
        **answer,
    }


def _audit_problems(audit: dict[str, Any], uptime_s: float) -> dict[str, str]:
    if not audit.get("kept"):
        if uptime_s > AUDIT_STALE_S:
            return {AUDIT_STALE: f"no audit was kept in the {round(uptime_s)} s this server ran"}
        return {}
    found: dict[str, str] = {}
    if "error" in audit:
        found[AUDIT_FAILING] = "the latest audit could not run"
    elif not audit["ok"]:
        found[AUDIT_FAILING] = f"the latest audit has {audit['findings']} finding(s)"
    stale_s = max(AUDIT_STALE_S, 4 * audit["duration_s"])
    if audit["age_s"] > stale_s:
        found[AUDIT_STALE] = f"the latest audit finished {audit['age_s']} s ago"
    return found


_HEALTHY = {
    "ok": True,
    "status": "ok",
    "problems": [],
    "why": {},
    "chain": {
        "ok": True,
        "kind": "embedded",
        "chain_id": 131277322940537,
        "contract": "0xA128F79bB6cCB8154B0d1d272dBD08715095cA44",
        "contract_current": True,
        "block": 14,
    },
    "database": {"ok": True},
    "process": {"pid": 41234, "leader": True},
    "backlog": {"readings": 0, "orders": 0},
    "backlog_oldest_s": {"readings": 0, "orders": 0},
    "backlog_trend": {"window_s": 590, "samples": 60, "change": 0, "rises": 0},
    # A new server's: the keeper has not kept an audit yet (the description says what follows).
    "audit": {"kept": False},
}


@router.get(
    "/health",
    summary="Whether the server can do its work, and what is wrong if not",
    responses={
        200: {
            "description": "`status` is `ok`, or `degraded` with `problems` among "
            "`backlog_growing`, `audit_failing` and `audit_stale` (the server still accepts "
            "and answers). `chain.chain_id` and `chain.contract` are the chain id and "
            "verifying contract of the EIP-712 domain that meters sign readings in; "
            "`chain.contract_current` is false when that contract was deployed by another "
            "release than the one answering (`voisin upgrade-contract` moves to this one's).",
            "content": {"application/json": {"example": _HEALTHY}},
        },
        503: {
            "description": "`status` is `down`: `problems` has `chain_down` or "
            "`database_down` (`chain.error` or `database.error` says why)"
        },
    },
)
def health(services: Svc) -> JSONResponse:
    """200 when the chain and the database answer (`status` `ok`, or `degraded` with its
    `problems`), else 503 (`down`); `why` says each problem in a sentence. The backlog counts
    accepted readings and orders not yet on chain; `backlog_oldest_s` is how many seconds the
    oldest of each has waited (0: none queued); `backlog_trend` sums up this process's samples
    of the backlog (`rises`: how many of the latest rose in a row). `audit` is the latest audit
    the server kept: `{"kept": false}` until the first, then `ok`, `finished_s` (unix
    seconds), `age_s`, `duration_s`, `block` (the head it read) and `findings`, or `error` for
    a run that failed. `process` names the process that answered (`pid`) and whether it leads
    the market's background work (`leader`: one of the processes `voisin serve --workers N`
    runs does). While the database does not answer, `backlog` is empty and the fields it gives
    are null."""
    answer = status(services)
    return JSONResponse(answer, 200 if answer["ok"] else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(services: Svc) -> Response:
    answer = status(services)
    m = services.metrics
    m.chain_up.set(1 if answer["chain"]["ok"] else 0)
    m.database_up.set(1 if answer["database"]["ok"] else 0)
    for kind, count in answer["backlog"].items():
        m.backlog.labels(kind).set(count)
    for kind, age in (answer["backlog_oldest_s"] or {}).items():
        m.backlog_oldest.labels(kind).set(age)
    if "block" in answer["chain"]:
        m.block.set(answer["chain"]["block"])
    audit = answer["audit"]
    if audit is not None:
        kept = audit["kept"]
        m.audit_ok.set(-1 if not kept else 1 if audit["ok"] else 0)
        m.audit_age.set(audit["age_s"] if kept else -1)
        m.audit_block.set(audit.get("block", -1))
        m.audit_findings.set(audit.get("findings", -1))
    m.health_status.set({"ok": 0, "degraded": 1, "down": 2}[answer["status"]])
    for code in PROBLEMS:
        m.health_problem.labels(code).set(1 if code in answer["problems"] else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
