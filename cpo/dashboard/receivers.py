"""Gateway events -> the dashboard group. Connected in DashboardConfig.ready; the gateway sends them after commit.

Events are collected per process and published together every DASHBOARD_EVENTS_BATCH_SECONDS: one query per kind
and one channel-layer message per batch, instead of a query and a Redis send per event on the thread that answers
chargers (bench/RESULTS.md). Browsers get the events one by one, as before."""

import asyncio
import logging
import time
from decimal import Decimal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from cpo.channel_layer import CHANNEL_LAYER_ERRORS
from cpo.dashboard.consumers import DASHBOARD_GROUP
from cpo.dashboard.services import audit_record
from cpo.models import EVSE, ChargingStation
from ocpp_gateway import events
from ocpp_gateway.batching import PeriodicBatch
from ocpp_gateway.event_loop import server_loop
from ocpp_gateway.models import Transaction

logger = logging.getLogger(__name__)


def dashboard_publish_many(data: list[dict]) -> None:
    layer = get_channel_layer()
    if layer is None or not data:
        return
    message = {"type": "dashboard.events", "events": data}
    # daphne's event loop, seen from the gateway's database threads: publishing is scheduled there (the channel
    # layer's connections belong to it); elsewhere (Celery, the shell) a batch is sent with async_to_sync.
    loop = server_loop()
    if loop is not None:
        future = asyncio.run_coroutine_threadsafe(layer.group_send(DASHBOARD_GROUP, message), loop)
        future.add_done_callback(_log_failure)
    else:
        try:
            async_to_sync(layer.group_send)(DASHBOARD_GROUP, message)
        except CHANNEL_LAYER_ERRORS as exc:
            logger.warning("%d dashboard events skipped, the channel layer is unavailable: %r", len(data), exc)


def _log_failure(future) -> None:
    """Live pushes are a convenience: pages show the database's state when loaded, so a lost batch is logged and
    skipped (a Redis outage must not disturb anything else)."""
    if future.cancelled() or future.exception() is None:
        return
    if isinstance(future.exception(), CHANNEL_LAYER_ERRORS):
        logger.warning("dashboard events skipped, the channel layer is unavailable: %r", future.exception())
    else:
        logger.error("dashboard events not published: %r", future.exception())


def _rows(sql: str, pks: list[int]) -> list[tuple]:
    """The rows of `sql` (with `{pks}` for the placeholders of `pks`), read without the ORM: a batch runs several
    times a second in the gateway process, and building its querysets cost more than running them
    (bench/RESULTS.md)."""
    placeholders = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(sql.format(pks=placeholders), pks)
        return cursor.fetchall()


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def evse_events(pks: list[int]) -> list[dict]:
    rows = _rows(
        "SELECT s.identity, e.location_id, e.ocpp_evse_id, e.status, e.ocpp_status "  # noqa: S608 - names from models
        f"FROM {_table(EVSE)} e JOIN {_table(ChargingStation)} s ON s.id = e.station_id "
        "WHERE e.id IN ({pks}) ORDER BY e.id",
        pks,
    )
    return [
        {
            "kind": "evse_status",
            "station": identity,
            "location": location_id,
            "ocpp_evse_id": ocpp_evse_id,
            "status": status,
            "ocpp_status": ocpp_status,
        }
        for identity, location_id, ocpp_evse_id, status, ocpp_status in rows
    ]


def transaction_events(pks: list[int]) -> list[dict]:
    rows = _rows(
        "SELECT t.id, s.identity, s.location_id, t.ocpp_evse_id, t.status, t.meter_start, t.meter_stop, "  # noqa: S608
        "t.meter_last "
        f"FROM {_table(Transaction)} t JOIN {_table(ChargingStation)} s ON s.id = t.station_id "
        "WHERE t.id IN ({pks}) ORDER BY t.id",
        pks,
    )
    events = []
    for pk, identity, location_id, ocpp_evse_id, status, meter_start, meter_stop, meter_last in rows:
        end = meter_stop if meter_stop is not None else meter_last  # Transaction.energy_wh, from the values
        energy_wh = 0 if end is None else max(Decimal(end) - Decimal(meter_start), 0)
        events.append(
            {
                "kind": "transaction",
                "station": identity,
                "location": location_id,
                "transaction": pk,
                "ocpp_evse_id": ocpp_evse_id,
                "status": status,
                "energy_kwh": float(energy_wh) / 1000,
            }
        )
    return events


