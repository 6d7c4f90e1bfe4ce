from celery import shared_task

from ocpp_gateway.services.message_log import message_log_prune
from ocpp_gateway.services.passwords import (
    PasswordRotationRefused,
    station_password_rotate,
    stations_due_for_rotation,
)
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
