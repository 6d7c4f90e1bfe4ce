"""The Redis channel layer as the gateway needs it: bounded connections, and no consumer dies of a Redis outage.

channels_redis builds one connection pool per event loop with redis-py's `ConnectionPool.from_url`, which opens a
new connection whenever none is idle, up to `max_connections`, and raises at that limit. A reconnect storm of
thousands of handshakes therefore opened thousands of connections and hit Redis's `maxclients` ("max number of
clients reached", bench/RESULTS.md). Here the pool is redis-py's BlockingConnectionPool: at most `max_connections`
per process, and a caller waits (up to the pool's `timeout`) for one to come back instead of opening another.

Every consumer waits on the layer's `receive()`; channels_redis lets one of them at a time read Redis for all
(`receive_single`, under its receive lock). When Redis is away that read raises, and channels' dispatch loop would
take the consumer down with it: every charger closed 1011. `receive_single` here waits and tries again with backoff,
so consumers keep serving their websocket while Redis is away and get their channel messages once it is back. Pooled
connections are checked before reuse (`health_check_interval`) and a command that fails on a connection Redis closed
is retried once on a fresh one, so a Redis restart leaves no stale connections behind.
"""

import asyncio
import logging
import random

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a channel-layer call raises when Redis is unreachable or the channel is full: callers that can do without the
# layer (a dashboard push, telling an earlier connection to step aside) log these and carry on.
CHANNEL_LAYER_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError, ChannelFull)

RECEIVE_RETRY_FIRST_SECONDS = 0.2
RECEIVE_RETRY_MAX_SECONDS = 5.0


class GatewayRedisChannelLayer(RedisChannelLayer):
    """channels_redis with a bounded, waiting connection pool and a receive loop that outlives Redis outages."""

    def create_pool(self, index: int):
        host = dict(self.hosts[index])
        if "address" not in host:  # Sentinel or host/port: channels_redis's own pool
            return super().create_pool(index)
        address = host.pop("address")
        # A command that fails on a connection Redis has closed (it restarted) is tried once more on a new one.
        host.setdefault("retry", Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
        host.setdefault("retry_on_error", [RedisConnectionError])
        return BlockingConnectionPool.from_url(address, **host)

    async def receive_single(self, channel: str) -> tuple:
        """The read for all of this process's consumers, retried with backoff while Redis is unreachable."""
        delay = RECEIVE_RETRY_FIRST_SECONDS
        failing_since = None
        while True:
            try:
                received = await super().receive_single(channel)
            except (RedisError, OSError) as exc:
                if failing_since is None:
                    failing_since = asyncio.get_running_loop().time()
                    logger.warning("channel layer: Redis unavailable (%r); consumers wait for it", exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, RECEIVE_RETRY_MAX_SECONDS)
                continue
            if failing_since is not None:
                logger.warning(
                    "channel layer: Redis back after %.1f s", asyncio.get_running_loop().time() - failing_since
                )
            return received
