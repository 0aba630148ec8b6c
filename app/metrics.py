"""Prometheus metrics: HTTP requests here; jobs, queue depth and stage durations from the store.

Job and stage figures are read from the shared job store at scrape time, so every gateway
replica reports the same totals and a restart loses nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator

import redis
from celery import Celery
from kombu.exceptions import KombuError
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fakewatch.jobs import JobStore
from fakewatch.jobs.names import WORKER_QUEUES

log = logging.getLogger(__name__)
SCRAPE_ERRORS = (redis.RedisError, sqlite3.Error, OSError, KombuError)


def queue_depth(queue: Celery, name: str) -> int:
    """Messages waiting in a broker queue (Redis list length, or files in the folder)."""
    with queue.connection_for_read() as connection:
        return int(connection.default_channel.queue_declare(queue=name).message_count)


class JobCollector(Collector):
    def __init__(self, store: JobStore, queue: Celery) -> None:
        self.store = store
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("fakewatch_backends_up", "1 when the job store and broker answered")
        try:
            jobs = GaugeMetricFamily(
                "fakewatch_jobs", "Jobs in the store by status", labels=["status"]
            )
            for status, count in self.store.count_by_status().items():
                jobs.add_metric([status.value], count)
            stages = SummaryMetricFamily(
                "fakewatch_stage_seconds",
                "Seconds per detector stage over finished jobs",
                labels=["stage"],
            )
            for stage, (total, count) in sorted(self.store.stage_totals().items()):
                stages.add_metric([stage], count_value=count, sum_value=total)
            depth = GaugeMetricFamily(
                "fakewatch_queue_depth", "Messages waiting in each queue", labels=["queue"]
            )
            for name in WORKER_QUEUES:
                depth.add_metric([name], queue_depth(self.queue, name))
        except SCRAPE_ERRORS as error:
            log.warning("metrics scrape could not reach a backend: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, jobs, stages, depth)


class Metrics:
    """A registry per app, so several apps (tests) never collide on metric names."""

    def __init__(self, store: JobStore, queue: Celery) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fakewatch_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fakewatch_http_request_seconds",
            "HTTP request duration",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(JobCollector(store, queue))


class MetricsMiddleware:
    """Counts every request by its route template (not its path: ids would explode labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            metrics: Metrics = scope["app"].state.metrics
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            metrics.requests.labels(method, route, str(status)).inc()
            metrics.latency.labels(method, route).observe(time.perf_counter() - started)
