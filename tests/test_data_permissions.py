"""What the service writes (uploads, job store, broker messages, results) is readable by its
own user only, whoever else can list the data directory (issue 12, defect 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.service_helpers import submit, wait_for_job

pytest_plugins = ("tests.service_fixtures",)

OTHERS = 0o077  # group and world bits


def test_data_files_are_private_to_the_service_user(
    make_deployment: Any, service_video: Path, tmp_path: Path
) -> None:
    deployment = make_deployment()  # embedded: SQLite job store and results, filesystem broker
    deployment.start_worker(tmp_path).wait_ready()
    with deployment.gateway() as client:
        job_id = submit(client, service_video).json()["id"]
        assert wait_for_job(client, job_id, {"succeeded", "failed"})["status"] == "succeeded"
    data_dir = deployment.settings().data_dir
    written = [data_dir, *data_dir.rglob("*")]
    assert any(path.suffix == ".mp4" for path in written)  # the upload is among them
    assert any(path.name.startswith("jobs.sqlite") for path in written)
    exposed = [f"{oct(path.stat().st_mode & 0o777)} {path}" for path in written
               if path.stat().st_mode & OTHERS]  # fmt: skip
    assert exposed == []
