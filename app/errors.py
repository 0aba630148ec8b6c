"""One error body for every failure, so clients parse errors one way and users can act on them."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)
STORE_ERRORS = (redis.RedisError, sqlite3.Error)  # the job store is down or locked


class ErrorInfo(BaseModel):
    type: str = Field(description="Machine-readable error name, e.g. UploadTooLarge.")
    message: str = Field(description="What went wrong and what to do about it.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field problems for invalid parameters."
    )


class ErrorBody(BaseModel):
    error: ErrorInfo


class ApiError(Exception):
    """An error answered to the client with `status` and an `ErrorBody`."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.info = ErrorInfo(type=type, message=message, details=details)
        self.headers = headers


DESCRIPTIONS = {
    400: "Malformed or cut-off request body.",
    401: "Missing or invalid API key.",
    403: "The key is valid but may not read this (/metrics needs an operator key).",
    404: "No such job (unknown id, or deleted).",
    408: "The upload stalled or took too long to arrive.",
    413: "Upload larger than the configured limit.",
    415: "Not a video or image this service can read.",
    422: "Invalid parameters, or a video the limits reject (duration, resolution, unreadable).",
    429: "Too many requests for this API key, or failed authentications from this address; "
    "see Retry-After.",
    503: "A dependency (broker, job store, workers) is unavailable.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring these statuses with the shared error body."""
    return {
        status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in statuses
    }


def _body(status: int, info: ErrorInfo, headers: dict[str, str] | None = None) -> JSONResponse:
    content = ErrorBody(error=info).model_dump(mode="json", exclude_none=True)
    return JSONResponse(status_code=status, content=content, headers=headers)


async def _api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return _body(error.status, error.info, error.headers)


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = [
        {"location": list(item.get("loc", ())), "problem": item.get("msg", "")}
        for item in error.errors()
    ]
    info = ErrorInfo(
        type="InvalidParameters",
        message="some parameters are invalid: see details for each one",
        details=details,
    )
    return _body(422, info)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    route = f"{request.method} {request.url.path}"
    known = {
        404: ("NotFound", f"no such route: {route}; the API is described at /docs"),
        405: ("MethodNotAllowed", f"{route} is not allowed; the API is described at /docs"),
    }
    type_, message = known.get(error.status_code, ("HTTPError", str(error.detail)))
    return _body(error.status_code, ErrorInfo(type=type_, message=message), error.headers)


async def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.error("job store unreachable on %s %s: %s", request.method, request.url.path, error)
    info = ErrorInfo(
        type="JobStoreUnavailable", message="the job store is unreachable; retry in a minute"
    )
    return _body(503, info, {"Retry-After": "60"})


async def _client_gone(request: Request, error: Exception) -> JSONResponse:
    """A client that hangs up mid-upload is routine, not a fault of the service: one INFO line,
    no traceback. The answer goes nowhere; it exists for the access log and metrics."""
    log.info("client disconnected during %s %s", request.method, request.url.path)
    info = ErrorInfo(type="ClientDisconnected", message="the client closed the connection")
    return _body(400, info)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    info = ErrorInfo(
        type="InternalError",
        message="the service failed unexpectedly; the error is logged, please report it",
    )
    return _body(500, info)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    for error_type in STORE_ERRORS:
        app.add_exception_handler(error_type, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected)
