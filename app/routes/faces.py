"""`/jobs/{id}/faces/...`: a finished job's face crops and heatmaps, for the review page.

The gateway never imports torch: on a cache miss it asks a worker (task `fakewatch.face_view`)
to cut the crops or compute the heatmap into the job's cache folder, waits for its answer, then
serves the file. Cached files go with the job (`fakewatch.jobs.views`).
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout
from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from app.deps import ClientDep, QueueDep, SettingsDep, StoreDep, authorize
from app.errors import ApiError, error_responses
from app.routes.jobs import _owned_job
from fakewatch.jobs.model import Job, JobStatus
from fakewatch.jobs.names import FACE_VIEW_TASK
from fakewatch.jobs.views import MEDIA_TYPES, ViewKind, view_key
from fakewatch.settings import Settings

router = APIRouter(prefix="/jobs", tags=["review"], dependencies=[Depends(authorize)])
# A worker busy with a video answers after it; past this the client is told to retry.
VIEW_WAIT_S = 120.0
VIEW_POLL_S = 0.2
RETRY_AFTER_S = 10
# Crops and heatmaps never change for a job: the browser may keep them (only for this user).
CACHE_CONTROL = "private, max-age=3600, immutable"
IMAGE_RESPONSES = {
    200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image."},
    **error_responses(401, 404, 422, 429, 503),
}


def _face_of(job: Job, frame: int, face: int) -> None:
    """404 unless the job succeeded and its result has this face."""
    if job.status is not JobStatus.succeeded or job.result is None:
        raise ApiError(
            404,
            "FaceNotFound",
            f"job {job.id} is {job.status.value}: faces can be shown once it has succeeded",
        )
    faces = next((f.faces for f in job.result.frames if f.index == frame), None)
    if faces is None or not 0 <= face < len(faces):
        raise ApiError(
            404,
            "FaceNotFound",
            f"job {job.id} has no face {face} in frame {frame}: use the frame indices and face "
            "positions of its result",
        )


def _ask_worker(queue: Celery, job: Job, frame: int, face: int, kind: ViewKind) -> None:
    """Have a worker make the view; raises ApiError with the worker's reason if it cannot."""
    pending = queue.send_task(FACE_VIEW_TASK, args=[job.id, frame, face, kind.value])
    try:
        outcome = pending.get(timeout=VIEW_WAIT_S, interval=VIEW_POLL_S, propagate=False)
    except CeleryTimeout as error:
        raise ApiError(
            503,
            "ViewTimeout",
            f"no worker made the {kind.value} within {VIEW_WAIT_S:.0f} s (they may be busy "
            f"with videos); retry in {RETRY_AFTER_S} s",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from error
    finally:
        pending.forget()
    if isinstance(outcome, dict) and "error" in outcome:
        raise ApiError(422, outcome["error"]["type"], outcome["error"]["message"])
    if not isinstance(outcome, dict) or "key" not in outcome:
        raise ApiError(503, "ViewFailed", f"the worker failed to make the {kind.value}: {outcome}")


def _view_file(
    store: StoreDep, settings: Settings, queue: Celery, owner: str,
    job_id: str, frame: int, face: int, kind: ViewKind,
) -> Path:
    job = _owned_job(store, job_id, owner)
    _face_of(job, frame, face)
    path = settings.upload_path(view_key(job.upload_key, frame, face, kind))
    if not path.is_file():
        _ask_worker(queue, job, frame, face, kind)
    return path


async def _serve(
    store: StoreDep, settings: Settings, queue: Celery, client: ClientDep,
    job_id: str, frame: int, face: int, kind: ViewKind,
) -> FileResponse:
    path = await run_in_threadpool(
        _view_file, store, settings, queue, client.owner, job_id, frame, face, kind
    )
    return FileResponse(path, media_type=MEDIA_TYPES[kind], headers={"Cache-Control": CACHE_CONTROL})


@router.get("/{job_id}/faces/{frame}/{face}.jpg", response_class=FileResponse, responses=IMAGE_RESPONSES)
async def face_crop(
    job_id: str, frame: int, face: int,
    store: StoreDep, settings: SettingsDep, queue: QueueDep, client: ClientDep,
) -> FileResponse:
    """The face as the first model cropped it (JPEG, long side at most 256 px).

    `frame` is a frame's `index` in the result, `face` the face's position in that frame."""
    return await _serve(store, settings, queue, client, job_id, frame, face, ViewKind.crop)


@router.get("/{job_id}/faces/{frame}/{face}/heatmap.png", response_class=FileResponse, responses=IMAGE_RESPONSES)
async def face_heatmap(
    job_id: str, frame: int, face: int,
    store: StoreDep, settings: SettingsDep, queue: QueueDep, client: ClientDep,
) -> FileResponse:
    """Where the face drove P(fake) up: occlusion sensitivity over the job's models, drawn over
    the crop (cividis; brighter and more opaque = covering it lowered P(fake) more)."""
    return await _serve(store, settings, queue, client, job_id, frame, face, ViewKind.heatmap)
