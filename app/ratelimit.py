"""Per-client fixed-window rate limits: in memory for one gateway, in Redis for several."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

WINDOW_S = 60  # limits are configured per minute
# Clients counted per window in memory: past this many, new ones share one bucket, so a flood
# of distinct addresses (IPv6 makes them cheap) costs bounded memory and is still limited.
MAX_CLIENTS = 100_000
OVERFLOW = "*"


class RateLimiter(Protocol):
    def hit(self, client: str) -> float | None:
        """Count one request; None when allowed, else seconds until the client may retry."""

    def blocked(self, client: str) -> float | None:
        """Without counting: None when the client is under its limit, else seconds to wait."""


class MemoryRateLimiter:
    """Counts in this process: right for the embedded default's single gateway."""

    def __init__(
        self, per_window: int, window_s: float = WINDOW_S, max_clients: int = MAX_CLIENTS
    ) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self.max_clients = max_clients
        self._window = -1
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, client: str) -> float | None:
        return self._count(client, 1)

    def blocked(self, client: str) -> float | None:
        return self._count(client, 0)

    def _count(self, client: str, add: int) -> float | None:
        moment = time.time()
        window = int(moment // self.window_s)
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, {}
            if client not in self._counts and len(self._counts) >= self.max_clients:
                client = OVERFLOW
            count = self._counts.get(client, 0) + add
            if add:
                self._counts[client] = count
        allowed = count <= self.per_window if add else count < self.per_window
        if allowed:
            return None
        return (window + 1) * self.window_s - moment


class RedisRateLimiter:
    """Counts in Redis, so every gateway replica enforces one shared limit per client."""

    def __init__(self, url: str, prefix: str, per_window: int, window_s: int = WINDOW_S) -> None:
        self._redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self.per_window = per_window
        self.window_s = window_s

    def hit(self, client: str) -> float | None:
        moment = time.time()
        window = int(moment // self.window_s)
        with self._redis.pipeline() as pipe:
            pipe.incr(self._key(client, window))
            pipe.expire(self._key(client, window), self.window_s * 2)
            count, _ = pipe.execute()
        if count <= self.per_window:
            return None
        return (window + 1) * self.window_s - moment

    def blocked(self, client: str) -> float | None:
        moment = time.time()
        window = int(moment // self.window_s)
        count = int(self._redis.get(self._key(client, window)) or 0)
        if count < self.per_window:
            return None
        return (window + 1) * self.window_s - moment

    def _key(self, client: str, window: int) -> str:
        return f"{self.prefix}ratelimit:{client}:{window}"


class Unlimited:
    def hit(self, client: str) -> float | None:
        return None

    def blocked(self, client: str) -> float | None:
        return None
