"""Readiness checks that cannot wedge the gateway: own connections, one at a time, cached.

A readiness probe that borrows the broker pool the routes use can exhaust it (a worker ping holds
one connection while it waits for another), and then `POST /detect` hangs behind health checks.
So the probe has its own job store client and its own Celery app (its own pools), runs on its
own single thread, at most once per `CACHE_S` however many callers ask, and a caller waits at
most `TIMEOUT_S` for it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis
from kombu.exceptions import KombuError

from fakewatch.jobs import open_store
from fakewatch.jobs.queue import make_celery
from fakewatch.settings import Settings

log = logging.getLogger(__name__)
PROBE_NAME = "fakewatch-readiness"
CACHE_S = 2.0  # a burst of probes costs one check per this long; load balancers poll slower
TIMEOUT_S = 3.0  # a caller never waits longer; the check then counts as failed
PING_TIMEOUT_S = 1.0  # how long the check waits for a worker's reply
BROKER_RETRIES = 1
UNREACHABLE = "unreachable"
OK = "ok"


@dataclass(frozen=True)
class ReadinessReport:
    """One check's outcome; `problems` and `workers` name internals (shown only to a key)."""

    job_store: str
    broker: str
    workers: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return self.job_store == OK and self.broker == OK and bool(self.workers)


class ReadinessProbe:
    """Checks the job store, the broker and the workers on connections nobody else uses."""

    def __init__(self, settings: Settings) -> None:
        self._store = open_store(settings)
        self._queue = make_celery(settings, PROBE_NAME)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")
        self._checked_at = -CACHE_S
        self._report: ReadinessReport | None = None
        self._running: asyncio.Future[ReadinessReport] | None = None

    async def report(self) -> ReadinessReport:
        """The latest report: cached for `CACHE_S`, shared by concurrent callers, bounded."""
        if self._report is not None and time.monotonic() - self._checked_at < CACHE_S:
            return self._report
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().run_in_executor(self._executor, self._check)
        try:
            report = await asyncio.wait_for(asyncio.shield(self._running), TIMEOUT_S)
        except TimeoutError:
            report = ReadinessReport(
                UNREACHABLE, UNREACHABLE, (), (f"the checks took longer than {TIMEOUT_S} s",)
            )
        self._report, self._checked_at = report, time.monotonic()
        return report

    def _check(self) -> ReadinessReport:
        problems: list[str] = []
        store = broker = OK
        try:
            self._store.ping()
        except (redis.RedisError, sqlite3.Error, OSError) as error:
            store = UNREACHABLE
            problems.append(f"job store: {error}")
        try:
            with self._queue.connection_for_write() as connection:
                connection.ensure_connection(max_retries=BROKER_RETRIES)
            replies = self._queue.control.ping(timeout=PING_TIMEOUT_S, limit=1) or []
        except (KombuError, OSError) as error:
            broker, replies = UNREACHABLE, []
            problems.append(f"broker: {error}")
        workers = tuple(sorted(name for reply in replies for name in reply))
        if not workers and broker == OK:
            problems.append(f"no worker answered a ping within {PING_TIMEOUT_S} s")
        if problems:
            log.warning("not ready: %s", "; ".join(problems))
        return ReadinessReport(store, broker, workers, tuple(problems))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._store.close()
        self._queue.close()
