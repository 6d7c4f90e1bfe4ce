from celery import shared_task

from ocpp_gateway.services import message_log_prune


@shared_task(acks_late=True, time_limit=600)
def message_log_prune_task() -> int:
    """Housekeeping, run daily by beat: the message log keeps OCPP_MESSAGE_LOG_RETENTION_DAYS."""
    return message_log_prune()
