"""`/healthz` (the process answers) and `/readyz` (it can do work): no API key needed.

Readiness is open to load balancers, so its public body says only what is up; the reasons
(which carry internal addresses) and the worker names are shown to an API key holder.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.deps import KeyHolderDep, ServicesDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class ReadinessDetails(BaseModel):
    workers: list[str] = Field(description="Workers that answered the last ping.")
    problems: list[str] = Field(description="Why a check failed.")


class Readiness(BaseModel):
    ready: bool
    job_store: str = Field(description="ok or unreachable")
    broker: str = Field(description="ok or unreachable")
    workers: int = Field(description="Workers that answered the last ping.")
    details: ReadinessDetails | None = Field(
        default=None, description="Only with a valid API key: worker names and failure reasons."
    )


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: see which check failed."}},
)
async def readyz(services: ServicesDep, key_holder: KeyHolderDep) -> JSONResponse:
    """Ready when the job store and broker answer and a worker replied to a ping (checked at
    most every few seconds, on connections of its own)."""
    report = await services.readiness.report()
    details = (
        ReadinessDetails(workers=list(report.workers), problems=list(report.problems))
        if key_holder
        else None
    )
    body = Readiness(
        ready=report.ready,
        job_store=report.job_store,
        broker=report.broker,
        workers=len(report.workers),
        details=details,
    )
    return JSONResponse(status_code=200 if body.ready else 503, content=body.model_dump())
