from celery import shared_task

from ocpp_gateway.services.housekeeping import transactions_probe_silent
from ocpp_gateway.services.message_log import message_log_prune
from ocpp_gateway.services.transactions import transaction_close_stale


@shared_task(acks_late=True, time_limit=600)
def message_log_prune_task() -> int:
    """Housekeeping, run daily by beat: the message log keeps OCPP_MESSAGE_LOG_RETENTION_DAYS."""
    return message_log_prune()


@shared_task(acks_late=True, time_limit=600)
def transaction_close_stale_task() -> int:
    """Housekeeping, hourly: end transactions of stations silent and offline for OCPP_STALE_TRANSACTION_HOURS."""
    return len(transaction_close_stale())


@shared_task(acks_late=True, time_limit=3600, ignore_result=True)
def transactions_probe_silent_task() -> int:
    """Housekeeping, every OCPP_SILENT_TRANSACTION_CHECK_SECONDS: ask chargers about transactions silent for
    OCPP_SILENT_TRANSACTION_MINUTES on online stations; end those that are over. Returns how many ended."""
    return sum(outcome == "over" for outcome in transactions_probe_silent().values())
