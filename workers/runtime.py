"""Per-process worker state: the job store and the one `Detector`, loaded lazily and reused.

Celery kills a `worker_process_init` handler after 4 s (REFERENCE.md §7), far less than loading
an ensemble takes, so the handler only starts a background thread that loads the detector; a
task that arrives first waits for the same lock. Once loaded, the models are recorded in the
job store for `GET /models`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from celery.signals import worker_process_init

from fakewatch.jobs import JobStore, open_store
from fakewatch.jobs.model import now
from fakewatch.jobs.store import WorkerModels
from models.config import DetectOptions, DetectorConfig
from models.errors import FakewatchError
from models.schema import DetectionResult, ModelInfo, ThresholdPreset
from workers.celery_app import settings

if TYPE_CHECKING:  # torch is imported only when the detector is built
    from models.ensemble import Ensemble

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]


class DetectorLike(Protocol):
    """What a task needs from `models.detector.Detector`."""

    @property
    def models(self) -> list[ModelInfo]: ...

    @property
    def presets(self) -> list[ThresholdPreset]: ...

    @property
    def ensemble(self) -> Ensemble: ...

    def detect(
        self,
        path: str | Path,
        options: DetectOptions | None = None,
        progress: Progress | None = None,
    ) -> DetectionResult: ...


def build_detector(config: DetectorConfig) -> DetectorLike:
    """Load and warm up the real detector (imports torch)."""
    from models.detector import Detector

    detector = Detector(config)
    detector.load()
    detector.warmup()
    return detector


class DetectorHolder:
    """One detector per process, built by `factory` on first use."""

    def __init__(self, factory: Callable[[DetectorConfig], DetectorLike] = build_detector) -> None:
        self.factory = factory
        self.worker = f"pid-{os.getpid()}"
        self._detector: DetectorLike | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> DetectorLike:
        with self._lock:
            if self._detector is None or self._pid != os.getpid():
                detector = self.factory(settings.detector_config())
                self._detector, self._pid = detector, os.getpid()
                record = WorkerModels(worker=self.worker, models=detector.models,
                                      presets=detector.presets, loaded_at=now())
                store().set_worker_models(record)
                log.info("detector ready: %s", ", ".join(m.id for m in detector.models))
            return self._detector

    def preload(self) -> None:
        """Load in the background; a failure is logged here and raised again for each job."""
        try:
            self.get()
        except FakewatchError as error:
            log.error("detector could not be loaded: %s", error)


holder = DetectorHolder()
_store: dict[int, JobStore] = {}


def store() -> JobStore:
    """This process's job store connection (a new one after a fork)."""
    pid = os.getpid()
    if pid not in _store:
        _store.clear()
        _store[pid] = open_store(settings)
    return _store[pid]


@worker_process_init.connect
def _start_preload(sender: Any = None, **_: Any) -> None:
    holder.worker = f"{sender or 'worker'}/pid-{os.getpid()}"
    threading.Thread(target=holder.preload, name="detector-preload", daemon=True).start()
