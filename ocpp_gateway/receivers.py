"""The gateway's own receivers of its domain events (connected in OcppGatewayConfig.ready): load management,
reading a station's configuration on its first accepted boot, and keeping local authorization lists in sync (the
version checked on every accepted boot, boots batched; token changes, debounced).

Only stations under a load group cause work; the set is read at most every 30 s per process, so unmanaged chargers
cost a set lookup (transactions: one indexed read of the station, on the thread that announced the event)."""

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

from cpo.models import Token
from cpo.task_dispatch import in_process, task_dispatch
from ocpp_gateway import events, tasks
from ocpp_gateway.batching import PeriodicBatch
from ocpp_gateway.models import Transaction
from ocpp_gateway.selectors import load_managed_station_pks
from ocpp_gateway.services.local_list import local_lists_mark_dirty


def on_transaction_started_or_ended(sender, *, transaction_pk: int, **kwargs) -> None:
    managed = load_managed_station_pks()
    if not managed:
        return
    if Transaction.objects.filter(pk=transaction_pk, station_id__in=managed).exists():
        task_dispatch(tasks.load_rebalance_for_transaction_task, transaction_pk)


def on_station_booted(sender, *, station_pk: int, **kwargs) -> None:
    if station_pk in load_managed_station_pks():
        task_dispatch(tasks.load_station_default_profile_task, station_pk)


def _boot_checks_hand_on(station_pks: list[int]) -> None:
    for start in range(0, len(station_pks), BOOT_CHECKS_PER_TASK):
        task_dispatch(tasks.stations_boot_checks_task, station_pks[start : start + BOOT_CHECKS_PER_TASK])


# Chargers boot in waves (a gateway restart, a network blip: thousands within a minute). One task per boot and check
# filled the bulk queue for tens of minutes (bench/RESULTS.md); the stations that booted within
# OCPP_BOOT_CHECKS_BATCH_SECONDS go in tasks of BOOT_CHECKS_PER_TASK whose checks overlap their waits for the chargers.
BOOT_CHECKS_PER_TASK = 100
boot_checks = PeriodicBatch(
    "station boot checks", _boot_checks_hand_on, interval=lambda: settings.OCPP_BOOT_CHECKS_BATCH_SECONDS
)


def on_station_booted_checks(sender, *, station_pk: int, **kwargs) -> None:
    """After the BootNotification answer (the event is announced on commit): its configuration read if it was never
    read, then its local list version checked, in a task."""
    if in_process(tasks.stations_boot_checks_task):
        task_dispatch(tasks.stations_boot_checks_task, [station_pk])
    else:
        boot_checks.add(station_pk)


def on_tokens_changed(sender, **kwargs) -> None:
    """Every list is dirty now; stations get their differential update once per debounce window."""
    if not settings.OCPP_LOCAL_LIST_ENABLED:
        return
    local_lists_mark_dirty()
    debounce = settings.OCPP_LOCAL_LIST_DEBOUNCE_SECONDS
    if cache.add(tasks.LOCAL_LISTS_DUE_KEY, 1, timeout=int(debounce) + 60):
        task_dispatch(tasks.local_lists_sync_due_task, countdown=debounce)


def on_token_saved_or_deleted(sender, **kwargs) -> None:
    """A card of ours was added, changed (blocked, say) or deleted, from the admin or anywhere else."""
    events.announce(events.tokens_changed)


def connect() -> None:
    events.transaction_started.connect(on_transaction_started_or_ended, dispatch_uid="gateway.load.started")
    events.transaction_ended.connect(on_transaction_started_or_ended, dispatch_uid="gateway.load.ended")
    events.transaction_load_needs_changed.connect(on_transaction_started_or_ended, dispatch_uid="gateway.load.needs")
    events.station_booted.connect(on_station_booted, dispatch_uid="gateway.load.booted")
    events.station_booted.connect(on_station_booted_checks, dispatch_uid="gateway.boot_checks.booted")
    events.tokens_changed.connect(on_tokens_changed, dispatch_uid="gateway.local_list.tokens_changed")
    post_save.connect(on_token_saved_or_deleted, sender=Token, dispatch_uid="gateway.local_list.token_saved")
    post_delete.connect(on_token_saved_or_deleted, sender=Token, dispatch_uid="gateway.local_list.token_deleted")
