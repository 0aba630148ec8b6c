"""Callback URLs may not point fakewatch's workers into private networks."""

from pathlib import Path
from typing import Any

import pytest

from fakewatch.webhook_targets import ForbiddenTarget, check_webhook_target, pinned
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
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 for 169.254.169.254
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64 for 10.0.0.1
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 around 169.254.169.254
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


def test_delivery_goes_to_the_address_that_was_checked() -> None:
    address = check_webhook_target("http://localhost:8080/hook?x=1", allow_private=True)
    assert address in {"127.0.0.1", "::1"}
    target = pinned("http://localhost:8080/hook?x=1", "127.0.0.1")
    assert target.url == "http://127.0.0.1:8080/hook?x=1"
    assert target.host_header == "localhost:8080" and target.sni_hostname is None
    secure = pinned("https://hooks.example.com/in", "2606:4700::1")
    assert secure.url == "https://[2606:4700::1]/in"
    assert secure.host_header == "hooks.example.com"
    assert secure.sni_hostname == "hooks.example.com"  # TLS still verifies the name
