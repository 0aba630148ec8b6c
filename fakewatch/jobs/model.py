"""A job as the API shows it and as the job store keeps it.

`JobSummary` is a list row, `JobView` adds the result (the API body and the webhook body), and
`Job` adds what only the gateway and workers need (where the upload lives, who runs it).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from models.config import DetectOptions
from models.schema import DetectionResult


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    expired = "expired"


# A new upload of the same bytes and options reuses a job in one of these states; a failed or
# expired job is worth trying again.
REUSABLE = frozenset({JobStatus.queued, JobStatus.running, JobStatus.succeeded})
FINISHED = frozenset({JobStatus.succeeded, JobStatus.failed})
# Jobs a worker still has to take or finish: what the per-key limit on jobs in flight counts.
IN_FLIGHT = frozenset({JobStatus.queued, JobStatus.running})


class Progress(BaseModel):
    stage: str = Field(description="Detector stage: decode, detect_faces, crop, classify, ...")
    fraction: float = Field(ge=0.0, le=1.0)


class JobError(BaseModel):
    type: str = Field(description="Error class, e.g. VideoError, ConfigError, DeadlineExceeded.")
    message: str = Field(description="What went wrong and what to do about it.")


class UploadInfo(BaseModel):
    filename: str | None
    size: int = Field(ge=0, description="Bytes.")
    sha256: str
    media: Literal["video", "image"]
    container: str = Field(description="Container recognised from the file's first bytes.")


class WebhookState(StrEnum):
    pending = "pending"
    retrying = "retrying"
    delivered = "delivered"
    failed = "failed"


class WebhookDelivery(BaseModel):
    url: str
    state: WebhookState = WebhookState.pending
    attempts: int = 0
    last_status: int | None = Field(default=None, description="HTTP status of the last attempt.")
    last_error: str | None = None
    delivered_at: datetime | None = None


class Verdict(BaseModel):
    """A finished job's headline, so a job list can show it without every frame's scores."""

    status: str = Field(description="`ok` or `no_face`.")
    probability: float | None = None
    label: str | None = None
    threshold: float
    preset: str | None = None


class JobSummary(BaseModel):
    id: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime = Field(description="When the upload and result are deleted.")
    progress: Progress | None = None
    attempts: int = Field(default=0, description="Times a worker started this job.")
    options: DetectOptions
    upload: UploadInfo
    error: JobError | None = None
    webhook: WebhookDelivery | None = None
    verdict: Verdict | None = Field(default=None, description="Set once the job succeeded.")


class JobView(JobSummary):
    result: DetectionResult | None = None


class Job(JobView):
    """The stored record: the public view plus the bookkeeping the service needs."""

    owner: str = Field(
        default="", description="Who created it: an API key's id; empty when keys are off."
    )
    upload_key: str = Field(description="Upload path relative to the data directory.")
    dedup_key: str
    task_id: str
    worker: str | None = None
    heartbeat_at: datetime | None = None
    sent_at: datetime | None = Field(
        default=None, description="When its current message was sent; None: not sent yet."
    )
    sends: int = Field(default=0, description="Messages sent since it last became queued.")

    def view(self) -> JobView:
        return JobView.model_validate(self._public(JobView))

    def summary(self) -> JobSummary:
        return JobSummary.model_validate(self._public(JobSummary))

    def _public(self, kind: type[JobSummary]) -> dict[str, object]:
        fields = self.model_dump(include=set(kind.model_fields) - {"verdict"})
        if self.result is not None:
            fields["verdict"] = self.result.model_dump(include=set(Verdict.model_fields))
        return fields


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def dedup_key(
    sha256: str,
    options: DetectOptions,
    callback_url: str | None,
    owner: str = "",
    weights: str | None = None,
) -> str:
    """Same owner, bytes, options, callback and weights: the same job.
    The owner is part of it so one client never receives another's job by uploading the same
    bytes; the weights (the registry's sha256 the workers reported, None before any did) so a
    model upgrade never answers with results scored by the old models."""
    canonical = options.model_dump(exclude_none=True)
    if "models" in canonical:
        canonical["models"] = sorted(canonical["models"])
    canonical["callback_url"] = callback_url
    canonical["owner"] = owner
    canonical["weights"] = weights
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    return f"{sha256}:{digest}"


def expiry(start: datetime, retention_s: float) -> datetime:
    return start + timedelta(seconds=retention_s)
