"""Results say what scored them, and a model upgrade never serves old results
(issue 12, defect 8): a result carries fakewatch's version and the registry's sha256 (which
holds each weight file's sha256), and the dedup key includes the weights the workers loaded."""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fakewatch.jobs import open_store
from fakewatch.jobs.model import now
from fakewatch.jobs.store import WorkerModels
from models.config import DetectorConfig
from models.detector import Detector
from tests.service_helpers import submit
from tests.tiny_models import write_test_registry

pytest_plugins = ("tests.service_fixtures",)


def test_results_say_which_fakewatch_and_which_weights_scored_them(
    tmp_path: Path, face_video: Path, blank_video: Path
) -> None:
    registry = write_test_registry(tmp_path / "registry")
    detector = Detector(DetectorConfig(registry_path=registry, device="cpu", frames=4))
    expected = hashlib.sha256(registry.read_bytes()).hexdigest()
    for video in (face_video, blank_video):  # scored, and no face found
        result = detector.detect(video)
        assert result.fakewatch_version == version("fakewatch")
        assert result.registry_sha256 == expected
    assert detector.registry_sha256 == expected


def reported(registry_sha256: str) -> WorkerModels:
    """What a worker records once its detector is loaded."""
    return WorkerModels(worker="w1", models=[], loaded_at=now(), registry_sha256=registry_sha256)


def test_a_model_upgrade_is_not_answered_with_old_results(
    gateway_deployment: Any, face_video: Path
) -> None:
    deployment = gateway_deployment()
    with deployment.gateway() as client:
        store = open_store(deployment.settings())
        store.set_worker_models(reported("a" * 64))
        first = submit(client, face_video)
        assert first.status_code == 202
        again = submit(client, face_video)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

        store.set_worker_models(reported("b" * 64))  # workers now run upgraded weights
        upgraded = submit(client, face_video)
        assert upgraded.status_code == 202, upgraded.text
        assert upgraded.json()["id"] != first.json()["id"]
        store.close()
