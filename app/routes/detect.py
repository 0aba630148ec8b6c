"""`POST /detect`: accept an upload, validate it, and queue a job (or return the same job)."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Depends, Request, Response, status
from kombu.exceptions import KombuError
from starlette.concurrency import run_in_threadpool

from app.deps import ClientDep, ServicesDep, authorize
from app.dispatch import send_detect
from app.errors import STORE_ERRORS, ApiError, error_responses
from app.intake import DetectRequest, Media, check_sampling, inspect_media, parse_request
from app.services import Services
from app.uploads import FILE_FIELD, BodyTimeouts, ReceivedUpload, receive_upload
from fakewatch.jobs import queue_timeouts
from fakewatch.jobs.model import (
    Job,
    JobError,
    JobStatus,
    JobView,
    UploadInfo,
    WebhookDelivery,
    dedup_key,
    expiry,
    new_id,
    now,
)
from fakewatch.jobs.store import InFlightLimit, WorkerModels
from fakewatch.jobs.uploads import delete_upload, upload_key
from fakewatch.settings import Settings
from fakewatch.webhook_targets import ForbiddenTarget, check_webhook_target
from models.config import POLICY_NAMES, PRESET_NAMES

router = APIRouter(tags=["detect"], dependencies=[Depends(authorize)])
INCOMING = "incoming"
IN_FLIGHT_RETRY_AFTER_S = 10  # a short job's time: when one of the client's jobs may have ended


REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "The video (or a single image, scored as one frame).",
                    },
                    "frames": {"type": "integer", "minimum": 1, "maximum": 1024},
                    "fps": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
                    "models": {
                        "type": "string",
                        "description": "Comma-separated model ids (GET /models); default: all.",
                    },
                    "policy": {"type": "string", "enum": list(POLICY_NAMES),
                               "description": "How crop scores become a video score."},
                    "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                    "preset": {
                        "type": "string",
                        "enum": list(PRESET_NAMES),
                        "description": "Threshold preset (GET /models lists each with its measured "
                        "rates); default: the ensemble's default preset. A threshold wins.",
                    },
                    "callback_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "POSTed the job body, HMAC-signed, when the job ends.",
                    },
                },
            }
        }
    },
}


def _check_callback(url: str, settings: Settings) -> None:
    """422 for a callback URL that would make our workers call into private networks."""
    try:
        check_webhook_target(url, settings.webhook_allow_private)
    except ForbiddenTarget as error:
        raise ApiError(422, "ForbiddenCallback", str(error)) from error


def _new_job(
    upload: ReceivedUpload,
    media: Media,
    request: DetectRequest,
    settings: Settings,
    owner: str,
    weights: str | None,
) -> Job:
    job_id, moment = new_id(), now()
    webhook = WebhookDelivery(url=request.callback_url) if request.callback_url else None
    return Job(
        id=job_id,
        status=JobStatus.queued,
        created_at=moment,
        updated_at=moment,
        expires_at=expiry(moment, settings.retention_s),
        options=request.options,
        upload=UploadInfo(
            filename=upload.filename,
            size=upload.size,
            sha256=upload.sha256,
            media=media.kind,
            container=media.container,
        ),
        webhook=webhook,
        owner=owner,
        upload_key=upload_key(job_id, upload.path.name),
        dedup_key=dedup_key(
            upload.sha256, request.options, request.callback_url, owner, weights
        ),
        task_id=new_id(),
    )


def _known_models(record: WorkerModels | None) -> set[str] | None:
    if record is None or record.error is not None:
        return None  # nothing known to check against: the worker checks
    return {model.id for model in record.models}


@router.post(
    "/detect",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobView,
    summary="Submit a video or image for deepfake detection",
    responses={
        200: {"model": JobView, "description": "The same file with the same options: that job."},
        **error_responses(400, 401, 408, 413, 415, 422, 429, 503),
    },
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def submit(
    request: Request, response: Response, services: ServicesDep, client: ClientDep
) -> JobView:
    """Stream the upload to disk, check it, and queue it. Answers 202 and `Location: /jobs/{id}`;
    identical bytes with identical options answer 200 with the existing job instead."""
    settings = services.settings
    incoming = settings.uploads_dir / INCOMING
    timeouts = BodyTimeouts(settings.upload_idle_timeout_s, settings.upload_timeout_s)
    upload = await receive_upload(request, incoming, settings.max_upload_bytes, timeouts)
    try:
        loaded = await run_in_threadpool(services.store.worker_models)
        detect_request = parse_request(upload.fields, _known_models(loaded))
        if detect_request.callback_url and settings.webhook_key() is None:
            raise ApiError(
                422,
                "WebhooksDisabled",
                "callback_url needs webhook signing: the operator must set "
                "FAKEWATCH_WEBHOOK_SECRET",
            )
        if detect_request.callback_url:
            await run_in_threadpool(_check_callback, detect_request.callback_url, settings)
        media = await run_in_threadpool(inspect_media, upload, settings)
        check_sampling(detect_request.options, media)
        weights = loaded.registry_sha256 if loaded is not None else None
        job = _new_job(upload, media, detect_request, settings, client.owner, weights)
        destination = settings.upload_path(job.upload_key)
        destination.parent.mkdir(parents=True)
        shutil.move(upload.path, destination)
        stored, created = await run_in_threadpool(_store, services, job)
        if not created:
            delete_upload(settings, job.upload_key)
            response.status_code = status.HTTP_200_OK
        else:
            await run_in_threadpool(_queue, services, stored)
    finally:
        upload.discard()
    response.headers["Location"] = f"/jobs/{stored.id}"
    return stored.view()


def _store(services: Services, job: Job) -> tuple[Job, bool]:
    settings = services.settings
    try:
        return services.store.submit(
            job,
            in_flight_limit=settings.in_flight_limit(),
            timeouts=queue_timeouts(settings),
            retention_s=settings.retention_s,
        )
    except InFlightLimit as error:
        delete_upload(settings, job.upload_key)
        raise ApiError(
            429,
            "TooManyJobsInFlight",
            f"this API key already has {error.limit} jobs queued or running; wait for one to "
            "finish (GET /jobs?status=running) and submit again",
            headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_S)},
        ) from error
    except STORE_ERRORS:
        delete_upload(settings, job.upload_key)  # no record will point at it
        raise


def _queue(services: Services, job: Job) -> None:
    try:
        send_detect(services.queue, job)
    except (KombuError, OSError) as error:
        services.store.fail(
            job.id,
            JobError(type="BrokerUnavailable", message=f"the job could not be queued: {error}"),
            services.settings.retention_s,
        )
        raise ApiError(
            503, "BrokerUnavailable", "the job queue is unreachable; retry in a minute"
        ) from error
    services.store.mark_sent(job.id, job.task_id)  # a worker may have claimed it already
