"""A client that hangs up mid-upload is logged as one INFO line, not an ERROR traceback, and
leaves nothing on disk (issue 12, defect 8)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.types import Message

pytest_plugins = ("tests.service_fixtures",)

BOUNDARY = "fakewatch-test-boundary"
FIRST_PART = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
    "Content-Type: video/mp4\r\n\r\n"
).encode() + b"\x00" * 4096


async def upload_then_hang_up(app: Any) -> list[Message]:
    """POST /detect straight to the ASGI app: the first part of a body, then a disconnect."""
    messages: list[Message] = [
        {"type": "http.request", "body": FIRST_PART, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/detect", "raw_path": b"/detect", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
                    (b"content-length", b"1000000")],
        "state": {}, "app": app,
    }  # fmt: skip
    await app(scope, receive, send)
    return sent


def test_a_client_disconnect_is_not_an_error(
    gateway_deployment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    deployment = gateway_deployment()
    with deployment.gateway() as client, caplog.at_level(logging.INFO):
        sent = client.portal.call(upload_then_hang_up, client.app)
        assert client.get("/jobs").json()["total"] == 0
    assert sent and sent[0]["status"] == 400, sent
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert any("client disconnected during POST /detect" in r.getMessage() for r in caplog.records)
    uploads = deployment.settings().uploads_dir
    assert [p for p in uploads.rglob("*") if p.name != "incoming"] == []
