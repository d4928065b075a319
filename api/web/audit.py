"""The operator page's audit section: ``GET /audit/report`` asked in-process, as the API
answers it, and its feeder check read into rows for the table and the chart.

The dashboard does not recompute the audit: it asks the same endpoint a script would, with the
operator's token, so the page and the API never disagree. When the endpoint is missing or
fails the page says "audit unavailable" and shows the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import ASGIApp

#: The audit recomputes everything from the chain's events; give it time, but not forever.
AUDIT_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class AuditView:
    report: dict[str, Any] | None
    problem: str | None


async def fetch(app: ASGIApp, token: str, params: dict[str, str] | None = None) -> AuditView:
    """The report as ``GET /audit/report`` answers it (``params``: ``from``, ``to``,
    ``feeder``), or why there is none."""
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://dashboard.internal", timeout=AUDIT_TIMEOUT_S
        ) as client:
            answer = await client.get(
                "/audit/report", params=params or {}, headers={"Authorization": f"Bearer {token}"}
            )
    except Exception as exc:
        return AuditView(None, f"{type(exc).__name__}: {exc}")
    if answer.status_code != 200:
        return AuditView(None, f"HTTP {answer.status_code}")
    try:
        report = answer.json()
    except ValueError:
        return AuditView(None, "not JSON")
    if not isinstance(report, dict) or not isinstance(report.get("ok"), bool):
        return AuditView(None, "unexpected answer")
    findings = report.get("findings")
    kept = [f for f in findings if isinstance(f, dict)] if isinstance(findings, list) else []
    report["findings"] = kept
    return AuditView(report, None)


@dataclass(frozen=True, slots=True)
class FeederRow:
    slot: int
    v_min_pu: float | None
    v_max_pu: float | None
    loading_percent: float | None


def _number(row: dict[str, Any], *words: str) -> float | None:
    """The first numeric field whose name contains every one of ``words``."""
    for key, value in row.items():
        name = key.lower()
        if all(w in name for w in words) and isinstance(value, int | float):
            return float(value)
    return None


def _columns(feeder: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-slot rows from series side by side (``slots`` and one list per quantity)."""
    slots = feeder["slots"]
    series = {k: v for k, v in feeder.items() if isinstance(v, list) and len(v) == len(slots)}
    return [{"slot": slot, **{k: v[i] for k, v in series.items()}} for i, slot in enumerate(slots)]


def feeder_rows(feeder: Any) -> list[FeederRow]:
    """Rows per slot from the report's ``feeder`` part: series side by side under ``slots``
    (as ``GET /audit/report?feeder=true`` answers), a list of per-slot objects, or an object
    keyed by slot. The loading is the highest of the lines' and the transformer's."""
    if isinstance(feeder, dict) and isinstance(feeder.get("slots"), list):
        if all(isinstance(s, int) for s in feeder["slots"]):
            feeder = _columns(feeder)
        else:
            feeder = feeder["slots"]
    items: list[tuple[Any, Any]] = []
    if isinstance(feeder, list):
        items = [(r.get("slot") if isinstance(r, dict) else None, r) for r in feeder]
    elif isinstance(feeder, dict):
        items = list(feeder.items())
    rows = []
    for slot, row in items:
        if not isinstance(row, dict):
            continue
        try:
            number = int(slot)
        except (TypeError, ValueError):
            continue
        loads = [v for k, v in row.items() if "load" in k.lower() and isinstance(v, int | float)]
        rows.append(
            FeederRow(
                number,
                _number(row, "min", "v"),
                _number(row, "max", "v"),
                float(max(loads)) if loads else None,
            )
        )
    return sorted(rows, key=lambda r: r.slot)


def voltage_band(feeder: Any) -> tuple[float, float]:
    """The allowed voltage band (pu): the report's limits, else EN 50160's 0.90 to 1.10."""
    limits = feeder.get("limits") if isinstance(feeder, dict) else None
    if isinstance(limits, dict):
        low, high = limits.get("v_min_pu"), limits.get("v_max_pu")
        if isinstance(low, int | float) and isinstance(high, int | float):
            return float(low), float(high)
    return 0.90, 1.10
