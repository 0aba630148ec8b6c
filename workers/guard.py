"""Keep a running job honest: heartbeats for the sweeper, a hard deadline, and cancellation.

Solo pools ignore Celery's time limits (REFERENCE.md §7), so the task enforces its own deadline:
SIGALRM interrupts a long stage when the task runs on the main thread (solo and prefork pools),
and every progress report checks the clock as well. A heartbeat thread tells the gateway's
sweeper the worker is alive; when the store says the job is no longer ours (deleted, or requeued
to another worker), the next progress report stops the detection. A heartbeat the store could not
take is logged and tried again at the next beat: one store error must not silence the worker for
the rest of the job (the sweeper would then requeue a job that is still running). A progress
report the store could not take is logged and skipped the same way, so a store blip between two
stages does not fail the job as the file's fault.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Self

import redis

from fakewatch.jobs import JobStore
from models.errors import FakewatchError

log = logging.getLogger(__name__)
STORE_ERRORS = (redis.RedisError, sqlite3.Error, OSError)  # the job store is down or locked


class DeadlineExceeded(FakewatchError):
    """The job ran past its deadline."""


class JobLost(Exception):
    """The job was deleted or handed to another worker: stop without writing anything."""


class JobGuard:
    """Heartbeats while alive; `progress` is the detector's callback."""

    def __init__(self, store: JobStore, job_id: str, task_id: str, interval_s: float) -> None:
        self.store = store
        self.job_id = job_id
        self.task_id = task_id
        self.interval_s = interval_s
        self.deadline: float | None = None
        self.deadline_s: float | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                ours = self.store.heartbeat(self.job_id, self.task_id)
            except STORE_ERRORS as error:
                log.warning("job %s: heartbeat not recorded, trying again: %s", self.job_id, error)
                continue
            if not ours:
                self._lost.set()
                return

    def check(self) -> None:
        if self._lost.is_set():
            raise JobLost(self.job_id)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _deadline_error(self.deadline_s or 0)

    def progress(self, stage: str, fraction: float) -> None:
        self.check()
        try:
            ours = self.store.report_progress(self.job_id, self.task_id, stage, fraction)
        except STORE_ERRORS as error:  # like a missed heartbeat: the next report tries again
            log.warning("job %s: progress not recorded, going on: %s", self.job_id, error)
            return
        if not ours:
            self._lost.set()
            raise JobLost(self.job_id)

    @contextmanager
    def deadline_of(self, seconds: float) -> Iterator[None]:
        """Raise DeadlineExceeded if the block runs longer than `seconds`."""
        self.deadline, self.deadline_s = time.monotonic() + seconds, seconds
        on_main = threading.current_thread() is threading.main_thread()
        if not on_main:
            yield  # only progress reports can check the clock here
            return

        def expire(signum: int, frame: FrameType | None) -> None:
            raise _deadline_error(seconds)

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _deadline_error(seconds: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"detection took longer than the {seconds:.0f} s limit; send a shorter clip, ask for "
        "fewer frames, or raise FAKEWATCH_JOB_DEADLINE_S"
    )
