"""Bounded, scripted faults. Each returns a `Fault`: when it struck, when it ended and which
ledger jobs it hit, so recovery times are measured from the ledger's own observations."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.client import Client
from bench.chaos.services import Deployment
from fakewatch.jobs.model import JobStatus
from fakewatch.jobs.redis_store import RedisJobStore

TARGET_TIMEOUT_S = 180  # a restarted worker may take a minute to load on a busy machine
KILL_WINDOW_S = 0.4  # a kill lands this long or less after the job is seen running
WORKERS = ("worker1", "worker2")


@dataclass
class Fault:
    """One injected fault and the jobs that were in its way."""

    kind: str
    at: float
    until: float
    jobs: list[str]
    detail: dict[str, object] = field(default_factory=dict)


class Injector:
    """Injects faults into a running deployment while the client keeps submitting."""

    def __init__(self, deployment: Deployment, client: Client, clips: list[Path],
                 seed: int) -> None:
        self.deployment, self.client, self.clips = deployment, client, clips
        self.random = random.Random(seed)
        self.store = RedisJobStore(deployment.store_url)
        self.next_clip = 0
        self.faults: list[Fault] = []
        self.hit: set[str] = set()  # jobs a fault already struck: each fault gets a fresh one

    def submit(self, count: int) -> list[str]:
        """Submit the next `count` unused clips in a background thread each."""
        clips = self.clips[self.next_clip : self.next_clip + count]
        self.next_clip += len(clips)

        def send(clip: Path) -> None:
            with self.client.http() as http:
                self.client.submit(http, clip)

        threads = [threading.Thread(target=send, args=(clip,)) for clip in clips]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [c.name for c in clips]

    def _host_of(self, worker: str | None) -> str | None:
        """The suite host whose live process group holds the worker a job records
        (`<node>@chaos/pid-<pid>`); None for a worker already killed."""
        if not worker or "/pid-" not in worker:
            return None
        try:
            group = os.getpgid(int(worker.rsplit("/pid-", 1)[1]))
        except ProcessLookupError:
            return None
        for host, service in self.deployment.workers.items():
            if service.process.pid == group:
                return host
        return None

    def running_job(self, hosts: tuple[str, ...]) -> tuple[str, str]:
        """Wait for a job running on one of `hosts`; returns (job id, host)."""
        deadline = time.monotonic() + TARGET_TIMEOUT_S
        while time.monotonic() < deadline:
            for job in self.store.list(status=JobStatus.running, limit=20).items:
                host = self._host_of(job.worker)
                if host in hosts and job.id in self.client.ledger.entries and (
                        job.id not in self.hit):
                    self.hit.add(job.id)
                    return job.id, host
            if not self.client.ledger.pending():
                self.submit(2)
            time.sleep(0.05)
        raise RuntimeError(f"no job ran on {hosts} within {TARGET_TIMEOUT_S} s")

    def _still_running(self, job_id: str, host: str) -> bool:
        job = self.store.get(job_id)
        return job is not None and job.status is JobStatus.running and (
            self._host_of(job.worker) == host)

    def record(self, kind: str, at: float, jobs: list[str], *, instant: bool = False,
               **detail: object) -> Fault:
        """`instant`: the fault struck its jobs at `at` (a kill, a cut): recovery counts from it."""
        fault = Fault(kind, at, at if instant else time.monotonic(), jobs, dict(detail))
        self.faults.append(fault)
        return fault

    def kill_workers(self, count: int) -> None:
        """SIGKILL the process group of a worker at a random moment of a random running job,
        then start it again; the next kill waits until it has loaded, so every killed job has
        the other worker to finish on."""
        for number in range(count):
            self.submit(2)
            job_id, host = self.running_job(WORKERS)
            time.sleep(self.random.uniform(0, KILL_WINDOW_S))
            while not self._still_running(job_id, host):  # it finished first: aim again
                job_id, host = self.running_job(WORKERS)
            at = time.monotonic()
            self.deployment.workers[host].kill()
            self.record("worker SIGKILL", at, [job_id], instant=True, host=host)
            self.deployment.start_worker(host)
            if number < count - 1:
                self.deployment.wait_worker(host)

    def cut_worker_link(self, hold_s: float) -> None:
        """Take a worker host's link down mid-job; its job must finish on the other worker."""
        self.submit(2)
        job_id, host = self.running_job(WORKERS)
        at = time.monotonic()
        self.deployment.hosts.cut(host)
        time.sleep(hold_s)
        self.deployment.hosts.restore(host)
        self.record("worker host cut off", at, [job_id], instant=True, host=host,
                    link_down_s=hold_s)

    def restart_redis(self, down_s: float) -> None:
        """kill -9 Redis while a job runs, start it again from its append-only file."""
        self.submit(3)
        self.running_job(WORKERS)
        in_flight = self.client.ledger.pending()
        at = time.monotonic()
        assert self.deployment.redis is not None
        self.deployment.redis.kill()
        time.sleep(down_s)
        self.deployment.start_redis()
        self.record("redis kill -9 + AOF restart", at, in_flight, down_s=down_s)

    def restart_gateway(self) -> None:
        """Stop the gateway (SIGTERM) with jobs in flight and start it again."""
        self.submit(3)
        in_flight = self.client.ledger.pending()
        at = time.monotonic()
        assert self.deployment.gateway is not None
        self.deployment.gateway.stop()
        self.deployment.start_gateway()
        self.record("gateway restart", at, in_flight)

    def broker_outage(self, hold_s: float) -> None:
        """Cut Redis (broker and job store) off for `hold_s`; uploads meanwhile must be refused
        with a status, not accepted and lost."""
        self.submit(3)
        in_flight = self.client.ledger.pending()
        at = time.monotonic()
        self.deployment.hosts.cut("redis")
        statuses: list[int | None] = []
        with self.client.http() as http:
            while time.monotonic() - at < hold_s:
                clip = self.clips[self.next_clip]
                self.next_clip += 1
                statuses.append(self.client.submit(http, clip)[0])
                time.sleep(1)
        self.deployment.hosts.restore("redis")
        self.record("broker outage", at, in_flight, held_s=hold_s, upload_statuses=statuses)

    def slow_store(self, milliseconds: int) -> None:
        """Slow the job store's link and push jobs through it."""
        how = self.deployment.hosts.slow("redis", milliseconds)
        at = time.monotonic()
        latencies = []
        with self.client.http() as http:
            for clip in self.clips[self.next_clip : self.next_clip + 3]:
                latencies.append(round(self.client.submit(http, clip)[1], 3))
        self.next_clip += 3
        in_flight = self.client.ledger.pending()
        self.client.drain(TARGET_TIMEOUT_S)
        self.deployment.hosts.unslow("redis")
        self.record("job store slow", at, in_flight, instant=True, how=how,
                    post_latency_s=latencies)

