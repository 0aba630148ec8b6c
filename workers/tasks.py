"""The detect task: claim the job, check the upload, run the detector, store the outcome.

Thin on purpose: job state lives in the job store, scoring in `models.detector`. Errors in the
file or the options fail the job with a message (no retry: the same input fails the same way).
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from celery import Task
from celery.exceptions import Reject

from fakewatch.jobs import JobStore
from fakewatch.jobs.model import Job, JobError
from fakewatch.jobs.names import DETECT_TASK, WEBHOOK_TASK
from fakewatch.jobs.store import Claim, ClaimOutcome
from models.errors import FakewatchError
from workers import runtime
from workers.celery_app import celery, settings
from workers.guard import STORE_ERRORS, JobGuard, JobLost

log = logging.getLogger(__name__)
HASH_CHUNK = 1024 * 1024
# Backoff while the job store is unreachable at claim time: about half a minute in all, then
# the message goes back to the queue (the sweeper re-sends it later if it is lost).
CLAIM_RETRY_PAUSES_S = (1.0, 2.0, 4.0, 8.0, 15.0)


class UploadError(FakewatchError):
    """The stored upload is missing or no longer matches the bytes the gateway received."""


def _verified_upload(upload_key: str, sha256: str) -> Path:
    path = settings.upload_path(upload_key)
    if not path.is_file():
        raise UploadError(
            f"the uploaded file is no longer stored ({upload_key}); it may have expired: "
            "submit it again"
        )
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise UploadError(
            "the stored upload does not match what was received (sha256 differs); check the "
            "shared data volume and submit the file again"
        )
    return path


def _notify(job: Job | None) -> None:
    if job is not None and job.webhook is not None:
        celery.send_task(WEBHOOK_TASK, args=[job.id])


def _claim_or_requeue(store: JobStore, job_id: str, task_id: str) -> Claim:
    """Claim the job, riding out a short job-store outage; past that, hand the message back to
    the broker (never acknowledge a message whose job was not claimed)."""
    pauses = iter(CLAIM_RETRY_PAUSES_S)
    while True:
        try:
            return store.claim(
                job_id,
                task_id,
                runtime.holder.worker,
                max_attempts=settings.max_attempts,
                stale_after_s=settings.stale_after_s,
                retention_s=settings.retention_s,
            )
        except STORE_ERRORS as error:
            pause = next(pauses, None)
            if pause is None:
                log.warning("job %s: job store unreachable, message requeued: %s", job_id, error)
                raise Reject(f"job store unreachable: {error}", requeue=True) from error
            time.sleep(pause)


@celery.task(name=DETECT_TASK, bind=True)
def detect(self: Task, job_id: str, upload_key: str, sha256: str) -> str:
    """Returns what happened (for logs and Flower); the job store holds the real outcome."""
    store = runtime.store()
    task_id = self.request.id
    try:
        detector = runtime.holder.get()
    except runtime.DetectorUnavailable as error:
        # Not the file's fault: leave the job queued and the message to a worker that can.
        raise Reject(str(error), requeue=True) from error
    claim = _claim_or_requeue(store, job_id, task_id)
    if claim.outcome is ClaimOutcome.exhausted:
        log.warning("job %s failed: attempts exhausted", job_id)
        _notify(claim.job)
        return claim.outcome.value
    if claim.outcome is ClaimOutcome.skipped or claim.job is None:
        return ClaimOutcome.skipped.value
    job = claim.job

    def fail(error: JobError) -> None:
        _notify(store.fail(job_id, error, settings.retention_s, task_id=task_id))

    try:
        with JobGuard(store, job_id, task_id, settings.heartbeat_interval_s) as guard:
            path = _verified_upload(upload_key, sha256)
            with guard.deadline_of(settings.job_deadline_s):
                result = detector.detect(path, job.options, progress=guard.progress)
    except JobLost:
        log.info("job %s was deleted or taken over; stopped", job_id)
        return "lost"
    except FakewatchError as error:
        fail(JobError(type=type(error).__name__, message=str(error)))
        return "failed"
    except Exception as error:
        log.exception("job %s crashed", job_id)
        fail(JobError(type="InternalError", message=f"the worker failed unexpectedly: {error}"))
        raise
    finished = store.succeed(job_id, task_id, result, settings.retention_s)
    if finished is None:
        return "lost"
    store.add_stage_timings(result.timings)
    _notify(finished)
    return "succeeded"
