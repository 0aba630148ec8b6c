"""The deployment under test: Redis with append-only persistence, the gateway (`fakewatch serve
--no-worker`) and prefork workers (`fakewatch worker`), each a process group on its own host."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.chaos.hosts import Hosts

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # importing torch on a shared 2-core machine
POLL_S = 0.2
CLI = [sys.executable, "-c", "from fakewatch.cli import main; main()"]
DETECTOR_READY = "detector ready:"  # logged by workers.runtime once the models are loaded


def free_port() -> int:
    """A port nothing listens on now (the suite's services bind it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """One process group started on a host, logging to a file."""

    def __init__(self, hosts: Hosts, host: str, argv: list[str], env: dict[str, str],
                 log: Path) -> None:
        self.host, self.log = host, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                hosts.command(host, argv), cwd=REPO_ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # already gone

    def kill(self) -> None:
        """SIGKILL the whole group (a worker's pool children too), as the OOM killer would."""
        self.signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout_s: float = 20) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


class Deployment:
    """Redis, a gateway and two workers; knows how to start each again after a fault."""

    def __init__(self, hosts: Hosts, directory: Path, registry: Path,
                 settings: dict[str, Any]) -> None:
        self.hosts, self.directory = hosts, directory
        self.redis_port, self.gateway_port = free_port(), free_port()
        self.keys = [secrets.token_urlsafe(24), secrets.token_urlsafe(24)]
        redis_url = f"redis://{hosts.address('redis')}:{self.redis_port}"
        self.values: dict[str, Any] = {
            **settings,
            "data_dir": directory / "data",
            "registry_path": registry,
            "broker_url": f"{redis_url}/0",
            "result_backend": f"{redis_url}/1",
            "jobstore_url": f"{redis_url}/2",
            "api_keys": ",".join(self.keys),
        }
        self.redis: Service | None = None
        self.gateway: Service | None = None
        self.workers: dict[str, Service] = {}
        self.ready_marks: dict[str, int] = {}  # detector-ready lines seen per worker log

    @property
    def base_url(self) -> str:
        return f"http://{self.hosts.address('gateway')}:{self.gateway_port}"

    @property
    def store_url(self) -> str:
        return str(self.values["jobstore_url"])

    def env(self) -> dict[str, str]:
        """The environment every fakewatch process gets (passed explicitly into namespaces)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEWATCH_")}
        env.update({f"FAKEWATCH_{k.upper()}": str(v) for k, v in self.values.items()})
        env.update(PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
        return env

    def _log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def start_redis(self) -> None:
        """redis-server with AOF fsynced on every write, so kill -9 loses nothing it answered."""
        data = self.directory / "redis"
        data.mkdir(exist_ok=True)
        argv = ["redis-server", "--port", str(self.redis_port), "--bind",
                self.hosts.address("redis"), "--dir", str(data), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--protected-mode", "no"]
        self.redis = Service(self.hosts, "redis", argv, self.env(), self._log("redis"))
        self.wait_redis()

    def wait_redis(self, timeout_s: float = 30) -> None:
        client = redis.Redis(host=self.hosts.address("redis"), port=self.redis_port,
                             socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(POLL_S)
        raise RuntimeError(f"redis did not answer in {timeout_s} s")

    def start_gateway(self) -> None:
        argv = [*CLI, "serve", "--no-worker", "--host",
                self.hosts.address("gateway"), "--port", str(self.gateway_port),
                "--log-level", "warning"]
        self.gateway = Service(self.hosts, "gateway", argv, self.env(), self._log("gateway"))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.gateway.process.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.gateway.tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(POLL_S)
        raise RuntimeError(f"gateway not up in {START_TIMEOUT_S} s:\n{self.gateway.tail()}")

    def start_worker(self, host: str) -> Service:
        argv = [*CLI, "worker", "--pool", "prefork",
                "--concurrency", "1", "--name", f"{host}@chaos", "--loglevel", "INFO"]
        worker = Service(self.hosts, host, argv, self.env(), self._log(host))
        self.workers[host] = worker
        return worker

    def wait_worker(self, host: str, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until the worker's Celery node is ready and its detector has loaded."""
        worker = self.workers[host]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = worker.log.read_text(errors="replace")
            if worker.process.poll() is not None:
                raise RuntimeError(f"{host} exited:\n{worker.tail()}")
            if text.count(DETECTOR_READY) > self.ready_marks.get(host, 0):
                self.ready_marks[host] = text.count(DETECTOR_READY)
                return
            time.sleep(POLL_S)
        raise RuntimeError(f"{host} not ready in {timeout_s} s:\n{worker.tail()}")

    def stop_all(self) -> None:
        """Stop every process this deployment started, whatever state it is in."""
        for service in [*self.workers.values(), self.gateway, self.redis]:
            if service is not None:
                service.kill()
