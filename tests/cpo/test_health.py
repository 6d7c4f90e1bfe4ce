"""Load balancers ask /healthz (is the process alive) and /readyz (can it serve: database and Redis answer)."""

import asyncio
import http.client
import json
import os
import time
from urllib.parse import urlsplit

import pytest
from ocpp.v16 import call as call16

from tests.faults import DatabaseOutage, TcpProxy, url_through
from tests.ocpp_gateway.chargers import connected
from tests.support import (
    LiveServer,
    await_until,
    database_url_for_tests,
    in_thread,
    live_server_drain,
    start_daphne,
    stop,
    wait_until,
)


@pytest.mark.django_db
def test_liveness_and_readiness_answer_when_everything_is_up(client, settings):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] is True
    assert ("redis" in checks) == bool(settings.REDIS_URL)


@pytest.mark.django_db
def test_readiness_is_503_naming_redis_when_redis_does_not_answer(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert ready.json()["checks"]["database"]["ok"] is True
    assert client.get("/healthz").status_code == 200  # alive all the same: not a reason to restart it


# -- outages on a live server ---------------------------------------------------------------------------------------
def get(server: LiveServer, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_when_postgresql_hangs_readiness_answers_503_naming_the_database_within_seconds():
    """PostgreSQL accepts connections but answers nothing (a hung server, packets dropped on the way): a load
    balancer's probe gets 503 naming the database within the check's bound, each time, instead of waiting with it."""
    database_url = database_url_for_tests()
    if database_url.startswith("sqlite"):
        pytest.skip("an embedded SQLite database has no server to hang")
    target = urlsplit(database_url)
    relay = TcpProxy(target.port or 5432, target.hostname or "127.0.0.1")
    # connections kept between requests, as in production: the probe's query is sent on one opened before the hang
    server = start_daphne("database-hangs", DATABASE_URL=url_through(database_url, relay), DB_CONN_MAX_AGE="60")
    try:
        assert get(server, "/readyz")[0] == 200
        relay.stall()
        for _ in range(3):  # a probe every few seconds: none waits on the one before
            started = time.monotonic()
            status, body = get(server, "/readyz")
            assert status == 503 and body["checks"]["database"]["ok"] is False, body
            # no answer within the bound, or the connection attempt (connect_timeout) gave up meanwhile
            assert body["checks"]["database"]["error"] in ("Timeout", "OperationalError"), body
            assert time.monotonic() - started < 4
        assert get(server, "/healthz") == (200, {"status": "ok"})
        relay.restore()
        wait_until(lambda: get(server, "/readyz")[0] == 200, timeout=15)
    finally:
        relay.cut()
        stop(server)
        relay.close()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="Redis is checked only when REDIS_URL is set")
def test_when_redis_hangs_readiness_answers_503_naming_redis_within_seconds():
    redis_url = os.environ["REDIS_URL"]
    target = urlsplit(redis_url)
    relay = TcpProxy(target.port or 6379, target.hostname or "127.0.0.1")
    server = start_daphne("redis-hangs", REDIS_URL=url_through(redis_url, relay))
    try:
        assert get(server, "/readyz")[0] == 200
        relay.stall()
        for _ in range(3):
            started = time.monotonic()
            status, body = get(server, "/readyz")
            assert status == 503 and body["checks"]["redis"]["ok"] is False, body
            assert body["checks"]["database"]["ok"] is True, body
            assert time.monotonic() - started < 4
        relay.restore()
        wait_until(lambda: get(server, "/readyz")[0] == 200, timeout=15)
    finally:  # no charger connected: nothing to drain
        relay.cut()
        stop(server)
        relay.close()


LEASE_ENV = {"OCPP_GATEWAY_LEASE_SECONDS": "2", "OCPP_GATEWAY_LEASE_RENEW_SECONDS": "0.3"}


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_during_a_database_outage_the_gateway_is_alive_not_ready_keeps_its_chargers_and_renews_its_lease_after(
    station_factory, tmp_path
):
    """The database goes away for longer than the gateway's lease: /readyz says 503 naming the database, /healthz
    200 (no reason to restart it), the charger keeps its socket and its Heartbeat answers; the lease thread's
    failures do not end the process, and once the database is back the lease is renewed and the station online."""
    _, secret = station_factory("CP-DB-OUT", evses=1)
    outage = DatabaseOutage(tmp_path)
    server = start_daphne("db-outage", DATABASE_URL=outage.server_url, **LEASE_ENV)

    def renewed_at():
        rows = outage.query("SELECT renewed_at FROM ocpp_gateway_gatewayprocess WHERE pid = %s", server.process.pid)
        return rows[0][0] if rows else None

    try:

        async def scenario() -> None:
            async with connected(server.ocpp_url("CP-DB-OUT"), "CP-DB-OUT", secret) as cp:
                await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                assert (await asyncio.to_thread(get, server, "/readyz"))[0] == 200
                before = await await_until(renewed_at)
                outage.cut()
                try:
                    status, body = await asyncio.to_thread(get, server, "/readyz")
                    assert status == 503 and body["checks"]["database"]["ok"] is False
                    assert await asyncio.to_thread(get, server, "/healthz") == (200, {"status": "ok"})
                    await asyncio.sleep(3)  # longer than the lease
                    assert server.process.poll() is None
                    assert (await cp.call(call16.Heartbeat())).current_time
                    assert (await asyncio.to_thread(get, server, "/healthz"))[0] == 200
                finally:
                    outage.restore()
                await await_until(lambda: renewed_at() > before, timeout=10)
                assert (await asyncio.to_thread(get, server, "/readyz"))[0] == 200
                assert (await cp.call(call16.Heartbeat())).current_time
                online = await in_thread(
                    lambda: outage.query("SELECT online FROM cpo_chargingstation WHERE identity = %s", "CP-DB-OUT")
                )
                assert online == [(True,)] or online == [(1,)]

        asyncio.run(scenario())
        assert "gateway lease not renewed" in server.log()
    finally:
        if outage.shared and server.process.poll() is None:
            live_server_drain(server)
        stop(server)
        outage.close()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="Redis is checked only when REDIS_URL is set")
def test_during_a_redis_outage_the_gateway_is_alive_but_not_ready():
    redis_url = os.environ["REDIS_URL"]
    target = urlsplit(redis_url)
    relay = TcpProxy(target.port or 6379, target.hostname or "127.0.0.1")
    server = start_daphne("redis-outage", REDIS_URL=url_through(redis_url, relay))
    try:
        assert get(server, "/readyz")[0] == 200
        relay.cut()
        status, body = get(server, "/readyz")
        assert status == 503 and body["checks"]["redis"]["ok"] is False and body["checks"]["database"]["ok"] is True
        assert get(server, "/healthz") == (200, {"status": "ok"})
        relay.restore()
        wait_until(lambda: get(server, "/readyz")[0] == 200, timeout=10)
    finally:  # no charger connected: nothing to drain
        stop(server)
        relay.cut()
