"""`/readyz` under load and without a key: cached, bounded, never in the way of real work.

Before, each check borrowed the gateway's broker pool and held one connection while waiting for
another: a burst of 20 (embedded) or 60 (Redis) checks left `POST /detect` hanging for minutes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.service_helpers import Deployment, submit

pytest_plugins = ("tests.service_fixtures",)
pytestmark = pytest.mark.timeout(120)

KEY = "test-key-0123456789abcdef"
BURST = 60
ANSWER_S = 15  # a submission or a check answers within this however many checks run
QUICK_CALLS = 20
QUICK_CALLS_S = 3.0  # before, each check cost a 1 s worker ping: 20 s for these calls


def metric(exposition: str, series: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not exposed")


@pytest.fixture(params=["embedded", "redis"])
def deployment(request: pytest.FixtureRequest, make_deployment: Any) -> Deployment:
    """A gateway with no worker: every check waits for a ping nobody answers."""
    if request.param == "embedded":
        return make_deployment()
    return make_deployment(request.getfixturevalue("redis_url"))


def test_a_burst_of_checks_never_blocks_a_submission(
    deployment: Deployment, face_video: Path
) -> None:
    with deployment.gateway() as client, ThreadPoolExecutor(BURST + 1) as pool:
        checks = [pool.submit(client.get, "/readyz") for _ in range(BURST)]
        submission = pool.submit(submit, client, face_video)
        response = submission.result(timeout=ANSWER_S)
        assert response.status_code == 202, response.text
        for check in checks:
            answer = check.result(timeout=ANSWER_S)
            assert answer.status_code == 503  # no worker: not ready, and it says so
            assert answer.json()["workers"] == 0 and answer.json()["broker"] == "ok"
        depth = metric(client.get("/metrics").text, 'fakewatch_queue_depth{queue="gpu"}')
        assert depth == 1  # the accepted job's message was really sent
        assert client.get(f"/jobs/{response.json()['id']}").json()["status"] == "queued"


def test_checks_are_cached(make_deployment: Any) -> None:
    with make_deployment().gateway() as client:
        client.get("/readyz")
        started = time.perf_counter()
        for _ in range(QUICK_CALLS):
            assert client.get("/readyz").status_code == 503
        assert time.perf_counter() - started < QUICK_CALLS_S


def test_reasons_and_addresses_are_shown_only_to_a_key(make_deployment: Any) -> None:
    deployment = make_deployment(broker_url="redis://127.0.0.1:9/0", api_keys=[KEY])
    with deployment.gateway() as client:
        public = client.get("/readyz")
        assert public.status_code == 503
        assert public.json() == {
            "ready": False,
            "job_store": "ok",
            "broker": "unreachable",
            "workers": 0,
            "details": None,
        }
        assert "127.0.0.1" not in public.text
        for wrong in ({"X-API-Key": "wrong"}, {"Authorization": "Bearer nope"}):
            assert client.get("/readyz", headers=wrong).json()["details"] is None
        private = client.get("/readyz", headers={"X-API-Key": KEY})
        assert private.status_code == 503
        problems = " ".join(private.json()["details"]["problems"])
        assert "broker" in problems and "127.0.0.1" in problems
