"""`fakewatch serve` (the API, plus a worker beside it by default) and `fakewatch worker`.

Embedded (no FAKEWATCH_BROKER_URL): one command runs the gateway and a solo-pool worker
subprocess that share the data directory: filesystem broker, SQLite job store. Production:
`serve --no-worker` on the gateway hosts and `worker` on the GPU hosts, all pointed at Redis.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from types import FrameType

import click

from fakewatch.jobs.names import WORKER_QUEUES
from fakewatch.settings import InsecureSettingsError, Settings

WORKER_STOP_TIMEOUT_S = 30  # a worker finishes its current message (late ack) before exiting
EMBEDDED_WORKER = "embedded@%h"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as error:  # pydantic's ValidationError names each bad variable
        raise click.ClickException(f"invalid FAKEWATCH_* settings:\n{error}") from error


def worker_argv(
    pool: str, concurrency: int, queues: str, loglevel: str, name: str | None
) -> list[str]:
    """Arguments for `celery -A workers.celery_app worker ...`."""
    argv = ["worker", "--pool", pool, "--concurrency", str(concurrency), "--queues", queues]
    argv += ["--loglevel", loglevel]
    if name:
        argv += ["--hostname", name]
    return argv


def _die_with_parent() -> None:
    """Run in the worker before exec (Linux): the kernel sends it SIGTERM, a warm shutdown,
    if `serve` dies without stopping it (SIGKILL, OOM killer), so no orphan keeps the queue."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _start_embedded_worker(settings: Settings) -> subprocess.Popen[bytes]:
    argv = worker_argv("solo", 1, ",".join(WORKER_QUEUES), "INFO", EMBEDDED_WORKER)
    env = {**os.environ, "FAKEWATCH_DATA_DIR": str(settings.data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", *argv],
        env=env,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
    )


def _exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    # uvicorn shuts down on SIGTERM, then raises it again for the previous handler: this one
    # turns it into SystemExit, so `serve` still stops its worker on the way out.
    raise SystemExit(128 + signum)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # warm shutdown: the current job finishes or is requeued
    try:
        process.wait(timeout=WORKER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@click.command()
@click.option(
    "--host", default=None, help="Interface to bind [default: FAKEWATCH_HOST or 127.0.0.1]."
)
@click.option("--port", type=int, default=None, help="Port [default: FAKEWATCH_PORT or 8000].")
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Also run a worker process beside the API (embedded single-machine mode).",
)
@click.option("--log-level", default="info", show_default=True)
def serve(host: str | None, port: int | None, worker: bool, log_level: str) -> None:
    """Serve the HTTP API (and, by default, a worker beside it)."""
    import uvicorn

    settings = _settings()
    host = host or settings.host
    port = settings.port if port is None else port
    try:
        settings.check_secure(host)
    except InsecureSettingsError as error:
        raise click.ClickException(str(error)) from error
    settings.prepare_data_dir()
    mode = (
        "embedded (filesystem broker, SQLite)" if settings.embedded else f"broker {settings.broker}"
    )
    process = _start_embedded_worker(settings) if worker else None
    click.echo(f"fakewatch API on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    click.echo(f"mode: {mode}; data: {settings.data_dir}")
    if process is not None:
        click.echo(f"worker: pid {process.pid}, queues {', '.join(WORKER_QUEUES)}")
    # The app reads the same settings from the environment; make CLI overrides visible to it.
    os.environ["FAKEWATCH_HOST"], os.environ["FAKEWATCH_PORT"] = host, str(port)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run("app.main:app", host=host, port=port, log_level=log_level)
    finally:
        if process is not None:
            _stop(process)


@click.command()
@click.option(
    "--pool",
    default="prefork",
    show_default=True,
    help="Celery pool; prefork restarts a crashed child and redelivers its job.",
)
@click.option(
    "--concurrency", type=int, default=1, show_default=True, help="Jobs at once (1 per GPU)."
)
@click.option("--queues", default=",".join(WORKER_QUEUES), show_default=True)
@click.option("--name", default=None, help="Celery node name, e.g. gpu1@%h.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(pool: str, concurrency: int, queues: str, name: str | None, loglevel: str) -> None:
    """Run a Celery worker that loads the detector once and processes detection jobs."""
    _settings()  # fail early, with the variable named, on bad settings
    from workers.celery_app import run_worker

    run_worker(worker_argv(pool, concurrency, queues, loglevel, name))
