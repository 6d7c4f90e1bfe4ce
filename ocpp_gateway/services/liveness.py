"""Station liveness: whether a station marked online still has a live socket.

`online` is set when a charger's socket opens and cleared when it closes (services/provisioning.py). A gateway
process that dies (SIGKILL, out of memory, its host gone) runs no disconnect, so three more rules decide:

- Leases. Each gateway process holds a GatewayProcess row, renewed every OCPP_GATEWAY_LEASE_RENEW_SECONDS by a thread
  of its own, and a station records the process holding its socket (`gateway_process`). Once a lease is older than
  OCPP_GATEWAY_LEASE_SECONDS, its stations go offline. Leases are judged only while some process has renewed its own
  without a break for a whole lease period (a witness): after a database outage every lease looks stale until its
  process renews again, and a process just started cannot tell a dead process from one that has not renewed yet.
- Last seen. A station whose process is not known to be alive (lease ran out, or none recorded) and that was not
  heard from for OCPP_OFFLINE_AFTER_HEARTBEATS times its heartbeat interval (any frame counts; `last_seen` is written
  in batches every OCPP_SEEN_FLUSH_SECONDS) goes offline: the backstop when no process is left to witness. While a
  live process holds the socket, daphne's websocket pings close a dead connection, and OCPP-J 1.6 does not make
  heartbeats mandatory ("advised to at least send one heartbeat per 24 hour"), so there the bound is 24 hours.
- Reconcile. Each process knows the sockets it holds; a station recorded as held by it whose socket it no longer
  holds (the close could not be written: the database was down) goes offline at its next check.

A station marked offline whose socket is alive after all (its process was paused, or the charger was quieter than
allowed) is online again as soon as its process renews its lease after the gap, or at the process's next check. Each
change is announced (events.station_offline / station_online), so the dashboard, alerts and partners follow. The
transactions of a station that stays offline are closed by the existing rule (`transaction_close_stale`, after
OCPP_STALE_TRANSACTION_HOURS: a charger that comes back may still send its stop, handled as a late correction).
"""

import atexit
import logging
import os
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from cpo.models import EVSE, ChargingStation
from ocpp_gateway import events, sql
from ocpp_gateway.models import GatewayProcess, StationVariable

logger = logging.getLogger(__name__)

CHUNK = 1000  # stations per UPDATE (SQLite limits the number of query parameters)


class _Lease:
    """This process's lease: its id (new after a fork), whether the row was written, the renewing thread."""

    id = ""
    pid = 0
    registered = False
    thread: threading.Thread | None = None
    stop = threading.Event()


_lease = _Lease()
# The sockets this process holds: channel name -> station pk (kept by provisioning's connect and disconnect).
_held: dict[str, int] = {}
# While a live process holds the socket, silence up to this long is normal (OCPP-J 1.6: heartbeats are optional over
# websockets, but one a day is advised).
HELD_SILENCE_MAX = timedelta(hours=24)


def gateway_process_id() -> str:
    """The id of this process's lease."""
    if _lease.pid != os.getpid():
        _lease.id, _lease.pid, _lease.registered = secrets.token_hex(16), os.getpid(), False
    return _lease.id


def _lease_duration() -> timedelta:
    return timedelta(seconds=settings.OCPP_GATEWAY_LEASE_SECONDS)


def gateway_lease_renew(*, now: datetime | None = None) -> bool:
    """Renew this process's lease, writing it on the first call; after a gap (the lease ran out meanwhile) a new
    unbroken run starts and the stations this process still holds that were marked offline meanwhile are online
    again. Returns False when the run was broken (or is new)."""
    now = now or timezone.now()
    process_id = gateway_process_id()
    if GatewayProcess.objects.filter(pk=process_id, renewed_at__gte=now - _lease_duration()).update(renewed_at=now):
        return True
    GatewayProcess.objects.update_or_create(
        pk=process_id,
        defaults={"renewed_since": now, "renewed_at": now},
        create_defaults={
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": now,
            "renewed_since": now,
            "renewed_at": now,
        },
    )
    _lease.registered = True
    stations_revive()
    return False


def gateway_lease_ensure() -> str:
    """This process's lease id, its row written first: a station never names a process without a lease."""
    process_id = gateway_process_id()
    if not _lease.registered:
        gateway_lease_renew()
    return process_id


def station_socket_held(*, station_pk: int, channel_name: str) -> None:
    """This process holds the station's socket now (noted before the station row says so)."""
    _held[channel_name] = station_pk


def station_socket_released(*, channel_name: str) -> None:
    """The socket closed (noted before the station row says so, and even if writing that fails)."""
    _held.pop(channel_name, None)


def station_evses_touch(*, station_pks: list[int]) -> None:
    """The stations went offline or came back: their EVSEs show another status to partners (UNKNOWN while offline,
    selectors.evse_status_shown), so they changed as of now (OCPI `last_updated`, which partners pull by)."""
    now = sql.to_db_datetime(timezone.now())
    for start in range(0, len(station_pks), CHUNK):
        chunk = station_pks[start : start + CHUNK]
        sql.execute(_EVSES_TOUCH.format(", ".join(["%s"] * len(chunk))), [now, *chunk])


