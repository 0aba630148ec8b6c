"""One API key never sees or touches another key's jobs, and cannot starve the other keys.

Before, any key listed every job (with other clients' file names and callback URLs), read and
deleted them, and got another key's job back by uploading the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.service_helpers import error_of, submit

pytest_plugins = ("tests.service_fixtures",)

ALICE = {"X-API-Key": "alice-key-0123456789abcdef"}
BOB = {"Authorization": "Bearer bob-key-0123456789abcdef"}
KEYS = [ALICE["X-API-Key"], BOB["Authorization"].removeprefix("Bearer ")]


def test_another_keys_job_is_invisible_and_untouchable(
    gateway_deployment: Any, face_video: Path
) -> None:
    with gateway_deployment(api_keys=KEYS).gateway() as client:
        alices = submit(client, face_video, headers=ALICE, callback_url="http://127.0.0.1/a")
        assert alices.status_code == 202, alices.text
        job_id = alices.json()["id"]

        assert client.get("/jobs", headers=BOB).json() == {
            "items": [], "total": 0, "limit": 20, "offset": 0
        }  # fmt: skip
        for status in ("queued", "running"):
            assert client.get("/jobs", headers=BOB, params={"status": status}).json()["total"] == 0
        error_of(client.get(f"/jobs/{job_id}", headers=BOB), 404, "JobNotFound")
        error_of(client.delete(f"/jobs/{job_id}", headers=BOB), 404, "JobNotFound")
        assert client.get(f"/jobs/{job_id}", headers=ALICE).json()["status"] == "queued"

        bobs = submit(client, face_video, headers=BOB, callback_url="http://127.0.0.1/a")
        assert bobs.status_code == 202 and bobs.json()["id"] != job_id  # same bytes: his own job
        again = submit(client, face_video, headers=ALICE, callback_url="http://127.0.0.1/a")
        assert again.status_code == 200 and again.json()["id"] == job_id

        listed = client.get("/jobs", headers=ALICE).json()
        assert [item["id"] for item in listed["items"]] == [job_id] and listed["total"] == 1
        assert client.delete(f"/jobs/{job_id}", headers=ALICE).status_code == 204
        assert client.get("/jobs", headers=BOB).json()["total"] == 1


def test_jobs_in_flight_are_limited_per_key(gateway_deployment: Any, face_video: Path) -> None:
    deployment = gateway_deployment(api_keys=KEYS, max_jobs_in_flight_per_key=2)
    with deployment.gateway() as client:
        for frames in ("4", "5"):
            assert submit(client, face_video, headers=ALICE, frames=frames).status_code == 202
        limited = submit(client, face_video, headers=ALICE, frames="6")
        assert "2 jobs" in error_of(limited, 429, "TooManyJobsInFlight")
        assert int(limited.headers["retry-after"]) > 0
        assert submit(client, face_video, headers=ALICE, frames="4").status_code == 200  # dedup
        assert submit(client, face_video, headers=BOB, frames="6").status_code == 202
        uploads = deployment.settings().uploads_dir
        assert len([p for p in uploads.iterdir() if p.name != "incoming"]) == 3  # none left over

        first = client.get("/jobs", headers=ALICE).json()["items"][-1]["id"]
        assert client.delete(f"/jobs/{first}", headers=ALICE).status_code == 204
        assert submit(client, face_video, headers=ALICE, frames="6").status_code == 202
