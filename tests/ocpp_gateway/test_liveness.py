"""Station liveness (ocpp_gateway/services/liveness.py): a station counts as online only while the gateway process
holding its socket keeps its lease and the charger is heard from within its heartbeat bound.

The rules on rows written by hand, then the fault they are for: a gateway process killed (SIGKILL) with chargers
connected, one of them charging."""

import asyncio
import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from ocpp.v16 import call as call16

from billing.models import Cdr
from billing.services import transaction_bill
from cpo.celery import app
from cpo.models import ChargingStation
from ocpp_gateway import events
from ocpp_gateway.commands import CommandError, command_send
from ocpp_gateway.models import GatewayProcess, StationVariable, Transaction
from ocpp_gateway.services import liveness
from ocpp_gateway.services.liveness import (
    gateway_lease_renew,
    gateway_process_id,
    station_reachable,
    stations_liveness_check,
)
from ocpp_gateway.services.provisioning import station_seen, stations_disconnected
from ocpp_gateway.services.transactions import transaction_close_stale
from ocpp_gateway.tasks import stations_liveness_check_task, transaction_close_stale_task
from tests.ocpp_gateway.chargers import connected, now_iso
from tests.support import LiveServer, await_until, in_thread, live_server_drain, start_daphne, stop, wait_until


@pytest.fixture
def announced():
    """The station_online / station_offline events sent while the test runs: (kind, station_pk)."""
    seen: list[tuple[str, int]] = []

    def offline(sender, *, station_pk, **kwargs):
        seen.append(("offline", station_pk))

    def online(sender, *, station_pk, **kwargs):
        seen.append(("online", station_pk))

    events.station_offline.connect(offline, dispatch_uid="test-liveness-offline")
    events.station_online.connect(online, dispatch_uid="test-liveness-online")
    yield seen
    events.station_offline.disconnect(dispatch_uid="test-liveness-offline")
    events.station_online.disconnect(dispatch_uid="test-liveness-online")


def lease(process_id: str, *, renewed_ago: float, running_for: float) -> GatewayProcess:
    """A gateway process's lease, last renewed `renewed_ago` seconds ago after renewing without a break for
    `running_for` seconds."""
    now = timezone.now()
    renewed_at = now - timedelta(seconds=renewed_ago)
    return GatewayProcess.objects.create(
        id=process_id,
        host="gw",
        pid=1,
        started_at=renewed_at - timedelta(seconds=running_for),
        renewed_since=renewed_at - timedelta(seconds=running_for),
        renewed_at=renewed_at,
    )


def held_by(station: ChargingStation, process_id: str, *, seen_ago: float = 0.0) -> ChargingStation:
    ChargingStation.objects.filter(pk=station.pk).update(
        online=True,
        gateway_process=process_id,
        connection_channel=f"specific.{process_id}!{station.pk}",
        last_seen=timezone.now() - timedelta(seconds=seen_ago),
    )
    station.refresh_from_db()
    return station


def online(*identities: str) -> dict[str, bool]:
    return dict(ChargingStation.objects.filter(identity__in=identities).values_list("identity", "online"))


# -- the rules ------------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_stations_of_a_process_whose_lease_ran_out_go_offline_once_a_live_process_vouches(
    station_factory, announced, settings, django_capture_on_commit_callbacks
):
    settings.OCPP_GATEWAY_LEASE_SECONDS = 60
    lease("alive", renewed_ago=5, running_for=600)
    lease("dead", renewed_ago=61, running_for=600)
    kept = held_by(station_factory("CP-KEPT", evses=1)[0], "alive")
    gone = held_by(station_factory("CP-GONE", evses=1)[0], "dead")
    assert not station_reachable(station=gone)  # commands fail at once, before housekeeping ran
    assert station_reachable(station=kept)

    with django_capture_on_commit_callbacks(execute=True):
        assert stations_liveness_check() == [gone.pk]
    assert online("CP-KEPT", "CP-GONE") == {"CP-KEPT": True, "CP-GONE": False}
    assert announced == [("offline", gone.pk)]
    assert list(GatewayProcess.objects.values_list("id", flat=True)) == ["alive"]  # the dead lease is forgotten
    assert stations_liveness_check() == []  # once


