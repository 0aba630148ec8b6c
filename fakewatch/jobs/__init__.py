"""Jobs shared by the gateway and the workers: the record, its store, and the task queue names.

The gateway owns job state (`store`); Celery only carries "job X is ready" messages (`queue`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fakewatch.jobs.model import Job, JobError, JobStatus, JobSummary, JobView
from fakewatch.jobs.store import JobStore, QueueTimeouts
from fakewatch.settings import Settings
from models.errors import ConfigError

__all__ = [
    "Job",
    "JobError",
    "JobStatus",
    "JobStore",
    "JobSummary",
    "JobView",
    "open_store",
    "queue_timeouts",
]


def open_store(settings: Settings) -> JobStore:
    """The job store the settings name: SQLite (embedded default) or Redis (production)."""
    url = settings.jobstore
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from fakewatch.jobs.sqlite_store import SqliteJobStore

        return SqliteJobStore(Path(url.removeprefix("sqlite:///")))
    if scheme in ("redis", "rediss"):
        from fakewatch.jobs.redis_store import RedisJobStore

        return RedisJobStore(url, prefix=settings.jobstore_key_prefix)
    raise ConfigError(
        f"unsupported job store URL scheme {scheme!r}: use sqlite:///path/jobs.sqlite or "
        "redis://host:6379/0"
    )


def queue_timeouts(settings: Settings) -> QueueTimeouts:
    """When the settings consider a job stuck (see `JobStore.reconcile_queued`)."""
    return QueueTimeouts(
        queue_timeout_s=settings.queue_timeout_s,
        max_sends=settings.max_queue_sends,
        stale_after_s=settings.stale_after_s,
    )
