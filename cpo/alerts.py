"""Alerts: what staff must look at (a station offline too long, a fault, a security event, a partner not taking our
pushes...). Any part of the platform raises one with `alert_raise`; the part that sees the problem go away resolves
it with `alert_resolve`, and staff can resolve it by hand on the dashboard.

An open alert is one row per (kind, subject): raising it again counts the repeat (`count`, `last_seen`). Only a new
alert is announced (`alert_raised`, after commit); cpo.receivers hands it to a task per notification channel that
ALERT_NOTIFY configures for its kind (e-mail to ALERT_EMAIL_TO, a JSON POST to ALERT_WEBHOOK_URL), so neither a
repeat nor a charger's reply path waits for a mail server or a webhook."""

import logging
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from cpo.models import Alert, AlertKind, ChargingStation

logger = logging.getLogger(__name__)

# kwargs: alert_pk, kind. A new alert (not a repeat of an open one), sent after commit.
alert_raised = Signal()

EMAIL, WEBHOOK = "email", "webhook"
SUBJECT_MAX_LENGTH = Alert._meta.get_field("subject").max_length


def alert_raise(*, kind: str, subject: str, message: str) -> Alert:
    """Open an alert, or count a repeat of the open one of the same kind and subject (its message becomes the latest).
    Safe against the same alert being raised at the same moment elsewhere: the open-alert constraint decides."""
    AlertKind(kind)  # an unknown kind is a programming error, not an alert
    subject = subject[:SUBJECT_MAX_LENGTH]
    now = timezone.now()
    with transaction.atomic():
        alert = _alert_bump(kind=kind, subject=subject, message=message, now=now)
        if alert is not None:
            return alert
        try:
            with transaction.atomic():
                alert = Alert.objects.create(kind=kind, subject=subject, message=message, first_seen=now, last_seen=now)
        except IntegrityError:  # raised at the same moment by another process: it is a repeat
            bumped = _alert_bump(kind=kind, subject=subject, message=message, now=now)
            assert bumped is not None
            return bumped
        logger.warning("new alert %s %s: %s", kind, subject, message)
        pk = alert.pk
        transaction.on_commit(lambda: alert_raised.send(sender=Alert, alert_pk=pk, kind=kind))
    return alert


def _alert_bump(*, kind: str, subject: str, message: str, now: datetime) -> Alert | None:
    open_alert = Alert.objects.filter(kind=kind, subject=subject, resolved_at__isnull=True)
    if not open_alert.update(count=F("count") + 1, last_seen=now, message=message):
        return None
    return open_alert.first()


def alert_resolve(*, kind: str, subject: str, resolved_by: str = "") -> bool:
    """Close the open alert of this kind and subject (the problem went away, or `resolved_by` staff say so); False
    when none was open. The next occurrence opens a new alert and notifies again."""
    return bool(
        Alert.objects.filter(kind=kind, subject=subject[:SUBJECT_MAX_LENGTH], resolved_at__isnull=True).update(
            resolved_at=timezone.now(), resolved_by=resolved_by[:150]
        )
    )


def alerts_station_offline_check(*, now: datetime | None = None) -> tuple[int, int]:
    """Periodic (beat): raise (or count again) an alert for each station offline for longer than
    ALERT_STATION_OFFLINE_MINUTES, and resolve those of stations back online. Stations never seen are not offline,
    just not installed yet. Returns (raised, resolved)."""
    now = now or timezone.now()
    since = now - timedelta(minutes=settings.ALERT_STATION_OFFLINE_MINUTES)
    offline = ChargingStation.objects.filter(online=False, last_seen__lt=since).values_list("identity", "last_seen")
    raised = 0
    for identity, last_seen in offline:
        alert_raise(
            kind=AlertKind.STATION_OFFLINE,
            subject=identity,
            message=f"station {identity} offline, last seen {last_seen.isoformat() if last_seen else 'never'}",
        )
        raised += 1
    back = Alert.objects.filter(
        kind=AlertKind.STATION_OFFLINE,
        resolved_at__isnull=True,
        subject__in=ChargingStation.objects.filter(online=True).values("identity"),
    ).update(resolved_at=now)
    return raised, back


def alert_channels(*, kind: str) -> list[str]:
    """Where alerts of `kind` are sent: ALERT_NOTIFY[kind], else ALERT_NOTIFY["*"]; channels whose destination is not
    configured are left out."""
    wanted = settings.ALERT_NOTIFY.get(kind, settings.ALERT_NOTIFY.get("*", []))
    configured = {EMAIL: bool(settings.ALERT_EMAIL_TO), WEBHOOK: bool(settings.ALERT_WEBHOOK_URL)}
    return [channel for channel in (EMAIL, WEBHOOK) if channel in wanted and configured[channel]]


def alert_as_json(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "subject": alert.subject,
        "message": alert.message,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "count": alert.count,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def alert_notify(*, alert_pk: int, channel: str) -> None:
    """Send one alert through one channel. Raises on failure (the task retries), so a channel that works is not
    repeated because another failed."""
    alert = Alert.objects.get(pk=alert_pk)
    if channel == EMAIL:
        send_mail(
            subject=f"[CPO alert] {alert.get_kind_display()}: {alert.subject}",
            message=f"{alert.message}\n\nFirst seen {alert.first_seen.isoformat()}.",
            from_email=None,
            recipient_list=settings.ALERT_EMAIL_TO,
        )
    elif channel == WEBHOOK:
        timeout = settings.ALERT_WEBHOOK_TIMEOUT
        response = httpx.post(settings.ALERT_WEBHOOK_URL, json=alert_as_json(alert), timeout=timeout)
        response.raise_for_status()
    else:
        raise ValueError(f"unknown alert channel {channel!r}")