@pytest.mark.django_db
def test_no_station_goes_offline_by_its_lease_when_no_process_has_renewed_for_a_whole_lease_period(
    station_factory, settings
):
    """A process just started (or every process just after a database outage) cannot tell a dead process from one
    that has not renewed yet: nothing goes offline by the lease rule then."""
    settings.OCPP_GATEWAY_LEASE_SECONDS = 60
    lease("just-started", renewed_ago=1, running_for=10)
    lease("after-outage", renewed_ago=90, running_for=600)
    station = held_by(station_factory("CP-OUTAGE", evses=1)[0], "after-outage")
    assert stations_liveness_check() == []
    assert online("CP-OUTAGE") == {"CP-OUTAGE": True}
    assert GatewayProcess.objects.count() == 2
    assert not station_reachable(station=station)  # a command still fails at once: nobody answers it now


@pytest.mark.django_db
def test_stations_no_live_process_holds_go_offline_after_three_heartbeat_intervals_of_silence(
    station_factory, settings, announced, django_capture_on_commit_callbacks
):
    """No process vouches for the dead one (none has renewed for a lease period), so the last-seen rule decides:
    three of the station's heartbeat intervals (the longer one it reports counts)."""
    settings.OCPP_HEARTBEAT_INTERVAL = 300
    settings.OCPP_OFFLINE_AFTER_HEARTBEATS = 3
    lease("dead", renewed_ago=120, running_for=600)
    held_by(station_factory("CP-RECENT", evses=1)[0], "dead", seen_ago=800)
    silent = held_by(station_factory("CP-SILENT", evses=1)[0], "dead", seen_ago=1000)
    hourly = held_by(station_factory("CP-HOURLY", evses=1)[0], "dead", seen_ago=1000)
    StationVariable.objects.create(station=hourly, variable="HeartbeatInterval", value="3600")
    legacy = station_factory("CP-LEGACY", evses=1)[0]  # online before leases existed: no process recorded
    ChargingStation.objects.filter(pk=legacy.pk).update(online=True, last_seen=timezone.now() - timedelta(hours=2))

    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(stations_liveness_check()) == sorted([silent.pk, legacy.pk])
    assert online("CP-RECENT", "CP-SILENT", "CP-HOURLY", "CP-LEGACY") == {
        "CP-RECENT": True,
        "CP-SILENT": False,
        "CP-HOURLY": True,
        "CP-LEGACY": False,
    }
    assert sorted(announced) == sorted([("offline", silent.pk), ("offline", legacy.pk)])


@pytest.mark.django_db
def test_while_a_live_process_holds_the_socket_silence_is_allowed_for_a_day(station_factory, settings):
    """OCPP-J 1.6 makes heartbeats optional over websockets (daphne's pings watch the connection), advising one a
    day: a quiet charger on a live process is not taken for gone, one silent for over a day is."""
    settings.OCPP_HEARTBEAT_INTERVAL = 300
    lease("alive", renewed_ago=1, running_for=600)
    quiet = held_by(station_factory("CP-QUIET-OK", evses=1)[0], "alive", seen_ago=3 * 3600)
    mute = held_by(station_factory("CP-MUTE", evses=1)[0], "alive", seen_ago=25 * 3600)
    assert station_reachable(station=quiet) and not station_reachable(station=mute)
    assert stations_liveness_check() == [mute.pk]


@pytest.mark.django_db
def test_a_station_whose_close_could_not_be_written_goes_offline_at_its_process_s_next_check(
    station_factory, django_capture_on_commit_callbacks
):
    """The process knows which sockets it holds: a station recorded as held by it that it no longer holds (the
    database was down when the socket closed) goes offline and is released; the ones it holds stay."""
    me = liveness.gateway_lease_ensure()
    kept = held_by(station_factory("CP-HELD", evses=1)[0], me)
    lost = held_by(station_factory("CP-LOST", evses=1)[0], me)
    liveness.station_socket_held(station_pk=kept.pk, channel_name=kept.connection_channel)
    liveness.station_socket_held(station_pk=lost.pk, channel_name=lost.connection_channel)
    liveness.station_socket_released(channel_name=lost.connection_channel)  # its close, not written
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert liveness.stations_reconcile() == [lost.pk]
        assert online("CP-HELD", "CP-LOST") == {"CP-HELD": True, "CP-LOST": False}
        assert ChargingStation.objects.get(pk=lost.pk).gateway_process == ""
    finally:
        liveness.station_socket_released(channel_name=kept.connection_channel)


