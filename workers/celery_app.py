"""The workers' Celery app: `celery -A workers.celery_app worker`, or `fakewatch worker`."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init

from fakewatch.jobs.queue import make_celery
from fakewatch.settings import Settings

WORKER_NAME = "fakewatch-worker"

settings = Settings()
celery = make_celery(settings, WORKER_NAME)
# Task modules are imported when the worker starts, after `celery` exists (no import cycle).
celery.conf.imports = ("workers.tasks", "workers.webhooks", "workers.runtime", "workers.views")


@worker_init.connect
def _prepare_data_dir(**_: Any) -> None:
    """A worker may start before any gateway: create the embedded broker's folders."""
    settings.ensure_dirs()
