"""Guessing API keys gets nowhere, and the API's description says how to authenticate
(issue 12, defect 8).

Failed authentications are limited per client address, in memory or in Redis like the request
limit; once over, even the right key is refused until the minute ends, so a guess that happens
to be right cannot be told from a wrong one. `/docs` and `/openapi.json` stay open (they
describe the public API, nothing about jobs or the deployment) and declare the key schemes.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.ratelimit import MemoryRateLimiter
from tests.service_helpers import error_of

pytest_plugins = ("tests.service_fixtures",)

KEY = "test-key-0123456789abcdef"
FAILURES = 3


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_failed_authentications_are_limited_per_address(
    backend: str, gateway_deployment: Any, make_deployment: Any, redis_url: str
) -> None:
    settings = {"api_keys": [KEY], "auth_failures_per_minute": FAILURES}
    deployment = (
        gateway_deployment(**settings)
        if backend == "memory"
        else make_deployment(redis_url, **settings)
    )
    app = create_app(deployment.settings())
    with TestClient(app) as guesser, TestClient(app, client=("192.0.2.7", 4000)) as other:
        error_of(guesser.get("/jobs"), 401, "MissingApiKey")
        for guess in range(FAILURES - 1):
            error_of(
                guesser.get("/jobs", headers={"X-API-Key": f"guess-{guess}"}), 401, "InvalidApiKey"
            )
        for headers in ({"X-API-Key": "guess-again"}, {"X-API-Key": KEY}):
            limited = guesser.get("/jobs", headers=headers)
            error_of(limited, 429, "AuthRateLimited")
            assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert guesser.get("/healthz").status_code == 200  # health needs no key, is not limited
        assert other.get("/jobs", headers={"X-API-Key": KEY}).status_code == 200


def test_the_in_memory_limiter_holds_a_bounded_number_of_clients() -> None:
    """Past `max_clients` distinct clients in a window, new ones share one bucket: memory stays
    bounded and a flood of fresh addresses is still limited."""
    limiter = MemoryRateLimiter(per_window=2, max_clients=3)
    for client in ("a", "b", "c"):
        assert limiter.hit(client) is None
    assert limiter.hit("d") is None and limiter.hit("e") is None  # both in the shared bucket
    assert limiter.hit("f") is not None
    assert limiter.blocked("g") is not None
    assert limiter.blocked("a") is None and limiter.hit("a") is None  # known clients keep theirs


def test_api_description_is_open_and_declares_the_key_schemes(gateway_deployment: Any) -> None:
    with gateway_deployment(api_keys=[KEY]).gateway() as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json")
        assert spec.status_code == 200
    schemes = spec.json()["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"] == {"type": "http", "scheme": "bearer"}
    for path, operations in spec.json()["paths"].items():
        for method, operation in operations.items():
            if path in ("/healthz", "/readyz"):
                assert "security" not in operation, (method, path)
            else:
                assert operation["security"] == [{"ApiKey": []}, {"Bearer": []}], (method, path)
