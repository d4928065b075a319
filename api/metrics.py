"""Prometheus metrics of one API process (``GET /metrics``), and the backlog's samples behind
its trend.

The counters and the latency histogram move as requests are served (:class:`api.app.Metrics`);
the gauges are set from :func:`api.routes.health.status` on each scrape, so they say what
``GET /health`` would say at that moment. Every metric, its labels and its meaning are listed
in docs/operations.md ("Health and metrics").
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Seconds at least between two samples of the backlog (health checks and scrapes both take
#: one; a load balancer polling every second must not fill the window with near duplicates).
TREND_SAMPLE_EVERY_S = 10.0
#: Seconds of samples kept: at most TREND_WINDOW_S / TREND_SAMPLE_EVERY_S = 60 of them.
TREND_WINDOW_S = 600.0


@dataclass(frozen=True)
class Trend:
    """The backlog over the kept samples: how long they span, how many there are, how much
    the backlog changed from the first to the last, and how many of the last samples in a
    row each rose above the one before (0: the latest did not rise), over how many seconds."""

    window_s: float
    samples: int
    change: int
    rises: int
    rising_s: float


class BacklogTrend:
    """Samples of the outbox backlog (accepted readings and orders not yet on chain) taken by
    this process, at most one per :data:`TREND_SAMPLE_EVERY_S`, over :data:`TREND_WINDOW_S`."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> None:
        """Record ``total`` at monotonic second ``now`` (ignored if too soon after the last)."""
        if self._samples and now - self._samples[-1][0] < TREND_SAMPLE_EVERY_S:
            return
        self._samples.append((now, total))
        while now - self._samples[0][0] > TREND_WINDOW_S:
            self._samples.popleft()

    def trend(self) -> Trend:
        samples = list(self._samples)
        if not samples:
            return Trend(0.0, 0, 0, 0, 0.0)
        rises = 0
        for i in range(len(samples) - 1, 0, -1):
            if samples[i][1] <= samples[i - 1][1]:
                break
            rises += 1
        last = samples[-1][0]
        return Trend(
            window_s=last - samples[0][0],
            samples=len(samples),
            change=samples[-1][1] - samples[0][1],
            rises=rises,
            rising_s=last - samples[-1 - rises][0],
        )


class Metrics:
    def __init__(self) -> None:
        #: When this process started serving (monotonic seconds).
        self.started = time.monotonic()
        self.backlog_trend = BacklogTrend()
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "voisin_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "voisin_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.readings = Counter(
            "voisin_readings", "Readings received, by verdict", ["verdict"], registry=r
        )
        self.chain_up = Gauge("voisin_chain_up", "1 if the chain answers", registry=r)
        self.database_up = Gauge("voisin_database_up", "1 if the database answers", registry=r)
        self.backlog = Gauge(
            "voisin_outbox_backlog", "Accepted items not yet on chain", ["kind"], registry=r
        )
        self.backlog_oldest = Gauge(
            "voisin_outbox_backlog_oldest_seconds",
            "Age of the oldest queued item of the kind (0: none queued)",
            ["kind"],
            registry=r,
        )
        self.block = Gauge("voisin_chain_block", "Latest block number seen", registry=r)
        self.audit_ok = Gauge(
            "voisin_audit_ok",
            "1 if the latest kept audit passed, 0 if it found a problem or failed to run, "
            "-1 if none is kept yet",
            registry=r,
        )
        self.audit_age = Gauge(
            "voisin_audit_age_seconds",
            "Seconds since the latest kept audit finished (-1: none kept yet)",
            registry=r,
        )
        self.audit_block = Gauge(
            "voisin_audit_block",
            "Chain head block the latest kept audit read (-1: none, or the run failed)",
            registry=r,
        )
        self.audit_findings = Gauge(
            "voisin_audit_findings",
            "Findings of the latest kept audit (-1: none, or the run failed)",
            registry=r,
        )
        self.health_status = Gauge(
            "voisin_health_status",
            "What GET /health says: 0 ok, 1 degraded (200), 2 down (503)",
            registry=r,
        )
        self.health_problem = Gauge(
            "voisin_health_problem",
            "1 if GET /health reports the problem, else 0",
            ["problem"],
            registry=r,
        )
        # Nothing is known of the audit before the first scrape that reads the database.
        for unknown in (self.audit_ok, self.audit_age, self.audit_block, self.audit_findings):
            unknown.set(-1)
