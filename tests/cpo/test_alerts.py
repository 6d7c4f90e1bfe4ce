"""Alerts: one open alert per problem, counted when it repeats, resolved when the problem goes away, and sent by
e-mail and to a webhook only when new."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cpo.alerts import alert_raise, alert_resolve, alerts_station_offline_check
from cpo.models import Alert, AlertKind, ChargingStation
from tests.webhook import Webhook

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture
def notify_all(settings, webhook):
    settings.ALERT_EMAIL_TO = ["ops@cpo.example"]
    settings.ALERT_WEBHOOK_URL = webhook.url
    settings.ALERT_NOTIFY = {"*": ["email", "webhook"]}
    return webhook


def test_station_offline_past_the_threshold_raises_one_alert_counts_repeats_and_resolves_when_back(
    station_factory, settings, notify_all
):
    settings.ALERT_STATION_OFFLINE_MINUTES = 15
    station, _ = station_factory("CP-GONE")
    fresh, _ = station_factory("CP-JUST-GONE")
    now = timezone.now()
    ChargingStation.objects.filter(pk=station.pk).update(online=False, last_seen=now - timedelta(minutes=20))
    ChargingStation.objects.filter(pk=fresh.pk).update(online=False, last_seen=now - timedelta(minutes=5))

    assert alerts_station_offline_check() == (1, 0)
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count, alert.resolved_at) == ("station_offline", "CP-GONE", 1, None)

    assert alerts_station_offline_check() == (1, 0)  # still offline on the next run: the same alert, counted
    alert.refresh_from_db()
    assert Alert.objects.count() == 1 and alert.count == 2 and alert.last_seen > alert.first_seen
    assert len(mail.outbox) == 1 and len(notify_all.received) == 1  # notified once, not for the repeat

    ChargingStation.objects.filter(pk=station.pk).update(online=True, last_seen=timezone.now())
    assert alerts_station_offline_check() == (0, 1)
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.resolved_by == ""

    ChargingStation.objects.filter(pk=station.pk).update(online=False, last_seen=now - timedelta(hours=1))
    alerts_station_offline_check()  # gone again: a new alert, notified again
    assert Alert.objects.filter(subject="CP-GONE").count() == 2 and len(mail.outbox) == 2


def test_a_new_alert_is_mailed_to_alert_email_to(settings):
    settings.ALERT_EMAIL_TO = ["ops@cpo.example", "night@cpo.example"]
    settings.ALERT_NOTIFY = {"*": ["email"]}
    alert_raise(kind=AlertKind.SECURITY_EVENT, subject="CP-1", message="TamperDetectionActivated")
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ops@cpo.example", "night@cpo.example"]
    assert "CP-1" in sent.subject and "TamperDetectionActivated" in sent.body


def test_the_webhook_receives_the_alert_json(settings, notify_all):
    settings.ALERT_NOTIFY = {"security_event": ["webhook"], "*": ["email"]}
    alert = alert_raise(kind=AlertKind.SECURITY_EVENT, subject="CP-1", message="FirmwareUpdated")
    alert_raise(kind=AlertKind.SECURITY_EVENT, subject="CP-1", message="FirmwareUpdated")
    assert len(notify_all.received) == 1 and mail.outbox == []
    got = notify_all.received[0]
    assert got["content_type"] == "application/json"
    assert got["json"] == {
        "id": alert.pk,
        "kind": "security_event",
        "subject": "CP-1",
        "message": "FirmwareUpdated",
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "count": 1,
        "resolved_at": None,
    }


def test_kinds_without_a_channel_and_unset_destinations_send_nothing(settings, webhook):
    settings.ALERT_EMAIL_TO = []
    settings.ALERT_WEBHOOK_URL = webhook.url
    settings.ALERT_NOTIFY = {"clock_skew": ["email"], "security_event": ["webhook"]}
    alert_raise(kind=AlertKind.CLOCK_SKEW, subject="CP-1", message="clock 2 h ahead")  # e-mail, but no address
    alert_raise(kind=AlertKind.AUTH_LOCKOUT, subject="identity CP-1", message="locked")  # no channel for the kind
    assert mail.outbox == [] and webhook.received == []


def test_a_resolved_alert_stays_resolved_and_the_next_occurrence_is_a_new_alert():
    alert_raise(kind=AlertKind.CONNECTOR_FAULTED, subject="CP-1-1", message="GroundFailure")
    assert alert_resolve(kind=AlertKind.CONNECTOR_FAULTED, subject="CP-1-1", resolved_by="alice")
    assert not alert_resolve(kind=AlertKind.CONNECTOR_FAULTED, subject="CP-1-1")
    alert_raise(kind=AlertKind.CONNECTOR_FAULTED, subject="CP-1-1", message="GroundFailure")
    assert list(Alert.objects.order_by("pk").values_list("count", "resolved_by")) == [(1, "alice"), (1, "")]
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="coffee_empty"):
        alert_raise(kind="coffee_empty", subject="kitchen", message="")
