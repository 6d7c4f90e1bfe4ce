"""Signal receivers of the roaming side, connected in OcpiApiConfig.ready.

Gateway events (sent after commit) queue a Celery task with the ids. Saves of tariffs and of published assets by
staff write their pushes in the saving transaction itself (post_save runs inside it; a savepoint makes one for a
bare save), so a rolled-back edit announces nothing."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from ocpp_gateway import events

logger = logging.getLogger(__name__)

# EVSE fields the gateway writes on a StatusNotification: the status PATCH announces those, not a PUT.
EVSE_STATUS_FIELDS = frozenset({"status", "ocpp_status", "ocpp_error_code", "status_updated", "last_updated"})


def on_transaction_event(sender, *, transaction_pk, **kwargs) -> None:
    from ocpi_api import tasks

    tasks.transaction_push.delay_on_commit(transaction_pk)


def on_connector_status_changed(sender, *, evse_pk, **kwargs) -> None:
    from ocpi_api import tasks

    tasks.evse_status_push.delay_on_commit(evse_pk)


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
    events.transaction_updated.connect(on_transaction_event, dispatch_uid="ocpi.transaction_updated")
    events.transaction_ended.connect(on_transaction_event, dispatch_uid="ocpi.transaction_ended")
    events.connector_status_changed.connect(on_connector_status_changed, dispatch_uid="ocpi.evse_status")
    post_save.connect(on_tariff_saved, sender=Tariff, dispatch_uid="ocpi.tariff_saved")
    post_delete.connect(on_tariff_deleted, sender=Tariff, dispatch_uid="ocpi.tariff_deleted")
    post_save.connect(on_location_saved, sender=Location, dispatch_uid="ocpi.location_saved")
    post_save.connect(on_evse_saved, sender=EVSE, dispatch_uid="ocpi.evse_saved")
    post_save.connect(on_connector_saved, sender=Connector, dispatch_uid="ocpi.connector_saved")
