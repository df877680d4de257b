"""Prometheus metrics of the running service (PyPI ``prometheus-client``), served at ``/metrics``.

- ``conventions_messages_total{channel,outcome}``: messages processed, by how they came in and
  what became of them;
- ``conventions_message_processing_seconds``: time to process one message (histogram);
- ``conventions_outbox_items{status}``: outgoing mail by state, read from the store at each scrape;
- ``conventions_imap_connected`` and ``conventions_imap_last_check_timestamp_seconds``: the IMAP
  watcher's connection and its last successful look at the mailbox;
- ``conventions_scheduler_runs_total{job}``: scheduler passes that ran a job.

Counters live in one registry per service (never the global one), so tests and several services
in one process do not mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from intake.pipeline.journey import Result

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StateCollector(Collector):
    """Gauges read when scraped: the outbox by status, the IMAP watcher's state."""

    def __init__(self, outbox: Callable[[], Mapping[str, int]], imap: Callable[[], Mapping[str, Any] | None]) -> None:
        self.outbox, self.imap = outbox, imap

    def describe(self) -> list[Metric]:
        return []  # nothing is read from the store when the collector is registered, only when scraped

    def collect(self) -> Iterator[Metric]:
        items = GaugeMetricFamily("conventions_outbox_items", "Outgoing mail by state", labels=["status"])
        for status, count in sorted(self.outbox().items()):
            items.add_metric([status], count)
        yield items
        state = self.imap()
        if state is not None:
            yield GaugeMetricFamily("conventions_imap_connected", "1 when the IMAP watcher is connected",
                                    value=1.0 if state.get("connected") else 0.0)
            last = state.get("last_sync_at")
            yield GaugeMetricFamily("conventions_imap_last_check_timestamp_seconds",
                                    "When the IMAP watcher last looked at the mailbox (Unix time)",
                                    value=datetime.fromisoformat(last).timestamp() if last else 0.0)


class Metrics:
    def __init__(self, outbox: Callable[[], Mapping[str, int]],
                 imap: Callable[[], Mapping[str, Any] | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter("conventions_messages", "Messages processed", ["channel", "outcome"],
                                registry=self.registry)
        self.processing = Histogram("conventions_message_processing_seconds", "Time to process one message",
                                    buckets=BUCKETS, registry=self.registry)
        self.scheduler_runs = Counter("conventions_scheduler_runs", "Scheduler passes that ran a job", ["job"],
                                      registry=self.registry)
        self.registry.register(_StateCollector(outbox, imap))

    def observe(self, result: Result, seconds: float) -> None:
        self.messages.labels(result.channel or "unknown", result.outcome).inc()
        self.processing.observe(seconds)

    def scheduler_ran(self, job: str) -> None:
        self.scheduler_runs.labels(job).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
