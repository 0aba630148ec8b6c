"""Per-process worker state: the job store and the one `Detector`, loaded lazily and reused.

Celery kills a prefork child's `worker_process_init` handler after 4 s (REFERENCE.md §7), far
less than loading an ensemble takes, so there the handler only starts a background thread that
loads the detector; a task that arrives first waits for the same lock. The solo pool runs tasks
in the main process and loads before it consumes anything. Once loaded, the models are recorded
in the job store for `GET /models`.

A detector that cannot load (weights missing, CUDA absent) is the worker's fault, not the
file's: the failure is recorded for `GET /models`, no job is claimed or failed for it, and the
worker stops with EXIT_UNAVAILABLE so its supervisor sees it and readiness loses its ping.
"""

from __future__ import annotations

import logging
import os
import signal
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
from workers.celery_app import EXIT_UNAVAILABLE, UNAVAILABLE_SIGNAL, settings
from workers.guard import STORE_ERRORS

if TYPE_CHECKING:  # torch is imported only when the detector is built
    from models.ensemble import Ensemble

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]


class DetectorUnavailable(Exception):
    """The detector could not be loaded in this process; no job should be charged for it."""


class DetectorLike(Protocol):
    """What a task needs from `models.detector.Detector`."""

    @property
    def models(self) -> list[ModelInfo]: ...

    @property
    def presets(self) -> list[ThresholdPreset]: ...

    @property
    def presets_policy(self) -> str | None: ...

    @property
    def default_policy(self) -> str: ...

    @property
    def ensemble(self) -> Ensemble: ...

    @property
    def registry_sha256(self) -> str: ...

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
        self._failure: str | None = None
        self._lock = threading.Lock()

    def get(self) -> DetectorLike:
        """The loaded detector; DetectorUnavailable when loading failed (once per process)."""
        with self._lock:
            if self._pid != os.getpid():
                self._detector, self._failure, self._pid = None, None, os.getpid()
            if self._failure is not None:
                raise DetectorUnavailable(self._failure)
            if self._detector is None:
                self._detector = self._load()
            return self._detector

    def _load(self) -> DetectorLike:
        try:
            detector = self.factory(settings.detector_config())
        except (FakewatchError, OSError, RuntimeError, ImportError) as error:
            self._failure = f"the detector could not be loaded: {error}"
            _record(WorkerModels(worker=self.worker, models=[], loaded_at=now(),
                                 error=self._failure))
            raise DetectorUnavailable(self._failure) from error
        _record(WorkerModels(worker=self.worker, models=detector.models,
                             presets=detector.presets,
                             presets_aggregation=detector.presets_policy,
                             aggregation=detector.default_policy, loaded_at=now(),
                             registry_sha256=detector.registry_sha256))
        log.info("detector ready: %s", ", ".join(m.id for m in detector.models))
        return detector


def _record(record: WorkerModels) -> None:
    """Tell `GET /models` what this worker loaded or why it could not; a store that is down
    is logged (the worker's own state does not depend on it)."""
    try:
        store().set_worker_models(record)
    except STORE_ERRORS as error:
        log.error("could not record the worker's models in the job store: %s", error)


def load_or_stop(stop: Callable[[], None]) -> None:
    """Load the detector now; when it cannot load, log why and stop the worker via `stop`."""
    try:
        holder.get()
    except DetectorUnavailable as error:
        log.critical("%s; this worker takes no jobs and stops", error)
        stop()


def _exit_now() -> None:
    raise SystemExit(EXIT_UNAVAILABLE)


def _stop_parent() -> None:
    """From a prefork child: stop the whole worker (EXIT_UNAVAILABLE), so it consumes no more
    messages it cannot score; the one it may hold goes back to the broker unacknowledged."""
    os.kill(os.getppid(), getattr(signal, UNAVAILABLE_SIGNAL))


holder = DetectorHolder()
_MAIN_PID = os.getpid()  # the worker's own process: the solo pool runs its tasks here
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
    if os.getpid() == _MAIN_PID:
        load_or_stop(_exit_now)  # solo pool: before the consumer starts
        return
    threading.Thread(
        target=load_or_stop, args=(_stop_parent,), name="detector-preload", daemon=True
    ).start()
