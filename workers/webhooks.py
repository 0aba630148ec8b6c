"""Deliver a finished job to its `callback_url`: signed, retried with backoff, state recorded.

The receiver verifies `X-Fakewatch-Signature: sha256=<hex>`, the HMAC-SHA256 of
`<X-Fakewatch-Timestamp>.<raw body>` under the shared webhook secret, and may reject old
timestamps to stop replays (docs/service.md shows how).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import httpx
from celery import Task

from fakewatch.jobs.model import WebhookDelivery, WebhookState, now
from fakewatch.jobs.names import WEBHOOK_TASK
from fakewatch.webhook_targets import ForbiddenTarget, check_webhook_target, pinned
from workers import runtime
from workers.celery_app import celery, settings

SIGNATURE_HEADER = "X-Fakewatch-Signature"
TIMESTAMP_HEADER = "X-Fakewatch-Timestamp"
EVENT_HEADER = "X-Fakewatch-Event"
EVENT = "job.finished"


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


@dataclass(frozen=True)
class Attempt:
    status: int | None  # HTTP status, None when no answer came
    error: str | None  # None when the receiver answered 2xx


def _post(url: str, key: bytes, body: bytes) -> Attempt:
    try:  # again at delivery: the host's DNS answer may have changed since submission
        target = pinned(url, check_webhook_target(url, settings.webhook_allow_private))
    except ForbiddenTarget as error:
        return Attempt(status=None, error=str(error))
    timestamp = str(int(time.time()))
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        EVENT_HEADER: EVENT,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(key, timestamp, body),
    }
    try:
        with httpx.Client(timeout=settings.webhook_timeout_s) as client:
            response = client.post(
                target.url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.sni_hostname} if target.sni_hostname else None,
            )
    except httpx.HTTPError as error:
        return Attempt(status=None, error=f"{type(error).__name__}: {error}")
    if response.is_success:
        return Attempt(status=response.status_code, error=None)
    return Attempt(
        status=response.status_code, error=f"receiver answered HTTP {response.status_code}"
    )


@celery.task(name=WEBHOOK_TASK, bind=True, max_retries=None)
def deliver_webhook(self: Task, job_id: str) -> str:
    store = runtime.store()
    job = store.get(job_id)
    if job is None or job.webhook is None or job.webhook.state is WebhookState.delivered:
        return "nothing to deliver"
    delivery = job.webhook
    attempts = delivery.attempts + 1
    key = settings.webhook_key()
    if key is None:
        problem = Attempt(None, "webhooks cannot be signed: set FAKEWATCH_WEBHOOK_SECRET")
        store.update_webhook(job_id, _record(delivery, attempts, WebhookState.failed, problem))
        return "no secret"
    attempt = _post(delivery.url, key, job.view().model_dump_json().encode())
    if attempt.error is None:
        state = WebhookState.delivered
    elif attempts >= settings.webhook_max_attempts:
        state = WebhookState.failed
    else:
        state = WebhookState.retrying
    store.update_webhook(job_id, _record(delivery, attempts, state, attempt))
    if state is WebhookState.retrying:
        raise self.retry(countdown=settings.webhook_backoff_s * 2 ** (attempts - 1))
    return state.value


def _record(
    delivery: WebhookDelivery, attempts: int, state: WebhookState, attempt: Attempt
) -> WebhookDelivery:
    return delivery.model_copy(
        update={
            "state": state,
            "attempts": attempts,
            "last_status": attempt.status,
            "last_error": attempt.error,
            "delivered_at": now() if state is WebhookState.delivered else None,
        }
    )
