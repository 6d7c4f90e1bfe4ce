"""Signal receivers of the roaming side, connected in OcpiApiConfig.ready.

- Billing's events (`billing.events`, sent inside the transaction that wrote a Session or CDR) and saves of tariffs
  and of published assets (post_save runs inside the saving transaction; a savepoint makes one for a bare save)
  write their outbox rows in that same transaction, so a rolled-back change announces nothing. They only write
  rows: the HTTP calls are made by the delivery task, after commit.
- A message due soon (`ocpi_api.outbox.message_due`, after commit) queues its delivery: its partner's delivery run
  when due now (`ocpi_api.tasks.partner_delivery_queue`), else a task of its own at its time.
- The gateway's EVSE status changes, and its stations going offline or coming back (their EVSEs UNKNOWN while
  offline), after commit, are collected per process and handed on once per OCPI_EVENTS_BATCH_SECONDS in one Celery
  publish (`PeriodicBatch`); with in-process tasks (the embedded default) each is dispatched at once
  (`cpo.task_dispatch`: on a background thread in a server).
- A partner's reservation cancelled by staff or by the charger (gateway, after commit) gets its CommandResult
  CANCELED_RESERVATION at the RESERVE_NOW's response_url (a task; `ocpi_api.commands.results`).
"""

import logging

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from billing import events as billing_events
from billing.models import Tariff
from cpo.models import EVSE, Connector, Location
from cpo.task_dispatch import in_process, task_dispatch
from ocpi_api import announce, outbox, tasks
from ocpi_api.commands.tasks import reservation_cancellation_tell_task
from ocpp_gateway import events as gateway_events
from ocpp_gateway.batching import PeriodicBatch
from ocpp_gateway.models import Reservation

logger = logging.getLogger(__name__)

# EVSE fields the gateway writes on a StatusNotification: the status PATCH announces those, not a PUT.
EVSE_STATUS_FIELDS = frozenset(
    {
        "status",
        "ocpp_status",
        "ocpp_error_code",
        "status_info",
        "vendor_id",
        "vendor_error_code",
        "status_updated",
        "last_updated",
    }
)


def on_session_changed(sender, *, session, final: bool, **kwargs) -> None:
    announce.session_announce(session=session, final=final)


def on_cdr_issued(sender, *, cdr, **kwargs) -> None:
    announce.cdr_announce(cdr=cdr)


def on_message_due(sender, *, message_id: int, partner_id: int, countdown: float, **kwargs) -> None:
    """A message due now is sent by its partner's delivery run (one queued task however many fall due: there were
    several per charging session); one due later (a retry, a throttled PATCH) by a task of its own at that time.
    In-process, each by a task of its own (they run one after the other anyway)."""
    try:
        if countdown > 0 or in_process(tasks.outbox_deliver):
            task_dispatch(tasks.outbox_deliver, message_id, countdown=countdown)
        else:
            tasks.partner_delivery_queue(partner_id)
    except Exception:  # the broker is down: beat finds the message once the dispatch lease runs out
        logger.exception("could not queue delivery of outbox message %s", message_id)


def _hand_on(evse_pks: list[int]) -> None:
    task_dispatch(tasks.evse_status_push_batch, evse_pks)


# Status changes arrive on the daphne process answering chargers: one Celery publish per batch, not per event.
status_changes = PeriodicBatch(
    "ocpi evse status changes", _hand_on, interval=lambda: settings.OCPI_EVENTS_BATCH_SECONDS
)


def on_connector_status_changed(sender, *, evse_pk: int, **kwargs) -> None:
    if in_process(tasks.evse_status_push):
        task_dispatch(tasks.evse_status_push, evse_pk)
        return
    status_changes.add(evse_pk)


# Stations gone offline or back, handed on the same way; the worker looks their EVSEs up, one query per batch (a query
# per station on the gateway's database threads was a tenth of its CPU in a 10,000-charger reconnect storm).
station_changes = PeriodicBatch(
    "ocpi station online changes",
    lambda station_pks: task_dispatch(tasks.evse_status_push_batch, [], station_pks),
    interval=lambda: settings.OCPI_EVENTS_BATCH_SECONDS,
)


def on_station_online_changed(sender, *, station_pk: int, **kwargs) -> None:
    """Offline, a station's EVSEs are UNKNOWN to partners; back, they show what the charger last reported
    (ocpp_gateway.selectors.evse_status_shown): each is pushed as a status change of its own."""
    if not in_process(tasks.evse_status_push):
        station_changes.add(station_pk)
        return
    for evse_pk in EVSE.objects.filter(station_id=station_pk).values_list("pk", flat=True):
        on_connector_status_changed(sender, evse_pk=evse_pk)


def on_tariff_saved(sender, *, instance: Tariff, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    with transaction.atomic():
        announce.tariff_put_announce(tariff=instance)


def on_tariff_deleted(sender, *, instance: Tariff, **kwargs) -> None:
    with transaction.atomic():
        announce.tariff_delete_announce(
            country_code=instance.country_code, party_id=instance.party_id, tariff_id=instance.id
        )


def on_location_saved(sender, *, instance: Location, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    with transaction.atomic():
        announce.location_put_announce(location_id=instance.id)


def on_evse_saved(sender, *, instance: EVSE, raw: bool = False, update_fields=None, **kwargs) -> None:
    if raw or (update_fields is not None and set(update_fields) <= EVSE_STATUS_FIELDS):
        return
    with transaction.atomic():
        announce.location_put_announce(location_id=instance.location_id, evse_uid=instance.uid)


def on_connector_saved(sender, *, instance: Connector, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    evse = EVSE.objects.filter(pk=instance.evse_id).only("uid", "location_id").first()
    if evse is None:
        return
    with transaction.atomic():
        announce.location_put_announce(
            location_id=evse.location_id, evse_uid=evse.uid, connector_id=instance.connector_id
        )


def on_reservation_changed(sender, *, reservation_pk: int, status: str, **kwargs) -> None:
    if status == Reservation.Status.CANCELLED:
        task_dispatch(reservation_cancellation_tell_task, reservation_pk)


def connect() -> None:
    billing_events.session_changed.connect(on_session_changed, dispatch_uid="ocpi.session_changed")
    billing_events.cdr_issued.connect(on_cdr_issued, dispatch_uid="ocpi.cdr_issued")
    outbox.message_due.connect(on_message_due, dispatch_uid="ocpi.message_due")
    gateway_events.connector_status_changed.connect(on_connector_status_changed, dispatch_uid="ocpi.evse_status")
    gateway_events.station_offline.connect(on_station_online_changed, dispatch_uid="ocpi.station_offline")
    gateway_events.station_online.connect(on_station_online_changed, dispatch_uid="ocpi.station_online")
    gateway_events.reservation_changed.connect(on_reservation_changed, dispatch_uid="ocpi.reservation_changed")
    post_save.connect(on_tariff_saved, sender=Tariff, dispatch_uid="ocpi.tariff_saved")
    post_delete.connect(on_tariff_deleted, sender=Tariff, dispatch_uid="ocpi.tariff_deleted")
    post_save.connect(on_location_saved, sender=Location, dispatch_uid="ocpi.location_saved")
    post_save.connect(on_evse_saved, sender=EVSE, dispatch_uid="ocpi.evse_saved")
    post_save.connect(on_connector_saved, sender=Connector, dispatch_uid="ocpi.connector_saved")
