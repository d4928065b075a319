"""Prometheus metrics of one API process (``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
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
        self.block = Gauge("voisin_chain_block", "Latest block number seen", registry=r)
