"""Per-client fixed-window rate limits: in memory for one gateway, in Redis for several."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

WINDOW_S = 60  # limits are configured per minute


class RateLimiter(Protocol):
    def hit(self, client: str) -> float | None:
        """Count one request; None when allowed, else seconds until the client may retry."""


class MemoryRateLimiter:
    """Counts in this process: right for the embedded default's single gateway."""

    def __init__(self, per_window: int, window_s: float = WINDOW_S) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self._window = -1
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, client: str) -> float | None:
        moment = time.time()
        window = int(moment // self.window_s)
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, {}
            count = self._counts[client] = self._counts.get(client, 0) + 1
        if count <= self.per_window:
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
        key = f"{self.prefix}ratelimit:{client}:{window}"
        with self._redis.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_s * 2)
            count, _ = pipe.execute()
        if count <= self.per_window:
            return None
        return (window + 1) * self.window_s - moment


class Unlimited:
    def hit(self, client: str) -> float | None:
        return None
