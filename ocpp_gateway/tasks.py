from celery import shared_task

from ocpp_gateway.services.certificates import certificates_expiry_alert
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


@shared_task(acks_late=True, time_limit=600)
def certificates_expiry_alert_task() -> int:
    """Daily, by beat: alert about stations whose client certificate expires soon (services.certificates)."""
    return len(certificates_expiry_alert())
