"""Who may connect, with which subprotocol, and what happens when a charger connects twice."""

import asyncio
import base64
import json
import os
import resource

import psutil
import pytest
import redis
import websockets
from django.conf import settings
from ocpp.v16 import call

from cpo.models import ChargingStation
from tests.ocpp_gateway.chargers import basic_auth, connected, raw_exchange
from tests.support import await_until, handshake_failures, in_thread, start_daphne, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def handshake_status(url, headers, subprotocols=("ocpp1.6",)) -> int | str:
    """101 when the server accepts the websocket, else the HTTP status it refused with."""

    async def run():
        try:
            async with websockets.connect(url, subprotocols=list(subprotocols), additional_headers=headers) as ws:
                return f"101 {ws.subprotocol}"
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(run())


def test_only_known_stations_with_their_own_secret_get_in(live_daphne, station_factory):
    _, secret = station_factory("CP-AUTH-1")
    _, other_secret = station_factory("CP-AUTH-2")
    url = live_daphne.ocpp_url("CP-AUTH-1")
    assert handshake_status(url, basic_auth("CP-AUTH-1", secret)) == "101 ocpp1.6"
    assert handshake_status(url, basic_auth("CP-AUTH-1", secret + "x")) == 403
    assert handshake_status(url, basic_auth("CP-AUTH-1", other_secret)) == 403
    assert handshake_status(url, basic_auth("CP-AUTH-2", other_secret)) == 403  # someone else's identity
    assert handshake_status(url, {}) == 403
    assert handshake_status(live_daphne.ocpp_url("CP-NOBODY"), basic_auth("CP-NOBODY", secret)) == 403
    assert not ChargingStation.objects.filter(identity="CP-NOBODY").exists()


def test_the_subprotocol_is_chosen_from_what_the_charger_offers(live_daphne, station_factory):
    _, secret = station_factory("CP-PROTO")
    url, auth = live_daphne.ocpp_url("CP-PROTO"), basic_auth("CP-PROTO", secret)
    assert handshake_status(url, auth, ["ocpp2.0.1"]) == "101 ocpp2.0.1"
    assert handshake_status(url, auth, ["ocpp1.5", "ocpp1.6"]) == "101 ocpp1.6"
    assert handshake_status(url, auth, ["ocpp1.2"]) == 403
    assert handshake_status(url, auth, []) == 403


def test_a_second_connection_replaces_the_first(live_daphne, station_factory):
    station, secret = station_factory("CP-TWICE")
    url = live_daphne.ocpp_url("CP-TWICE")

    async def run():
        headers = basic_auth("CP-TWICE", secret)
        async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers) as first:
            async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers) as second:
                await asyncio.wait_for(first.wait_closed(), 5)
                answer = await raw_exchange(second, '[2,"h1","Heartbeat",{}]')
                online = await in_thread(lambda: ChargingStation.objects.get(pk=station.pk).online)
                return first.close_code, answer, online

    close_code, answer, online_while_second_open = asyncio.run(run())
    assert close_code == 4000
    assert answer[0] == 3
    assert online_while_second_open
    # The replaced socket closing left the station online; it goes offline when the new socket closes too.
    wait_until(lambda: not ChargingStation.objects.get(pk=station.pk).online)


def test_unknown_stations_can_be_admitted_as_pending_until_staff_accept_them(transactional_db):
    server = start_daphne("admit", OCPP_ADMIT_UNKNOWN_STATIONS="1")
    try:

        async def pending():
            async with connected(server.ocpp_url("CP-NEW-1"), "CP-NEW-1", None) as cp:
                boot = await cp.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                try:
                    await cp.call(
                        call.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                        suppress=False,
                    )
                    refused = None
                except Exception as exc:  # the CALLERROR comes back as the library's exception
                    refused = getattr(exc, "code", repr(exc))
                return boot.status, refused

        status, refused = asyncio.run(pending())
        assert (status, refused) == ("Pending", "SecurityError")
        station = ChargingStation.objects.get(identity="CP-NEW-1")
        assert station.registration_status == "Pending"
        station.registration_status = "Accepted"
        station.save()
        status, refused = asyncio.run(pending())
        assert (status, refused) == ("Accepted", None)
    finally:
        stop(server)


