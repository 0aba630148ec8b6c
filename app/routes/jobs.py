"""`/jobs`: a job's state, progress and result; the list of jobs; cancelling and deleting."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.deps import ClientDep, SettingsDep, StoreDep, authorize
from app.errors import ApiError, error_responses
from fakewatch.jobs import JobStore
from fakewatch.jobs.model import Job, JobStatus, JobSummary, JobView
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


def _owned_job(store: JobStore, job_id: str, owner: str) -> Job:
    """The job if `owner` created it; another owner's job is as unknown as a missing one."""
    job = store.get(job_id)
    if job is None or job.owner != owner:
        raise _not_found(job_id)
    return job


@router.get("/{job_id}", response_model=JobView, responses=error_responses(401, 404, 422, 429, 503))
async def get_job(job_id: str, store: StoreDep, client: ClientDep) -> JobView:
    """Status, progress, timestamps, and the result once succeeded (or the error once failed)."""
    job = await run_in_threadpool(_owned_job, store, job_id, client.owner)
    return job.view()


@router.get("", response_model=JobList, responses=error_responses(401, 422, 429, 503))
async def list_jobs(
    store: StoreDep,
    client: ClientDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobList:
    """Your jobs, newest first, without results (fetch one job for its result)."""
    page = await run_in_threadpool(store.list, status_filter, limit, offset, client.owner)
    return JobList(
        items=[job.summary() for job in page.items], total=page.total, limit=limit, offset=offset
    )


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 404, 422, 429, 503),
)
async def delete_job(
    job_id: str, store: StoreDep, settings: SettingsDep, client: ClientDep
) -> Response:
    """Cancel the job if queued or running (its worker stops at its next progress report) and
    delete the stored upload and result."""
    await run_in_threadpool(_owned_job, store, job_id, client.owner)  # owners never change
    job = await run_in_threadpool(store.delete, job_id)
    if job is None:
        raise _not_found(job_id)
    delete_upload(settings, job.upload_key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