# A plain statement (ocpp_gateway/sql.py): every station back after a reconnect storm touches its EVSEs.
_EVSES_TOUCH = f'UPDATE "{EVSE._meta.db_table}" SET "last_updated" = %s WHERE "station_id" IN ({{}})'  # noqa: S608


def gateway_lease_release() -> list[int]:
    """A process shutting down cleanly: the stations it holds go offline (their chargers reconnect elsewhere) and its
    lease is removed. Returns the stations marked offline."""
    process_id = gateway_process_id()
    held = ChargingStation.objects.filter(gateway_process=process_id, online=True)
    offline = _stations_offline(held, why="its gateway process stopped", release=True)
    GatewayProcess.objects.filter(pk=process_id).delete()
    _lease.registered = False
    return offline


def station_heartbeat_intervals(*, station_pks: list[int]) -> dict[int, float]:
    """The heartbeat interval (seconds) each station is held to: the one we give at boot (OCPP_HEARTBEAT_INTERVAL),
    or the longer one it reports (1.6 HeartbeatInterval, 2.0.1 OCPPCommCtrlr.HeartbeatInterval, as staff may have
    changed it)."""
    default = float(settings.OCPP_HEARTBEAT_INTERVAL)
    intervals = dict.fromkeys(station_pks, default)
    reported = StationVariable.objects.filter(
        station_id__in=station_pks,
        variable="HeartbeatInterval",
        component__in=("", "OCPPCommCtrlr"),
        attribute_type="Actual",
    ).values_list("station_id", "value")
    for station_pk, value in reported:
        try:
            intervals[station_pk] = max(intervals[station_pk], float(value))
        except ValueError:
            continue
    return intervals


def _unseen_after(interval: float, *, held: bool = False) -> timedelta:
    """How long a station with this heartbeat interval may stay silent before it counts as gone; `held`: while a
    live process holds its socket."""
    bound = timedelta(seconds=settings.OCPP_OFFLINE_AFTER_HEARTBEATS * interval + settings.OCPP_SEEN_FLUSH_SECONDS)
    return max(bound, HELD_SILENCE_MAX) if held else bound


def station_reachable(*, station: ChargingStation, now: datetime | None = None) -> bool:
    """Whether a station is online as far as we can tell: marked online, its process's lease current, heard from
    within its heartbeat bound. One small query (two for a station quiet for longer than the default bound), for the
    command service to fail at once instead of waiting for an answer that cannot come."""
    if not station.online:
        return False
    now = now or timezone.now()
    held = False
    if station.gateway_process:
        renewed_at = (
            GatewayProcess.objects.filter(pk=station.gateway_process).values_list("renewed_at", flat=True).first()
        )
        if renewed_at is not None and renewed_at < now - _lease_duration():
            return False
        held = renewed_at is not None
    if station.last_seen is not None and station.last_seen < now - _unseen_after(settings.OCPP_HEARTBEAT_INTERVAL):
        interval = station_heartbeat_intervals(station_pks=[station.pk])[station.pk]
        return station.last_seen >= now - _unseen_after(interval, held=held)
    return True


def stations_liveness_check(*, now: datetime | None = None) -> list[int]:
    """Mark offline the stations held by processes whose lease ran out (when a witness vouches for the database,
    see the module's docstring) and the stations not heard from for longer than their heartbeat bound; forget the
    leases that ran out (their stations are offline by then: a station naming a process without a lease row is
    judged by when it was last seen only). Idempotent; any process may run it at any time. Returns the stations
    marked offline."""
    now = now or timezone.now()
    expired_before = now - _lease_duration()
    expired = GatewayProcess.objects.filter(renewed_at__lt=expired_before)
    witness = GatewayProcess.objects.filter(renewed_at__gte=expired_before, renewed_since__lte=expired_before)
    offline = []
    if witness.exists() and expired.exists():
        orphaned = ChargingStation.objects.filter(online=True, gateway_process__in=expired.values("pk"))
        offline += _stations_offline(orphaned, why="its gateway process is gone")
        expired.delete()  # a process that was only paused writes its lease again when it renews
    offline += _stations_offline_unseen(now=now)
    return offline


def _stations_offline_unseen(*, now: datetime) -> list[int]:
    cutoff = now - _unseen_after(settings.OCPP_HEARTBEAT_INTERVAL)
    live = set(GatewayProcess.objects.filter(renewed_at__gte=now - _lease_duration()).values_list("pk", flat=True))
    quiet = {
        pk: (seen, process in live)
        for pk, seen, process in ChargingStation.objects.filter(online=True, last_seen__lt=cutoff).values_list(
            "pk", "last_seen", "gateway_process"
        )
        if seen is not None
    }
    if not quiet:
        return []
    intervals = station_heartbeat_intervals(station_pks=list(quiet))
    unseen = [pk for pk, (seen, held) in quiet.items() if seen < now - _unseen_after(intervals[pk], held=held)]
    offline = []
    for start in range(0, len(unseen), CHUNK):
        chunk = unseen[start : start + CHUNK]
        stations = ChargingStation.objects.filter(pk__in=chunk, online=True, last_seen__lt=cutoff)
        offline += _stations_offline(stations, why="not heard from within its heartbeat interval")
    return offline


