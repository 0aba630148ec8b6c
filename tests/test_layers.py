"""The layers hold: `lint-imports` checks pyproject's import contracts (fakewatch.cli on top, then
app, workers and bench, the fakewatch base, models, weights), and would catch each kind of breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")  # the dev extra's import-linter
PACKAGES = ("fakewatch", "app", "workers", "bench", "models", "weights")
LAYERS = "Layers: cli > app | workers | bench > base > models > weights"
MODELS_CORE = "models/ imports neither the service nor the CLI"
GATEWAY_LIGHT = "app/ never loads torch, the ML stack or workers/"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"}  # a contract per line
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_import_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's Python sources and contracts, without data, weights or tests."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", root)
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            target = root / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return root


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("app/main.py", "import torch", GATEWAY_LIGHT),
        ("app/routes/health.py", "import workers.tasks", GATEWAY_LIGHT),
        ("app/intake.py", "import models.checkpoints", GATEWAY_LIGHT),  # torch, one step away
        ("models/aggregation.py", "import fakewatch.settings", MODELS_CORE),
        ("models/presets.py", "import app.errors", MODELS_CORE),
        ("fakewatch/settings.py", "import fakewatch.jobs", LAYERS),  # the base's own order
        ("fakewatch/jobs/store.py", "import fakewatch.cli", LAYERS),
        ("workers/tasks.py", "import app.main", LAYERS),
        ("weights/__init__.py", "import models.registry", LAYERS),
    ],
)
def test_a_breach_of_each_contract_is_caught(
    source_copy: Path, module: str, statement: str, contract: str
) -> None:
    path = source_copy / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\n{statement}  # a breach\n", encoding="utf-8")
    try:
        done = lint_imports(source_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert done.returncode == 1, done.stdout[-3000:]
    verdicts = [line for line in done.stdout.splitlines() if " BROKEN" in line or " KEPT" in line]
    assert len(verdicts) == 3, done.stdout[-3000:]
    assert any(line.startswith(f"{contract} BROKEN") for line in verdicts), verdicts
