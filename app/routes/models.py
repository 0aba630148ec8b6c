"""`GET /models`: what the workers loaded, as the last worker to load its detector reported
(or why it could not: a worker without its detector takes no jobs and says so here)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from app.deps import StoreDep, authorize
from app.errors import ApiError, error_responses
from fakewatch.jobs.store import WorkerModels

router = APIRouter(tags=["models"], dependencies=[Depends(authorize)])


@router.get("/models", response_model=WorkerModels, responses=error_responses(401, 429, 503))
async def list_models(store: StoreDep) -> WorkerModels:
    """Model ids, checkpoint sha256 and licences of the loaded ensemble, its threshold presets
    (each with the share of real videos it flagged and of fakes it caught on held-out sources),
    the aggregation policy those rates were measured under and the one a request gets by default."""
    record = await run_in_threadpool(store.worker_models)
    if record is None:
        raise ApiError(
            503,
            "NoWorkerReported",
            "no worker has loaded its models yet: start one (fakewatch worker) and retry",
        )
    if record.error is not None:
        raise ApiError(503, "WorkerUnavailable", f"the last worker to start stopped: {record.error}")
    return record
