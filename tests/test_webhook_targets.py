"""Callback URLs may not point fakewatch's workers into private networks."""

from pathlib import Path
from typing import Any

import pytest

from fakewatch.webhook_targets import ForbiddenTarget, check_webhook_target
from tests.service_helpers import error_of, submit

pytest_plugins = ("tests.service_fixtures",)

PRIVATE = [
    "http://127.0.0.1:6379/",  # this machine's Redis
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata service
    "http://[::1]:8000/hook",
    "http://0.0.0.0/hook",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(ForbiddenTarget, match="FAKEWATCH_WEBHOOK_ALLOW_PRIVATE"):
        check_webhook_target(url, allow_private=False)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_targets_are_allowed_when_configured(url: str) -> None:
    check_webhook_target(url, allow_private=True)


def test_public_address_is_accepted() -> None:
    check_webhook_target("https://8.8.8.8/hook", allow_private=False)  # a literal: no DNS lookup


def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(ForbiddenTarget, match="does not resolve"):
        check_webhook_target("http://no-such-host.invalid/hook", allow_private=False)


def test_gateway_refuses_a_private_callback(gateway_deployment: Any, face_video: Path) -> None:
    deployment = gateway_deployment(webhook_allow_private=False)
    with deployment.gateway() as client:
        response = submit(client, face_video, callback_url="http://127.0.0.1:9/hook")
        assert "not a public address" in error_of(response, 422, "ForbiddenCallback")
        assert client.get("/jobs").json()["total"] == 0
