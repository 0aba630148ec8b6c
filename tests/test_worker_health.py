"""A worker that cannot work says so instead of blaming the user's file (issue 12, defect 7).

Without its weights a worker claims no job and fails none: it records why for `GET /models`,
leaves the message to a worker that can, and exits non-zero. A worker that dies of a Redis
out-of-memory error exits non-zero too (Celery's `worker_main` used to turn that into 0).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.service_helpers import POLL_S, WORKER_READY_TIMEOUT_S, submit, wait_for_job
from workers.runtime import EXIT_UNAVAILABLE

pytest_plugins = ("tests.service_fixtures",)
OOM_REDIS_START_S = 30
FILL_VALUE = b"x" * 1024


def registry_without_weights(registry: Path, directory: Path) -> Path:
    """A copy of `registry` whose checkpoint files are gone, as on a host missing its weights."""
    copy = Path(shutil.copytree(registry.parent, directory / "registry"))
    for path in copy.iterdir():
        if path.name != registry.name:
            path.unlink()
    return copy / registry.name


def exit_code(worker: Any) -> int:
    """The worker's exit code (it must stop on its own; the bound only guards a hung test)."""
    try:
        return worker.process.wait(timeout=WORKER_READY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop:\n{worker.log()[-3000:]}")


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_a_worker_without_weights_takes_no_job_and_stops(
    pool: str,
    redis_url: str,
    make_deployment: Any,
    tiny_registry: Path,
    service_video: Path,
    tmp_path: Path,
) -> None:
    deployment = make_deployment(
        redis_url, registry_path=registry_without_weights(tiny_registry, tmp_path)
    )
    with deployment.gateway() as client:
        job_id = submit(client, service_video).json()["id"]
        broken = deployment.start_worker(tmp_path, pool=pool)
        assert exit_code(broken) == EXIT_UNAVAILABLE, broken.log()[-3000:]

        job = client.get(f"/jobs/{job_id}").json()
        assert job["status"] == "queued", job  # neither failed nor charged an attempt
        assert job["attempts"] == 0, job
        models = client.get("/models")
        assert models.status_code == 503, models.text
        assert models.json()["error"]["type"] == "WorkerUnavailable"
        assert "could not be loaded" in models.json()["error"]["message"]

        # The message was left in the queue: a worker with its weights scores the same job.
        deployment.values["registry_path"] = tiny_registry
        deployment.start_worker(tmp_path).wait_ready()
        assert wait_for_job(client, job_id, {"succeeded", "failed"})["status"] == "succeeded"
        assert client.get("/models").status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[str]:
    """A private Redis whose memory is full (maxmemory reached, no eviction): every write is
    refused with OOM, as in production when Redis runs out of memory."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--maxmemory", "2mb", "--maxmemory-policy", "noeviction",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, retry_on_timeout=True)
    try:
        _wait_for_ping(client, process)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for index in range(100_000):
                client.set(f"fill:{index}", FILL_VALUE)
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait()


def _wait_for_ping(client: redis.Redis, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + OOM_REDIS_START_S
    while time.monotonic() < deadline:
        try:
            client.ping()
            return
        except redis.exceptions.ConnectionError:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with {process.returncode}")
            time.sleep(POLL_S)
    pytest.fail("redis-server did not answer")


def test_a_worker_killed_by_redis_oom_exits_non_zero(
    full_redis: str, make_deployment: Any, tmp_path: Path
) -> None:
    prefix = f"oom-{uuid.uuid4().hex[:8]}:"
    deployment = make_deployment(
        None,
        broker_url=full_redis,
        result_backend=full_redis,
        jobstore_url=full_redis,
        broker_key_prefix=prefix,
        jobstore_key_prefix=f"{prefix}jobs:",
    )
    worker = deployment.start_worker(tmp_path)
    code = exit_code(worker)
    assert "OutOfMemoryError" in worker.log()
    assert code != 0
