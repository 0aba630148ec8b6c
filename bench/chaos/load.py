"""The burst: N distinct clips plus duplicates posted at once, with /healthz sampled throughout
and the gateway's peak resident memory read from the kernel."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.chaos.client import Client

HEALTHZ_EVERY_S = 0.1


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 4)


def peak_rss_mib(pid: int) -> float:
    """The process's high-water resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for pid {pid}")


def burst(client: Client, clips: list[Path], duplicates: int, gateway_pid: int,
          drain_timeout_s: float) -> dict[str, Any]:
    """Post every clip and `duplicates` repeats at once; then wait for the ledger to drain."""
    uploads = clips + clips[:duplicates]
    results: list[tuple[int | None, float]] = []
    lock = threading.Lock()
    stop = threading.Event()
    health: list[float] = []
    health_failures: list[str] = []

    def post(clip: Path) -> None:
        with client.http() as http:
            outcome = client.submit(http, clip)
        with lock:
            results.append(outcome)

    def sample_healthz() -> None:
        with httpx.Client(base_url=client.base_url, timeout=5) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    ok = http.get("/healthz").status_code == 200
                except httpx.HTTPError as error:
                    ok, _ = False, health_failures.append(type(error).__name__)
                if ok:
                    health.append(time.monotonic() - started)
                time.sleep(HEALTHZ_EVERY_S)

    sampler = threading.Thread(target=sample_healthz)
    sampler.start()
    started = time.monotonic()
    threads = [threading.Thread(target=post, args=(clip,)) for clip in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    posted = time.monotonic() - started
    stop.set()
    sampler.join()
    drain_s = client.drain(drain_timeout_s)
    latencies = [took for status, took in results if status is not None]
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "uploads": len(uploads),
        "distinct": len(clips),
        "duplicates": duplicates,
        "statuses": statuses,
        "server_errors": sum(1 for s, _ in results if s is not None and s >= 500),
        "post_latency_s": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
                           "p99": percentile(latencies, 0.99)},
        "all_posted_s": round(posted, 2),
        "drain_s": round(posted + drain_s, 2),
        "healthz_during_burst_s": {"samples": len(health), "failures": len(health_failures),
                                   "p50": percentile(health, 0.5), "p99": percentile(health, 0.99)},
        "gateway_peak_rss_mib": peak_rss_mib(gateway_pid),
    }
