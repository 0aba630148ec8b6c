"""The embedded default for real: `fakewatch serve` with its worker, no Redis, over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from fakewatch.cli import main
from models.schema import DetectionResult
from tests.service_helpers import WORKER_READY_TIMEOUT_S, Deployment, submit, wait_for_job

pytest_plugins = ("tests.service_fixtures",)
pytestmark = [pytest.mark.service, pytest.mark.timeout(240)]
FAKEWATCH = Path(sys.executable).with_name("fakewatch")  # the console script setup installs
STOP_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def served(
    make_deployment: Any, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`fakewatch serve` on a free port, its own process group; killed if a test leaves it."""
    assert FAKEWATCH.is_file(), f"{FAKEWATCH} missing: install the project (scripts/setup.sh)"
    deployment: Deployment = make_deployment()
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(FAKEWATCH), "serve", "--port", str(port), "--log-level", "warning"],
            cwd=tmp_path,
            env=deployment.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log_path
    finally:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_ready(
    client: httpx.Client, process: subprocess.Popen[bytes], log_path: Path
) -> dict[str, Any]:
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            response = client.get("/readyz")
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 200:
            return response.json()
        time.sleep(0.3)
    pytest.fail(f"serve not ready:\n{log_path.read_text()[-3000:]}")


def test_fakewatch_serve_runs_api_and_worker_end_to_end(
    served: tuple[subprocess.Popen[bytes], str, Path], service_video: Path, face_image: Path
) -> None:
    process, base_url, log_path = served
    with httpx.Client(base_url=base_url, timeout=30) as client:
        ready = wait_ready(client, process, log_path)
        assert ready["workers"] and ready["broker"] == "ok" and ready["job_store"] == "ok"
        assert f"fakewatch API on {base_url}" in log_path.read_text()

        video = submit(client, service_video)
        image = submit(client, face_image)
        assert video.status_code == image.status_code == 202, (video.text, image.text)
        video_job = wait_for_job(client, video.json()["id"], {"succeeded", "failed"})
        image_job = wait_for_job(client, image.json()["id"], {"succeeded", "failed"})

    assert video_job["status"] == "succeeded", video_job["error"]
    result = DetectionResult.model_validate(video_job["result"])
    assert result.status == "ok" and result.sampled_frames == 8
    assert video_job["result"]["frames_without_face"] == 0  # relayed as the detector wrote it
    assert image_job["status"] == "succeeded", image_job["error"]
    still = DetectionResult.model_validate(image_job["result"])
    assert still.video.is_image and still.sampled_frames == 1
    assert still.status == "ok" and len(still.frames[0].faces) >= 1

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while group_alive(process.pid):  # the worker must go with the API
        assert time.monotonic() < deadline, "embedded worker outlived `fakewatch serve`"
        time.sleep(0.2)


def test_embedded_worker_stops_when_serve_is_killed(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    """SIGKILL gives `serve` no chance to stop its worker: the kernel must (parent-death signal)."""
    process, base_url, log_path = served
    with httpx.Client(base_url=base_url, timeout=30) as client:
        wait_ready(client, process, log_path)
    process.kill()
    process.wait()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while group_alive(process.pid):
        assert time.monotonic() < deadline, "embedded worker outlived a killed `fakewatch serve`"
        time.sleep(0.2)


def test_deadline_is_enforced_by_the_task_itself(
    make_deployment: Any, service_video: Path, tmp_path: Path
) -> None:
    deployment: Deployment = make_deployment(job_deadline_s=1.5)
    deployment.start_worker(tmp_path, hook="stall").wait_ready()  # solo pool, embedded broker
    with deployment.gateway() as client:
        job_id = submit(client, service_video).json()["id"]
        job = wait_for_job(client, job_id, {"succeeded", "failed"})
    assert job["status"] == "failed"
    assert job["error"]["type"] == "DeadlineExceeded"
    assert "1.5 s" in job["error"]["message"] or "2 s" in job["error"]["message"]
    assert job["attempts"] == 1


def test_serve_refuses_a_public_interface_without_api_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("FAKEWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--no-worker"])
    assert outcome.exit_code == 1
    assert "FAKEWATCH_API_KEYS" in outcome.output and "127.0.0.1" in outcome.output
    assert not (tmp_path / ".fakewatch").exists()  # refused before touching anything
