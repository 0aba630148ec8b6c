"""Where webhooks may be sent: public addresses only, unless a deployment allows private ones.

A `callback_url` is chosen by the uploader and fetched by our workers, inside our network: without
this check anyone could make fakewatch POST to its own Redis, metadata services or intranet
(server-side request forgery). The gateway checks at submission; the worker checks again just
before each delivery, because DNS answers can change in between.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class ForbiddenTarget(ValueError):
    """The URL resolves to an address webhooks may not reach."""


def check_webhook_target(url: str, allow_private: bool) -> None:
    """Raise ForbiddenTarget when `url`'s host resolves to a non-public address.

    Args:
        url: an http(s) URL.
        allow_private: accept loopback, private and link-local addresses (development setups
            and tests that receive webhooks on this machine).
    """
    host = urlsplit(url).hostname
    if not host:
        raise ForbiddenTarget(f"callback_url {url!r} has no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise ForbiddenTarget(f"callback_url host {host!r} does not resolve: {error.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise ForbiddenTarget(
                f"callback_url host {host!r} resolves to {address}, which is not a public address; "
                "set FAKEWATCH_WEBHOOK_ALLOW_PRIVATE=true to deliver inside your own network"
            )
