"""`/metrics` never shows one key's jobs to another (issue 12, defect 3): its figures are
totals over every tenant, so with API keys set only an operator key reads them, and even then
they carry no owner, job, file or callback labels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.service_helpers import error_of, submit

pytest_plugins = ("tests.service_fixtures",)

ALICE = {"X-API-Key": "alice-key-0123456789abcdef"}
BOB = {"X-API-Key": "bob-key-0123456789abcdef"}
OPERATOR = {"Authorization": "Bearer operator-key-0123456789abcdef"}
LABELS = {"method", "route", "status", "stage", "queue", "le", "quantile"}


def test_metrics_need_an_operator_key_and_carry_no_tenant_data(
    gateway_deployment: Any, face_video: Path
) -> None:
    deployment = gateway_deployment(
        api_keys=[ALICE["X-API-Key"], BOB["X-API-Key"]],
        operator_keys=[OPERATOR["Authorization"].removeprefix("Bearer ")],
    )
    with deployment.gateway() as client:
        job = submit(client, face_video, headers=ALICE, callback_url="http://127.0.0.1:9/alice-hook")
        assert job.status_code == 202, job.text
        assert client.get(f"/jobs/{job.json()['id']}", headers=ALICE).status_code == 200

        for tenant in (ALICE, BOB):
            error_of(client.get("/metrics", headers=tenant), 403, "OperatorKeyRequired")
        error_of(client.get("/metrics"), 401, "MissingApiKey")
        error_of(client.get("/metrics", headers={"X-API-Key": "guess"}), 401, "InvalidApiKey")

        scraped = client.get("/metrics", headers=OPERATOR)
        assert scraped.status_code == 200
        # The operator key is for metrics only: it owns no jobs and cannot read a tenant's.
        error_of(client.get("/jobs", headers=OPERATOR), 401, "InvalidApiKey")
    text = scraped.text
    assert 'fakewatch_jobs{status="queued"} 1.0' in text  # totals are there
    for secret in (job.json()["id"], face_video.name, "alice", "key:", "127.0.0.1"):
        assert secret not in text, secret
    used = set(re.findall(r"[{,]([a-z_]+)=", text))
    assert used <= LABELS, used - LABELS


