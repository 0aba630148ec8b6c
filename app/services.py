"""What the routes share for the life of the app: settings, job store, queue, rate limiter,
readiness probe."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from celery import Celery

from app.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, Unlimited
from app.readiness import ReadinessProbe
from fakewatch.jobs import JobStore, open_store
from fakewatch.jobs.queue import make_celery
from fakewatch.settings import Settings

GATEWAY_NAME = "fakewatch-gateway"


@dataclass
class Services:
    settings: Settings
    store: JobStore
    queue: Celery
    limiter: RateLimiter
    auth_failures: RateLimiter  # per client address: failed authentications
    readiness: ReadinessProbe

    @classmethod
    def start(cls, settings: Settings) -> Services:
        settings.prepare_data_dir()
        return cls(
            settings=settings,
            store=open_store(settings),
            queue=make_celery(settings, GATEWAY_NAME),
            limiter=_limiter(settings, settings.rate_limit_per_minute),
            auth_failures=_limiter(settings, settings.auth_failures_per_minute),
            readiness=ReadinessProbe(settings),
        )

    def close(self) -> None:
        self.readiness.close()
        self.store.close()
        self.queue.close()


def _limiter(settings: Settings, per_minute: int) -> RateLimiter:
    if per_minute == 0:
        return Unlimited()
    if urlsplit(settings.jobstore).scheme in ("redis", "rediss"):
        # Several gateways share one Redis job store: share the counts there too.
        return RedisRateLimiter(settings.jobstore, settings.jobstore_key_prefix, per_minute)
    return MemoryRateLimiter(per_minute)
