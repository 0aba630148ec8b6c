"""Worker failures are not blamed on the user's file (issue 12, defect 7): a store error does
not stop the heartbeats, and a broker blip does not cancel running detections."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from fakewatch.jobs.queue import make_celery
from fakewatch.jobs.sqlite_store import SqliteJobStore
from fakewatch.jobs.store import QueueTimeouts
from fakewatch.settings import Settings
from tests.test_service_jobstore import RETENTION_S, claim, make_job
from workers.guard import JobGuard

BEATS_AFTER_ERROR = 3
WAIT_S = 30  # far past the 10 ms heartbeat interval below


class FlakyStore(SqliteJobStore):
    """A real job store whose first heartbeat fails, as a locked or unreachable store does."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.beats = 0
        self.recovered = threading.Event()

    def heartbeat(self, job_id: str, task_id: str) -> bool:
        self.beats += 1
        if self.beats == 1:
            raise sqlite3.OperationalError("database is locked")
        ours = super().heartbeat(job_id, task_id)
        if self.beats > BEATS_AFTER_ERROR:
            self.recovered.set()
        return ours


def test_heartbeats_go_on_after_a_store_error(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "jobs.sqlite")
    job = make_job()
    timeouts = QueueTimeouts(queue_timeout_s=60, max_sends=3, stale_after_s=30)
    store.submit(job, in_flight_limit=None, timeouts=timeouts, retention_s=RETENTION_S)
    task_id = "task-1"
    claim(store, job, task_id)
    with JobGuard(store, job.id, task_id, interval_s=0.01) as guard:
        assert store.recovered.wait(WAIT_S), "the heartbeat thread died at the first error"
        guard.check()  # the job is still ours
    store.close()


def test_a_broker_blip_leaves_running_detections_alone(tmp_path: Path) -> None:
    app = make_celery(Settings(_env_file=None, data_dir=tmp_path), "test")  # type: ignore[call-arg]
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False
    assert app.conf.task_acks_late is True  # the message comes back if the worker dies instead
