"""A job-store error while a detection reports progress must not crash the job (found by the
chaos suite, issue 13): the worker's detection was failed as `InternalError` and blamed on the
file whenever Redis blipped between two stages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fakewatch.jobs.sqlite_store import SqliteJobStore
from fakewatch.jobs.store import QueueTimeouts
from tests.test_service_jobstore import RETENTION_S, claim, make_job
from workers.guard import JobGuard

HEARTBEAT_S = 60  # no heartbeat during the test: only progress reports touch the store


class BlinkingStore(SqliteJobStore):
    """A real job store whose first progress report fails, as a restarting Redis does."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reports = 0

    def report_progress(self, job_id: str, task_id: str, stage: str, fraction: float) -> bool:
        self.reports += 1
        if self.reports == 1:
            raise sqlite3.OperationalError("database is locked")
        return super().report_progress(job_id, task_id, stage, fraction)


def test_a_progress_report_the_store_missed_does_not_stop_the_job(tmp_path: Path) -> None:
    store = BlinkingStore(tmp_path / "jobs.sqlite")
    job = make_job()
    timeouts = QueueTimeouts(queue_timeout_s=60, max_sends=3, stale_after_s=30)
    store.submit(job, in_flight_limit=None, timeouts=timeouts, retention_s=RETENTION_S)
    claim(store, job, "task-1")
    with JobGuard(store, job.id, "task-1", interval_s=HEARTBEAT_S) as guard:
        guard.progress("decode", 0.5)  # the store is down: the detection goes on
        guard.progress("classify", 0.9)  # back: recorded
    stored = store.get(job.id)
    assert stored is not None and stored.progress is not None
    assert (stored.progress.stage, stored.progress.fraction) == ("classify", 0.9)
    store.close()
