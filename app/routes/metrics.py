"""`GET /metrics` in the Prometheus text format: totals over every tenant, so with API keys set
only an operator key reads them (a tenant's key is 403)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from app.deps import authorize_operator
from app.errors import error_responses

router = APIRouter(tags=["metrics"], dependencies=[Depends(authorize_operator)])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus exposition."},
        **error_responses(401, 403, 429, 503),
    },
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
