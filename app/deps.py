"""Every dependency a route takes, as an `Annotated` alias: signatures read like sentences."""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request

from app.errors import ApiError
from app.services import Services
from fakewatch.jobs import JobStore
from fakewatch.settings import Settings

API_KEY_HEADER = "x-api-key"
NO_KEYS_OWNER = ""  # without keys there is one tenant: everyone sees every job
BEARER = "bearer "
KEY_ID_HEX = 16  # 64 bits of the key's sha256: unique per key, and says nothing about it


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


def _presented_key(request: Request) -> str | None:
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith(BEARER):
        return authorization[len(BEARER) :].strip() or None
    return None


def _is_valid(presented: str, settings: Settings) -> bool:
    """Compared in constant time against every key, so neither content nor position leaks."""
    matched = False
    for key in settings.api_keys:
        matched |= hmac.compare_digest(presented.encode(), key.get_secret_value().encode())
    return matched


def holds_a_key(request: Request, services: ServicesDep) -> bool:
    """True when keys are configured and the request presents one: never raises, for routes
    open to everyone that show more to a key holder."""
    presented = _presented_key(request)
    return presented is not None and _is_valid(presented, services.settings)


@dataclass(frozen=True)
class Client:
    """Who is calling: `rate_key` counts their requests, `owner` is stamped on their jobs."""

    rate_key: str
    owner: str


def authorize(request: Request, services: ServicesDep) -> Client:
    """Check the API key (when keys are configured) and the rate limit.

    With keys, a key's id (a hash of it, never the key) is both its rate-limit bucket and the
    owner of its jobs; without keys, requests are limited per address and all jobs share one
    owner.
    """
    keys = services.settings.api_keys
    if keys:
        presented = _presented_key(request)
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
        address = request.client.host if request.client else "unknown"
        client = Client(rate_key="ip:" + address, owner=NO_KEYS_OWNER)
    retry_after = services.limiter.hit(client.rate_key)
    if retry_after is not None:
        seconds = max(1, math.ceil(retry_after))
        raise ApiError(
            429,
            "RateLimited",
            f"more than {services.settings.rate_limit_per_minute} requests per minute from this "
            f"client; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    return client


ClientDep = Annotated[Client, Depends(authorize)]
KeyHolderDep = Annotated[bool, Depends(holds_a_key)]
