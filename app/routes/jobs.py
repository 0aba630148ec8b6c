"""`/jobs`: a job's state, progress and result; the list of jobs; cancelling and deleting."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.deps import SettingsDep, StoreDep, authorize
from app.errors import ApiError, error_responses
from fakewatch.jobs.model import JobStatus, JobSummary, JobView
from fakewatch.jobs.uploads import delete_upload

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(authorize)])
MAX_PAGE = 100
MAX_OFFSET = 2**31  # past any store's row count, and within what SQLite and Redis take as an index


class JobList(BaseModel):
    items: list[JobSummary]
    total: int
    limit: int
    offset: int


def _not_found(job_id: str) -> ApiError:
    return ApiError(
        404,
        "JobNotFound",
        f"no job {job_id!r}: the id is wrong, or the job was deleted (expired jobs stay listed "
        "as expired for one more retention period)",
    )


@router.get("/{job_id}", response_model=JobView, responses=error_responses(401, 404, 422, 429, 503))
async def get_job(job_id: str, store: StoreDep) -> JobView:
    """Status, progress, timestamps, and the result once succeeded (or the error once failed)."""
    job = await run_in_threadpool(store.get, job_id)
    if job is None:
        raise _not_found(job_id)
    return job.view()


@router.get("", response_model=JobList, responses=error_responses(401, 422, 429, 503))
async def list_jobs(
    store: StoreDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobList:
    """Newest first, without results (fetch one job for its result)."""
    page = await run_in_threadpool(store.list, status_filter, limit, offset)
    return JobList(
        items=[job.summary() for job in page.items], total=page.total, limit=limit, offset=offset
    )


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 404, 422, 429, 503),
)
async def delete_job(job_id: str, store: StoreDep, settings: SettingsDep) -> Response:
    """Cancel the job if queued or running (its worker stops at its next progress report) and
    delete the stored upload and result."""
    job = await run_in_threadpool(store.delete, job_id)
    if job is None:
        raise _not_found(job_id)
    delete_upload(settings, job.upload_key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
