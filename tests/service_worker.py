"""Test-only worker entry: the production Celery app whose detector misbehaves on purpose.

    python -m tests.service_worker worker --pool solo ...

FAKEWATCH_TEST_HOOK picks the misbehaviour (production code has no such switch):
- `crash`: the process dies (os._exit) as detection starts, like a video that crashes the
  decoder or exhausts memory; with a prefork pool only the child dies and Celery redelivers.
- `stall`: detection reports its first stage, then sleeps: a job to kill mid-run or time out.
Unset, the worker is the production one.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from models.config import DetectOptions, DetectorConfig
from models.schema import DetectionResult, ModelInfo, ThresholdPreset
from workers import runtime
from workers.celery_app import run_worker

HOOK_ENV = "FAKEWATCH_TEST_HOOK"
CRASH_EXIT_CODE = 70
STALL_NAP_S = 0.1  # short naps, so a deadline's SIGALRM lands between them promptly


class MisbehavingDetector:
    """Stands in for the real detector (nothing to load, so crashed children restart fast)."""

    def __init__(self, hook: str) -> None:
        self.hook = hook
        self.models: list[ModelInfo] = []
        self.presets: list[ThresholdPreset] = []
        self.presets_policy: str | None = None
        self.default_policy = "mean"
        self.registry_sha256 = "0" * 64

    def detect(
        self,
        path: str | Path,
        options: DetectOptions | None = None,
        progress: runtime.Progress | None = None,
    ) -> DetectionResult:
        if progress is not None:
            progress("decode", 0.0)
        if self.hook == "crash":
            os._exit(CRASH_EXIT_CODE)
        while True:  # stall until killed, cancelled or past the deadline
            time.sleep(STALL_NAP_S)


def _hooked_factory(hook: str) -> Callable[[DetectorConfig], runtime.DetectorLike]:
    def build(config: DetectorConfig) -> runtime.DetectorLike:
        return MisbehavingDetector(hook)

    return build


if __name__ == "__main__":
    hook = os.environ.get(HOOK_ENV)
    if hook is not None:
        if hook not in ("crash", "stall"):
            raise SystemExit(f"{HOOK_ENV} must be crash or stall, got {hook!r}")
        runtime.holder.factory = _hooked_factory(hook)
    run_worker(sys.argv[1:])
