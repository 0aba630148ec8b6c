"""The gateway on its own (embedded settings, no worker): validation, auth, limits, job records.

Bad input must never yield a 5xx or leave a job behind; every refusal says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakewatch.jobs.model import now
from fakewatch.jobs.store import WorkerModels
from models.schema import ModelInfo
from tests.service_helpers import Deployment, error_of, submit

pytest_plugins = ("tests.service_fixtures",)

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"


@pytest.fixture
def deployment(gateway_deployment: Any) -> Deployment:
    return gateway_deployment()


@pytest.fixture
def client(deployment: Deployment) -> Iterator[TestClient]:
    with deployment.gateway() as client:
        yield client


def assert_nothing_left(
    client: TestClient, deployment: Deployment, headers: dict[str, str] | None = None
) -> None:
    """No job was created and no partial upload stayed on disk."""
    assert client.get("/jobs", headers=headers).json()["total"] == 0
    uploads = deployment.settings().uploads_dir
    assert [p for p in uploads.rglob("*") if p.name != "incoming"] == []


@pytest.mark.parametrize(
    ("kind", "status", "error_type", "hint"),
    [
        ("empty", 422, "EmptyUpload", "empty"),
        ("text", 415, "UnsupportedMediaType", "mp4"),
        ("audio_only", 422, "UnreadableVideo", "no video stream"),
        ("garbage", 422, "UnreadableVideo", "cut_camera.mp4"),
        ("no_frames", 422, "UnreadableVideo", "headers_only.mp4"),
    ],
)
def test_bad_files_are_refused_before_queueing(
    client: TestClient,
    deployment: Deployment,
    bad_files: dict[str, Path],
    kind: str,
    status: int,
    error_type: str,
    hint: str,
) -> None:
    message = error_of(submit(client, bad_files[kind]), status, error_type)
    assert hint in message
    assert_nothing_left(client, deployment)


def test_upload_over_the_limit_is_refused_while_streaming(
    gateway_deployment: Any, face_video: Path
) -> None:
    deployment = gateway_deployment(max_upload_bytes=20_000)
    assert face_video.stat().st_size > 20_000
    with deployment.gateway() as client:
        # Declared length over the limit: refused before reading the body.
        error_of(submit(client, face_video), 413, "UploadTooLarge")

        # No declared length (chunked): refused by the byte counter mid-stream.
        boundary = "fakewatchtestboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        data = face_video.read_bytes()

        def chunks() -> Iterator[bytes]:
            yield head
            for start in range(0, len(data), 4096):
                yield data[start : start + 4096]
            yield f"\r\n--{boundary}--\r\n".encode()

        response = client.post(
            "/detect",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert "content-length" not in response.request.headers
        error_of(response, 413, "UploadTooLarge")
        assert_nothing_left(client, deployment)


@pytest.mark.parametrize(
    ("parts", "error_type", "hint"),
    [
        ({"video": ("clip.mp4", b"\x00" * 64)}, "UnexpectedField", "'file'"),
        ({"frames": (None, "8")}, "MissingFile", "'file'"),
        (
            {"file": ("clip.mp4", b"\x00" * 64), "colour": (None, "red")},
            "UnexpectedField",
            "colour",
        ),
        (
            {"file": ("clip.mp4", b"\x00" * 64), "frames": (None, "1" * 5000)},
            "FieldTooLong",
            "4096 bytes",
        ),
    ],
)
def test_malformed_forms_name_the_field_to_fix(
    client: TestClient, deployment: Deployment, parts: Any, error_type: str, hint: str
) -> None:
    message = error_of(client.post("/detect", files=parts), 422, error_type)
    assert hint in message
    assert_nothing_left(client, deployment)


def test_non_multipart_body_is_415(client: TestClient) -> None:
    error_of(client.post("/detect", json={"file": "clip.mp4"}), 415, "NotMultipart")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"frames": "0"}, "frames"),
        ({"threshold": "2"}, "threshold"),
        ({"frames": "abc"}, "frames"),
        ({"callback_url": "ftp://example.org/hook"}, "URL"),
        ({"frames": "8", "fps": "1"}, "either frames or fps"),
        ({"policy": "bogus"}, "policy"),  # refused here, not failed later in a worker
        ({"preset": "loose"}, "preset"),
    ],
)
def test_invalid_options_are_422_with_details(
    client: TestClient,
    deployment: Deployment,
    face_video: Path,
    fields: dict[str, str],
    problem: str,
) -> None:
    response = submit(client, face_video, **fields)
    error_of(response, 422, "InvalidParameters")
    assert problem in response.text
    assert_nothing_left(client, deployment)


def test_unknown_model_ids_are_refused_once_workers_reported(
    client: TestClient, deployment: Deployment, face_video: Path
) -> None:
    store = client.app.state.services.store  # type: ignore[attr-defined]
    store.set_worker_models(
        WorkerModels(
            worker="w@test",
            models=[ModelInfo(id="tiny-meso", architecture="meso4", sha256="0" * 64)],
            loaded_at=now(),
        )
    )
    message = error_of(submit(client, face_video, models="tiny-meso,nope"), 422, "UnknownModel")
    assert "nope" in message and "tiny-meso" in message
    assert submit(client, face_video, models="tiny-meso").status_code == 202


def test_limits_reject_long_and_large_videos(gateway_deployment: Any, face_video: Path) -> None:
    with gateway_deployment(max_duration_s=0.5).gateway() as client:
        error_of(submit(client, face_video), 422, "VideoTooLong")
    with gateway_deployment(max_side_px=320).gateway() as client:
        message = error_of(submit(client, face_video), 422, "ResolutionTooHigh")
        assert "640x360" in message


def test_job_record_lifecycle_without_a_worker(
    client: TestClient, deployment: Deployment, face_video: Path
) -> None:
    response = submit(client, face_video, frames="6")
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["status"] == "queued" and job["attempts"] == 0 and job["result"] is None
    assert job["options"]["frames"] == 6
    assert job["upload"]["media"] == "video" and job["upload"]["container"] == "mp4"
    assert job["upload"]["size"] == face_video.stat().st_size
    stored = deployment.settings().uploads_dir / job["id"] / face_video.name
    assert stored.read_bytes() == face_video.read_bytes()

    again = submit(client, face_video, frames="6")
    assert again.status_code == 200 and again.json()["id"] == job["id"]

    assert client.get(f"/jobs/{job['id']}").json()["status"] == "queued"
    listed = client.get("/jobs", params={"status": "queued"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    assert "result" not in listed["items"][0]
    assert client.get("/jobs", params={"limit": 1, "offset": 1}).json()["items"] == []
    assert client.get("/jobs", params={"status": "succeeded"}).json()["total"] == 0
    error_of(client.get("/jobs", params={"status": "bogus"}), 422, "InvalidParameters")
    error_of(client.get("/jobs", params={"limit": 0}), 422, "InvalidParameters")
    error_of(client.get("/jobs", params={"offset": 2**63}), 422, "InvalidParameters")  # was a 500
    assert client.get("/jobs", params={"offset": 2**31}).json()["items"] == []

    assert client.delete(f"/jobs/{job['id']}").status_code == 204
    assert not stored.parent.exists()
    error_of(client.get(f"/jobs/{job['id']}"), 404, "JobNotFound")


def test_unknown_job_ids_are_404(client: TestClient) -> None:
    error_of(client.get("/jobs/no-such-job"), 404, "JobNotFound")
    error_of(client.delete("/jobs/no-such-job"), 404, "JobNotFound")
    error_of(client.get("/no-such-route"), 404, "NotFound")


def test_a_single_image_is_accepted_as_a_one_frame_video(
    client: TestClient, face_image: Path
) -> None:
    response = submit(client, face_image)
    assert response.status_code == 202, response.text
    assert response.json()["upload"]["media"] == "image"
    assert response.json()["upload"]["container"] == "jpeg"


def test_api_keys_guard_every_route_but_health(gateway_deployment: Any, face_video: Path) -> None:
    deployment = gateway_deployment(api_keys=[KEY, OTHER_KEY])
    with deployment.gateway() as client:
        routes = ["GET /jobs", "GET /jobs/x", "DELETE /jobs/x", "GET /models", "GET /metrics"]
        for method, path in (route.split() for route in [*routes, "POST /detect"]):
            response = client.request(method, path)
            error_of(response, 401, "MissingApiKey")
            assert response.headers["www-authenticate"] == "Bearer"
        error_of(client.get("/jobs", headers={"X-API-Key": "wrong"}), 401, "InvalidApiKey")
        error_of(client.get("/jobs", headers={"X-API-Key": KEY[:-1]}), 401, "InvalidApiKey")
        error_of(
            client.get("/jobs", headers={"Authorization": "Bearer nope"}), 401, "InvalidApiKey"
        )
        error_of(submit(client, face_video, headers={"X-API-Key": "x"}), 401, "InvalidApiKey")
        assert_nothing_left(client, deployment, headers={"X-API-Key": KEY})

        assert client.get("/jobs", headers={"X-API-Key": KEY}).status_code == 200
        assert (
            client.get("/jobs", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 200
        )
        assert submit(client, face_video, headers={"X-API-Key": KEY}).status_code == 202
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503  # no worker, but no key needed either


def test_rate_limit_is_per_key_and_says_when_to_retry(gateway_deployment: Any) -> None:
    deployment = gateway_deployment(api_keys=[KEY, OTHER_KEY], rate_limit_per_minute=3)
    with deployment.gateway() as client:
        for _ in range(3):
            assert client.get("/jobs", headers={"X-API-Key": KEY}).status_code == 200
        limited = client.get("/jobs", headers={"X-API-Key": KEY})
        error_of(limited, 429, "RateLimited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert client.get("/jobs", headers={"X-API-Key": OTHER_KEY}).status_code == 200
        assert client.get("/healthz").status_code == 200  # health is never limited


def test_callback_needs_a_signing_secret_outside_embedded_mode(
    gateway_deployment: Any, face_video: Path
) -> None:
    # A production broker nobody listens on: the request must be refused before queueing.
    deployment = gateway_deployment(broker_url="redis://127.0.0.1:9/0", webhook_secret=None)
    with deployment.gateway() as client:
        response = submit(client, face_video, callback_url="http://127.0.0.1:9/hook")
        assert "FAKEWATCH_WEBHOOK_SECRET" in error_of(response, 422, "WebhooksDisabled")


def test_unreachable_broker_is_503_and_the_job_is_not_left_queued(
    gateway_deployment: Any, face_video: Path
) -> None:
    deployment = gateway_deployment(broker_url="redis://127.0.0.1:9/0")
    with deployment.gateway() as client:
        error_of(submit(client, face_video), 503, "BrokerUnavailable")
        jobs = client.get("/jobs").json()["items"]
        assert [job["status"] for job in jobs] == ["failed"]
        assert jobs[0]["error"]["type"] == "BrokerUnavailable"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["broker"].startswith("unreachable")


def test_jobs_expire_after_retention_and_their_uploads_go(
    gateway_deployment: Any, face_video: Path
) -> None:
    deployment = gateway_deployment(retention_s=1)
    with deployment.gateway() as client:
        job_id = submit(client, face_video).json()["id"]
        deadline = time.monotonic() + 15
        while client.get(f"/jobs/{job_id}").json()["status"] != "expired":
            assert time.monotonic() < deadline, "job never expired"
            time.sleep(0.2)
        assert not (deployment.settings().uploads_dir / job_id).exists()
        # An expired record is kept for one more retention period, then purged.
        while client.get(f"/jobs/{job_id}").status_code != 404:
            assert time.monotonic() < deadline, "expired job never purged"
            time.sleep(0.2)


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/jobs/abc")
    client.get("/jobs/def")
    text = client.get("/metrics").text
    assert (
        'fakewatch_http_requests_total{method="GET",route="/jobs/{job_id}",status="404"} 2.0'
        in text
    )
    assert 'fakewatch_jobs{status="queued"} 0.0' in text
    assert "fakewatch_backends_up 1.0" in text


def test_openapi_declares_every_error_response(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        ("/detect", "post"): {"200", "202", "400", "401", "413", "415", "422", "429", "503"},
        ("/jobs/{job_id}", "get"): {"200", "401", "404", "422", "429"},
        ("/jobs/{job_id}", "delete"): {"204", "401", "404", "422", "429"},
        ("/jobs", "get"): {"200", "401", "422", "429"},
        ("/models", "get"): {"200", "401", "429", "503"},
        ("/metrics", "get"): {"200", "401", "429"},
        ("/readyz", "get"): {"200", "503"},
        ("/healthz", "get"): {"200"},
    }
    for (path, method), statuses in expected.items():
        declared = set(paths[path][method]["responses"])
        assert statuses <= declared, (path, method, statuses - declared)
        for status in declared - {"200", "202", "204"}:
            content = paths[path][method]["responses"][status].get("content", {})
            schema = str(content.get("application/json", {}).get("schema", {}))
            assert "ErrorBody" in schema or (path, status) == ("/readyz", "503"), (path, status)
    body = paths["/detect"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and body["properties"]["file"]["format"] == "binary"


def test_unreachable_job_store_is_503_and_leaves_no_upload(
    gateway_deployment: Any, face_video: Path
) -> None:
    deployment = gateway_deployment(jobstore_url="redis://127.0.0.1:9/0")
    with deployment.gateway() as client:
        for response in (client.get("/jobs"), client.get("/jobs/x"), submit(client, face_video)):
            error_of(response, 503, "JobStoreUnavailable")
            assert response.headers["retry-after"] == "60"
        uploads = deployment.settings().uploads_dir
        assert [p for p in uploads.rglob("*") if p.name != "incoming"] == []
        assert client.get("/readyz").json()["job_store"].startswith("unreachable")
