"""The workers' Celery app: `celery -A workers.celery_app worker`, or `fakewatch worker`."""

from __future__ import annotations

from typing import Any, NoReturn

from celery import platforms
from celery.signals import worker_init
from celery.worker import state

from fakewatch.jobs.queue import make_celery
from fakewatch.settings import Settings

WORKER_NAME = "fakewatch-worker"
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the worker cannot serve (its detector did not load)
UNAVAILABLE_SIGNAL = "SIGUSR2"  # from a prefork child to the worker: stop, unavailable

settings = Settings()
celery = make_celery(settings, WORKER_NAME)
# Task modules are imported when the worker starts, after `celery` exists (no import cycle).
celery.conf.imports = ("workers.tasks", "workers.webhooks", "workers.runtime", "workers.views")


@worker_init.connect
def _prepare_worker(**_: Any) -> None:
    """A worker may start before any gateway: create the embedded broker's folders. And let a
    prefork child that cannot load its detector stop the whole worker with EXIT_UNAVAILABLE
    (Celery's own cold shutdown exits 0)."""
    settings.prepare_data_dir()
    platforms.signals[UNAVAILABLE_SIGNAL] = _stop_unavailable


def _stop_unavailable(*_: object) -> None:
    state.should_stop = EXIT_UNAVAILABLE  # a warm shutdown, with this exit code


def run_worker(argv: list[str]) -> NoReturn:
    """Run `celery worker ...` (argv starts with "worker") and exit with the worker's exit code.

    Not `Celery.worker_main`: it drops the code, so a worker that died of an unrecoverable
    error (Redis out of memory) or stopped without its detector would exit 0."""
    from celery.bin.celery import celery as celery_command

    code = celery_command.main(
        args=["--app", __name__, *argv], prog_name="celery", standalone_mode=False
    )
    raise SystemExit(code)
