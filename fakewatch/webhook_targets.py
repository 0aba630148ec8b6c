"""Where webhooks may be sent: public addresses only, unless a deployment allows private ones.

A `callback_url` is chosen by the uploader and fetched by our workers, inside our network: without
this check anyone could make fakewatch POST to its own Redis, metadata services or intranet
(server-side request forgery). The gateway checks at submission; the worker checks again just
before each delivery, because DNS answers can change in between, and then connects to the very
address it checked (`pinned`): resolving the name a second time to connect would let a DNS
server answer a public address to the check and a private one to the connection (rebinding).
IPv6 addresses that carry an IPv4 one (NAT64, IPv4-mapped, 6to4, Teredo) are judged by it too.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

_NAT64_PREFIXES = (
    ipaddress.ip_network("64:ff9b::/96"),  # RFC 6052 well-known prefix
    ipaddress.ip_network("64:ff9b:1::/48"),  # RFC 8215 local-use prefix
)


class ForbiddenTarget(ValueError):
    """The URL resolves to an address webhooks may not reach."""


@dataclass(frozen=True)
class PinnedTarget:
    """How to reach a checked URL at the address that was checked."""

    url: str  # the URL with its host replaced by the address
    host_header: str  # what the Host header must say
    sni_hostname: str | None  # the name TLS must present and verify (https only)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in prefix for prefix in _NAT64_PREFIXES):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return embedded.is_global
    return address.is_global


def check_webhook_target(url: str, allow_private: bool) -> str:
    """The address to deliver `url` to, resolved once; ForbiddenTarget when any address the
    host resolves to is not public.

    Args:
        url: an http(s) URL.
        allow_private: accept loopback, private and link-local addresses (development setups
            and tests that receive webhooks on this machine).
    """
    host = urlsplit(url).hostname
    if not host:
        raise ForbiddenTarget(f"callback_url {url!r} has no host")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise ForbiddenTarget(f"callback_url host {host!r} does not resolve: {error.strerror}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if not allow_private and not _is_public(address):
            raise ForbiddenTarget(
                f"callback_url host {host!r} resolves to {address}, which is not a public address; "
                "set FAKEWATCH_WEBHOOK_ALLOW_PRIVATE=true to deliver inside your own network"
            )
    return str(addresses[0])


def pinned(url: str, address: str) -> PinnedTarget:
    """`url` aimed at `address` (from `check_webhook_target`), keeping its name for the Host
    header and for TLS, so the certificate is still checked against the name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = f"{host}:{parts.port}" if parts.port else host
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]:{parts.port}" if parts.port else f"[{host}]"
    return PinnedTarget(
        url=urlunsplit(parts._replace(netloc=netloc)),
        host_header=host_header,
        sni_hostname=host if parts.scheme == "https" else None,
    )
