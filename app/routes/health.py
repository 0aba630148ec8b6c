"""`/healthz` (the process answers) and `/readyz` (it can do work): no API key needed."""

from __future__ import annotations

import sqlite3

import redis
from celery import Celery
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kombu.exceptions import KombuError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.deps import QueueDep, StoreDep
from fakewatch.jobs import JobStore

router = APIRouter(tags=["health"])
PING_TIMEOUT_S = 1.0  # how long readiness waits for workers to answer a ping
BROKER_RETRIES = 1


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    job_store: str
    broker: str
    workers: list[str]


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


def _check_store(store: JobStore) -> str:
    try:
        store.ping()
    except (redis.RedisError, sqlite3.Error, OSError) as error:
        return f"unreachable: {error}"
    return "ok"


def _check_broker(queue: Celery) -> str:
    try:
        with queue.connection_for_write() as connection:
            connection.ensure_connection(max_retries=BROKER_RETRIES)
    except (KombuError, OSError) as error:
        return f"unreachable: {error}"
    return "ok"


def _ping_workers(queue: Celery) -> list[str]:
    replies = queue.control.ping(timeout=PING_TIMEOUT_S) or []
    return sorted(name for reply in replies for name in reply)


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: see which check failed."}},
)
async def readyz(store: StoreDep, queue: QueueDep) -> JSONResponse:
    """Ready when the job store and broker answer and at least one worker replies to a ping."""
    store_state = await run_in_threadpool(_check_store, store)
    broker_state = await run_in_threadpool(_check_broker, queue)
    workers = await run_in_threadpool(_ping_workers, queue) if broker_state == "ok" else []
    body = Readiness(
        ready=store_state == "ok" and broker_state == "ok" and bool(workers),
        job_store=store_state,
        broker=broker_state,
        workers=workers,
    )
    return JSONResponse(status_code=200 if body.ready else 503, content=body.model_dump())
