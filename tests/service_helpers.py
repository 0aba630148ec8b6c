"""Helpers for the service tests: deployments (settings + env), real worker processes, polling.

A `Deployment` is one isolated installation: its own data directory and, with Redis, its own
key prefixes for the broker and the job store, so tests (and concurrent test sessions) never
see each other's queues or jobs. Workers are real Celery processes started from
`tests.service_worker` (the production app, optionally misbehaving). Fixtures built on these
live in `tests.service_fixtures`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from fakewatch.jobs.names import WORKER_QUEUES
from fakewatch.settings import ENV_PREFIX, Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("FAKEWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WORKER_READY_TIMEOUT_S = 120  # importing torch and loading tiny models on a busy 2-core machine
JOB_TIMEOUT_S = 90
POLL_S = 0.2
# Quick heartbeats and sweeps so a killed worker is noticed in seconds, not minutes.
FAST_SETTINGS: dict[str, Any] = {
    "device": "cpu",
    "frames": 8,
    "heartbeat_interval_s": 0.5,
    "stale_after_s": 2.5,
    "sweep_interval_s": 0.5,
    "job_deadline_s": 60,
    "broker_visibility_timeout_s": 120,
    "max_attempts": 2,
    "webhook_backoff_s": 0.3,
    "rate_limit_per_minute": 0,
    "webhook_secret": "test-only-webhook-secret-0123456789",
    "webhook_allow_private": True,  # the test's webhook receiver listens on 127.0.0.1
}


def _env_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass
class Deployment:
    """Settings for one isolated installation, as a `Settings` object and as FAKEWATCH_* env."""

    values: dict[str, Any]
    prefix: str | None = None  # Redis key prefix shared by broker and job store, if any
    workers: list[WorkerProcess] = field(default_factory=list)

    def settings(self) -> Settings:
        return Settings(_env_file=None, **self.values)  # type: ignore[call-arg]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(
            {
                f"{ENV_PREFIX}{k.upper()}": _env_value(v)
                for k, v in self.values.items()
                if v is not None
            }
        )
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT), **extra)
        return env

    def start_worker(
        self, log_dir: Path, *, hook: str | None = None, pool: str = "solo"
    ) -> WorkerProcess:
        worker = WorkerProcess(self, log_dir, hook=hook, pool=pool)
        self.workers.append(worker)
        return worker

    def gateway(self) -> TestClient:
        from app.main import create_app

        return TestClient(create_app(self.settings()))


class WorkerProcess:
    """A real Celery worker in its own process group (so kill -9 takes its pool children too)."""

    def __init__(
        self, deployment: Deployment, log_dir: Path, *, hook: str | None, pool: str
    ) -> None:
        self.name = f"w{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"{self.name}.log"
        extra = {"FAKEWATCH_TEST_HOOK": hook} if hook else {}
        command = [
            sys.executable,
            "-m",
            "tests.service_worker",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            "1",
            "--queues",
            ",".join(WORKER_QUEUES),
            "--hostname",
            f"{self.name}@%h",
            "--loglevel",
            "INFO",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=deployment.env(**extra),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = WORKER_READY_TIMEOUT_S) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"{self.name}@" in self.log() and " ready." in self.log():
                return self
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            time.sleep(POLL_S)
        pytest.fail(f"worker not ready after {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), like the OOM killer."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is already gone
        self.process.wait()


def wait_for_job(
    client: TestClient | httpx.Client,
    job_id: str,
    statuses: set[str],
    *,
    timeout: float = JOB_TIMEOUT_S,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll GET /jobs/{id} until its status is one of `statuses`; fail with the job if not."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in statuses:
            return job
        time.sleep(POLL_S)
    pytest.fail(f"job {job_id} not {statuses} after {timeout} s: {job}")


def submit(
    client: TestClient | httpx.Client,
    path: Path,
    *,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    with path.open("rb") as file:
        return client.post(
            "/detect", files={"file": (path.name, file)}, data=fields, headers=headers
        )


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


def new_deployment(
    data_dir: Path, registry: Path | None, redis_url: str | None, overrides: dict[str, Any]
) -> Deployment:
    values: dict[str, Any] = {**FAST_SETTINGS, "data_dir": data_dir, "registry_path": registry}
    prefix = None
    if redis_url is not None:
        prefix = f"fakewatch-test-{uuid.uuid4().hex[:12]}:"
        values.update(
            broker_url=redis_url,
            result_backend=redis_url,
            jobstore_url=redis_url,
            broker_key_prefix=prefix,
            jobstore_key_prefix=f"{prefix}jobs:",
        )
    values.update(overrides)
    return Deployment(values=values, prefix=prefix)


def error_of(response: Any, status: int, error_type: str) -> str:
    """The message of an error response, after checking its status and type."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type, error
    assert len(error["message"]) > 20
    return error["message"]
