"""Redis job store for production: every gateway and worker host shares it.

Layout under the key prefix: `job:<id>` (JSON), sorted sets `jobs` and `status:<status>` (by
creation time), the same two per owner under `owner:<owner>:`, `expires` (by expiry time), `dedup:<key>` -> id for reusable jobs, hash
`stages` for timing totals. Each change is a WATCH/MULTI transaction, so the indexes never
disagree with the records and concurrent writers retry instead of overwriting each other.
"""

from __future__ import annotations

from datetime import datetime

import redis

from fakewatch.jobs.model import IN_FLIGHT, REUSABLE, Job, JobStatus
from fakewatch.jobs.store import InFlightLimit, JobPage, JobStore, Mutation, WorkerModels

SOCKET_TIMEOUT_S = 5.0


class RedisJobStore(JobStore):
    def __init__(self, url: str, prefix: str = "fakewatch:") -> None:
        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S
        )

    # Keys --------------------------------------------------------------------------------

    def _job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _status(self, status: JobStatus, owner: str | None = None) -> str:
        return f"{self._scope(owner)}status:{status.value}"

    def _all(self, owner: str | None = None) -> str:
        return f"{self._scope(owner)}jobs"

    def _scope(self, owner: str | None) -> str:
        return self.prefix if owner is None else f"{self.prefix}owner:{owner}:"

    def _dedup(self, key: str) -> str:
        return f"{self.prefix}dedup:{key}"

    @property
    def _expires(self) -> str:
        return f"{self.prefix}expires"

    @property
    def _stages(self) -> str:
        return f"{self.prefix}stages"

    @property
    def _models(self) -> str:
        return f"{self.prefix}worker-models"

    # Primitives --------------------------------------------------------------------------

    def create(
        self,
        job: Job,
        in_flight_limit: int | None = None,
        supersede: Mutation | None = None,
    ) -> tuple[Job, bool]:
        dedup = self._dedup(job.dedup_key)
        in_flight = [self._status(status, job.owner) for status in sorted(IN_FLIGHT)]
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(dedup, *in_flight)
                    current, replacement = None, None
                    existing_id = pipe.get(dedup)
                    if existing_id is not None:
                        pipe.watch(self._job(existing_id.decode()))
                        raw = pipe.get(self._job(existing_id.decode()))
                        current = None if raw is None else Job.model_validate_json(raw)
                    if current is not None:
                        replacement = supersede(current) if supersede is not None else None
                        if replacement is None:
                            pipe.unwatch()
                            return current, False
                    if self._full(pipe, in_flight, in_flight_limit):
                        pipe.unwatch()
                        raise InFlightLimit(in_flight_limit)
                    pipe.multi()
                    if current is not None and replacement is not None:
                        self._write(pipe, current, replacement)  # drops its dedup entry first
                    self._write(pipe, None, job)
                    pipe.execute()
                    return job, True
                except redis.WatchError:
                    continue

    @staticmethod
    def _full(pipe: redis.client.Pipeline, indexes: list[str], limit: int | None) -> bool:
        """Whether these indexes hold `limit` jobs, read inside the WATCH (immediate mode)."""
        return limit is not None and sum(int(pipe.zcard(index)) for index in indexes) >= limit

    def get(self, job_id: str) -> Job | None:
        raw = self._redis.get(self._job(job_id))
        return None if raw is None else Job.model_validate_json(raw)

    def mutate(self, job_id: str, change: Mutation) -> tuple[Job | None, bool]:
        key = self._job(job_id)
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None, False
                    job = Job.model_validate_json(raw)
                    changed = change(job)
                    if changed is None:
                        pipe.unwatch()
                        return job, False
                    pipe.multi()
                    self._write(pipe, job, changed)
                    pipe.execute()
                    return changed, True
                except redis.WatchError:
                    continue

    def _write(self, pipe: redis.client.Pipeline, old: Job | None, new: Job) -> None:
        """Queue the commands that store `new` (replacing `old`) and keep the indexes true."""
        created = new.created_at.timestamp()
        pipe.set(self._job(new.id), new.model_dump_json())
        pipe.zadd(self._expires, {new.id: new.expires_at.timestamp()})
        for owner in (None, new.owner):
            pipe.zadd(self._all(owner), {new.id: created})
            if old is not None and old.status != new.status:
                pipe.zrem(self._status(old.status, owner), new.id)
            pipe.zadd(self._status(new.status, owner), {new.id: created})
        if new.status in REUSABLE:
            pipe.set(self._dedup(new.dedup_key), new.id)
        elif old is not None and old.status in REUSABLE:
            pipe.delete(self._dedup(new.dedup_key))

    def delete(self, job_id: str) -> Job | None:
        key = self._job(job_id)
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    job = Job.model_validate_json(raw)
                    pipe.multi()
                    pipe.delete(key)
                    pipe.zrem(self._expires, job_id)
                    for owner in (None, job.owner):
                        pipe.zrem(self._all(owner), job_id)
                        pipe.zrem(self._status(job.status, owner), job_id)
                    if job.status in REUSABLE:
                        pipe.delete(self._dedup(job.dedup_key))
                    pipe.execute()
                    return job
                except redis.WatchError:
                    continue

    def list(
        self,
        status: JobStatus | None = None,
        limit: int = 20,
        offset: int = 0,
        owner: str | None = None,
    ) -> JobPage:
        index = self._status(status, owner) if status else self._all(owner)
        ids = self._redis.zrevrange(index, offset, offset + limit - 1)
        total = self._redis.zcard(index)
        raws = self._redis.mget([self._job(i.decode()) for i in ids]) if ids else []
        return JobPage([Job.model_validate_json(raw) for raw in raws if raw is not None], total)

    def due_ids(self, moment: datetime) -> list[str]:
        ids = self._redis.zrangebyscore(self._expires, "-inf", moment.timestamp())
        return [i.decode() for i in ids]

    def count_by_status(self) -> dict[JobStatus, int]:
        with self._redis.pipeline(transaction=False) as pipe:
            for status in JobStatus:
                pipe.zcard(self._status(status))
            counts = pipe.execute()
        return dict(zip(JobStatus, counts, strict=True))

    def add_stage_timings(self, timings: dict[str, float]) -> None:
        with self._redis.pipeline() as pipe:
            for stage, seconds in timings.items():
                pipe.hincrbyfloat(self._stages, f"{stage}:sum", seconds)
                pipe.hincrby(self._stages, f"{stage}:count", 1)
            pipe.execute()

    def stage_totals(self) -> dict[str, tuple[float, int]]:
        fields = {k.decode(): v.decode() for k, v in self._redis.hgetall(self._stages).items()}
        stages = {name.rsplit(":", 1)[0] for name in fields}
        return {
            stage: (float(fields.get(f"{stage}:sum", 0)), int(fields.get(f"{stage}:count", 0)))
            for stage in stages
        }

    def set_worker_models(self, record: WorkerModels) -> None:
        self._redis.set(self._models, record.model_dump_json())

    def worker_models(self) -> WorkerModels | None:
        raw = self._redis.get(self._models)
        return None if raw is None else WorkerModels.model_validate_json(raw)

    def ping(self) -> None:
        self._redis.ping()

    def close(self) -> None:
        self._redis.close()
