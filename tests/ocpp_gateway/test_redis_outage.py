"""The gateway's use of Redis, against a live daphne on a redis-server of the test's own: the connections it holds
stay few however many chargers connect, and Redis may go away for a few seconds (SIGKILL) and come back empty.

What chargers and staff notice: chargers keep their sockets and their messages are answered throughout, a charger
that connects during the outage gets in, a command sent meanwhile fails at once with reason "unavailable" (not after
the call timeout), and once Redis is back commands reach every charger again and new chargers connect, within
seconds. The daphne uses a redis-server of the test's own (channel layer, cache and Celery broker), so the test runs
on both backends wherever `redis-server` is installed."""

import asyncio
import contextlib
import os
import shutil
import time

import pytest
import redis
from ocpp.v16 import call

from cpo.models import ChargingStation
from ocpp_gateway.commands import CommandError, command_send
from tests.faults import RedisServer
from tests.ocpp_gateway.chargers import connected, now_iso
from tests.support import in_thread, start_daphne, stop

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

CHARGERS = 4
OUTAGE_SECONDS = 4.0
RECOVERY_SECONDS = 30.0


@pytest.fixture
def own_redis():
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def outage_daphne(own_redis, settings, transactional_db):
    """A daphne on the test's own Redis, and this process's channel layer on it too (to send commands)."""
    prefix = os.environ.get("CHANNEL_LAYER_PREFIX", "cpo")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "cpo.channel_layer.GatewayRedisChannelLayer",
            "CONFIG": {"hosts": [{"address": own_redis.url, "socket_connect_timeout": 2}], "prefix": prefix},
        }
    }
    server = start_daphne("redis-outage", REDIS_URL=own_redis.url, OCPP_CALL_TIMEOUT="3")
    yield server
    stop(server)


def reset(identity: str) -> dict | str:
    """A Reset sent as staff or a partner would (another process): the charger's answer, or the error's reason."""
    try:
        return command_send(identity=identity, action="Reset", payload={"type": "Soft"}, timeout=3)
    except CommandError as exc:
        return exc.reason


def online(*, identities: list[str]) -> int:
    return ChargingStation.objects.filter(identity__in=identities, online=True).count()


async def charger_traffic(cp) -> list[str]:
    """What a charger sends on its own: every message must be answered."""
    answers = [
        await cp.call(call.Heartbeat()),
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now_iso())
        ),
        await cp.call(
            call.MeterValues(
                connector_id=1,
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampled_value": [{"value": "1000", "measurand": "Energy.Active.Import.Register"}],
                    }
                ],
            )
        ),
    ]
    return [type(answer).__name__ for answer in answers]


def test_chargers_are_served_through_a_redis_outage_and_commands_work_again_after_it(
    outage_daphne, own_redis, station_factory
):
    server = outage_daphne
    identities = [f"CP-OUTAGE-{n}" for n in range(CHARGERS)]
    secrets = {identity: station_factory(identity)[1] for identity in identities}
    for late in ("CP-OUTAGE-DURING", "CP-OUTAGE-AFTER"):
        secrets[late] = station_factory(late)[1]

    async def scenario() -> dict:
        seen: dict = {}
        async with contextlib.AsyncExitStack() as stack:
            chargers = {
                identity: await stack.enter_async_context(
                    connected(server.ocpp_url(identity), identity, secrets[identity])
                )
                for identity in identities
            }
            seen["before"] = [await in_thread(reset, identity=identity) for identity in identities]

            own_redis.kill()
            outage_started = time.monotonic()
            seen["during"] = []
            while time.monotonic() - outage_started < OUTAGE_SECONDS:
                seen["during"].append(await asyncio.gather(*(charger_traffic(cp) for cp in chargers.values())))
                await asyncio.sleep(0.5)
            started = time.monotonic()
            seen["command_during"] = await in_thread(reset, identity=identities[0])
            seen["command_during_seconds"] = time.monotonic() - started
            async with connected(
                server.ocpp_url("CP-OUTAGE-DURING"), "CP-OUTAGE-DURING", secrets["CP-OUTAGE-DURING"]
            ) as newcomer:
                seen["newcomer_during"] = await charger_traffic(newcomer)
            seen["open_after_outage"] = [cp._connection.state.name for cp in chargers.values()]

            own_redis.start()  # same port, empty
            recovered = time.monotonic()
            pending = set(identities)
            while pending and time.monotonic() - recovered < RECOVERY_SECONDS:
                for identity in sorted(pending):
                    if await in_thread(reset, identity=identity) == {"status": "Accepted"}:
                        pending.discard(identity)
            seen["unreached_after_recovery"] = sorted(pending)
            seen["recovery_seconds"] = time.monotonic() - recovered
            async with connected(
                server.ocpp_url("CP-OUTAGE-AFTER"), "CP-OUTAGE-AFTER", secrets["CP-OUTAGE-AFTER"]
            ) as late:
                seen["late_traffic"] = await charger_traffic(late)
                seen["late_command"] = await in_thread(reset, identity="CP-OUTAGE-AFTER")
            seen["received"] = {identity: cp.received for identity, cp in chargers.items()}
            seen["online"] = await in_thread(online, identities=identities)
        return seen

    seen = asyncio.run(scenario())
    assert seen["before"] == [{"status": "Accepted"}] * CHARGERS
    answered = ["Heartbeat", "StatusNotification", "MeterValues"]
    assert len(seen["during"]) >= 4
    assert all(round_ == [answered] * CHARGERS for round_ in seen["during"]), seen["during"]
    assert seen["command_during"] == "unavailable"
    assert seen["command_during_seconds"] < 2
    assert seen["newcomer_during"] == answered
    assert seen["open_after_outage"] == ["OPEN"] * CHARGERS
    assert seen["unreached_after_recovery"] == [], seen
    assert seen["late_traffic"] == answered and seen["late_command"] == {"status": "Accepted"}
    assert all(("Reset", {"type": "Soft"}) in received for received in seen["received"].values())
    assert seen["online"] == CHARGERS
    assert "Exception inside application" not in server.log(), server.log()[-3000:]  # a 500 or a 1011


def test_a_burst_of_handshakes_holds_few_redis_connections(outage_daphne, own_redis, station_factory):
    """Each handshake reads the failed-login counts in the cache; that once cost a Redis connection per handshake,
    never closed, until a reconnect storm reached Redis's maxclients."""
    identities = [f"CP-BURST-{n}" for n in range(60)]
    secrets = {identity: station_factory(identity, evses=0)[1] for identity in identities}

    async def burst() -> list:
        async with contextlib.AsyncExitStack() as stack:
            chargers = await asyncio.gather(
                *(stack.enter_async_context(connected(outage_daphne.ocpp_url(i), i, secrets[i])) for i in identities)
            )
            return await asyncio.gather(*(cp.call(call.Heartbeat()) for cp in chargers))

    assert len(asyncio.run(burst())) == len(identities)
    with redis.Redis.from_url(own_redis.url) as client:
        held = int(client.info("clients")["connected_clients"]) - 1
    assert held < 30, held
