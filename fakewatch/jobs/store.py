"""The job store: the gateway's own record of every job, shared with the workers.

Job state never comes from Celery (which reads PENDING for any id it does not know). Backends
provide a few atomic primitives; the state machine is written once here on top of them:

    queued -> running -> succeeded | failed        (a worker claims, reports, finishes)
    running -> queued                              (worker went silent; the sweeper requeues)
    queued -> queued | failed                      (no worker took it: re-sent, then failed)
    any but running -> expired -> (record purged)  (retention passed)
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from fakewatch.jobs.model import (
    FINISHED,
    Job,
    JobError,
    JobStatus,
    Progress,
    WebhookDelivery,
    expiry,
    new_id,
    now,
)
from models.schema import DetectionResult, ModelInfo, ThresholdPreset

Mutation = Callable[[Job], Job | None]


class WorkerModels(BaseModel):
    """What a worker loaded, written when its detector is ready; `GET /models` serves it."""

    worker: str
    models: list[ModelInfo]
    presets: list[ThresholdPreset] = Field(
        default=[],
        description="Threshold presets of the loaded ensemble with their measured rates.",
    )
    presets_aggregation: str | None = Field(
        default=None,
        description="Aggregation policy the presets' rates were measured under; a request scored "
        "under another policy is judged at the same thresholds, but those rates do not hold for it.",
    )
    aggregation: str | None = Field(
        default=None,
        description="Aggregation policy a request that names none is scored with (null in records "
        "of older workers).",
    )
    loaded_at: datetime
    registry_sha256: str | None = Field(
        default=None,
        description="sha256 of the model registry the worker loaded: the weights' identity, "
        "part of every dedup key so a model upgrade never serves old results.",
    )
    error: str | None = Field(
        default=None, description="Why this worker could not load its models (it takes no jobs)."
    )


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    total: int


class InFlightLimit(Exception):
    """The owner already has as many jobs queued or running as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} jobs already queued or running for this client")
        self.limit = limit


class ClaimOutcome(StrEnum):
    claimed = "claimed"
    skipped = "skipped"  # gone, finished, or another live worker holds it
    exhausted = "exhausted"  # workers died on it too often: now failed


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    job: Job | None


def attempts_exhausted(attempts: int) -> JobError:
    return JobError(
        type="AttemptsExhausted",
        message=(
            f"a worker stopped {attempts} time(s) while processing this file (crashed, ran out of "
            "memory or was killed), so it was not retried again; if the file plays elsewhere, "
            "try a shorter clip or fewer frames"
        ),
    )


@dataclass(frozen=True)
class QueueTimeouts:
    """When a job stopped progressing: sent but not taken within `queue_timeout_s`, never sent
    within `unsent_grace_s`, or running with a heartbeat older than `stale_after_s`."""

    queue_timeout_s: float
    max_sends: int
    stale_after_s: float
    unsent_grace_s: float = 30.0  # a gateway sends right after storing, retrying a few seconds


def queue_timeout(sends: int, timeouts: QueueTimeouts) -> JobError:
    return JobError(
        type="QueueTimeout",
        message=(
            f"no worker started this job within {timeouts.queue_timeout_s:.0f} s of each of its "
            f"{sends} sends to the queue; the workers are down or overloaded: submit it again "
            "later"
        ),
    )