@pytest.mark.django_db
def test_a_network_cut_s_closed_sockets_take_their_stations_offline_in_a_few_statements_but_not_a_replaced_one(
    station_factory, announced, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    """A cut closes every socket at once; the gateway hands the closes on in one batch. Each station whose row still
    names the closed socket goes offline (and says so); a station whose charger already reconnected on another socket
    stays online."""
    me = liveness.gateway_lease_ensure()
    stations = [held_by(station_factory(f"CP-CUT-{n}", evses=1)[0], me) for n in range(450)]
    reconnected = stations[0]
    closed = [(s.pk, s.connection_channel) for s in stations]
    ChargingStation.objects.filter(pk=reconnected.pk).update(connection_channel="specific.other!new")

    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(20):
        offline = stations_disconnected(sockets=closed)  # 3 chunks: each a lock and an UPDATE; the EVSEs' touch

    assert sorted(offline) == sorted(s.pk for s in stations[1:])
    assert ChargingStation.objects.filter(online=True).values_list("pk", flat=True).get() == reconnected.pk
    assert ChargingStation.objects.filter(pk__in=offline, connection_channel="", gateway_process="").count() == 449
    assert sorted(pk for kind, pk in announced if kind == "offline") == sorted(offline)


@pytest.mark.django_db
def test_a_station_taken_for_gone_whose_socket_lives_is_online_again_at_its_process_s_renewal_or_next_check(
    station_factory, settings, announced, django_capture_on_commit_callbacks
):
    """This process's lease lapsed (paused, or the database was down) and its stations were marked offline: renewing
    after the gap brings back those it still holds (not one whose socket closed meanwhile); a station taken for gone
    while its socket lived comes back at this process's next check."""
    settings.OCPP_GATEWAY_LEASE_SECONDS = 60
    me = gateway_process_id()
    lease(me, renewed_ago=120, running_for=600)
    lease("witness", renewed_ago=1, running_for=600)
    paused = held_by(station_factory("CP-PAUSED", evses=1)[0], me)
    quiet = held_by(station_factory("CP-QUIET", evses=1)[0], me, seen_ago=25 * 3600)
    closed = held_by(station_factory("CP-CLOSED", evses=1)[0], me)  # its socket closed meanwhile
    for station in (paused, quiet):
        liveness.station_socket_held(station_pk=station.pk, channel_name=station.connection_channel)
    try:
        assert sorted(stations_liveness_check()) == sorted([paused.pk, quiet.pk, closed.pk])

        assert gateway_lease_renew() is False  # a new run of renewals: this process is back
        assert online("CP-PAUSED", "CP-QUIET", "CP-CLOSED") == {
            "CP-PAUSED": True,
            "CP-QUIET": True,
            "CP-CLOSED": False,
        }
        assert stations_liveness_check() == [quiet.pk]  # still not heard from
        station_seen(station_pks=[quiet.pk])  # it speaks again
        with django_capture_on_commit_callbacks(execute=True):
            assert liveness.stations_revive() == [quiet.pk]  # this process's next check
        assert online("CP-QUIET") == {"CP-QUIET": True}
        assert stations_liveness_check() == []
        assert announced[-1] == ("online", quiet.pk)
        assert gateway_lease_renew() is True
    finally:
        for station in (paused, quiet):
            liveness.station_socket_released(channel_name=station.connection_channel)


@pytest.mark.django_db
def test_a_command_to_a_station_whose_process_is_dead_fails_at_once_as_offline(station_factory, settings):
    settings.OCPP_GATEWAY_LEASE_SECONDS = 60
    lease("dead", renewed_ago=61, running_for=600)
    held_by(station_factory("CP-CMD-DEAD", evses=1)[0], "dead")
    started = time.monotonic()
    with pytest.raises(CommandError) as error:
        command_send(identity="CP-CMD-DEAD", action="Heartbeat", payload={})
    assert error.value.reason == CommandError.OFFLINE
    assert time.monotonic() - started < 1


@pytest.mark.django_db
def test_a_process_shutting_down_releases_its_lease_and_its_stations_go_offline(
    station_factory, announced, django_capture_on_commit_callbacks
):
    me = liveness.gateway_lease_ensure()
    station = held_by(station_factory("CP-RELEASED", evses=1)[0], me)
    with django_capture_on_commit_callbacks(execute=True):
        assert liveness.gateway_lease_release() == [station.pk]
    station.refresh_from_db()
    assert (station.online, station.gateway_process, station.connection_channel) == (False, "", "")
    assert not GatewayProcess.objects.filter(pk=me).exists()
    assert announced == [("offline", station.pk)]


# -- the fault ------------------------------------------------------------------------------------------------------
LEASE_ENV = {
    "OCPP_GATEWAY_LEASE_SECONDS": "2",
    "OCPP_GATEWAY_LEASE_RENEW_SECONDS": "0.3",
    "OCPP_LIVENESS_CHECK_SECONDS": "0.5",
}


def drained_and_stopped(*servers: LiveServer) -> None:
    for server in servers:
        if server.process.poll() is None:
            live_server_drain(server)
            stop(server)


def live_cdrs(tx: Transaction) -> list[Cdr]:
    """The CDRs of `tx` that count (a CDR corrected by a late stop is credited and re-issued)."""
    credited = Cdr.objects.filter(credit=True).values("credit_reference_id")
    return list(Cdr.objects.filter(session__transaction=tx, credit=False).exclude(pk__in=credited))


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_killed_gateway_s_stations_go_offline_their_transaction_closes_once_and_they_are_served_again(
    station_factory, local_token, settings, eager
):
    """SIGKILL of the daphne holding three 1.6 chargers, one charging. Once its lease ran out (2 s here) commands to
    them fail at once as offline. A new daphne starts and one charger comes back to it at once; once the new process
    has renewed its lease for a lease period, its own housekeeping (no beat runs here, as in the embedded default)
    marks the other two offline (not the one back). The
    stale-transaction rule then closes the transaction, billed once; the other chargers come back and are served,
    the charging one's late stop a correction of the same CDR."""
    settings.OCPP_GATEWAY_LEASE_SECONDS = 2
    identities = ["CP-KILL-1", "CP-KILL-2", "CP-KILL-3"]
    secrets = {identity: station_factory(identity, evses=1)[1] for identity in identities}
    victim = start_daphne("victim", **LEASE_ENV)
    replacement = None
    try:

        async def charge_then_kill() -> tuple[int, float]:
            chargers = [connected(victim.ocpp_url(i), i, secrets[i]) for i in identities]
            cps = [await charger.__aenter__() for charger in chargers]
            for cp in cps:
                await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            start = await cps[0].call(
                call16.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=1000, timestamp=now_iso())
            )
            await cps[0].call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[{"timestamp": now_iso(), "sampledValue": [{"value": "1800"}]}],
                )
            )
            os.kill(victim.process.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            for charger in chargers:
                await charger.__aexit__(None, None, None)
            return start.transaction_id, killed_at

        victim_lease = GatewayProcess.objects.get(pid=victim.process.pid).pk
        transaction_id, killed_at = asyncio.run(charge_then_kill())
        victim.process.wait(5)
        tx = Transaction.objects.get(transaction_id=str(transaction_id))
        holders = ChargingStation.objects.filter(identity__in=identities).values_list("gateway_process", flat=True)
        assert set(holders) == {victim_lease}
        assert online(*identities) == dict.fromkeys(identities, True)  # nobody said goodbye
        assert transaction_close_stale(older_than_hours=0) == []  # the closer leaves online stations alone

        # Commands fail at once once the lease ran out, before housekeeping marked anything.
        wait_until(lambda: time.monotonic() - killed_at > 2.5, timeout=5)
        started = time.monotonic()
        with pytest.raises(CommandError) as error:
            command_send(identity="CP-KILL-2", action="Heartbeat", payload={})
        assert error.value.reason == CommandError.OFFLINE and time.monotonic() - started < 1
        assert stations_liveness_check() == []  # no live process to vouch for the database yet

        replacement = start_daphne("replacement", **LEASE_ENV)
        up_at = time.monotonic()
        replacement_lease = GatewayProcess.objects.get(pid=replacement.process.pid).pk

        async def served(identity: str, late_stop: bool = False) -> None:
            """The charger boots on the new daphne, is online there, takes a command (through Redis), and sends the
            stop it queued while we were gone."""
            async with connected(replacement.ocpp_url(identity), identity, secrets[identity]) as cp:
                boot = await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                assert boot.status == "Accepted"
                station = await in_thread(ChargingStation.objects.get, identity=identity)
                assert (station.online, station.gateway_process) == (True, replacement_lease)
                if os.environ.get("REDIS_URL"):  # commands reach another process through Redis only
                    answer = await in_thread(command_send, identity=identity, action="Reset", payload={"type": "Soft"})
                    assert answer == {"status": "Accepted"}
                if late_stop:
                    await cp.call(
                        call16.StopTransaction(
                            transaction_id=transaction_id, meter_stop=2000, timestamp=now_iso(), reason="Other"
                        )
                    )
                await cp.call(call16.Heartbeat())

        async def back_while_housekeeping_runs() -> None:
            async with connected(replacement.ocpp_url("CP-KILL-2"), "CP-KILL-2", secrets["CP-KILL-2"]) as cp:
                await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                await await_until(lambda: not online("CP-KILL-1")["CP-KILL-1"], timeout=10)
                assert await in_thread(lambda: online(*identities)) == {
                    "CP-KILL-1": False,
                    "CP-KILL-2": True,
                    "CP-KILL-3": False,
                }

        asyncio.run(back_while_housekeeping_runs())
        assert time.monotonic() - up_at < 2 + 0.5 + 3  # a lease, a check, and a slow machine's margin
        # the lease row goes right after its stations were marked offline (the check commits those first)
        wait_until(lambda: not GatewayProcess.objects.filter(pk=victim_lease).exists(), timeout=5)
        assert stations_liveness_check_task() == 0  # beat's task finds nothing left to do

        # The existing rule closes what the offline station left open (its wait shortened here), billed once.
        settings.OCPP_STALE_TRANSACTION_HOURS = 0
        assert transaction_close_stale_task() == 1
        tx.refresh_from_db()
        assert (tx.status, tx.ended_by) == ("ENDED", "housekeeping")
        wait_until(lambda: len(live_cdrs(tx)) == 1, timeout=10)

        asyncio.run(served("CP-KILL-1", late_stop=True))
        asyncio.run(served("CP-KILL-3"))
        tx.refresh_from_db()
        assert (tx.status, tx.meter_stop) == ("ENDED", 2000)
        transaction_bill(transaction_pk=tx.pk)
        assert len(live_cdrs(tx)) == 1
    finally:
        drained_and_stopped(*(s for s in (victim, replacement) if s is not None))


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_gateway_stopped_cleanly_releases_its_lease_and_its_stations_go_offline(station_factory):
    """SIGTERM (a deploy, a scale-in): the station of the charger still connected is offline as the process exits,
    not a lease later, and the process's lease is gone."""
    _, secret = station_factory("CP-TERM", evses=1)
    server = start_daphne("term", **LEASE_ENV)
    lease_id = GatewayProcess.objects.get(pid=server.process.pid).pk

    async def connected_while_stopped() -> None:
        async with connected(server.ocpp_url("CP-TERM"), "CP-TERM", secret) as cp:
            await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            assert await in_thread(lambda: online("CP-TERM")) == {"CP-TERM": True}
            server.process.terminate()
            await asyncio.to_thread(server.process.wait, 10)

    asyncio.run(connected_while_stopped())
    station = ChargingStation.objects.get(identity="CP-TERM")
    assert (station.online, station.gateway_process) == (False, "")
    assert not GatewayProcess.objects.filter(pk=lease_id).exists()


def test_beat_runs_the_liveness_check(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["ocpp-stations-liveness-check"]
    assert entry["task"] in app.tasks and entry["schedule"] == settings.OCPP_LIVENESS_CHECK_SECONDS
