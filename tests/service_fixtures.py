"""Fixtures for the service tests (use with `pytest_plugins = ("tests.service_fixtures",)`).

Redis availability (a skip with a reason when absent), the tiny model registry, a short face
clip, and deployments whose workers and Redis keys are cleaned up afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests import media
from tests.service_helpers import REDIS_URL, Deployment, delete_prefix, new_deployment


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis, or a skip saying how to provide one."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(
            f"Redis unreachable at {REDIS_URL} ({error}): start one (redis-server) or set "
            "FAKEWATCH_TEST_REDIS_URL"
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight models in their own registry: what the test workers load."""
    from tests.tiny_models import write_test_registry

    return write_test_registry(tmp_path_factory.mktemp("tiny-registry"))


@pytest.fixture(scope="session")
def service_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short, small real face clip: 12 frames of the astronaut at 320x240."""
    directory = tmp_path_factory.mktemp("service-media")
    return media.make_face_video(directory / "face.mp4", frames=12, width=320, height=240)


@pytest.fixture
def make_deployment(tmp_path_factory: pytest.TempPathFactory, tiny_registry: Path) -> Iterator[Any]:
    """Factory: make_deployment(redis_url=None, **settings) -> Deployment; cleaned up after."""
    made: list[Deployment] = []

    def make(redis_url: str | None = None, **overrides: Any) -> Deployment:
        deployment = new_deployment(
            tmp_path_factory.mktemp("deployment"), tiny_registry, redis_url, overrides
        )
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        for worker in deployment.workers:
            worker.kill()  # nothing to preserve, and a warm shutdown takes seconds
        if deployment.prefix is not None:
            client = redis.Redis.from_url(deployment.values["broker_url"])
            delete_prefix(client, deployment.prefix)
            client.close()


@pytest.fixture(scope="module")
def redis_deployment(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, tiny_registry: Path
) -> Iterator[Deployment]:
    """One Redis deployment with one production worker, shared by a module's tests."""
    deployment = new_deployment(
        tmp_path_factory.mktemp("redis-deployment"), tiny_registry, redis_url, {}
    )
    deployment.start_worker(tmp_path_factory.mktemp("worker-logs")).wait_ready()
    yield deployment
    for worker in deployment.workers:
        worker.kill()
    client = redis.Redis.from_url(redis_url)
    assert deployment.prefix is not None
    delete_prefix(client, deployment.prefix)
    client.close()


@pytest.fixture
def gateway_deployment(tmp_path: Path) -> Any:
    """Factory for a gateway-only embedded deployment (no worker, no models): API tests."""

    def make(**overrides: Any) -> Deployment:
        return new_deployment(tmp_path / uuid.uuid4().hex[:8], None, None, overrides)

    return make
