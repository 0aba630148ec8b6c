"""docker-compose.yml and the images: they parse, and everything they name exists.

No Docker daemon is needed: commands are parsed by the real click commands, COPY sources are
checked on disk, and the pins are compared with scripts/setup.sh.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from fakewatch.cli import main

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
BUILT = ("api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def parse_fakewatch_command(argv: list[str]) -> click.Context:
    """Parse `fakewatch <command> [options]` with the real CLI, without running it."""
    assert argv[0] == "fakewatch", argv
    command = main.commands.get(argv[1])
    assert command is not None, f"no `fakewatch {argv[1]}` command"
    return command.make_context(argv[1], argv[2:])


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_services_and_redis_persistence(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "api", "worker", "flower"}
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "redis-data" in compose["volumes"]
    assert services["flower"]["profiles"] == ["flower"]
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]  # not on public interfaces


def test_worker_reserves_a_gpu_and_shares_uploads_with_the_api(compose: dict[str, Any]) -> None:
    worker, api = compose["services"]["worker"], compose["services"]["api"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert worker["environment"]["FAKEWATCH_DEVICE"] == "cuda"
    assert worker["volumes"] == api["volumes"] == ["uploads:/data"]
    for service in (api, worker):
        env = service["environment"]
        assert env["FAKEWATCH_BROKER_URL"].startswith("redis://redis:6379/")
        assert env["FAKEWATCH_JOBSTORE_URL"].startswith("redis://redis:6379/")
        assert env["FAKEWATCH_DATA_DIR"] == "/data"
        assert env["FAKEWATCH_API_KEYS"].startswith("${FAKEWATCH_API_KEYS:?")  # required


@pytest.mark.parametrize("service", BUILT)
def test_service_commands_are_real_cli_commands(compose: dict[str, Any], service: str) -> None:
    context = parse_fakewatch_command(compose["services"][service]["command"])
    if service == "api":
        assert context.params["worker"] is False and context.params["host"] == "0.0.0.0"
    else:
        assert context.params["queues"] == "gpu,webhooks"


@pytest.mark.parametrize("service", BUILT)
def test_dockerfiles_copy_files_that_exist(compose: dict[str, Any], service: str) -> None:
    build = compose["services"][service]["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    instructions = dockerfile_instructions(dockerfile)
    copies = [args for op, args in instructions if op == "COPY"]
    assert copies
    for args in copies:
        *sources, _ = shlex.split(args)
        for source in sources:
            assert (ROOT / build["context"] / source).exists(), f"{dockerfile.name}: {source}"
    cmd = [json for op, json in instructions if op == "CMD"][-1]
    parse_fakewatch_command(yaml.safe_load(cmd))
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text()
    for args in copies:
        for source in shlex.split(args)[:-1]:
            assert f"!{source.rstrip('/')}" in ignore, f"{source} is excluded from the context"


def test_api_image_has_no_ml_stack_and_worker_pins_match_setup() -> None:
    api = dockerfile_instructions(ROOT / "docker" / "Dockerfile.api")
    runs = " ".join(args for op, args in api if op in ("RUN", "COPY"))
    assert "torch" not in runs and "ml" not in re.findall(r"\.\[([^\]]*)\]", runs)[0].split(",")
    assert "workers" not in runs and ".[api,worker]" in runs
    worker = (ROOT / "docker" / "Dockerfile.worker").read_text()
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    for package in ("torch", "torchvision", "facenet-pytorch"):
        pin = re.search(rf'"{package}==([^"]+)"', setup)
        assert pin is not None, package
        assert f'"{package}=={pin.group(1)}"' in worker
