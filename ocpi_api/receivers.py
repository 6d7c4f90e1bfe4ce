"""Signal receivers of the roaming side, connected in OcpiApiConfig.ready.

Gateway events (sent after commit) queue a Celery task with the ids. Saves of tariffs and of published assets by
staff write their pushes in the saving transaction itself (post_save runs inside it; a savepoint makes one for a
bare save), so a rolled-back edit announces nothing."""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from ocpp_gateway import events
from ocpp_gateway.batching import PeriodicBatch

logger = logging.getLogger(__name__)

# EVSE fields the gateway writes on a StatusNotification: the status PATCH announces those, not a PUT.
EVSE_STATUS_FIELDS = frozenset(
    {"status", "ocpp_status", "ocpp_error_code", "status_info", "vendor_id", "vendor_error_code", "status_updated",
     "last_updated"}
)


def _fan_out(keys: list[tuple[str, int]]) -> None:
    from ocpi_api import tasks

    by_kind: dict[str, list[int]] = {"transaction": [], "later": [], "evse": []}
    for kind, pk in keys:
        by_kind[kind].append(pk)
    tasks.gateway_events_fan_out.delay(by_kind["transaction"], by_kind["evse"], by_kind["later"])


# Gateway events arrive on the daphne process answering chargers: one Celery publish per batch, not per event.
gateway_events = PeriodicBatch("ocpi gateway events", _fan_out, interval=lambda: settings.OCPI_EVENTS_BATCH_SECONDS)


def _eager() -> bool:
    from ocpi_api import tasks

    return bool(tasks.transaction_push.app.conf.task_always_eager)


def on_transaction_event(sender, *, transaction_pk, **kwargs) -> None:
    if _eager():  # embedded mode: tasks run in-process, at once
        from ocpi_api import tasks

        tasks.transaction_push.delay(transaction_pk)
        return
    gateway_events.add(("transaction", transaction_pk))


# A charging car sends meter values every few seconds; each would re-price the whole session. One sync per
# OCPI_SESSION_SYNC_INTERVAL per transaction (scheduled that far ahead, so it carries every value that came
# meanwhile) keeps the session as fresh as the partner sees it anyway (PATCHes are throttled harder) at a fraction
# of the cost. Started and ended still run at once.
_sync_scheduled: dict[int, float] = {}


def on_transaction_updated(sender, *, transaction_pk, **kwargs) -> None:
    from ocpi_api import tasks

    interval = settings.OCPI_SESSION_SYNC_INTERVAL
    if _eager():  # in-process tasks cannot wait: sync at once
        tasks.transaction_push.delay(transaction_pk)
        return
    now = time.monotonic()
    if _sync_scheduled.get(transaction_pk, 0.0) > now:
        return
    if len(_sync_scheduled) > 10_000:
        for pk in [pk for pk, due in _sync_scheduled.items() if due <= now]:
            del _sync_scheduled[pk]
    _sync_scheduled[transaction_pk] = now + interval
    gateway_events.add(("later", transaction_pk))


def on_connector_status_changed(sender, *, evse_pk, **kwargs) -> None:
    if _eager():
        from ocpi_api import tasks

        tasks.evse_status_push.delay(evse_pk)
        return
    gateway_events.add(("evse", evse_pk))


def on_tariff_saved(sender, *, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    from ocpi_api.push import tariff_put_announce

    with transaction.atomic():
        tariff_put_announce(tariff=instance)


def on_tariff_deleted(sender, *, instance, **kwargs) -> None:
    from ocpi_api.push import tariff_delete_announce

    with transaction.atomic():
        tariff_delete_announce(country_code=instance.country_code, party_id=instance.party_id, tariff_id=instance.id)


def on_location_saved(sender, *, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    from ocpi_api.push import location_put_announce

    with transaction.atomic():
        location_put_announce(location_id=instance.id)


def on_evse_saved(sender, *, instance, raw=False, created=False, update_fields=None, **kwargs) -> None:
    if raw or (update_fields is not None and set(update_fields) <= EVSE_STATUS_FIELDS):
        return
    from ocpi_api.push import location_put_announce

    with transaction.atomic():
        location_put_announce(location_id=instance.location_id, evse_uid=instance.uid)


def on_connector_saved(sender, *, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    from cpo.models import EVSE
    from ocpi_api.push import location_put_announce

    evse = EVSE.objects.filter(pk=instance.evse_id).only("uid", "location_id").first()
    if evse is None:
        return
    with transaction.atomic():
        location_put_announce(location_id=evse.location_id, evse_uid=evse.uid, connector_id=instance.connector_id)


def connect() -> None:
    from billing.models import Tariff
    from cpo.models import EVSE, Connector, Location

    events.transaction_started.connect(on_transaction_event, dispatch_uid="ocpi.transaction_started")
    events.transaction_updated.connect(on_transaction_updated, dispatch_uid="ocpi.transaction_updated")
    events.transaction_ended.connect(on_transaction_event, dispatch_uid="ocpi.transaction_ended")
    events.connector_status_changed.connect(on_connector_status_changed, dispatch_uid="ocpi.evse_status")
    post_save.connect(on_tariff_saved, sender=Tariff, dispatch_uid="ocpi.tariff_saved")
    post_delete.connect(on_tariff_deleted, sender=Tariff, dispatch_uid="ocpi.tariff_deleted")
    post_save.connect(on_location_saved, sender=Location, dispatch_uid="ocpi.location_saved")
    post_save.connect(on_evse_saved, sender=EVSE, dispatch_uid="ocpi.evse_saved")
    post_save.connect(on_connector_saved, sender=Connector, dispatch_uid="ocpi.connector_saved")
