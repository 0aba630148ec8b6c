"""The Celery side of jobs, shared by the gateway (which sends by name) and the workers.

Messages carry only a job id, the upload's key under the data directory and its sha256: never
the bytes. Delivery settings follow REFERENCE.md §7: late acks with one message prefetched, so a
worker killed mid-job leaves its message to be delivered again.
"""

from __future__ import annotations

from celery import Celery

from fakewatch.jobs.names import DETECT_QUEUE, DETECT_TASK, WEBHOOK_QUEUE, WEBHOOK_TASK
from fakewatch.settings import Settings

EMBEDDED_POLL_S = 0.5  # filesystem broker: how often a worker looks for new messages


def make_celery(settings: Settings, name: str) -> Celery:
    """A Celery app for these settings; the gateway and the workers build the same one."""
    app = Celery(name, broker=settings.broker, backend=settings.backend)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A broker blip must not cancel running detections: cancelled, they are redelivered and
        # charged an attempt though the file was fine. Left running, each finishes and records
        # its result; its message, unacknowledgeable on the lost connection, comes back after
        # the visibility timeout and finds the job done.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_routes={
            DETECT_TASK: {"queue": DETECT_QUEUE},
            WEBHOOK_TASK: {"queue": WEBHOOK_QUEUE},
        },
        task_default_queue=DETECT_QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=settings.retention_s,
        broker_transport_options=settings.broker_transport_options(),
        result_backend_transport_options=settings.backend_transport_options(),
        broker_connection_retry_on_startup=True,
    )
    if settings.embedded:
        app.conf.broker_polling_interval = EMBEDDED_POLL_S
    return app


def detect_message(job_id: str, upload_key: str, sha256: str) -> dict[str, str]:
    """The detect task's keyword arguments: where the upload is and what its bytes hash to."""
    return {"job_id": job_id, "upload_key": upload_key, "sha256": sha256}
