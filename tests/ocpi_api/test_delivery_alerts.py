"""A partner that does not take our pushes raises one partner_delivery_failing alert (given up, or failed
ALERT_PARTNER_DELIVERY_ATTEMPTS times in a row); the next push it takes resolves it."""

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from cpo.models import Alert
from ocpi_api.delivery import Outcome, outbox_deliver
from ocpi_api.models import OutboxMessage
from ocpi_api.outbox import outbox_enqueue
from tests.e2e.emsp import partner_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager")]


def push(partner, n: int):
    with transaction.atomic():
        return outbox_enqueue(
            partner=partner,
            module="sessions",
            method="PUT",
            path=f"NL/CPO/S-{n}",
            object_key=f"sessions:S-{n}",
            body={"id": f"S-{n}", "kwh": 1},
        )


def make_due(message):
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())


def test_a_failed_partner_delivery_raises_one_alert_and_the_next_delivery_resolves_it(
    receiving_emsp, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_PARTNER_DELIVERY_ATTEMPTS = 2
    settings.ALERT_EMAIL_TO = ["ops@cpo.example"]
    settings.ALERT_NOTIFY = {"partner_delivery_failing": ["email"]}
    partner = partner_for(receiving_emsp)
    receiving_emsp.answer = lambda method, path, body: (503, {"status_code": 3000, "status_message": "busy"})
    retried = push(partner, 1)
    assert outbox_deliver(message_id=retried.pk) == Outcome.RETRY
    assert not Alert.objects.exists()  # one failure is no alert yet
    make_due(retried)
    with django_capture_on_commit_callbacks(execute=True):  # the alert is announced after commit
        assert outbox_deliver(message_id=retried.pk) == Outcome.RETRY
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.resolved_at) == ("partner_delivery_failing", f"partner {partner.pk}", None)
    assert "failed 2 times" in alert.message and "sessions" in alert.message

    given_up = push(partner, 2)
    OutboxMessage.objects.filter(pk=given_up.pk).update(give_up_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_deliver(message_id=given_up.pk) == Outcome.FAILED
    alert.refresh_from_db()
    assert Alert.objects.count() == 1 and alert.count == 2 and "given up" in alert.message
    assert len(mail.outbox) == 1 and f"partner {partner.pk}" in mail.outbox[0].subject

    receiving_emsp.answer = None
    make_due(retried)
    assert outbox_deliver(message_id=retried.pk) == Outcome.SENT
    alert.refresh_from_db()
    assert alert.resolved_at is not None
