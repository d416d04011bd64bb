"""Rate limits that cost one Redis round trip: DRF's sliding window, kept in a sorted set by a Lua script.

DRF's SimpleRateThrottle keeps each user's request history as one pickled list in the cache, read and
written whole on every request: at a high rate (the order desk's 6,000/min) every request moves tens of
kilobytes, and two concurrent requests can both read the list before either writes it. Here the same
window (the last `duration` seconds, at most `num_requests` in it) is a sorted set per key, trimmed,
counted and added to atomically on the server. Without Redis (the embedded SQLite mode) DRF's own
implementation is used.

Redis unreachable: LocalWindow is the same window kept in the process's memory (a per-process limit: with N
web processes a user may get up to N times the rate through, never unlimited). RemoteOutage logs the outage
once when it begins and once when it ends, and spares the requests in between a connection attempt each.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections import deque
from typing import Any

from django.conf import settings
from rest_framework.throttling import UserRateThrottle

# KEYS[1] the window's key; ARGV: now (s), window (s), limit. Answers 0 if allowed (and counts the request),
# else the seconds until the oldest request in the window leaves it.
_SLIDING_WINDOW = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(math.max(oldest[2] + window - now, 0.001))
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('EXPIRE', key, math.ceil(window) + 1)
return '0'
"""


@functools.cache
def _script() -> Any:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.1, socket_timeout=1)
    return client.register_script(_SLIDING_WINDOW)


class SlidingWindowUserThrottle(UserRateThrottle):
    """UserRateThrottle's semantics (per user, the last `duration` seconds) in one atomic round trip."""

    # Set by SimpleRateThrottle.__init__ from the rate (parse_rate); not declared by the stubs.
    num_requests: int
    duration: int

    def allow_request(self, request: Any, view: Any) -> bool:
        if not settings.REDIS_URL:
            return super().allow_request(request, view)
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        wait = float(
            _script()(keys=[f"itirp:{key}"], args=[time.time(), self.duration, self.num_requests, uuid.uuid4().hex])
        )
        self._wait = wait
        return wait == 0

    def wait(self) -> float | None:
        if not settings.REDIS_URL:
            return super().wait()
        return getattr(self, "_wait", None)


class LocalWindow:
    """The sliding window in this process's memory, for when Redis is unreachable; thread-safe, bounded."""

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, *, duration: float, limit: int, now: float | None = None) -> float:
        """0 if allowed (and counted), else the seconds until the oldest request leaves the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.MAX_KEYS:
                    self._prune(now, duration)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - duration:
                hits.popleft()
            if len(hits) >= limit:
                return max(hits[0] + duration - now, 0.001)
            hits.append(now)
            return 0.0

    def _prune(self, now: float, duration: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - duration]:
            del self._hits[key]
        while len(self._hits) >= self.MAX_KEYS:  # every key active: forget the oldest ones
            del self._hits[next(iter(self._hits))]


class RemoteOutage:
    """Whether the shared store is down, as far as this process knows: logged once per outage, and probed at
    most every `retry_seconds` meanwhile (one request pays the probe, the others use the fallback at once)."""

    def __init__(self, what: str, logger: logging.Logger, retry_seconds: float = 1.0) -> None:
        self.what, self.logger, self.retry_seconds = what, logger, retry_seconds
        self._lock = threading.Lock()
        self._since: float | None = None
        self._next_probe = 0.0

    @property
    def down(self) -> bool:
        return self._since is not None

    def skip_remote(self) -> bool:
        with self._lock:
            if self._since is None:
                return False
            now = time.monotonic()
            if now >= self._next_probe:
                self._next_probe = now + self.retry_seconds
                return False
            return True

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._next_probe = time.monotonic() + self.retry_seconds
            if self._since is not None:
                return
            self._since = time.monotonic()
        self.logger.warning(
            "%s: Redis unreachable (%s: %s); per-process limit in force", self.what, type(exc).__name__, exc
        )

    def succeeded(self) -> None:
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            self.logger.warning(
                "%s: Redis back after %.1f s; shared limit in force again", self.what, time.monotonic() - since
            )
