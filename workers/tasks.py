"""The detect task: claim the job, check the upload, run the detector, store the outcome.

Thin on purpose: job state lives in the job store, scoring in `models.detector`. Errors in the
file or the options fail the job with a message (no retry: the same input fails the same way).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from celery import Task

from fakewatch.jobs.model import Job, JobError
from fakewatch.jobs.names import DETECT_TASK, WEBHOOK_TASK
from fakewatch.jobs.store import ClaimOutcome
from models.errors import FakewatchError
from workers import runtime
from workers.celery_app import celery, settings
from workers.guard import JobGuard, JobLost

log = logging.getLogger(__name__)
HASH_CHUNK = 1024 * 1024


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


@celery.task(name=DETECT_TASK, bind=True)
def detect(self: Task, job_id: str, upload_key: str, sha256: str) -> str:
    """Returns what happened (for logs and Flower); the job store holds the real outcome."""
    store = runtime.store()
    task_id = self.request.id
    claim = store.claim(
        job_id,
        task_id,
        runtime.holder.worker,
        max_attempts=settings.max_attempts,
        stale_after_s=settings.stale_after_s,
        retention_s=settings.retention_s,
    )
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
            detector = runtime.holder.get()
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
