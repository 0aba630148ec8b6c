"""The production topology for real: Redis broker and job store, real Celery worker processes.

The gateway runs in-process (TestClient, with its sweeper); workers are subprocesses running
the tiny test models. Misbehaving workers come from `tests.service_worker`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.dispatch import send_detect
from fakewatch.jobs.model import Job, JobStatus, UploadInfo, dedup_key, expiry, new_id, now
from fakewatch.jobs.uploads import upload_key
from fakewatch.settings import Settings
from models.config import DEFAULT_POLICY, DetectOptions
from models.schema import DetectionResult
from tests import media
from tests.service_helpers import FAST_SETTINGS, Deployment, submit, wait_for_job

pytest_plugins = ("tests.service_fixtures",)
pytestmark = [pytest.mark.service, pytest.mark.timeout(240)]
FINAL = {"succeeded", "failed"}


class WebhookReceiver:
    """A local HTTP server that records each POST and answers the next status in `answers`."""

    def __init__(self, answers: list[int]) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.answers = answers
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def metric(exposition: str, series: str) -> float:
    """The value of one series in a Prometheus text exposition."""
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not exposed")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(answers=[503, 200])  # fails once: the retry must deliver it
    yield server
    server.close()


def test_face_video_goes_through_the_queue_and_succeeds(
    redis_deployment: Deployment, service_video: Path
) -> None:
    with redis_deployment.gateway() as client:
        response = submit(client, service_video)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert response.headers["location"] == f"/jobs/{job_id}"
        assert response.json()["status"] == "queued"

        job = wait_for_job(client, job_id, FINAL)
        assert job["status"] == "succeeded", job["error"]
        assert job["attempts"] == 1
        assert job["progress"] == {"stage": "done", "fraction": 1.0}
        assert job["created_at"] <= job["started_at"] <= job["finished_at"]
        result = DetectionResult.model_validate(job["result"])
        assert result.status == "ok"
        assert result.sampled_frames == FAST_SETTINGS["frames"]
        assert 0.0 <= result.probability <= 1.0
        assert any(frame.faces for frame in result.frames)
        loaded = [model.id for model in result.models]
        assert loaded == ["tiny-meso", "tiny-hybrid"]

        models = client.get("/models")
        assert models.status_code == 200
        assert [m["id"] for m in models.json()["models"]] == loaded
        assert [m["sha256"] for m in models.json()["models"]] == [m.sha256 for m in result.models]
        # the tiny ensemble has no presets: no rates to qualify, and the service default policy
        assert models.json()["presets_aggregation"] is None
        assert models.json()["aggregation"] == result.aggregation == DEFAULT_POLICY

        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["workers"], ready.json()

        metrics = client.get("/metrics").text
        assert metric(metrics, 'fakewatch_jobs{status="succeeded"}') >= 1
        assert metric(metrics, 'fakewatch_stage_seconds_count{stage="detect_faces"}') >= 1
        assert metric(metrics, 'fakewatch_stage_seconds_sum{stage="total"}') > 0
        assert metric(metrics, 'fakewatch_queue_depth{queue="gpu"}') == 0


def test_identical_upload_returns_the_existing_job(
    redis_deployment: Deployment, service_video: Path
) -> None:
    with redis_deployment.gateway() as client:
        first = submit(client, service_video, frames="4")
        again = submit(client, service_video, frames="4")
        other = submit(client, service_video, frames="5")
        assert first.status_code == 202
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["location"] == f"/jobs/{first.json()['id']}"
        assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
        for job_id in (first.json()["id"], other.json()["id"]):
            assert wait_for_job(client, job_id, FINAL)["status"] == "succeeded"
        listed = client.get("/jobs", params={"status": "succeeded"}).json()
        ids = {item["id"] for item in listed["items"]}
        assert {first.json()["id"], other.json()["id"]} <= ids


def test_webhook_is_signed_and_retried_until_delivered(
    redis_deployment: Deployment, service_video: Path, receiver: WebhookReceiver
) -> None:
    with redis_deployment.gateway() as client:
        response = submit(client, service_video, frames="3", callback_url=receiver.url)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert response.json()["webhook"]["state"] == "pending"
        assert wait_for_job(client, job_id, FINAL)["status"] == "succeeded"

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            webhook = client.get(f"/jobs/{job_id}").json()["webhook"]
            if webhook["state"] in ("delivered", "failed"):
                break
            time.sleep(0.2)
        assert webhook["state"] == "delivered", webhook
        assert webhook["attempts"] == 2 and webhook["last_status"] == 200

    assert len(receiver.calls) == 2
    secret = FAST_SETTINGS["webhook_secret"].encode()
    for headers, body in receiver.calls:
        timestamp = headers["x-fakewatch-timestamp"]
        expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["x-fakewatch-signature"] == f"sha256={expected}"
        assert abs(time.time() - int(timestamp)) < 120
        payload = json.loads(body)
        assert payload["id"] == job_id and payload["status"] == "succeeded"
        DetectionResult.model_validate(payload["result"])


def test_job_survives_its_worker_being_killed(
    redis_url: str, make_deployment: Any, service_video: Path, tmp_path: Path
) -> None:
    deployment = make_deployment(redis_url)
    stalling = deployment.start_worker(tmp_path, hook="stall").wait_ready()
    with deployment.gateway() as client:
        job_id = submit(client, service_video).json()["id"]
        running = wait_for_job(client, job_id, {"running"})
        assert running["attempts"] == 1

        stalling.kill()
        deployment.start_worker(tmp_path).wait_ready()
        job = wait_for_job(client, job_id, FINAL)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    DetectionResult.model_validate(job["result"])


def test_video_that_always_crashes_its_worker_fails_after_max_attempts(
    redis_url: str, make_deployment: Any, service_video: Path, tmp_path: Path
) -> None:
    deployment = make_deployment(redis_url)
    worker = deployment.start_worker(tmp_path, hook="crash", pool="prefork").wait_ready()
    with deployment.gateway() as client:
        job_id = submit(client, service_video).json()["id"]
        job = wait_for_job(client, job_id, FINAL)
    assert job["status"] == "failed"
    assert job["attempts"] == FAST_SETTINGS["max_attempts"]
    assert job["error"]["type"] == "AttemptsExhausted"
    assert "stopped 2 time(s)" in job["error"]["message"]
    assert worker.process.poll() is None, "the prefork parent must survive its children"


def test_undecodable_upload_fails_at_the_worker_without_retry(
    redis_deployment: Deployment, tmp_path: Path
) -> None:
    """A file the gateway let through but the detector cannot decode: failed, not retried."""
    settings = redis_deployment.settings()
    upload = media.make_text_file(tmp_path / "notes.mp4").read_bytes()
    with redis_deployment.gateway() as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        job = queued_job(settings, upload, "notes.mp4")
        settings.upload_path(job.upload_key).parent.mkdir(parents=True)
        settings.upload_path(job.upload_key).write_bytes(upload)
        services.store.create(job)
        send_detect(services.queue, job)
        done = wait_for_job(client, job.id, FINAL)
    assert done["status"] == "failed" and done["attempts"] == 1
    assert done["error"]["type"] == "VideoError"
    assert "notes.mp4" in done["error"]["message"]


def test_a_job_whose_message_was_lost_is_sent_again_and_succeeds(
    redis_deployment: Deployment, service_video: Path
) -> None:
    """Redis without persistence restarted (or was flushed) after the job was sent: the
    gateway's sweeper notices nobody took it within the queue timeout and sends it again."""
    impatient = Deployment(
        values={**redis_deployment.values, "queue_timeout_s": 2}, prefix=redis_deployment.prefix
    )
    settings = impatient.settings()
    data = service_video.read_bytes()
    with impatient.gateway() as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        job = queued_job(settings, data, service_video.name)
        job = job.model_copy(update={"dedup_key": new_id()})  # not the other tests' job
        settings.upload_path(job.upload_key).parent.mkdir(parents=True)
        settings.upload_path(job.upload_key).write_bytes(data)
        assert services.store.create(job)[1]
        assert services.store.mark_sent(job.id, job.task_id)  # the message is then lost
        done = wait_for_job(client, job.id, FINAL)
    assert done["status"] == "succeeded" and done["attempts"] == 1, done


def queued_job(settings: Settings, data: bytes, filename: str) -> Job:
    """A job record as the gateway writes it, for bytes the gateway never inspected."""
    sha = hashlib.sha256(data).hexdigest()
    moment, job_id = now(), new_id()
    return Job(
        id=job_id,
        status=JobStatus.queued,
        created_at=moment,
        updated_at=moment,
        expires_at=expiry(moment, settings.retention_s),
        options=DetectOptions(),
        upload=UploadInfo(
            filename=filename, size=len(data), sha256=sha, media="video", container="mp4"
        ),
        upload_key=upload_key(job_id, filename),
        dedup_key=dedup_key(sha, DetectOptions(), None),
        task_id=new_id(),
    )
