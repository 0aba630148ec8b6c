"""Runs the whole suite in order (deploy, faults, load, fuzz, reconcile) and returns the report.
Whatever happens, every process, namespace and temporary directory it made is removed."""

from __future__ import annotations

import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.chaos import clips as clip_maker
from bench.chaos import corpus, fuzz, load
from bench.chaos.client import Client
from bench.chaos.faults import Injector
from bench.chaos.hosts import Hosts, make_hosts
from bench.chaos.ledger import Ledger
from bench.chaos.services import Deployment

STALE_AFTER_S = 5.0
# Quick heartbeats and sweeps, so each fault is noticed in seconds; a queue timeout longer than
# the burst's drain, so a long queue is not mistaken for lost messages.
SETTINGS: dict[str, Any] = {
    "device": "cpu", "frames": 16, "heartbeat_interval_s": 1.0, "stale_after_s": STALE_AFTER_S,
    "sweep_interval_s": 1.0, "job_deadline_s": 60, "broker_visibility_timeout_s": 90,
    "max_attempts": 4, "queue_timeout_s": 600, "rate_limit_per_minute": 0,
    "max_jobs_in_flight_per_key": 0, "upload_idle_timeout_s": 2, "upload_timeout_s": 30,
}
DRAIN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Plan:
    """How much of each fault and load to run."""

    name: str
    worker_kills: int
    redis_restarts: int
    broker_outage_s: float
    uploads: int
    duplicates: int
    schemathesis_examples: int
    link_cut_s: float
    slow_store: bool = True
    seed: int = 13
    slow_ms: int = 100


FULL = Plan("full", worker_kills=20, redis_restarts=3, broker_outage_s=30, uploads=100,
            duplicates=20, schemathesis_examples=25, link_cut_s=3 * STALE_AFTER_S)
SHORT = Plan("short", worker_kills=2, redis_restarts=1, broker_outage_s=3, uploads=20,
             duplicates=4, schemathesis_examples=2, link_cut_s=STALE_AFTER_S + 1,
              slow_store=False)


def run(plan: Plan, logs_to: Path | None = None, loopback: bool = False) -> dict[str, Any]:
    """Run `plan`; returns the report (see report.py). With `logs_to`, the services' logs are
    copied there before the temporary directory goes; `loopback` skips the namespaces."""
    hosts, why_not = make_hosts(loopback)
    with tempfile.TemporaryDirectory(prefix="fakewatch-chaos-", ) as temp:
        directory = Path(temp)
        deployment: Deployment | None = None
        try:
            preparing = time.monotonic()
            registry = clip_maker.write_registry(directory / "registry")
            fault_clips = _fault_clips(plan)
            clips = clip_maker.write_clips(directory / "clips", fault_clips + plan.uploads)
            deployment = Deployment(hosts, directory, registry, SETTINGS)
            hosts.enter_client()  # before any thread: every client socket is the client host's
            prepare_s = round(time.monotonic() - preparing, 1)
            report = _run(plan, hosts, deployment, clips, fault_clips, why_not, directory)
            return {**report, "prepare_s": prepare_s}
        finally:
            if deployment is not None:
                deployment.stop_all()
            hosts.remove()
            if logs_to is not None:
                logs_to.mkdir(parents=True, exist_ok=True)
                for log in directory.glob("*.log"):
                    shutil.copy(log, logs_to / log.name)