def test_each_station_authenticates_by_its_own_security_profile(live_daphne, station_factory):
    """No global switch: profile 0 (a lab charger) gets in without credentials, profile 1 needs Basic, profiles 2
    and 3 need TLS through the proxy besides (tests/ocpp_gateway/test_tls.py), so over plain ws:// they are refused
    even with the right password."""
    station_factory("CP-LAB", security_profile=0)
    _, secret = station_factory("CP-BASIC")
    _, tls_secret = station_factory("CP-TLS", security_profile=2)
    station_factory("CP-CERT", security_profile=3)
    assert ChargingStation.objects.get(identity="CP-BASIC").security_profile == 1  # the default
    assert handshake_status(live_daphne.ocpp_url("CP-LAB"), {}) == "101 ocpp1.6"
    assert handshake_status(live_daphne.ocpp_url("CP-BASIC"), {}) == 403
    assert handshake_status(live_daphne.ocpp_url("CP-BASIC"), basic_auth("CP-BASIC", secret)) == "101 ocpp1.6"
    assert handshake_status(live_daphne.ocpp_url("CP-TLS"), {}) == 403
    assert handshake_status(live_daphne.ocpp_url("CP-TLS"), basic_auth("CP-TLS", tls_secret)) == 403
    assert handshake_status(live_daphne.ocpp_url("CP-CERT"), {}) == 403


def test_a_gateway_raises_its_open_files_limit_and_on_sigterm_closes_its_chargers_with_1012(station_factory):
    """A restart (deploy, scale-in): the charger learns "Service Restart" (1012) and reconnects at once, elsewhere;
    stock daphne dropped the socket (1006: chargers back off) and cancelled the consumer before it recorded the
    station offline. The process exits cleanly once its consumers are done."""
    _, secret = station_factory("CP-STOP-1")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # the usual default, inherited by daphne
    try:
        server = start_daphne("sigterm")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        # The launcher raised its open-files limit: one descriptor per charger, 1,024 is far too few.
        assert psutil.Process(server.process.pid).rlimit(psutil.RLIMIT_NOFILE) == (hard, hard)

        async def run():
            async with connected(server.ocpp_url("CP-STOP-1"), "CP-STOP-1", secret) as cp:
                await cp.call(call.Heartbeat())
                await await_until(lambda: ChargingStation.objects.get(identity="CP-STOP-1").online)
                server.process.terminate()  # SIGTERM
                await asyncio.wait_for(cp._connection.wait_closed(), 10)
                return cp._connection.close_code

        assert asyncio.run(run()) == 1012
        assert server.process.wait(10) == 0
        assert not ChargingStation.objects.get(identity="CP-STOP-1").online
        assert "closed 1 websockets with 1012" in server.log()
    finally:
        stop(server)


def test_a_gateway_stopping_gracefully_hands_on_the_offline_stations_it_had_batched(station_factory):
    """The stations a SIGTERM marks offline reach the partners' status pushes: the gateway hands them to the workers
    as it stops. They were batched in memory until the next interval and went down with the process (a gateway
    holding 10,000 chargers logged "7573 events not handed on")."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL (the embedded default runs these tasks in-process, unbatched)")
    station, secret = station_factory("CP-STOP-HANDS-ON")
    urgent_queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-urgent"
    server = start_daphne("hands-on", OCPI_EVENTS_BATCH_SECONDS="3600")  # nothing goes by the interval

    def status_pushes_queued() -> list[list[int]]:
        """The station_pks of every evse_status_push_batch task waiting in the urgent queue."""
        with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
            messages = [json.loads(raw) for raw in client.lrange(urgent_queue, 0, -1)]
        queued = []
        for message in messages:
            if message["headers"]["task"] == "ocpi_api.tasks.evse_status_push_batch":
                args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
                queued.append(args[1] if len(args) > 1 else kwargs.get("station_pks") or [])
        return queued

    def handed_on() -> int:  # the queue outlives test databases, whose primary keys start again at 1
        return sum(station.pk in pks for pks in status_pushes_queued())

    try:

        async def run():
            async with connected(server.ocpp_url(station.identity), station.identity, secret) as cp:
                await cp.call(call.Heartbeat())
                await await_until(lambda: ChargingStation.objects.get(pk=station.pk).online)
                server.process.terminate()  # SIGTERM
                await asyncio.wait_for(cp._connection.wait_closed(), 10)

        handed_on_before = handed_on()
        asyncio.run(run())
        assert server.process.wait(10) == 0
    finally:
        stop(server)
    assert not ChargingStation.objects.get(pk=station.pk).online
    assert handed_on() == handed_on_before + 1, status_pushes_queued()


def test_refused_handshakes_are_counted_by_reason_on_the_gateways_metrics(live_daphne, station_factory):
    _, secret = station_factory("CP-METRIC-1")
    url = live_daphne.ocpp_url("CP-METRIC-1")

    before = handshake_failures(live_daphne)
    assert handshake_status(url, basic_auth("CP-METRIC-1", secret + "x")) == 403
    assert handshake_status(url, basic_auth("CP-METRIC-1", secret), subprotocols=("ocpp0.1",)) == 403
    after = handshake_failures(live_daphne)
    assert after.get("bad_secret", 0) - before.get("bad_secret", 0) == 1
    assert after.get("no_subprotocol", 0) - before.get("no_subprotocol", 0) == 1
