"""Rate limits that cost one Redis round trip: DRF's sliding window, kept in a sorted set by a Lua script.

DRF's SimpleRateThrottle keeps each user's request history as one pickled list in the cache, read and
written whole on every request: at a high rate (the order desk's 6,000/min) every request moves tens of
kilobytes, and two concurrent requests can both read the list before either writes it. Here the same
window (the last `duration` seconds, at most `num_requests` in it) is a sorted set per key, trimmed,
counted and added to atomically on the server. Without Redis (the embedded SQLite mode) DRF's own
implementation is used.
"""

from __future__ import annotations

import functools
import time
import uuid
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

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
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