def station_events(pks: list[int]) -> list[dict]:
    rows = ChargingStation.objects.filter(pk__in=pks).values_list("identity", "location_id", "online")
    return [
        {"kind": "station", "station": identity, "location": location_id, "online": online}
        for identity, location_id, online in rows
    ]


def load_group_events(pks: list[int]) -> list[dict]:
    return [{"kind": "load", "load_group": pk} for pk in sorted(pks)]


EVENT_BUILDERS = {
    "evse": evse_events,
    "transaction": transaction_events,
    "station": station_events,
    "load": load_group_events,
}


def publish_batch(keys: list[tuple[str, int]]) -> None:
    """What the database says now about every object that had an event since the last batch."""
    data = []
    for kind, build in EVENT_BUILDERS.items():
        pks = [pk for key_kind, pk in keys if key_kind == kind]
        if pks:
            data.extend(build(pks))
    dashboard_publish_many(data)


batch = PeriodicBatch("dashboard events", publish_batch, interval=lambda: settings.DASHBOARD_EVENTS_BATCH_SECONDS)


def announce(kind: str, pk: int) -> None:
    batch.add((kind, pk))


def on_connector_status_changed(sender, *, evse_pk, **kwargs) -> None:
    announce("evse", evse_pk)


# Meter values arrive every few seconds per charging connector; the live page needs a fraction of them, so
# progress is published at most this often per transaction and process (starts and ends always).
UPDATE_EVERY_SECONDS = 5.0
_last_update: dict[int, float] = {}


def on_transaction_updated(sender, *, transaction_pk, **kwargs) -> None:
    now = time.monotonic()
    if now - _last_update.get(transaction_pk, -UPDATE_EVERY_SECONDS) < UPDATE_EVERY_SECONDS:
        return
    if len(_last_update) > 10_000:
        _last_update.clear()
    _last_update[transaction_pk] = now
    announce("transaction", transaction_pk)


def on_transaction(sender, *, transaction_pk, **kwargs) -> None:
    announce("transaction", transaction_pk)


def on_station(sender, *, station_pk, **kwargs) -> None:
    announce("station", station_pk)


def on_load_sampled(sender, *, load_group_pk, **kwargs) -> None:
    announce("load", load_group_pk)


def on_command_answered(
    sender, *, station_pk: int, action: str, payload: dict, answer: dict | None, error: str, actor: str, **kwargs
) -> None:
    """A command the gateway's services sent (local lists, diagnostics...): into the audit log, as staff's are."""
    station = ChargingStation.objects.filter(pk=station_pk).first()
    audit_record(
        user=None,
        username=actor,
        action=action,
        station=station,
        payload=payload,
        ok=not error,
        answer=answer,
        error=error,
    )


def connect() -> None:
    events.connector_status_changed.connect(on_connector_status_changed, dispatch_uid="dashboard.evse_status")
    events.transaction_started.connect(on_transaction, dispatch_uid="dashboard.transaction_started")
    events.transaction_updated.connect(on_transaction_updated, dispatch_uid="dashboard.transaction_updated")
    events.transaction_ended.connect(on_transaction, dispatch_uid="dashboard.transaction_ended")
    events.station_online.connect(on_station, dispatch_uid="dashboard.station_online")
    events.station_offline.connect(on_station, dispatch_uid="dashboard.station_offline")
    events.command_answered.connect(on_command_answered, dispatch_uid="dashboard.command_answered")
    events.load_sampled.connect(on_load_sampled, dispatch_uid="dashboard.load_sampled")
