"""The API image's file set starts: `fakewatch serve` and the app import from what it copies.

No Docker engine here, so the image is rebuilt faithfully but quickly: exactly the files that
`docker/Dockerfile.api` COPYs go into a temporary WORKDIR, the project is installed from there
as a wheel (`pip install --no-deps --target`, a second or two instead of a fresh venv), and a
fresh interpreter started with `-S` sees only that install plus the test venv's third-party
packages, with the editable checkout hidden (its `.pth` finder is never run) and the ML stack
blocked (the image installs `.[api,worker]`, never the `ml` extra). A module the image lacks
(`weights`, `workers`, `bench`, torch) therefore fails to import here as it would in the image.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.test_compose import dockerfile_instructions

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile.api"
IMAGE_EXTRAS = ("api", "worker")
INSTALL_TIMEOUT_S = 120

PROGRAM = textwrap.dedent(
    """
    import sys
    from importlib.metadata import entry_points

    BLOCKED = set(sys.argv[2].split(","))

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (not in image)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())

    (script,) = entry_points(group="console_scripts", name="fakewatch")
    main = script.load()
    for argv in (["serve", "--help"], ["--help"]):
        try:
            main(argv, prog_name="fakewatch")
        except SystemExit as done:
            assert done.code in (0, None), (argv, done.code)

    from fastapi.testclient import TestClient

    import app.main

    assert app.main.__file__.startswith(sys.argv[3]), app.main.__file__  # the installed copy
    with TestClient(app.main.create_app()) as client:
        assert client.get("/healthz").status_code == 200
        with open(sys.argv[1], "rb") as video:
            response = client.post("/detect", files={"file": ("clip.mp4", video)})
        assert response.status_code == 202, response.text
    print("api image ok")
    """
)


def _copy_like_docker(workdir: Path) -> None:
    """Apply the Dockerfile's COPY instructions (sources relative to the build context)."""
    copies = [args for op, args in dockerfile_instructions(DOCKERFILE) if op == "COPY"]
    for args in copies:
        *sources, destination = shlex.split(args)
        target = workdir / destination
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower() for req in requirements}


def _not_in_image() -> set[str]:
    """Top-level modules of the ML stack: distributions the `ml` extra adds to the image's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    shipped = _requirement_names(project["dependencies"])
    for extra in IMAGE_EXTRAS:
        shipped |= _requirement_names(extras[extra])
    ml_only = _requirement_names(extras["ml"]) - shipped
    modules = {
        module
        for module, distributions in packages_distributions().items()
        if any(d.lower().replace("_", "-") in ml_only for d in distributions)
    }
    return modules | {"workers", "weights", "bench"}


def test_api_image_file_set_serves_and_imports_the_app(tmp_path: Path, face_video: Path) -> None:
    run_line = " ".join(args for op, args in dockerfile_instructions(DOCKERFILE) if op == "RUN")
    assert f'pip install ".[{",".join(IMAGE_EXTRAS)}]"' in run_line  # what this test mirrors
    workdir, site = tmp_path / "srv", tmp_path / "site"
    _copy_like_docker(workdir)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(workdir)],
        check=True, capture_output=True, timeout=INSTALL_TIMEOUT_S,
    )  # fmt: skip
    blocked = _not_in_image()
    assert {"torch", "workers", "weights"} <= blocked
    third_party = sysconfig.get_paths()["purelib"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(site), third_party]),
        "FAKEWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-S", "-c", PROGRAM, str(face_video), ",".join(sorted(blocked)),
         str(site)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "api image ok" in done.stdout and "fakewatch serve" in done.stdout
