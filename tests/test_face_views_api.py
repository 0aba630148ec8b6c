"""Face crops and heatmaps over the API: made by a real worker, cached with the job, owner-scoped."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.service_helpers import Deployment, error_of, submit, wait_for_job

pytest_plugins = ("tests.service_fixtures",)
pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]
KEYS = ("first-key-0123456789", "second-key-0123456789")


def first_face(job: dict[str, Any]) -> tuple[int, int]:
    frame = next(f for f in job["result"]["frames"] if f["faces"])
    return frame["index"], 0


def test_crops_and_heatmaps_are_served_cached_scoped_and_deleted_with_the_job(
    make_deployment: Any, service_video: Path, tmp_path: Path
) -> None:
    deployment: Deployment = make_deployment(api_keys=list(KEYS))
    deployment.start_worker(tmp_path).wait_ready()
    mine, theirs = ({"X-API-Key": key} for key in KEYS)
    with deployment.gateway() as client:
        job_id = submit(client, service_video, headers=mine).json()["id"]
        job = wait_for_job(client, job_id, {"succeeded", "failed"}, headers=mine)
        assert job["status"] == "succeeded", job["error"]
        frame, face = first_face(job)
        crop_url = f"/jobs/{job_id}/faces/{frame}/{face}.jpg"
        heatmap_url = f"/jobs/{job_id}/faces/{frame}/{face}/heatmap.png"

        crop = client.get(crop_url, headers=mine)
        assert crop.status_code == 200, crop.text
        assert crop.headers["content-type"] == "image/jpeg"
        crop_image = np.asarray(Image.open(io.BytesIO(crop.content)))
        assert crop_image.ndim == 3 and min(crop_image.shape[:2]) > 16 and crop_image.std() > 10

        heatmap = client.get(heatmap_url, headers=mine)
        assert heatmap.status_code == 200, heatmap.text
        assert heatmap.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(heatmap.content)).size == Image.open(io.BytesIO(crop.content)).size

        # every face of the job was cut in the one pass: the other crops come from the cache
        views = deployment.settings().uploads_dir / job_id / "views"
        faces = sum(len(f["faces"]) for f in job["result"]["frames"])
        assert len(list(views.glob("*-*.jpg"))) == faces

        error_of(client.get(crop_url, headers=theirs), 404, "JobNotFound")
        error_of(client.get(heatmap_url, headers=theirs), 404, "JobNotFound")
        error_of(client.get(f"/jobs/{job_id}/faces/{frame}/99.jpg", headers=mine), 404, "FaceNotFound")
        error_of(client.get(f"/jobs/{job_id}/faces/100000/0.jpg", headers=mine), 404, "FaceNotFound")
        error_of(client.get(crop_url), 401, "MissingApiKey")

        assert client.delete(f"/jobs/{job_id}", headers=mine).status_code == 204
        assert not views.exists() and not views.parent.exists()
        error_of(client.get(crop_url, headers=mine), 404, "JobNotFound")


def test_the_page_and_its_assets_are_served_without_a_key(gateway_deployment: Any) -> None:
    deployment: Deployment = gateway_deployment(api_keys=[KEYS[0]])
    with deployment.gateway() as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'src="/ui/js/main.js"' in page.text and "http" not in page.text.split("<body>")[0]
        for asset in ("/ui/js/main.js", "/ui/js/api.js", "/ui/js/timeline.js", "/ui/style.css"):
            assert client.get(asset).status_code == 200, asset
        assert client.get("/jobs").status_code == 401  # the data still needs the key
