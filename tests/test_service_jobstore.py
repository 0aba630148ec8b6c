"""The job store's state machine, on both backends (SQLite file, real Redis)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from fakewatch.jobs.model import (
    Job,
    JobError,
    JobStatus,
    UploadInfo,
    WebhookDelivery,
    WebhookState,
    dedup_key,
    expiry,
    new_id,
    now,
)
from fakewatch.jobs.redis_store import RedisJobStore
from fakewatch.jobs.sqlite_store import SqliteJobStore
from fakewatch.jobs.store import (
    ClaimOutcome,
    InFlightLimit,
    JobStore,
    QueueTimeouts,
    WorkerModels,
)
from models.config import DetectOptions
from models.schema import DetectionResult, ModelInfo, VideoInfo

pytest_plugins = ("tests.service_fixtures",)

RETENTION_S = 3600.0
STALE_S = 30.0


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        backend: JobStore = SqliteJobStore(tmp_path / "jobs.sqlite")
        yield backend
        backend.close()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"fakewatch-test-{uuid.uuid4().hex[:12]}:"
    backend = RedisJobStore(url, prefix=prefix)
    yield backend
    backend.close()
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def make_job(
    sha: str = "ab" * 32,
    frames: int | None = None,
    *,
    retention_s: float = RETENTION_S,
    owner: str = "",
) -> Job:
    moment = now()
    options = DetectOptions(frames=frames)
    return Job(
        id=new_id(),
        status=JobStatus.queued,
        created_at=moment,
        updated_at=moment,
        expires_at=expiry(moment, retention_s),
        options=options,
        upload=UploadInfo(filename="clip.mp4", size=10, sha256=sha, media="video", container="mp4"),
        owner=owner,
        upload_key="uploads/clip.mp4",
        dedup_key=dedup_key(sha, options, None, owner),
        task_id=new_id(),
    )


def result() -> DetectionResult:
    return DetectionResult(
        status="no_face",
        probability=None,
        label=None,
        threshold=0.5,
        aggregation="mean",
        identities=[],
        frames=[],
        models=[],
        video=VideoInfo(width=320, height=240, duration=1.0),
        sampled_frames=0,
        timings={"decode": 0.5, "total": 0.75},
    )


def claim(
    store: JobStore, job: Job, task_id: str, stale_after_s: float = STALE_S, max_attempts: int = 3
):
    return store.claim(
        job.id,
        task_id,
        "worker@test",
        max_attempts=max_attempts,
        stale_after_s=stale_after_s,
        retention_s=RETENTION_S,
    )


def test_identical_bytes_and_options_reuse_the_job(store: JobStore) -> None:
    first, created = store.create(make_job())
    assert created
    again, created_again = store.create(make_job())
    assert not created_again and again.id == first.id
    other, created_other = store.create(make_job(frames=4))
    assert created_other and other.id != first.id
    assert dedup_key("ab" * 32, DetectOptions(models=["b", "a"]), None) == dedup_key(
        "ab" * 32, DetectOptions(models=["a", "b"]), None
    )
    assert dedup_key("ab" * 32, DetectOptions(), "http://x/hook") != first.dedup_key


def test_a_failed_job_does_not_block_a_new_attempt(store: JobStore) -> None:
    job, _ = store.create(make_job())
    assert store.fail(job.id, JobError(type="VideoError", message="bad"), RETENTION_S) is not None
    retry, created = store.create(make_job())
    assert created and retry.id != job.id


def test_claim_counts_attempts_and_guards_ownership(store: JobStore) -> None:
    job, _ = store.create(make_job())
    first = claim(store, job, "task-1")
    assert first.outcome is ClaimOutcome.claimed
    assert (
        first.job is not None and first.job.status is JobStatus.running and first.job.attempts == 1
    )

    # Another message for a job a live worker holds: skipped.
    assert claim(store, job, "task-2").outcome is ClaimOutcome.skipped
    # The same message again (its worker died, Celery redelivered it): taken, attempt 2.
    again = claim(store, job, "task-1")
    assert again.outcome is ClaimOutcome.claimed and again.job.attempts == 2  # type: ignore[union-attr]

    assert store.report_progress(job.id, "task-1", "classify", 0.5)
    assert store.get(job.id).progress.stage == "classify"  # type: ignore[union-attr]
    assert not store.report_progress(job.id, "task-2", "classify", 0.9)
    assert not store.heartbeat(job.id, "task-2")
    assert store.succeed(job.id, "task-2", result(), RETENTION_S) is None

    done = store.succeed(job.id, "task-1", result(), RETENTION_S)
    assert done is not None and done.status is JobStatus.succeeded and done.result is not None
    assert done.finished_at is not None and done.expires_at > done.finished_at
    assert claim(store, job, "task-1").outcome is ClaimOutcome.skipped  # finished: never again


def test_a_silent_worker_loses_its_job_to_the_next_delivery(store: JobStore) -> None:
    job, _ = store.create(make_job())
    claim(store, job, "task-1")
    time.sleep(0.05)
    taken = claim(store, job, "task-2", stale_after_s=0.01)
    assert taken.outcome is ClaimOutcome.claimed and taken.job.task_id == "task-2"  # type: ignore[union-attr]
    assert not store.heartbeat(job.id, "task-1")  # the old worker learns to stop


def test_attempts_run_out_into_a_clear_failure(store: JobStore) -> None:
    job, _ = store.create(make_job())
    claim(store, job, "task-1", max_attempts=2)
    claim(store, job, "task-1", max_attempts=2)
    last = claim(store, job, "task-1", max_attempts=2)
    assert last.outcome is ClaimOutcome.exhausted
    assert last.job.status is JobStatus.failed and last.job.error.type == "AttemptsExhausted"  # type: ignore[union-attr]
    assert last.job.attempts == 2  # type: ignore[union-attr]


def test_sweeper_requeues_silent_jobs_then_fails_them(store: JobStore) -> None:
    job, _ = store.create(make_job())
    claim(store, job, "task-1", max_attempts=2)
    time.sleep(0.05)
    requeued, failed = store.requeue_stale(
        stale_after_s=0.01, max_attempts=2, retention_s=RETENTION_S
    )
    assert [j.id for j in requeued] == [job.id] and failed == []
    assert requeued[0].status is JobStatus.queued and requeued[0].task_id != "task-1"
    assert not store.heartbeat(job.id, "task-1")

    claim(store, job, requeued[0].task_id, max_attempts=2)
    time.sleep(0.05)
    requeued, failed = store.requeue_stale(
        stale_after_s=0.01, max_attempts=2, retention_s=RETENTION_S
    )
    assert requeued == [] and [j.id for j in failed] == [job.id]
    assert store.get(job.id).error.type == "AttemptsExhausted"  # type: ignore[union-attr]

    live, _ = store.create(make_job(frames=3))
    claim(store, live, "task-live")
    assert store.requeue_stale(stale_after_s=STALE_S, max_attempts=2, retention_s=RETENTION_S) == (
        [],
        [],
    )


TIMEOUTS = QueueTimeouts(queue_timeout_s=60.0, max_sends=2, stale_after_s=STALE_S)
OVERDUE = QueueTimeouts(queue_timeout_s=0.0, max_sends=2, stale_after_s=0.0, unsent_grace_s=0.0)


def test_queued_jobs_no_worker_took_are_sent_again_then_fail(store: JobStore) -> None:
    """A lost message (broker flushed, failed over, or acked without a claim) cannot leave a
    job queued until it expires: it is re-sent under a new task id, then failed with a reason."""
    job, _ = store.create(make_job())
    assert store.reconcile_queued(TIMEOUTS, RETENTION_S) == ([], [])  # just created: in flight
    assert store.mark_sent(job.id, job.task_id)
    assert not store.mark_sent(job.id, "another-task")
    assert store.reconcile_queued(TIMEOUTS, RETENTION_S) == ([], [])  # sent recently
    (resent,), failed = store.reconcile_queued(OVERDUE, RETENTION_S)
    assert failed == [] and resent.task_id != job.task_id and resent.status == JobStatus.queued
    assert store.mark_sent(job.id, resent.task_id) and store.get(job.id).sends == 2
    resent_again, (gave_up,) = store.reconcile_queued(OVERDUE, RETENTION_S)
    assert resent_again == [] and gave_up.status == JobStatus.failed
    assert gave_up.error.type == "QueueTimeout" and "2 sends" in gave_up.error.message


def test_a_job_whose_message_never_left_is_sent_after_a_grace(store: JobStore) -> None:
    """The broker was down when the sweeper requeued it: the next sweep sends it, not Redis's
    visibility timeout an hour later."""
    job, _ = store.create(make_job())
    claim(store, job, "t1")
    (requeued,), _ = store.requeue_stale(stale_after_s=0.0, max_attempts=3, retention_s=RETENTION_S)
    assert requeued.sent_at is None and requeued.sends == 0
    (to_send,), failed = store.reconcile_queued(OVERDUE, RETENTION_S)
    assert failed == [] and to_send.task_id != requeued.task_id


def test_an_identical_upload_never_joins_a_job_that_stopped_progressing(store: JobStore) -> None:
    stuck, _ = store.create(make_job())
    store.mark_sent(stuck.id, stuck.task_id)
    same, created = store.submit(
        make_job(), in_flight_limit=None, timeouts=TIMEOUTS, retention_s=RETENTION_S
    )
    assert not created and same.id == stuck.id  # still on its way to a worker
    fresh, created = store.submit(
        make_job(), in_flight_limit=None, timeouts=OVERDUE, retention_s=RETENTION_S
    )
    assert created and fresh.id != stuck.id
    old = store.get(stuck.id)
    assert old.status == JobStatus.failed and old.error.type == "Superseded"
    assert fresh.id in old.error.message
    again, created = store.submit(
        make_job(), in_flight_limit=None, timeouts=TIMEOUTS, retention_s=RETENTION_S
    )
    assert not created and again.id == fresh.id  # the dedup index follows the new job
    claim(store, fresh, "t1")
    newest, created = store.submit(
        make_job(), in_flight_limit=None, timeouts=OVERDUE, retention_s=RETENTION_S
    )
    assert created and newest.id != fresh.id
    assert store.get(fresh.id).error.type == "Superseded"  # its worker went silent
    assert store.list(JobStatus.queued).total == 1


def test_expiry_drops_results_then_purges_records(store: JobStore) -> None:
    job, _ = store.create(make_job(retention_s=0.01))
    running, _ = store.create(make_job(frames=2, retention_s=0.01))
    claim(store, running, "task-r")
    time.sleep(0.05)
    expired, purged = store.expire_due(retention_s=0.01)
    assert [j.id for j in expired] == [job.id] and purged == []
    assert store.get(job.id).status is JobStatus.expired  # type: ignore[union-attr]
    assert store.get(running.id).status is JobStatus.running  # type: ignore[union-attr]
    # An expired job no longer blocks a fresh upload of the same bytes.
    assert store.create(make_job())[1]
    time.sleep(0.05)
    expired, purged = store.expire_due(retention_s=0.01)
    assert [j.id for j in purged] == [job.id]
    assert store.get(job.id) is None


def test_listing_is_newest_first_paginated_and_filtered(store: JobStore) -> None:
    jobs = []
    for frames in range(1, 6):
        jobs.append(store.create(make_job(frames=frames))[0])
        time.sleep(0.002)
    claim(store, jobs[0], "task-0")
    page = store.list(limit=2, offset=1)
    assert page.total == 5 and [j.id for j in page.items] == [jobs[3].id, jobs[2].id]
    running = store.list(JobStatus.running)
    assert running.total == 1 and running.items[0].id == jobs[0].id
    counts = store.count_by_status()
    assert counts[JobStatus.queued] == 4 and counts[JobStatus.running] == 1
    assert counts[JobStatus.succeeded] == 0


def test_owners_list_and_dedup_apart_and_are_limited_in_flight(store: JobStore) -> None:
    alice, created = store.create(make_job(owner="key:alice"), in_flight_limit=2)
    assert created
    bobs, created = store.create(make_job(owner="key:bob"), in_flight_limit=2)
    assert created and bobs.id != alice.id  # same bytes and options, another owner
    store.create(make_job(frames=4, owner="key:alice"), in_flight_limit=2)
    with pytest.raises(InFlightLimit):
        store.create(make_job(frames=5, owner="key:alice"), in_flight_limit=2)
    same, created = store.create(make_job(owner="key:alice"), in_flight_limit=2)
    assert not created and same.id == alice.id  # reusing a job is not a new one in flight
    assert store.list(owner="key:bob").total == 1
    assert store.list(JobStatus.queued, owner="key:alice").total == 2
    assert store.list().total == 3
    store.fail(alice.id, JobError(type="VideoError", message="bad"), RETENTION_S)
    assert store.list(JobStatus.failed, owner="key:alice").total == 1
    assert store.list(JobStatus.queued, owner="key:alice").total == 1
    _, created = store.create(make_job(frames=5, owner="key:alice"), in_flight_limit=2)
    assert created
    store.delete(bobs.id)
    assert store.list(owner="key:bob").total == 0 and store.list().total == 3


def test_delete_removes_record_and_dedup(store: JobStore) -> None:
    job, _ = store.create(make_job())
    assert store.delete(job.id).id == job.id  # type: ignore[union-attr]
    assert store.get(job.id) is None and store.delete(job.id) is None
    assert store.list().total == 0 and store.count_by_status()[JobStatus.queued] == 0
    assert store.create(make_job())[1]


def test_webhook_state_stage_totals_and_worker_models(store: JobStore) -> None:
    job, _ = store.create(make_job())
    delivery = WebhookDelivery(url="http://x/hook", state=WebhookState.retrying, attempts=1)
    assert store.update_webhook(job.id, delivery).webhook == delivery  # type: ignore[union-attr]

    store.add_stage_timings({"decode": 0.5, "total": 1.0})
    store.add_stage_timings({"decode": 0.25, "total": 2.0})
    assert store.stage_totals() == {"decode": (0.75, 2), "total": (3.0, 2)}

    assert store.worker_models() is None
    record = WorkerModels(
        worker="w@host",
        models=[ModelInfo(id="m", architecture="meso4", sha256="0" * 64, license="MIT")],
        loaded_at=now() - timedelta(seconds=1),
    )
    store.set_worker_models(record)
    assert store.worker_models() == record
    store.ping()
