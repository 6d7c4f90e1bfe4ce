"""The message log: every frame in and out (written in batches by ocpp_gateway.message_log), pruned by
housekeeping."""

import datetime as dt

from django.conf import settings
from django.utils import timezone

from ocpp_gateway.models import MessageLog


def message_log_write(*, entries: list[dict]) -> None:
    MessageLog.objects.bulk_create([MessageLog(**entry) for entry in entries])


def message_log_prune(*, older_than_days: int | None = None) -> int:
    days = settings.OCPP_MESSAGE_LOG_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - dt.timedelta(days=days)
    deleted, _ = MessageLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted
