"""How the gateway's Redis clients retry: once, at once, and only a connection that broke.

Both clients fail fast (short timeouts, no backoff), so a dead Redis degrades to the
in-process fallbacks instead of stalling requests. But a pooled connection can be dead while
Redis is fine: after Redis restarts, every connection opened before fails on its next use, and
without a retry each of them flipped a replica back into degraded mode for a probe interval.
One immediate retry on a new connection covers that. A timeout is never retried (Redis is
slow: the caller falls back), and a refused connection fails twice, as fast as once.
"""

from __future__ import annotations

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def reconnect_once() -> Retry:
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
