"""The message log: every frame in and out (written in batches by ocpp_gateway.message_log), pruned by
housekeeping."""

import datetime as dt

from django.conf import settings
from django.utils import timezone

from cpo.alerts import alert_raise
from cpo.models import AlertKind
from ocpp_gateway.models import MessageLog


def message_log_write(*, entries: list[dict]) -> None:
    """Write queued log rows. A row counting frames left out (`frames_left_out`, see ocpp_gateway.message_log) also
    raises the station's limit alert: staff learn that a charger talks far more than chargers do."""
    rows = []
    for entry in entries:
        left_out = entry.pop("frames_left_out", 0)
        if left_out:
            alert_raise(
                kind=AlertKind.STATION_LIMIT,
                subject=entry["identity"],
                message=f"station {entry['identity']}: {left_out} frames not logged: {entry['payload']}",
            )
        rows.append(MessageLog(**entry))
    MessageLog.objects.bulk_create(rows)


def message_log_prune(*, older_than_days: int | None = None) -> int:
    days = settings.OCPP_MESSAGE_LOG_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - dt.timedelta(days=days)
    deleted, _ = MessageLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted
