"""The gateway runs without the ML stack and without the worker code, as in its Docker image."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A fresh interpreter where the ML stack cannot be imported, as in docker/Dockerfile.api.
PROGRAM = textwrap.dedent(
    """
    import sys

    BLOCKED = {"torch", "torchvision", "timm", "facenet_pytorch", "cv2", "workers"}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())

    import fakewatch.cli
    from fastapi.testclient import TestClient

    import app.main

    assert {"serve", "worker"} <= set(fakewatch.cli.main.commands)
    with TestClient(app.main.create_app()) as client:
        assert client.get("/healthz").status_code == 200
        with open(sys.argv[1], "rb") as video:
            response = client.post("/detect", files={"file": ("clip.mp4", video)})
        assert response.status_code == 202, response.text  # sniffed and probed without torch
    loaded = {name.split(".")[0] for name in sys.modules}
    assert not loaded & BLOCKED, loaded & BLOCKED
    print("gateway ok without", sorted(BLOCKED))
    """
)


def test_gateway_and_cli_import_without_torch_or_workers(tmp_path: Path, face_video: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEWATCH_")}
    env.update(PYTHONPATH=str(ROOT), FAKEWATCH_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(face_video)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gateway ok" in done.stdout


def test_the_base_layer_never_imports_the_cli() -> None:
    """settings, jobs and webhook_targets are what app/ and workers/ stand on; only the CLI may
    import every layer, so the base must load without it (and without app/ or workers/)."""
    program = (
        "import sys\n"
        "import fakewatch.jobs, fakewatch.settings, fakewatch.webhook_targets\n"
        "loaded = {n for n in sys.modules if n.split('.')[0] in ('app', 'workers') or n.startswith('fakewatch.cli')}\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
