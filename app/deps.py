"""Every dependency a route takes, as an `Annotated` alias: signatures read like sentences."""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from app.errors import ApiError
from app.services import Services
from fakewatch.jobs import JobStore
from fakewatch.settings import Settings

NO_KEYS_OWNER = ""  # without keys there is one tenant: everyone sees every job
KEY_ID_HEX = 16  # 64 bits of the key's sha256: unique per key, and says nothing about it
# Declared in OpenAPI on every route that needs a key; either one carries it.
API_KEY_SCHEME = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
BEARER_SCHEME = HTTPBearer(auto_error=False, scheme_name="Bearer")
ApiKeyDep = Annotated[str | None, Security(API_KEY_SCHEME)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_store(services: ServicesDep) -> JobStore:
    return services.store


def get_queue(services: ServicesDep) -> Celery:
    return services.queue


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
QueueDep = Annotated[Celery, Depends(get_queue)]


def _presented_key(api_key: str | None, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    if api_key:
        return api_key
    return bearer.credentials if bearer is not None else None


def _is_valid(presented: str, settings: Settings) -> bool:
    return _matches(presented, settings.api_keys)


def _matches(presented: str, keys: list[SecretStr]) -> bool:
    """Compared in constant time against every key, so neither content nor position leaks."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented.encode(), key.get_secret_value().encode())
    return matched


async def holds_a_key(request: Request, services: ServicesDep) -> bool:
    """True when keys are configured and the request presents one: never raises, for routes
    open to everyone that show more to a key holder (the schemes are called directly, so
    OpenAPI does not list these routes as needing a key)."""
    presented = _presented_key(await API_KEY_SCHEME(request), await BEARER_SCHEME(request))
    return presented is not None and _is_valid(presented, services.settings)


@dataclass(frozen=True)
class Client:
    """Who is calling: `rate_key` counts their requests, `owner` is stamped on their jobs."""

    rate_key: str
    owner: str


def authorize(
    request: Request, services: ServicesDep, api_key: ApiKeyDep, bearer: BearerDep
) -> Client:
    """Check the API key (when keys are configured) and the rate limit.

    With keys, a key's id (a hash of it, never the key) is both its rate-limit bucket and the
    owner of its jobs; without keys, requests are limited per address and all jobs share one
    owner. Failed authentications are limited per address: past the limit even a right key is
    429 until the minute ends, so guessing keys gets nowhere.
    """
    keys = services.settings.api_keys
    address = _address(request)
    if keys:
        failures = _failures_bucket(address, services)
        presented = _presented_key(api_key, bearer)
        if presented is None or not _is_valid(presented, services.settings):
            services.auth_failures.hit(failures)
        if presented is None:
            raise ApiError(
                401,
                "MissingApiKey",
                "this service needs an API key: send it in the X-API-Key header or as "
                "Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not _is_valid(presented, services.settings):
            raise ApiError(
                401,
                "InvalidApiKey",
                "the API key is not valid: check it for typos or ask the operator for a new one",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key_id = "key:" + hashlib.sha256(presented.encode()).hexdigest()[:KEY_ID_HEX]
        client = Client(rate_key=key_id, owner=key_id)
    else:
        client = Client(rate_key="ip:" + address, owner=NO_KEYS_OWNER)
    _refuse_if_limited(
        services.limiter.hit(client.rate_key),
        "RateLimited",
        f"more than {services.settings.rate_limit_per_minute} requests per minute from this client",
    )
    return client


def authorize_operator(
    request: Request, services: ServicesDep, api_key: ApiKeyDep, bearer: BearerDep
) -> None:
    """For figures over every tenant (`/metrics`): with API keys set, only an operator key
    (403 for a tenant's key). Without keys there is one tenant, guarded like any route."""
    settings = services.settings
    presented = _presented_key(api_key, bearer)
    if settings.api_keys:
        _failures_bucket(_address(request), services)  # guessing operator keys is limited too
        if presented is not None and _matches(presented, settings.operator_keys):
            _refuse_if_limited(
                services.limiter.hit("operator"),
                "RateLimited",
                f"more than {settings.rate_limit_per_minute} requests per minute from operators",
            )
            return
    authorize(request, services, api_key, bearer)  # 401 or 429 for anything but a tenant key
    if settings.api_keys:
        raise ApiError(
            403,
            "OperatorKeyRequired",
            "/metrics covers every tenant's jobs: it needs an operator key "
            "(FAKEWATCH_OPERATOR_KEYS), not a client's API key",
        )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _failures_bucket(address: str, services: Services) -> str:
    """The address's count of failed authentications; 429 once it is over the limit."""
    bucket = "auth:ip:" + address
    _refuse_if_limited(
        services.auth_failures.blocked(bucket),
        "AuthRateLimited",
        f"more than {services.settings.auth_failures_per_minute} requests without a valid "
        "API key from this address this minute",
    )
    return bucket


def _refuse_if_limited(retry_after: float | None, error_type: str, message: str) -> None:
    if retry_after is not None:
        seconds = max(1, math.ceil(retry_after))
        raise ApiError(
            429,
            error_type,
            f"{message}; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


ClientDep = Annotated[Client, Depends(authorize)]
KeyHolderDep = Annotated[bool, Depends(holds_a_key)]
