"""The gateway's housekeeping loop: expire old jobs, and rescue jobs that stopped progressing.

A worker killed mid-job stops its heartbeat. Redis would redeliver the unacknowledged message
only after the visibility timeout, and the filesystem broker never does, so the gateway (the
owner of job state) requeues such jobs itself; the attempt counter stops a poison video. A
queued job whose message never left or was lost (broker down, flushed, failed over) is sent
again, and fails with a reason when no worker takes it: every accepted job ends on its own.
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
from fakewatch.jobs import Job, queue_timeouts
from fakewatch.jobs.uploads import delete_upload

log = logging.getLogger(__name__)
SWEEP_ERRORS = (redis.RedisError, sqlite3.Error, OSError, KombuError)


@dataclass(frozen=True)
class SweepReport:
    expired: int
    purged: int
    requeued: int
    resent: int
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
        send_queued(services, job)
    resent, timed_out = store.reconcile_queued(queue_timeouts(settings), settings.retention_s)
    for job in resent:
        log.warning("job %s: no worker took it, sent again (send %d)", job.id, job.sends + 1)
        send_queued(services, job)
    for job in (*failed, *timed_out):
        log.warning("job %s failed: %s", job.id, job.error)
        if job.webhook is not None:
            send_webhook(services.queue, job.id)
    return SweepReport(
        len(expired), len(purged), len(requeued), len(resent), len(failed) + len(timed_out)
    )


def send_queued(services: Services, job: Job) -> bool:
    """Send a queued job's message and record it; a broker outage leaves it to the next sweep."""
    try:
        send_detect(services.queue, job)
    except (KombuError, OSError) as error:
        log.warning("job %s: broker unreachable, will send again: %s", job.id, error)
        return False
    return services.store.mark_sent(job.id, job.task_id)


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
