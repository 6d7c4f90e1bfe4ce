"""The Redis channel layer of every process (cpo/channel_layer.py), against a redis-server of the test's own: a burst
uses a bounded number of connections and waits for them rather than failing, and a receiver outlives Redis going
away and coming back."""

import asyncio
import shutil

import pytest
import redis
from channels.layers import get_channel_layer

from cpo.channel_layer import CHANNEL_LAYER_ERRORS, GatewayRedisChannelLayer
from tests.faults import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def own_redis():
    server = RedisServer()
    server.start()
    yield server
    server.kill()


def layer_on(server: RedisServer, **host) -> GatewayRedisChannelLayer:
    return GatewayRedisChannelLayer(
        hosts=[{"address": server.url, "socket_connect_timeout": 1, **host}], prefix="test-layer", capacity=1000
    )


def clients(server: RedisServer) -> int:
    with redis.Redis.from_url(server.url) as client:
        return int(client.info("clients")["connected_clients"]) - 1  # not this one


def test_with_redis_every_process_uses_the_bounded_layer(settings):
    if not settings.REDIS_URL:
        pytest.skip("the embedded default has the in-memory layer")
    assert isinstance(get_channel_layer(), GatewayRedisChannelLayer)
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["max_connections"] <= 100


def test_a_burst_of_sends_waits_for_a_few_connections_instead_of_opening_one_each(own_redis):
    """A reconnect storm once opened a connection per handshake until Redis refused clients (maxclients)."""
    layer = layer_on(own_redis, max_connections=4, timeout=10)

    async def burst() -> tuple[int, int]:
        channels = [await layer.new_channel() for _ in range(500)]
        await asyncio.gather(*(layer.send(channel, {"type": "hello"}) for channel in channels))
        opened = await asyncio.to_thread(clients, own_redis)  # the pool keeps what it opened
        received = 0
        for channel in channels[:50]:
            received += (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "hello"
        await layer.flush()
        return opened, received

    opened, received = asyncio.run(burst())
    assert received == 50
    assert 1 <= opened <= 4


def test_a_receiver_waits_through_a_redis_outage_and_gets_messages_sent_after_it(own_redis):
    layer = layer_on(own_redis)

    async def scenario():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "before"})
        first = await asyncio.wait_for(layer.receive(channel), 5)
        receiving = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0.2)
        own_redis.kill()
        await asyncio.sleep(1.5)
        assert not receiving.done()  # still waiting, not crashed
        with pytest.raises(CHANNEL_LAYER_ERRORS):
            await layer.send(channel, {"type": "during"})
        await asyncio.to_thread(own_redis.start)
        await layer.send(channel, {"type": "after"})  # the pool's stale connections are replaced on their own
        second = await asyncio.wait_for(receiving, 10)
        await layer.flush()
        return first, second

    first, second = asyncio.run(scenario())
    assert (first["type"], second["type"]) == ("before", "after")
