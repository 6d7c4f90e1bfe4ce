"""Gateway events -> the dashboard group. Connected in CpoConfig.ready; the gateway sends them after commit."""

import asyncio
import logging
import time

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer

from cpo.dashboard.consumers import DASHBOARD_GROUP
from cpo.models import EVSE, ChargingStation
from ocpp_gateway import events
from ocpp_gateway.models import Transaction

logger = logging.getLogger(__name__)


def dashboard_publish(data: dict) -> None:
    """Hand the event to the channel layer without holding the calling thread: on a gateway database thread the
    send is scheduled on daphne's event loop (waiting for it there kept those threads idle half the time under
    load, bench/RESULTS.md); elsewhere (Celery, the shell) it is sent at once."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "dashboard.event", "data": data}
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is not None and loop.is_running():
        future = asyncio.run_coroutine_threadsafe(layer.group_send(DASHBOARD_GROUP, message), loop)
        future.add_done_callback(_log_failure)
    else:
        async_to_sync(layer.group_send)(DASHBOARD_GROUP, message)


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("dashboard event not published: %r", future.exception())


def on_connector_status_changed(sender, *, evse_pk, status, ocpp_status, **kwargs) -> None:
    evse = EVSE.objects.select_related("station").filter(pk=evse_pk).first()
    if evse is None or evse.station is None:
        return
    dashboard_publish({
        "kind": "evse_status",
        "station": evse.station.identity,
        "location": evse.location_id,
        "ocpp_evse_id": evse.ocpp_evse_id,
        "status": status,
        "ocpp_status": ocpp_status,
    })


# Meter values arrive every few seconds per charging connector; the live page needs a fraction of them. The Redis
# channel layer costs ~1 ms of CPU per message, so progress is published at most this often per transaction and
# process (starts and ends always).
UPDATE_EVERY_SECONDS = 5.0
_last_update: dict[int, float] = {}


def on_transaction_updated(sender, *, transaction_pk, **kwargs) -> None:
    now = time.monotonic()
    if now - _last_update.get(transaction_pk, -UPDATE_EVERY_SECONDS) < UPDATE_EVERY_SECONDS:
        return
    if len(_last_update) > 10_000:
        _last_update.clear()
    _last_update[transaction_pk] = now
    on_transaction(sender, transaction_pk=transaction_pk)


def on_transaction(sender, *, transaction_pk, **kwargs) -> None:
    tx = Transaction.objects.select_related("station").filter(pk=transaction_pk).first()
    if tx is None:
        return
    dashboard_publish({
        "kind": "transaction",
        "station": tx.station.identity,
        "location": tx.station.location_id,
        "transaction": tx.pk,
        "ocpp_evse_id": tx.ocpp_evse_id,
        "status": tx.status,
        "energy_kwh": float(tx.energy_wh) / 1000,
    })


def on_station(sender, *, station_pk, **kwargs) -> None:
    station = ChargingStation.objects.filter(pk=station_pk).only("identity", "online", "location_id").first()
    if station is None:
        return
    dashboard_publish({
        "kind": "station", "station": station.identity, "location": station.location_id, "online": station.online,
    })


def connect() -> None:
    events.connector_status_changed.connect(on_connector_status_changed, dispatch_uid="dashboard.evse_status")
    events.transaction_started.connect(on_transaction, dispatch_uid="dashboard.transaction_started")
    events.transaction_updated.connect(on_transaction_updated, dispatch_uid="dashboard.transaction_updated")
    events.transaction_ended.connect(on_transaction, dispatch_uid="dashboard.transaction_ended")
    events.station_online.connect(on_station, dispatch_uid="dashboard.station_online")
    events.station_offline.connect(on_station, dispatch_uid="dashboard.station_offline")
