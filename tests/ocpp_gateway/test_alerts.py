"""What chargers report raises alerts on a live server: a security event is mailed and POSTed to the webhook, a
station or connector Faulted is alerted and resolved when it recovers, a failed firmware update is alerted."""

import asyncio
import email
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.models import Alert
from ocpp_gateway.services.clock import station_clock_skew_record
from ocpp_gateway.services.security import station_auth_failure_record
from tests.ocpp_gateway.chargers import connected, now_iso
from tests.support import start_daphne, stop, wait_until
from tests.webhook import Webhook

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="module")
def alerting_daphne(django_db_setup, django_db_blocker, webhook, mail_dir):
    """A daphne that sends security events by e-mail (Django's file backend, so the test reads what it sent) and to
    the webhook, and every other kind by e-mail."""
    server = start_daphne(
        "alerts",
        CELERY_TASK_ALWAYS_EAGER="1",  # notifications sent by the server itself, also on Redis (no worker here)
        ALERT_EMAIL_TO="ops@cpo.example",
        ALERT_WEBHOOK_URL=webhook.url,
        ALERT_NOTIFY=json.dumps({"security_event": ["email", "webhook"], "*": ["email"]}),
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
    )
    yield server
    stop(server)


def mails(mail_dir: Path) -> list[email.message.Message]:
    found = []
    for path in sorted(mail_dir.iterdir()):
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                found.append(email.message_from_string(chunk.strip()))
    return found


@pytest.mark.live
def test_16_security_event_raises_an_alert_sent_by_email_and_webhook_once(
    alerting_daphne, station_factory, webhook, mail_dir
):
    station, secret = station_factory("CP16-TAMPER")
    webhook.received.clear()

    async def scenario():
        async with connected(alerting_daphne.ocpp_url("CP16-TAMPER"), "CP16-TAMPER", secret) as cp:
            for _ in range(2):
                await cp.call(
                    call16.SecurityEventNotification(
                        type="TamperDetectionActivated", timestamp=now_iso(), tech_info="enclosure opened"
                    )
                )
            routine = call16.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now_iso(), tech_info=None)
            await cp.call(routine)

    asyncio.run(scenario())
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == ("security_event", "CP16-TAMPER TamperDetectionActivated", 2)
    assert "enclosure opened" in alert.message
    wait_until(lambda: webhook.received and any(mail_dir.iterdir()))
    [sent] = mails(mail_dir)
    assert sent["To"] == "ops@cpo.example" and "CP16-TAMPER" in sent["Subject"]
    assert "TamperDetectionActivated" in sent.get_payload()
    [posted] = webhook.received
    assert posted["json"]["kind"] == "security_event" and posted["json"]["subject"] == alert.subject


@pytest.mark.live
def test_201_security_event_raises_an_alert(alerting_daphne, station_factory, webhook):
    station, secret = station_factory("CP201-SEC")

    async def scenario():
        async with connected(alerting_daphne.ocpp_url("CP201-SEC"), "CP201-SEC", secret, version="2.0.1") as cp:
            await cp.call(call201.SecurityEventNotification(type="InvalidFirmwareSignature", timestamp=now_iso()))

    asyncio.run(scenario())
    assert Alert.objects.filter(kind="security_event", subject="CP201-SEC InvalidFirmwareSignature").exists()
    wait_until(lambda: any(p["json"]["subject"] == "CP201-SEC InvalidFirmwareSignature" for p in webhook.received))


@pytest.mark.live
def test_station_and_connector_faulted_raise_alerts_resolved_when_they_recover(alerting_daphne, station_factory):
    station, secret = station_factory("CP16-FAULTY")

    def status(connector_id: int, state: str, error_code: str = "NoError"):
        return call16.StatusNotification(
            connector_id=connector_id, error_code=error_code, status=state, timestamp=now_iso()
        )

    async def faulted():
        async with connected(alerting_daphne.ocpp_url("CP16-FAULTY"), "CP16-FAULTY", secret) as cp:
            await cp.call(status(0, "Faulted", "PowerMeterFailure"))
            await cp.call(status(1, "Faulted", "GroundFailure"))
            await cp.call(status(1, "Faulted", "GroundFailure"))
            await cp.call(call16.FirmwareStatusNotification(status="InstallationFailed"))

    asyncio.run(faulted())
    open_alerts = {(a.kind, a.subject): a for a in Alert.objects.filter(resolved_at__isnull=True)}
    assert set(open_alerts) == {
        ("station_faulted", "CP16-FAULTY"),
        ("connector_faulted", "CP16-FAULTY-1"),
        ("firmware_failed", "CP16-FAULTY"),
    }
    assert "PowerMeterFailure" in open_alerts["station_faulted", "CP16-FAULTY"].message
    assert open_alerts["connector_faulted", "CP16-FAULTY-1"].count == 2

    async def recovered():
        async with connected(alerting_daphne.ocpp_url("CP16-FAULTY"), "CP16-FAULTY", secret) as cp:
            await cp.call(status(0, "Available"))
            await cp.call(status(1, "Available"))
            await cp.call(call16.FirmwareStatusNotification(status="Installed"))

    asyncio.run(recovered())
    assert not Alert.objects.filter(resolved_at__isnull=True).exists()
    assert Alert.objects.count() == 3


def test_a_clock_skew_raises_an_alert_per_station_counted_while_open(station_factory):
    station, _ = station_factory("CP-SKEWED")
    now = timezone.now()
    station_clock_skew_record(observations=[(station.pk, 7200, now)])
    station_clock_skew_record(observations=[(station.pk, 7260, now + timedelta(minutes=1))])
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == ("clock_skew", "CP-SKEWED", 2)
    assert "+7260 s" in alert.message


def test_an_auth_lockout_raises_an_alert(settings):
    settings.OCPP_AUTH_FAILURE_LIMIT = 2
    for _ in range(2):
        station_auth_failure_record(identity="CP-BRUTE-A", address="", station_pk=None, reason="bad password")
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject) == ("auth_lockout", "identity CP-BRUTE-A")
    assert "after 2 failed authentications" in alert.message
