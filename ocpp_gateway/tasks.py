import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from cpo.task_dispatch import task_dispatch
from cpo.worker_threads import each_in_worker_threads
from ocpp_gateway.services.certificates import certificates_expiry_alert
from ocpp_gateway.services.device_model import station_configuration_read, station_configuration_wanted
from ocpp_gateway.services.diagnostics import diagnostics_prune
from ocpp_gateway.services.firmware import (
    firmware_campaign_advance,
    firmware_campaigns_running,
    firmware_update_booted,
    firmware_updates_expire,
)
from ocpp_gateway.services.housekeeping import load_samples_prune, transaction_silent_probe, transactions_silent
from ocpp_gateway.services.liveness import stations_liveness_check
from ocpp_gateway.services.load_management import (
    load_groups_rebalance,
    load_rebalance_for_transaction,
    load_station_default_profile,
)
from ocpp_gateway.services.local_list import local_list_check, local_list_sync, local_lists_due
from ocpp_gateway.services.message_log import message_log_prune
from ocpp_gateway.services.passwords import (
    PasswordRotationRefused,
    station_password_rotate,
    stations_due_for_rotation,
)
from ocpp_gateway.services.reservations import reservations_expire
from ocpp_gateway.services.transactions import transaction_close_stale

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=600)
def message_log_prune_task() -> int:
    """Housekeeping, run daily by beat: the message log keeps OCPP_MESSAGE_LOG_RETENTION_DAYS."""
    return message_log_prune()


@shared_task(acks_late=True, time_limit=600)
def transaction_close_stale_task() -> int:
    """Housekeeping, hourly: end transactions of stations silent and offline for OCPP_STALE_TRANSACTION_HOURS."""
    return len(transaction_close_stale())


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def stations_liveness_check_task() -> int:
    """Housekeeping, every OCPP_LIVENESS_CHECK_SECONDS: stations of dead gateway processes, and stations not heard
    from within their heartbeat bound, go offline (services.liveness)."""
    return len(stations_liveness_check())


@shared_task(acks_late=True, time_limit=300)
def load_rebalance_for_transaction_task(transaction_pk: int) -> None:
    """A session started or ended under a load group: share the group's limit again."""
    load_rebalance_for_transaction(transaction_pk=transaction_pk)


@shared_task(acks_late=True, time_limit=300)
def load_station_default_profile_task(station_pk: int) -> None:
    """A station of a load group booted: its sessions start at the group's minimum current."""
    load_station_default_profile(station_pk=station_pk)


@shared_task(time_limit=300)
def load_groups_rebalance_task() -> int:
    """Periodic: groups with running sessions, for changes in draw and time-of-day limits."""
    return load_groups_rebalance()


@shared_task(acks_late=True, time_limit=600)
def load_samples_prune_task() -> int:
    """Housekeeping, daily: load-group samples keep LOAD_HISTORY_RETENTION_DAYS."""
    return load_samples_prune()


@shared_task(acks_late=True, time_limit=300, ignore_result=True)
def reservations_expire_task() -> int:
    """Housekeeping, every OCPP_RESERVATION_EXPIRY_POLL_SECONDS: reservations past their expiry date end EXPIRED
    (idempotent: an ended reservation is not touched again)."""
    return len(reservations_expire())


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def transactions_probe_silent_task() -> int:
    """Housekeeping, every OCPP_SILENT_TRANSACTION_CHECK_SECONDS: one `transaction_silent_probe_task` per transaction
    silent for OCPP_SILENT_TRANSACTION_MINUTES on an online station (each may wait OCPP_CALL_TIMEOUT for its charger).
    """
    pks = transactions_silent()
    for pk in pks:
        task_dispatch(transaction_silent_probe_task, pk)
    return len(pks)


@shared_task(acks_late=True, time_limit=300, ignore_result=True)
def transaction_silent_probe_task(transaction_pk: int) -> str:
    """Ask the charger about one silent transaction; end it if the charger says it is over or does not answer."""
    return transaction_silent_probe(transaction_pk=transaction_pk)


@shared_task(acks_late=True, time_limit=600)
def station_passwords_rotate_due_task() -> int:
    """The rotation policy, hourly when OCPP_PASSWORD_ROTATION_DAYS is set: one task per station due."""
    identities = stations_due_for_rotation()
    for identity in identities:
        station_password_rotate_task.delay(identity)
    return len(identities)


@shared_task(time_limit=300)
def station_password_rotate_task(identity: str) -> str:
    """Rotate one station's password (policy). Not retried: a station that went offline is due again next hour.
    The new password is not returned (task results may be stored)."""
    try:
        return station_password_rotate(identity=identity).result
    except PasswordRotationRefused as exc:
        return f"refused: {exc}"


