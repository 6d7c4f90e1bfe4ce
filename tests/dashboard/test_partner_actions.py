"""Admins suspend, resume and rotate the credentials of a partner from its page. A suspended partner's requests are
refused as with a token that is not valid (HTTP 401) and nothing is pushed to it, its pushes wait; resumed, it
works again and what waited goes out. Rotating runs the OCPI credentials update (PUT credentials) with the real
EMSP on loopback: both tokens are replaced, the old one is refused, the new one works. Each action is audited."""

import pytest
from django.db import transaction
from django.urls import reverse

from cpo.celery import app as celery_app
from cpo.dashboard.models import AuditLog
from ocpi_api.delivery import Outcome, outbox_deliver
from ocpi_api.models import OutboxMessage, OutboxStatus, Partner
from ocpi_api.outbox import outbox_due_claim, outbox_enqueue
from tests.e2e.emsp import ReceivingEmsp, partner_for
from tests.ocpi_api.factories import auth

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "token-of-the-emsp"


@pytest.fixture
def eager():
    """Run queued deliveries in-process, so a push is at the EMSP (or not) when the change has committed."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def emsp(live_server, settings, eager):
    """A registered EMSP on loopback; our published URLs point at the live server (it calls our versions back)."""
    settings.OCPI_BASE_URL = live_server.url
    server = ReceivingEmsp().start()
    yield server
    server.stop()


@pytest.fixture
def partner(emsp):
    return partner_for(emsp, token=TOKEN)


def session_push(partner, kwh: int):
    with transaction.atomic():
        return outbox_enqueue(
            partner=partner,
            module="sessions",
            method="PUT",
            path="NL/CPO/S-1",
            object_key="sessions:NL:CPO:S-1",
            body={"id": "S-1", "kwh": kwh},
        )


def ocpi_get(client, token: str):
    return client.get("/ocpi/2.2.1/sessions/", {"date_from": "2020-01-01T00:00:00Z"}, **auth(token))


def act(client, partner, action: str):
    return client.post(reverse("dashboard:partner-action", args=[partner.pk, action]), follow=True)


def test_a_suspended_partner_is_refused_and_gets_nothing_until_resumed(client, client_as, emsp, partner):
    assert ocpi_get(client, TOKEN).status_code == 200
    admin = client_as("admin")
    page = act(admin, partner, "suspend")
    assert "suspended: its token is refused" in page.content.decode()
    assert 'data-testid="partner-suspended"' in page.content.decode()

    refused = ocpi_get(client, TOKEN)
    assert refused.status_code == 401 and refused.json()["status_code"] == 2000
    assert client.get("/ocpi/versions", **auth(TOKEN)).status_code == 401  # not even the versions

    held = session_push(partner, kwh=1)
    assert outbox_deliver(message_id=held.pk) == Outcome.HELD
    assert held.pk not in outbox_due_claim()  # beat leaves it alone too
    assert emsp.session_calls() == []
    assert OutboxMessage.objects.get(pk=held.pk).status == OutboxStatus.PENDING

    page = act(admin, partner, "resume")
    assert "resumed" in page.content.decode()
    assert ocpi_get(client, TOKEN).status_code == 200
    assert OutboxMessage.objects.get(pk=held.pk).status == OutboxStatus.SENT  # what waited went out on resume
    assert [call["body"]["kwh"] for call in emsp.session_calls()] == [1]
    session_push(partner, kwh=2)
    assert [call["body"]["kwh"] for call in emsp.session_calls()] == [1, 2]

    audit = list(AuditLog.objects.order_by("id").values_list("action", "ok", "username"))
    assert audit == [("PartnerSuspend", True, "user-admin"), ("PartnerResume", True, "user-admin")]


def test_rotating_credentials_replaces_both_tokens_over_ocpi(client, client_as, emsp, partner):
    our_old_token = emsp.token_c
    page = act(client_as("admin"), partner, "rotate")
    assert "credentials rotated" in page.content.decode()

    puts = [r for r in emsp.requests if r["method"] == "PUT" and r["path"].rstrip("/").endswith("/credentials")]
    assert len(puts) == 1
    new_token = puts[0]["body"]["token"]
    assert new_token != TOKEN and emsp.callback["status"] == 200  # it read our endpoints with its new token

    assert ocpi_get(client, TOKEN).status_code == 401
    assert ocpi_get(client, new_token).status_code == 200
    partner.refresh_from_db()
    assert partner.outgoing_token == emsp.token_c != our_old_token  # we use the token it gave back
    session_push(partner, kwh=3)  # and pushes reach it with that token
    assert [call["body"]["kwh"] for call in emsp.session_calls()] == [3]

    audit = AuditLog.objects.get()
    assert (audit.action, audit.ok) == ("PartnerCredentialsRotate", True)
    assert new_token not in str(audit.payload) + str(audit.answer) and emsp.token_c not in str(audit.answer)


def test_a_failed_rotation_keeps_the_old_tokens_and_says_why(client, client_as, emsp, partner):
    emsp.fail_with_http = 503
    page = act(client_as("admin"), partner, "rotate")
    assert "rotate failed" in page.content.decode()
    emsp.fail_with_http = None
    assert ocpi_get(client, TOKEN).status_code == 200
    partner.refresh_from_db()
    assert partner.outgoing_token == emsp.token_c
    audit = AuditLog.objects.get()
    assert (audit.action, audit.ok) == ("PartnerCredentialsRotate", False) and "503" in audit.error


def test_a_suspended_partner_cannot_be_rotated(client_as, emsp, partner):
    admin = client_as("admin")
    act(admin, partner, "suspend")
    page = act(admin, partner, "rotate")
    assert "resume it first" in page.content.decode()
    assert not [r for r in emsp.requests if r["method"] == "PUT"]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_act_on_partners_and_others_see_no_buttons(client_as, emsp, partner, role):
    user = client_as(role)
    html = user.get(reverse("dashboard:partner", args=[partner.pk])).content.decode()
    assert 'data-testid="partner-actions"' not in html
    for action in ("suspend", "resume", "rotate"):
        assert user.post(reverse("dashboard:partner-action", args=[partner.pk, action])).status_code == 403
    assert Partner.objects.get(pk=partner.pk).suspended_at is None


def test_admins_get_each_action_with_a_confirmation_naming_the_partner(client_as, emsp, partner):
    admin = client_as("admin")
    html = admin.get(reverse("dashboard:partner", args=[partner.pk])).content.decode()
    assert f'data-confirm="Suspend {partner}?' in html and f'data-confirm="Rotate the credentials of {partner}?' in html
    assert admin.post(reverse("dashboard:partner-action", args=[partner.pk, "explode"])).status_code == 404
    assert admin.get(reverse("dashboard:partner-action", args=[partner.pk, "suspend"])).status_code == 405
