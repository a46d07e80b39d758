"""Prometheus metrics, in a registry of the app's own (no process-global state)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's key metrics: success rate, latency, errors by integration, cache, breaker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.executions = Counter(
            "adaptor_executions_total",
            "Executions by integration and outcome (`ok` or the error code).",
            ["integration_id", "outcome"],
            registry=self.registry,
        )
        self.execution_seconds = Histogram(
            "adaptor_execution_duration_seconds",
            "Execution time seen by the caller.",
            ["integration_id"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_retries = Counter(
            "adaptor_upstream_retries_total",
            "Upstream retries.",
            ["integration_id"],
            registry=self.registry,
        )
        self.cache = Counter(
            "adaptor_cache_lookups_total",
            "Response cache lookups by result (hit, miss).",
            ["result"],
            registry=self.registry,
        )
        self.breaker_trips = Counter(
            "adaptor_circuit_breaker_trips_total",
            "Times a circuit opened.",
            ["integration_id"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "adaptor_upstream_auth_failures_total",
            "Upstream authentication failures.",
            ["integration_id"],
            registry=self.registry,
        )
        self.log_queue = Gauge(
            "adaptor_execution_log_queue",
            "Execution logs waiting to be written.",
            registry=self.registry,
        )
        self.outbox_queue = Gauge(
            "adaptor_outbox_queue",
            "Events emitted off a transaction (circuit changes) not yet written.",
            registry=self.registry,
        )
        self.circuit_open = Gauge(
            "adaptor_circuit_open",
            "1 while this process saw the integration's circuit open (set when it opens or "
            "closes here).",
            ["integration_id"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "adaptor_rate_limited_total",
            "Calls our own rate limits kept from the upstream.",
            ["integration_id"],
            registry=self.registry,
        )
        self.token_refreshes = Counter(
            "adaptor_token_refreshes_total",
            "Upstream access tokens fetched or refreshed, by result (ok, failed).",
            ["integration_id", "result"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "adaptor_events_published_total",
            "Events the relay published to EVENTS_URL.",
            registry=self.registry,
        )
        self.event_publish_failures = Counter(
            "adaptor_event_publish_failures_total",
            "Relay cycles that failed (sink or database unreachable); the events are retried.",
            registry=self.registry,
        )
        self.events_pending = Gauge(
            "adaptor_events_pending",
            "Events written but not yet published (counted by the relay's leader).",
            registry=self.registry,
        )
        self.event_lag = Gauge(
            "adaptor_event_lag_seconds",
            "Age of the oldest event the relay's leader is publishing; 0 when caught up.",
            registry=self.registry,
        )
        self.event_relay_leader = Gauge(
            "adaptor_event_relay_leader",
            "1 while this process holds the relay lease.",
            registry=self.registry,
        )

        self.open_circuits: set[str] = set()
        """Integrations whose `adaptor_circuit_open` this process has at 1."""
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._cache_hit = self.cache.labels("hit")
        self._cache_miss = self.cache.labels("miss")

    def cache_lookup(self, *, hit: bool) -> None:
        """Count one response cache lookup."""
        (self._cache_hit if hit else self._cache_miss).inc()

    def executed(self, integration_id: str, outcome: str, seconds: float) -> None:
        """Count one execution and observe its time (children cached: this is per request)."""
        key = (integration_id, outcome)
        children = self._children.get(key)
        if children is None:
            children = (
                self.executions.labels(integration_id, outcome),
                self.execution_seconds.labels(integration_id),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def circuit(self, integration_id: str, *, open: bool) -> None:
        """Set the open-circuit gauge: on a change seen here, and when a call is let through a
        closed circuit that this process last saw open (another replica closed it)."""
        if open:
            self.open_circuits.add(integration_id)
        else:
            self.open_circuits.discard(integration_id)
        self.circuit_open.labels(integration_id).set(1 if open else 0)

    def token_refreshed(self, integration_id: str, *, ok: bool) -> None:
        """Count one token fetch or refresh (for auth handlers, passed as a callback)."""
        self.token_refreshes.labels(integration_id, "ok" if ok else "failed").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
