"""SQLite job store: the embedded default, one file shared by the gateway and its worker.

WAL mode lets the worker write progress while the gateway reads; `BEGIN IMMEDIATE` makes each
read-modify-write atomic across processes. One connection per thread and process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from fakewatch.jobs.model import IN_FLIGHT, REUSABLE, Job, JobStatus
from fakewatch.jobs.store import InFlightLimit, JobPage, JobStore, Mutation, WorkerModels

BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another process's transaction
WORKER_MODELS_KEY = "worker_models"
_REUSABLE_SQL = ", ".join(f"'{status.value}'" for status in sorted(REUSABLE))
_IN_FLIGHT_SQL = ", ".join(f"'{status.value}'" for status in sorted(IN_FLIGHT))
# The owner lives in the JSON body (records written before owners existed read as ""), indexed
# by this exact expression so per-owner listing and counting stay indexed.
OWNER_SQL = "COALESCE(json_extract(body, '$.owner'), '')"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    dedup_key TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_expires ON jobs (expires_at);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs ({OWNER_SQL}, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedup ON jobs (dedup_key) WHERE status IN ({_REUSABLE_SQL});
CREATE TABLE IF NOT EXISTS stage_timings (
    stage TEXT PRIMARY KEY,
    total REAL NOT NULL,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteJobStore(JobStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(SCHEMA)  # idempotent; runs in its own transaction

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork (prefork workers) or a thread.
        if getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db, self._local.pid = db, os.getpid()
        return self._local.db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _row(job: Job) -> tuple[str, str, float, float, str, str]:
        return (
            job.id,
            job.status.value,
            job.created_at.timestamp(),
            job.expires_at.timestamp(),
            job.dedup_key,
            job.model_dump_json(),
        )

    def create(
        self,
        job: Job,
        in_flight_limit: int | None = None,
        supersede: Mutation | None = None,
    ) -> tuple[Job, bool]:
        with self._transaction() as db:
            existing = db.execute(
                f"SELECT body FROM jobs WHERE dedup_key = ? AND status IN ({_REUSABLE_SQL})",
                (job.dedup_key,),
            ).fetchone()
            if existing is not None:
                current = Job.model_validate_json(existing[0])
                replacement = supersede(current) if supersede is not None else None
                if replacement is None:
                    return current, False
                self._update(db, replacement)
            if in_flight_limit is not None:
                (in_flight,) = db.execute(
                    f"SELECT COUNT(*) FROM jobs WHERE {OWNER_SQL} = ? "
                    f"AND status IN ({_IN_FLIGHT_SQL})",
                    (job.owner,),
                ).fetchone()
                if in_flight >= in_flight_limit:
                    raise InFlightLimit(in_flight_limit)
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)", self._row(job))
        return job, True

    def get(self, job_id: str) -> Job | None:
        row = self._connection().execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.model_validate_json(row[0])

    def mutate(self, job_id: str, change: Mutation) -> tuple[Job | None, bool]:
        with self._transaction() as db:
            row = db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None, False
            job = Job.model_validate_json(row[0])
            changed = change(job)
            if changed is None:
                return job, False
            self._update(db, changed)
        return changed, True

    def _update(self, db: sqlite3.Connection, job: Job) -> None:
        db.execute(
            "UPDATE jobs SET status = ?, created_at = ?, expires_at = ?, dedup_key = ?, "
            "body = ? WHERE id = ?",
            (*self._row(job)[1:], job.id),
        )

    def delete(self, job_id: str) -> Job | None:
        with self._transaction() as db:
            row = db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return Job.model_validate_json(row[0])

    def list(
        self,
        status: JobStatus | None = None,
        limit: int = 20,
        offset: int = 0,
        owner: str | None = None,
    ) -> JobPage:
        db = self._connection()
        conditions: list[str] = []
        params: list[object] = []
        if status is not None:
            conditions.append("status = ?")
            params.append(status.value)
        if owner is not None:
            conditions.append(f"{OWNER_SQL} = ?")
            params.append(owner)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        total = db.execute(f"SELECT COUNT(*) FROM jobs {where}", params).fetchone()[0]
        rows = db.execute(
            f"SELECT body FROM jobs {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return JobPage([Job.model_validate_json(row[0]) for row in rows], total)

    def due_ids(self, moment: datetime) -> list[str]:
        rows = self._connection().execute(
            "SELECT id FROM jobs WHERE expires_at <= ?", (moment.timestamp(),)
        )
        return [row[0] for row in rows]

    def count_by_status(self) -> dict[JobStatus, int]:
        rows = self._connection().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        counts = dict.fromkeys(JobStatus, 0)
        counts.update({JobStatus(status): count for status, count in rows})
        return counts

    def add_stage_timings(self, timings: dict[str, float]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO stage_timings VALUES (?, ?, 1) ON CONFLICT (stage) DO UPDATE SET "
                "total = total + excluded.total, count = count + 1",
                list(timings.items()),
            )

    def stage_totals(self) -> dict[str, tuple[float, int]]:
        rows = self._connection().execute("SELECT stage, total, count FROM stage_timings")
        return {stage: (total, count) for stage, total, count in rows}

    def set_worker_models(self, record: WorkerModels) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?)",
                (WORKER_MODELS_KEY, record.model_dump_json()),
            )

    def worker_models(self) -> WorkerModels | None:
        row = (
            self._connection()
            .execute("SELECT value FROM records WHERE key = ?", (WORKER_MODELS_KEY,))
            .fetchone()
        )
        return None if row is None else WorkerModels.model_validate(json.loads(row[0]))

    def ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local = threading.local()
