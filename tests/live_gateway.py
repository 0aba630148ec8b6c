"""The gateway served by a real uvicorn on a loopback port, for what an in-process client cannot
do: send a body shorter than its Content-Length, or hang up in the middle of an upload."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from fakewatch.settings import Settings

STARTUP_TIMEOUT_S = 60


@contextmanager
def live_gateway(settings: Settings) -> Iterator[tuple[str, int]]:
    """Serve `create_app(settings)` on 127.0.0.1; yields (host, port) once it accepts requests."""
    from app.main import create_app

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(settings), log_level="info", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(STARTUP_TIMEOUT_S * 10):
            if server.started:
                break
            thread.join(0.1)
        assert server.started, "uvicorn did not start"
        yield listener.getsockname()
    finally:
        server.should_exit = True
        thread.join()
        listener.close()


def raw_request(address: tuple[str, int], head: bytes, body: bytes, timeout_s: float) -> bytes:
    """Send `head` and `body`, keep the connection open, and return what the server answers."""
    with socket.create_connection(address, timeout=timeout_s) as connection:
        connection.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            data = connection.recv(65536)
            if not data:
                break
            answer += data
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False
