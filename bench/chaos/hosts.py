"""The suite's hosts: one network namespace each, joined by veth pairs to a bridge in a switch
namespace, so cutting a host's link or slowing it touches nothing outside the suite.

Where namespaces cannot be made (no privilege), `LoopbackHosts` gives every host 127.0.0.1: the
same processes, but a cut link becomes a stopped process group and latency cannot be added.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import subprocess
from collections.abc import Sequence
from typing import Protocol

HOSTS = ("redis", "gateway", "worker1", "worker2", "client")
SUBNET_PREFIX = "10.213.13."  # a private /24 that exists only inside the suite's namespaces
HOST_NUMBER = {"redis": 10, "gateway": 20, "worker1": 31, "worker2": 32, "client": 40}
CLONE_NEWNET = 0x40000000  # <sched.h>
IP_TIMEOUT_S = 10
SLOW_RATE = "256kbit"  # a token bucket this narrow queues a job store's replies by tens of ms


class Hosts(Protocol):
    """Where each suite host lives and how to start, cut and slow it."""

    mode: str
    names: tuple[str, ...]  # the namespaces made, so a caller can check they are gone

    def address(self, host: str) -> str: ...

    def command(self, host: str, argv: Sequence[str]) -> list[str]: ...

    def cut(self, host: str) -> None: ...

    def restore(self, host: str) -> None: ...

    def slow(self, host: str, milliseconds: int) -> str: ...

    def unslow(self, host: str) -> None: ...

    def enter_client(self) -> None: ...

    def remove(self) -> None: ...


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=IP_TIMEOUT_S)


class NamespaceHosts:
    """Five namespaces (plus a switch) named after a random run id, so runs never collide."""

    mode = "network namespaces"

    def __init__(self) -> None:
        self.run_id = secrets.token_hex(3)
        self.switch = f"fw{self.run_id}-sw"
        self.created: list[str] = []
        self.names = (self.switch, *(self.namespace(h) for h in HOSTS))
        try:
            self._build()
        except (subprocess.CalledProcessError, OSError):
            self.remove()
            raise

    def namespace(self, host: str) -> str:
        return f"fw{self.run_id}-{host}"

    def _build(self) -> None:
        for name in self.names:
            _ip("netns", "add", name)
            self.created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for host in HOSTS:
            port, namespace = f"v-{host}", self.namespace(host)
            _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", namespace)
            _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", namespace, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")

    def address(self, host: str) -> str:
        return f"{SUBNET_PREFIX}{HOST_NUMBER[host]}"

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def cut(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", f"v-{host}", "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", f"v-{host}", "up")

    def slow(self, host: str, milliseconds: int) -> str:
        """Add `milliseconds` of latency with netem; where the kernel has no netem, throttle the
        link with a token bucket instead. Returns which was done, for the report."""
        netem = ["netem", "delay", f"{milliseconds}ms"]
        tbf = ["tbf", "rate", SLOW_RATE, "burst", "4kb", "latency", f"{milliseconds}ms"]
        for qdisc in (netem, tbf):
            done = subprocess.run(
                self.command(host, ["tc", "qdisc", "add", "dev", "eth0", "root", *qdisc]),
                check=False, capture_output=True, timeout=IP_TIMEOUT_S,
            )
            if done.returncode == 0:
                return "tc " + " ".join(qdisc)
            if b"unknown" not in done.stderr.lower():
                raise subprocess.CalledProcessError(done.returncode, done.args, b"", done.stderr)
        raise OSError("the kernel has neither netem nor tbf: the link cannot be slowed")

    def unslow(self, host: str) -> None:
        subprocess.run(self.command(host, ["tc", "qdisc", "del", "dev", "eth0", "root"]),
                       check=True, capture_output=True, timeout=IP_TIMEOUT_S)

    def enter_client(self) -> None:
        """Move this process (before it starts any thread) into the client namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.namespace('client')}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the client namespace failed")
        finally:
            os.close(fd)

    def remove(self) -> None:
        """Delete every namespace this run made (their veths and the bridge go with them)."""
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True,
                           timeout=IP_TIMEOUT_S)
        self.created.clear()


class LoopbackHosts:
    """Every host on 127.0.0.1; the services tell themselves apart by port."""

    mode = "loopback (no network namespaces)"
    names: tuple[str, ...] = ()

    def address(self, host: str) -> str:
        return "127.0.0.1"

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def cut(self, host: str) -> None:
        raise NotImplementedError("a loopback host's link cannot be cut; stop its processes")

    def restore(self, host: str) -> None:
        raise NotImplementedError("a loopback host's link cannot be cut; stop its processes")

    def slow(self, host: str, milliseconds: int) -> str:
        raise NotImplementedError("netem on loopback would slow every process on the machine")

    def unslow(self, host: str) -> None:
        raise NotImplementedError("netem on loopback would slow every process on the machine")

    def enter_client(self) -> None:
        """The client already shares the loopback interface."""

    def remove(self) -> None:
        """Nothing was created."""


def make_hosts(loopback: bool = False) -> tuple[Hosts, str | None]:
    """Namespaces where this process may make them; else loopback, with the reason."""
    if loopback:
        return LoopbackHosts(), "loopback asked for (--loopback)"
    try:
        return NamespaceHosts(), None
    except (subprocess.CalledProcessError, OSError) as error:
        detail = error.stderr.decode(errors="replace").strip() if isinstance(
            error, subprocess.CalledProcessError) else str(error)
        return LoopbackHosts(), f"network namespaces unavailable: {detail or error}"