def _stations_offline(stations: QuerySet[ChargingStation], *, why: str, release: bool = False) -> list[int]:
    """Mark `stations` offline (rows locked, so one that reconnects meanwhile is left alone) and announce it.
    `release`: its process stops holding the socket too (a clean shutdown); otherwise the process and channel are
    kept, so that the process, if alive after all, finds its stations again (`stations_revive`)."""
    offline = []
    with transaction.atomic():
        pks = list(stations.select_for_update().values_list("pk", flat=True))
        for start in range(0, len(pks), CHUNK):
            chunk = pks[start : start + CHUNK]
            changes: dict = {"online": False}
            if release:
                changes.update(connection_channel="", gateway_process="")
            ChargingStation.objects.filter(pk__in=chunk).update(**changes)
            offline += chunk
        station_evses_touch(station_pks=offline)
        for pk in offline:
            events.announce(events.station_offline, station_pk=pk)
    if offline:
        logger.warning("%d stations offline: %s (%s)", len(offline), why, offline[:20])
    return offline


def stations_reconcile() -> list[int]:
    """Stations recorded as held by this process whose socket it no longer holds (their close could not be written,
    the database being down): offline, released. Run in the gateway process, from its lease thread."""
    recorded = ChargingStation.objects.filter(gateway_process=gateway_process_id(), online=True).values_list(
        "pk", "connection_channel"
    )
    lost = Q(pk__in=[])
    for pk, channel in recorded:
        if _held.get(channel) != pk:
            lost |= Q(pk=pk, connection_channel=channel)
    stations = ChargingStation.objects.filter(lost, gateway_process=gateway_process_id(), online=True)
    return _stations_offline(stations, why="their socket closed while the database was away", release=True)


def stations_revive() -> list[int]:
    """Stations whose socket this process still holds but that were marked offline (its lease had lapsed, or they
    were quieter than allowed): online again, announced. Run in the gateway process, from its lease thread."""
    recorded = ChargingStation.objects.filter(gateway_process=gateway_process_id(), online=False).exclude(
        connection_channel=""
    )
    with transaction.atomic():
        rows = recorded.select_for_update().values_list("pk", "connection_channel")
        pks = [pk for pk, channel in rows if _held.get(channel) == pk]
        for start in range(0, len(pks), CHUNK):
            ChargingStation.objects.filter(pk__in=pks[start : start + CHUNK]).update(online=True)
        station_evses_touch(station_pks=pks)
        for pk in pks:
            events.announce(events.station_online, station_pk=pk)
    if pks:
        logger.info("%d stations online again (their socket lived on): %s", len(pks), pks[:20])
    return pks


# -- the lease's thread, in each gateway process --------------------------------------------------------------------
def gateway_lease_start() -> None:
    """Renew this process's lease on a daemon thread, which also runs the liveness check every
    OCPP_LIVENESS_CHECK_SECONDS (so it runs where no beat does: the embedded default); at a clean exit the lease is
    released. A failure (the database is down) is logged and tried again at the next renewal: the process lives on."""
    gateway_process_id()
    if _lease.thread is not None and _lease.thread.is_alive():
        return
    _lease.stop.clear()
    _lease.thread = threading.Thread(target=_lease_keep, name="gateway-lease", daemon=True)
    _lease.thread.start()
    atexit.register(_lease_release_at_exit)


def _lease_keep() -> None:
    checked_at = float("-inf")
    failing = False
    while True:
        try:
            gateway_lease_renew()
            if time.monotonic() - checked_at >= settings.OCPP_LIVENESS_CHECK_SECONDS:
                checked_at = time.monotonic()
                stations_reconcile()
                stations_revive()
                stations_liveness_check()
            if failing:
                logger.warning("gateway lease renewed again")
            failing = False
        except Exception as exc:  # the database is down, or a query failed: try again at the next renewal
            if not failing:
                logger.warning("gateway lease not renewed: %s: %s", type(exc).__name__, exc)
            failing = True
        finally:
            connections.close_all()  # this thread's: a broken connection is not reused, none is kept open
        if _lease.stop.wait(settings.OCPP_GATEWAY_LEASE_RENEW_SECONDS):
            return


def _lease_release_at_exit() -> None:
    if _lease.pid != os.getpid():
        return
    _lease.stop.set()
    if _lease.thread is not None:
        _lease.thread.join(timeout=5)
    try:
        gateway_lease_release()
    except Exception as exc:  # the database is down: the lease runs out and housekeeping does the same
        logger.warning("gateway lease not released: %s: %s", type(exc).__name__, exc)
    finally:
        connections.close_all()
