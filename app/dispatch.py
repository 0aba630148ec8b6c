"""Send work to the workers by task name: the gateway never imports the worker code."""

from __future__ import annotations

from celery import Celery

from fakewatch.jobs.model import Job
from fakewatch.jobs.names import DETECT_TASK, WEBHOOK_TASK
from fakewatch.jobs.queue import detect_message


def send_detect(queue: Celery, job: Job) -> None:
    """Queue `job` under its current task id (the worker claims the job with that id)."""
    queue.send_task(
        DETECT_TASK,
        kwargs=detect_message(job.id, job.upload_key, job.upload.sha256),
        task_id=job.task_id,
    )


def send_webhook(queue: Celery, job_id: str) -> None:
    queue.send_task(WEBHOOK_TASK, args=[job_id])
