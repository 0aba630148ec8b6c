"""The gateway's housekeeping loop: expire old jobs, and rescue jobs whose worker went silent.

A worker killed mid-job stops its heartbeat. Redis would redeliver the unacknowledged message
only after the visibility timeout, and the filesystem broker never does, so the gateway (the
owner of job state) requeues such jobs itself; the attempt counter stops a poison video.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass

import redis
from kombu.exceptions import KombuError
from starlette.concurrency import run_in_threadpool

from app.dispatch import send_detect, send_webhook
from app.services import Services
from fakewatch.jobs.uploads import delete_upload

log = logging.getLogger(__name__)
SWEEP_ERRORS = (redis.RedisError, sqlite3.Error, OSError, KombuError)


@dataclass(frozen=True)
class SweepReport:
    expired: int
    purged: int
    requeued: int
    failed: int


def sweep_once(services: Services) -> SweepReport:
    settings, store = services.settings, services.store
    expired, purged = store.expire_due(settings.retention_s)
    for job in (*expired, *purged):
        delete_upload(settings, job.upload_key)
    requeued, failed = store.requeue_stale(
        stale_after_s=settings.stale_after_s,
        max_attempts=settings.max_attempts,
        retention_s=settings.retention_s,
    )
    for job in requeued:
        log.warning("job %s: worker went silent, requeued (attempt %d)", job.id, job.attempts)
        send_detect(services.queue, job)
    for job in failed:
        log.warning("job %s: failed after %d attempts", job.id, job.attempts)
        if job.webhook is not None:
            send_webhook(services.queue, job.id)
    return SweepReport(len(expired), len(purged), len(requeued), len(failed))


async def run_sweeper(services: Services, stop: asyncio.Event) -> None:
    """Sweep every `sweep_interval_s` until `stop` is set; a backend outage only delays it."""
    while not stop.is_set():
        try:
            await run_in_threadpool(sweep_once, services)
        except SWEEP_ERRORS as error:
            log.warning("sweep skipped, a backend is unreachable: %s", error)
        try:
            await asyncio.wait_for(stop.wait(), timeout=services.settings.sweep_interval_s)
        except TimeoutError:
            continue