def _run(plan: Plan, hosts: Hosts, deployment: Deployment, clips: list[Path], fault_clips: int,
         why_not: str | None, directory: Path) -> dict[str, Any]:
    started = time.monotonic()
    deployment.start_redis()
    deployment.start_gateway()
    for host in ("worker1", "worker2"):
        deployment.start_worker(host)
    for host in ("worker1", "worker2"):
        deployment.wait_worker(host)
    phases: dict[str, float] = {"start services": time.monotonic() - started}
    ledger = Ledger()
    skipped: list[str] = []  # faults this mode or plan cannot run, named in the report
    client = Client(deployment.base_url, deployment.keys, ledger)
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(client, stop))
    poller.start()
    injector = Injector(deployment, client, clips[:fault_clips], plan.seed)
    try:
        mark = time.monotonic()
        injector.kill_workers(plan.worker_kills)
        client.drain(DRAIN_TIMEOUT_S)
        phases["worker kills"] = time.monotonic() - mark
        faults: list[Callable[[], None]] = [
            *(lambda: injector.restart_redis(down_s=1.0) for _ in range(plan.redis_restarts)),
            injector.restart_gateway,
        ]
        network = hosts.mode.startswith("network")
        if not network:
            skipped.extend(["worker host cut off", "broker outage", "job store slow"])
        elif not plan.slow_store:
            skipped.append("job store slow")
        if network:
            faults += [
                lambda: injector.cut_worker_link(plan.link_cut_s),
                lambda: injector.broker_outage(plan.broker_outage_s),
            ]
            if plan.slow_store:
                faults.append(lambda: injector.slow_store(plan.slow_ms))
        for fault in faults:
            fault()
            client.drain(DRAIN_TIMEOUT_S)  # each fault's recovery is measured on its own
        phases["other faults"] = time.monotonic() - mark - phases["worker kills"]
    finally:
        stop.set()
        poller.join()
    for host in ("worker1", "worker2"):
        if host in deployment.workers and deployment.workers[host].process.poll() is None:
            continue
        deployment.start_worker(host)
    assert deployment.gateway is not None
    mark = time.monotonic()
    burst = load.burst(client, clips[fault_clips:], plan.duplicates,
                       deployment.gateway.process.pid, DRAIN_TIMEOUT_S)
    phases["load"], mark = time.monotonic() - mark, time.monotonic()
    corpus_rows = fuzz.send_corpus(client, corpus.build(clips[0]), DRAIN_TIMEOUT_S)
    phases["corpus"] = time.monotonic() - mark
    schema = fuzz.schemathesis(deployment.base_url, deployment.keys[1], plan.seed,
                               plan.schemathesis_examples, directory)
    client.recheck()
    reference = _rescore_matches(client, clips)
    return {
        "plan": asdict(plan),
        "machine": {"cpus": _cpus(), "processor": _processor(), "python": platform.python_version()},
        "mode": hosts.mode,
        "mode_reason": why_not,
        "namespaces": list(hosts.names),
        "faults_not_run": skipped,
        "settings": {k: v for k, v in SETTINGS.items()},
        "seconds": round(time.monotonic() - started, 1),
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "ledger": ledger.reconcile(),
        "faults": [_fault_row(f, ledger) for f in injector.faults],
        "rescored_equal_first": reference,
        "load": burst,
        "corpus": corpus_rows,
        "schemathesis": schema,
    }


def _fault_clips(plan: Plan) -> int:
    """Clips the faults may submit: 2 per kill, 3 per other fault, one a second of outage,
    and a margin for a target search that has to submit more."""
    per_fault = 2 * plan.worker_kills + 3 * (plan.redis_restarts + 4)
    return per_fault + int(plan.broker_outage_s) + 2 * plan.worker_kills + 10


def _poll(client: Client, stop: threading.Event) -> None:
    """Keep the ledger's terminal times fresh while faults run."""
    with client.http() as http:
        while not stop.is_set():
            client.poll_once(http)
            stop.wait(0.25)


def _fault_row(fault: Any, ledger: Ledger) -> dict[str, Any]:
    """The fault with its recovery: from its end until the last job it hit was terminal."""
    finished = [ledger.entries[j].finished_at for j in fault.jobs if j in ledger.entries]
    done = [f for f in finished if f is not None]
    recovery = max(done) - fault.until if done and len(done) == len(finished) else None
    since_fault = max(done) - fault.at if done and len(done) == len(finished) else None
    return {"fault": fault.kind, "jobs_hit": len(fault.jobs),
            "held_s": round(fault.until - fault.at, 2), "recovered_s_after_end": _round(recovery),
            "finished_s_after_start": _round(since_fault), **fault.detail}


def _rescore_matches(client: Client, clips: list[Path]) -> dict[str, Any]:
    """Submit each re-scored job's clip again under the other key (a separate job, scored with
    no fault) and compare its probability with the re-scored job's first result."""
    by_name = {clip.name: clip for clip in clips}
    rescored = [e for e in list(client.ledger.entries.values())
                if e.key == 0 and e.first_terminal and e.first_terminal["attempts"] > 1
                and e.first_terminal["status"] == "succeeded"]
    with client.http() as http:
        for entry in rescored:
            client.submit(http, by_name[entry.clip], key=1)
    client.drain(DRAIN_TIMEOUT_S)
    clean = {e.clip: e.first_terminal for e in client.ledger.entries.values()
             if e.key == 1 and e.first_terminal and e.clip in by_name}
    differ = [e.job_id for e in rescored
              if (clean.get(e.clip) or {}).get("probability") != e.first_terminal["probability"]]
    return {"checked": len(rescored), "differ": differ}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _processor() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
