"""The broker connection of the workers across a Redis outage: tasks a worker holds unacknowledged when Redis goes
away stay in Redis for the next worker (visibility timeout), and closing their channel never raises what Celery
would take for an unrecoverable error. A real Redis of our own behind a TCP proxy that we cut, real kombu."""

import pytest
import redis
from kombu import Connection, Exchange, Queue

from tests.faults import RedisServer, TcpProxy


@pytest.fixture
def redis_behind_proxy():
    if not RedisServer.available():
        pytest.skip("needs redis-server")
    server = RedisServer().start()
    proxy = TcpProxy(server.port)
    yield server, proxy
    proxy.close()
    server.stop()


def test_a_channel_holding_tasks_closed_after_redis_went_away_leaves_them_in_redis_and_does_not_raise(
    redis_behind_proxy,
):
    """Issue 11: 1 in 5 Redis kills stopped the worker and its beat for good with `Unrecoverable error:
    AttributeError("'NoneType' object has no attribute 'hostname'")` in kombu's `restore_unacked`. The sequence:
    the connection is collected while Redis is away; kombu stops closing channels at the first connection error (the
    worker's fanout control channel) and detaches the transport; the channel holding the acks_late tasks is closed
    afterwards."""
    server, proxy = redis_behind_proxy
    conn = Connection(f"redis://127.0.0.1:{proxy.port}/0", transport="cpo.celery:RedisTransport")
    tasks = conn.channel()
    queue = Queue("tasks", Exchange("tasks"), "tasks")
    queue(tasks).declare()
    with conn.Producer(tasks) as producer:
        producer.publish({"task": "held"}, exchange="tasks", routing_key="tasks")
    held = queue(tasks).get(no_ack=False)  # delivered, not acknowledged: in Redis's unacked hash
    assert held is not None
    control = conn.channel()
    Queue("control", Exchange("control", type="fanout"), auto_delete=True)(control).declare()

    proxy.cut()
    conn.collect(socket_timeout=1)  # what the worker does on a connection error
    tasks.close()  # raised AttributeError with kombu's transport

    direct = redis.Redis(port=server.port)
    assert direct.hlen("unacked") == 1, "the held task must stay in Redis for another worker"
    direct.close()
