"""`SchedulerMetrics`: the scheduler's Prometheus metrics, on a registry of its own.

Per card (labels `node`, `vendor`, `device`, `type`), read from the usage cache at scrape time:
`hami_device_slots_allocated` / `_total`, `hami_device_memory_allocated_mib` / `_total_mib`,
`hami_device_cores_allocated` / `_total`, and `hami_device_healthy`. Per verb: the
`hami_scheduler_filter_duration_seconds` and `hami_scheduler_bind_duration_seconds`
histograms and `hami_scheduler_failures_total{verb, reason}` with a small fixed set of reasons.
Service state: `hami_scheduler_leader`, `hami_scheduler_cache_synced`,
`hami_scheduler_handshakes_written_total`, `hami_scheduler_webhook_requests_total{result}`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hami_core.scheduling.cache import UsageCache

__all__ = ["FAILURE_REASONS", "SchedulerMetrics"]

FAILURE_REASONS = (
    "bad_request",
    "unsynced",
    "request",
    "no_fit",
    "patch",
    "pod",
    "decision",
    "lock_contention",
    "lock",
    "apiserver",
    "internal",
)
"""Every `reason` label value `hami_scheduler_failures_total` uses."""

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _CardCollector(Collector):
    """Reads every card's totals and usage from the cache at scrape time."""

    def __init__(self, cache: UsageCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        labels = ["node", "vendor", "device", "type"]
        families = {
            name: GaugeMetricFamily(name, doc, labels=labels)
            for name, doc in (
                ("hami_device_slots_allocated", "Sharers counted on the card"),
                ("hami_device_slots_total", "How many sharers the card takes"),
                ("hami_device_memory_allocated_mib", "Memory allocated on the card, MiB"),
                ("hami_device_memory_total_mib", "Memory of the card as registered, MiB"),
                ("hami_device_cores_allocated", "Core units allocated on the card"),
                ("hami_device_cores_total", "Core units of the card as registered"),
                ("hami_device_healthy", "1 when the card is offered for new work"),
            )
        }
        cache = self._cache
        with cache.locked():
            for name in cache.node_names():
                state = cache.node(name)
                if state is None:
                    continue
                for vendor, cards in state.vendors.items():
                    offered = vendor not in state.unhealthy
                    for d in cards.devices:
                        values = [name, vendor, d.id, d.type]
                        families["hami_device_slots_allocated"].add_metric(values, d.used)
                        families["hami_device_slots_total"].add_metric(values, d.count)
                        families["hami_device_memory_allocated_mib"].add_metric(values, d.usedmem)
                        families["hami_device_memory_total_mib"].add_metric(values, d.totalmem)
                        families["hami_device_cores_allocated"].add_metric(values, d.usedcores)
                        families["hami_device_cores_total"].add_metric(values, d.totalcore)
                        families["hami_device_healthy"].add_metric(
                            values, 1.0 if offered and d.health else 0.0
                        )
        yield from families.values()


class SchedulerMetrics:
    """The scheduler's metrics on its own `CollectorRegistry` (never the global one)."""

    def __init__(self, cache: UsageCache | None = None) -> None:
        """Metrics for one scheduler; with `cache`, per-card gauges are read from it."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.filter_seconds = Histogram(
            "hami_scheduler_filter_duration_seconds",
            "Time to answer one /filter call",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bind_seconds = Histogram(
            "hami_scheduler_bind_duration_seconds",
            "Time to answer one /bind call",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "hami_scheduler_failures",
            "Filter, bind and webhook calls that did not succeed, by reason",
            ["verb", "reason"],
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            "hami_scheduler_webhook_requests",
            "Admission reviews answered, by result (allowed, patched, denied)",
            ["result"],
            registry=self.registry,
        )
        self.handshakes_written = Counter(
            "hami_scheduler_handshakes_written",
            "Requesting_ handshake stamps written to nodes by this replica",
            registry=self.registry,
        )
        self.capacity_checks = Counter(
            "hami_scheduler_bind_capacity_checks",
            "Capacity checks under the node lock, by what the bound pods were read from "
            "(cache: the watch had shown this bind's own write; list: a pod LIST)",
            ["source"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "hami_scheduler_leader", "1 while this replica holds the lease", registry=self.registry
        )
        self.cache_synced = Gauge(
            "hami_scheduler_cache_synced",
            "1 once the node and pod caches are filled",
            registry=self.registry,
        )
        if cache is not None:
            self.registry.register(_CardCollector(cache))

    def fail(self, verb: str, reason: str) -> None:
        """Count one failed call of `verb` for `reason` (one of `FAILURE_REASONS`)."""
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        self.failures.labels(verb=verb, reason=reason).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