class JobStore(abc.ABC):
    """Atomic primitives per backend, and the job state machine built on them."""

    # Backend primitives ------------------------------------------------------------------

    @abc.abstractmethod
    def create(
        self,
        job: Job,
        in_flight_limit: int | None = None,
        supersede: Mutation | None = None,
    ) -> tuple[Job, bool]:
        """Insert `job`, unless a reusable job has its dedup key: then return that one, False.

        `supersede(existing)` may instead return a replacement for the existing job (one that
        is no longer reusable), written in the same transaction as `job`. Raises InFlightLimit,
        atomically with the insert, when `job.owner` already has `in_flight_limit` jobs queued
        or running.
        """

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def mutate(self, job_id: str, change: Mutation) -> tuple[Job | None, bool]:
        """Apply `change` atomically; it returns the new job or None to leave it alone.

        Returns (job after, whether it changed); (None, False) when the job does not exist.
        """

    @abc.abstractmethod
    def delete(self, job_id: str) -> Job | None:
        """Remove the record; returns what was removed."""

    @abc.abstractmethod
    def list(
        self,
        status: JobStatus | None = None,
        limit: int = 20,
        offset: int = 0,
        owner: str | None = None,
    ) -> JobPage:
        """Newest first; only `owner`'s jobs when given (None: everyone's, for housekeeping)."""

    @abc.abstractmethod
    def due_ids(self, moment: datetime) -> list[str]:
        """Ids of jobs whose `expires_at` has passed."""

    @abc.abstractmethod
    def count_by_status(self) -> dict[JobStatus, int]: ...

    @abc.abstractmethod
    def add_stage_timings(self, timings: dict[str, float]) -> None:
        """Add one finished job's seconds per stage to the running totals."""

    @abc.abstractmethod
    def stage_totals(self) -> dict[str, tuple[float, int]]:
        """Stage -> (total seconds, number of jobs)."""

    @abc.abstractmethod
    def set_worker_models(self, record: WorkerModels) -> None: ...

    @abc.abstractmethod
    def worker_models(self) -> WorkerModels | None: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be reached."""

    def close(self) -> None:
        """Release connections (no-op by default)."""

    # The state machine -------------------------------------------------------------------

    def submit(
        self, job: Job, *, in_flight_limit: int | None, timeouts: QueueTimeouts, retention_s: float
    ) -> tuple[Job, bool]:
        """Create `job`, or reuse an identical one, but never one that stopped progressing (a
        message lost, a worker gone silent): that one fails, naming the job that replaces it."""
        moment = now()

        def replace_if_stuck(existing: Job) -> Job | None:
            if _progressing(existing, moment, timeouts):
                return None
            error = JobError(
                type="Superseded",
                message=f"this job stopped progressing and the same upload was submitted again "
                f"as job {job.id}; follow that one",
            )
            return _failed(existing, error, moment, retention_s)

        return self.create(job, in_flight_limit, replace_if_stuck)

    def mark_sent(self, job_id: str, task_id: str) -> bool:
        """Record that the message for `task_id` went to the broker (the job is still queued)."""
        moment = now()

        def sent(job: Job) -> Job | None:
            if job.status != JobStatus.queued or job.task_id != task_id:
                return None
            return job.model_copy(
                update={"sent_at": moment, "sends": job.sends + 1, "updated_at": moment}
            )

        _, changed = self.mutate(job_id, sent)
        return changed

    def reconcile_queued(
        self, timeouts: QueueTimeouts, retention_s: float
    ) -> tuple[list[Job], list[Job]]:
        """Queued jobs no worker took: give each a new task id to send again (never sent, or
        sent longer than the queue timeout ago), or fail it once it was sent `max_sends` times.
        A message may be lost (a broker without persistence, a flush, a failover, an ack
        without a claim); a duplicate is harmless, since only one task id can claim a job.
        Returns (to send, failed)."""
        moment = now()
        to_send: list[Job] = []
        failed: list[Job] = []
        for candidate in self.list(JobStatus.queued, limit=1_000_000).items:

            def retry(job: Job) -> Job | None:
                if job.status != JobStatus.queued or _progressing(job, moment, timeouts):
                    return None
                if job.sent_at is not None and job.sends >= timeouts.max_sends:
                    return _failed(job, queue_timeout(job.sends, timeouts), moment, retention_s)
                return job.model_copy(update={"task_id": new_id(), "updated_at": moment})

            job, changed = self.mutate(candidate.id, retry)
            if changed and job is not None:
                (to_send if job.status == JobStatus.queued else failed).append(job)
        return to_send, failed

    def claim(
        self,
        job_id: str,
        task_id: str,
        worker: str,
        *,
        max_attempts: int,
        stale_after_s: float,
        retention_s: float,
    ) -> Claim:
        """A worker takes a job; counts the attempt, or fails the job when attempts ran out.

        A running job may be taken again by a redelivery of the same message (its worker died:
        Celery rejects on worker loss) or when its worker's heartbeat is older than
        `stale_after_s`; otherwise another worker is alive on it and this delivery is skipped.
        """
        moment = now()
        outcome = ClaimOutcome.skipped

        def take(job: Job) -> Job | None:
            nonlocal outcome
            stale = job.heartbeat_at is None or moment - job.heartbeat_at > timedelta(
                seconds=stale_after_s
            )
            if not (
                job.status == JobStatus.queued
                or (job.status == JobStatus.running and (job.task_id == task_id or stale))
            ):
                outcome = ClaimOutcome.skipped
                return None
            if job.attempts >= max_attempts:
                outcome = ClaimOutcome.exhausted
                return _failed(job, attempts_exhausted(job.attempts), moment, retention_s)
            outcome = ClaimOutcome.claimed
            return job.model_copy(
                update={
                    "status": JobStatus.running,
                    "attempts": job.attempts + 1,
                    "task_id": task_id,
                    "worker": worker,
                    "started_at": moment,
                    "heartbeat_at": moment,
                    "progress": None,
                    "updated_at": moment,
                }
            )

        job, changed = self.mutate(job_id, take)
        return Claim(outcome if changed else ClaimOutcome.skipped, job)

    def heartbeat(self, job_id: str, task_id: str) -> bool:
        """Tell the sweeper this worker is alive; False means stop: the job is no longer ours."""
        return self._update_owned(job_id, task_id, {})

    def report_progress(self, job_id: str, task_id: str, stage: str, fraction: float) -> bool:
        """Record progress; False means stop (job deleted, or requeued to another worker)."""
        progress = Progress(stage=stage, fraction=min(max(fraction, 0.0), 1.0))
        return self._update_owned(job_id, task_id, {"progress": progress})

    def succeed(
        self, job_id: str, task_id: str, result: DetectionResult, retention_s: float
    ) -> Job | None:
        """Store the result if this task still owns the job; returns the finished job."""
        moment = now()

        def finish(job: Job) -> Job | None:
            if not _owned(job, task_id):
                return None
            return job.model_copy(
                update={
                    "status": JobStatus.succeeded,
                    "result": result,
                    "error": None,
                    "progress": Progress(stage="done", fraction=1.0),
                    "finished_at": moment,
                    "updated_at": moment,
                    "expires_at": expiry(moment, retention_s),
                }
            )

        job, changed = self.mutate(job_id, finish)
        return job if changed else None

    def fail(
        self, job_id: str, error: JobError, retention_s: float, *, task_id: str | None = None
    ) -> Job | None:
        """Fail the job (only if `task_id` still owns it, when given); returns the failed job."""
        moment = now()

        def give_up(job: Job) -> Job | None:
            if job.status in FINISHED or job.status == JobStatus.expired:
                return None
            if task_id is not None and not _owned(job, task_id):
                return None
            return _failed(job, error, moment, retention_s)

        job, changed = self.mutate(job_id, give_up)
        return job if changed else None

    def requeue_stale(
        self, *, stale_after_s: float, max_attempts: int, retention_s: float
    ) -> tuple[list[Job], list[Job]]:
        """Running jobs whose worker went silent: requeue them under a new task id to be sent
        again, or fail them when they have used up their attempts. Returns (requeued, failed)."""
        moment = now()
        requeued: list[Job] = []
        failed: list[Job] = []
        running = self.list(JobStatus.running, limit=1_000_000).items
        for candidate in running:

            def revive(job: Job) -> Job | None:
                silent = job.heartbeat_at is None or moment - job.heartbeat_at > timedelta(
                    seconds=stale_after_s
                )
                if job.status != JobStatus.running or not silent:
                    return None
                if job.attempts >= max_attempts:
                    return _failed(job, attempts_exhausted(job.attempts), moment, retention_s)
                return job.model_copy(
                    update={
                        "status": JobStatus.queued,
                        "task_id": new_id(),
                        "worker": None,
                        "progress": None,
                        "sent_at": None,
                        "sends": 0,
                        "updated_at": moment,
                    }
                )

            job, changed = self.mutate(candidate.id, revive)
            if changed and job is not None:
                (requeued if job.status == JobStatus.queued else failed).append(job)
        return requeued, failed

    def expire_due(self, retention_s: float) -> tuple[list[Job], list[Job]]:
        """Expire jobs past retention (dropping the result), and purge expired records past a
        second retention. Returns (expired, purged) so the caller deletes their uploads."""
        moment = now()
        expired: list[Job] = []
        purged: list[Job] = []
        for job_id in self.due_ids(moment):
            job = self.get(job_id)
            if job is None or job.status == JobStatus.running:
                continue  # a running job's deadline and heartbeat govern it
            if job.status == JobStatus.expired:
                removed = self.delete(job_id)
                if removed is not None:
                    purged.append(removed)
                continue

            def lapse(current: Job) -> Job | None:
                if current.status in (JobStatus.running, JobStatus.expired):
                    return None
                if current.expires_at > moment:
                    return None
                return current.model_copy(
                    update={
                        "status": JobStatus.expired,
                        "result": None,
                        "progress": None,
                        "updated_at": moment,
                        "expires_at": expiry(moment, retention_s),
                    }
                )

            lapsed, changed = self.mutate(job_id, lapse)
            if changed and lapsed is not None:
                expired.append(lapsed)
        return expired, purged

    def update_webhook(self, job_id: str, delivery: WebhookDelivery) -> Job | None:
        def record(job: Job) -> Job | None:
            return job.model_copy(update={"webhook": delivery, "updated_at": now()})

        job, _ = self.mutate(job_id, record)
        return job

    def _update_owned(self, job_id: str, task_id: str, update: dict[str, object]) -> bool:
        moment = now()

        def touch(job: Job) -> Job | None:
            if not _owned(job, task_id):
                return None
            return job.model_copy(update={**update, "heartbeat_at": moment, "updated_at": moment})

        _, changed = self.mutate(job_id, touch)
        return changed


def _progressing(job: Job, moment: datetime, timeouts: QueueTimeouts) -> bool:
    """Whether the job can still end without help: a message on its way to a worker, or a
    worker whose heartbeat is recent. Finished and expired jobs have nothing left to do."""
    if job.status == JobStatus.queued:
        if job.sent_at is None:  # the sender may still be at it, unless it gave up or died
            return moment - job.updated_at <= timedelta(seconds=timeouts.unsent_grace_s)
        return moment - job.sent_at <= timedelta(seconds=timeouts.queue_timeout_s)
    if job.status == JobStatus.running:
        return job.heartbeat_at is not None and moment - job.heartbeat_at <= timedelta(
            seconds=timeouts.stale_after_s
        )
    return True


def _owned(job: Job, task_id: str) -> bool:
    return job.status == JobStatus.running and job.task_id == task_id


def _failed(job: Job, error: JobError, moment: datetime, retention_s: float) -> Job:
    return job.model_copy(
        update={
            "status": JobStatus.failed,
            "error": error,
            "result": None,
            "finished_at": moment,
            "updated_at": moment,
            "expires_at": expiry(moment, retention_s),
        }
    )