@shared_task(acks_late=True, time_limit=600)
def certificates_expiry_alert_task() -> int:
    """Daily, by beat: alert about stations whose client certificate expires soon (services.certificates)."""
    return len(certificates_expiry_alert())


def station_boot_checks(station_pk: int) -> None:
    """What an accepted boot asks of the station: its configuration if never read (the local list's limits come from
    it), then its local list version. A firmware update it booted into is installed."""
    firmware_update_booted(station_pk=station_pk)
    if station_configuration_wanted(station_pk=station_pk):
        station_configuration_read(station_pk=station_pk)
    if settings.OCPP_LOCAL_LIST_ENABLED:
        local_list_check(station_pk=station_pk)


StationResult = tuple[int, BaseException | None]


def stations_boot_checks(station_pks: list[int], *, budget_seconds: float) -> tuple[list[StationResult], list[int]]:
    """`station_boot_checks` for the stations, WORKER_THREADS at a time (their waits for the chargers overlap), until
    `budget_seconds` have passed: each checked station with its error (None: done), and the stations left over. A
    single station runs in this thread, so in-process (the embedded default) no pool thread is left waiting for a
    charger when the server exits."""
    deadline = time.monotonic() + budget_seconds
    chunk = max(settings.WORKER_THREADS, 1)
    results: list[StationResult] = []
    for start in range(0, len(station_pks), chunk):
        if start and time.monotonic() >= deadline:
            return results, station_pks[start:]
        part = station_pks[start : start + chunk]
        if len(part) == 1:
            results.append((part[0], _error_of(station_boot_checks, part[0])))
        else:
            results.extend(each_in_worker_threads(station_boot_checks, part))
    return results, []


@shared_task(acks_late=True, time_limit=900, ignore_result=True)
def stations_boot_checks_task(station_pks: list[int]) -> int:
    """Stations that booted (`stations_boot_checks`). After OCPP_BOOT_CHECKS_TASK_SECONDS the stations left are
    queued again, at the back of the bulk queue: each check waits for a charger (seconds while a reconnect storm
    loads the gateway), and a task that held a worker process for the whole wave kept billing's urgent tasks waiting
    for minutes. Returns how many finished without an error (one failing does not stop the others)."""
    results, rest = stations_boot_checks(station_pks, budget_seconds=settings.OCPP_BOOT_CHECKS_TASK_SECONDS)
    if rest:
        task_dispatch(stations_boot_checks_task, rest)
    for station_pk, exc in results:
        if exc is not None:
            logger.warning("station %s: boot checks failed: %s: %s", station_pk, type(exc).__name__, exc)
    return sum(1 for _, exc in results if exc is None)


def _error_of(func, *args) -> BaseException | None:
    try:
        func(*args)
    except Exception as exc:
        return exc
    return None


LOCAL_LISTS_DUE_KEY = "ocpp:local-lists-due"


@shared_task(acks_late=True, time_limit=600, ignore_result=True)
def local_list_sync_task(station_pk: int, full: bool = False) -> str:
    """Bring one station's local list up to date (idempotent: nothing is sent when it holds what it should)."""
    return local_list_sync(station_pk=station_pk, full=full)


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def local_lists_sync_due_task() -> int:
    """Tokens changed OCPP_LOCAL_LIST_DEBOUNCE_SECONDS ago (and maybe since): one sync per online station whose list
    is dirty. The debounce key goes first, so a change from now on queues another run."""
    cache.delete(LOCAL_LISTS_DUE_KEY)
    pks = local_lists_due()
    for pk in pks:
        task_dispatch(local_list_sync_task, pk)
    return len(pks)


@shared_task(acks_late=True, time_limit=600, ignore_result=True)
def diagnostics_prune_task() -> int:
    """Daily, by beat: diagnostics and logs older than OCPP_DIAGNOSTICS_RETENTION_DAYS are deleted (idempotent)."""
    return diagnostics_prune()


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def firmware_campaigns_advance_task() -> int:
    """Every minute, by beat: updates whose station went silent are let go (`firmware_updates_expire`), then one
    advance task per running firmware campaign."""
    firmware_updates_expire()
    pks = firmware_campaigns_running()
    for pk in pks:
        task_dispatch(firmware_campaign_advance_task, pk)
    return len(pks)


@shared_task(acks_late=True, time_limit=1800, ignore_result=True)
def firmware_campaign_advance_task(campaign_pk: int) -> int:
    """Send the next `rate` updates of one campaign (an update is claimed before it is sent: never twice at once)."""
    return firmware_campaign_advance(campaign_pk=campaign_pk)
