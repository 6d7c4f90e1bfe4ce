"""Staff rotate a charger's password from its station page (issue 10 item 4): a live daphne, a simulated 1.6
charger, the dashboard's button; the rotation is audited and the password shown nowhere."""

import asyncio
import re

import pytest
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from cpo.models import ChargingStation
from tests.ocpp_gateway.chargers import connected
from tests.ocpp_gateway.test_passwords import (
    PasswordCharger16,
    assert_nowhere,
    given_password,
    live,
    logs_in,
    wait_online,
)
from tests.support import in_thread, start_daphne, stop


@pytest.fixture(scope="module")
def chatty_daphne(django_db_setup, django_db_blocker):
    """A daphne whose ocpp library logs every frame: the password must not be in its log."""
    server = start_daphne("passwords-dashboard", OCPP_LIB_LOG_LEVEL="INFO")
    yield server
    stop(server)


@live
@pytest.mark.django_db(transaction=True)
def test_staff_rotate_a_1_6_charger_it_reconnects_with_the_new_password_and_the_old_one_is_refused(
    chatty_daphne, station_factory, client_as
):
    _, old = station_factory("CP16-ROT", evses=1)
    operator = client_as("operator")
    url = reverse("dashboard:station-password-rotate", args=["CP16-ROT"])

    async def scenario():
        async with connected(chatty_daphne.ocpp_url("CP16-ROT"), "CP16-ROT", old, cls=PasswordCharger16) as cp:
            await wait_online("CP16-ROT")
            page = await in_thread(operator.post, path=url, follow=True)
            return cp.received, page.content.decode()

    received, page = asyncio.run(scenario())
    new = given_password(received)
    assert re.fullmatch(r"[0-9a-f]{40}", new)  # 20 bytes in hexadecimal: 1.6 whitepaper and 2.0.1 limits
    assert "New password accepted by the charger" in page and new not in page
    # Until the charger logs in with the new password, the old one still works (it may not have switched yet).
    assert logs_in(chatty_daphne, "CP16-ROT", old)
    assert logs_in(chatty_daphne, "CP16-ROT", new)
    assert not logs_in(chatty_daphne, "CP16-ROT", old)
    assert logs_in(chatty_daphne, "CP16-ROT", new)
    station = ChargingStation.objects.get(identity="CP16-ROT")
    assert station.pending_secret_hash == "" and station.secret_rotated_at is not None
    audit = AuditLog.objects.get(action="PasswordRotate")
    assert audit.ok and audit.username == "user-operator" and audit.answer["result"] == "accepted"
    assert_nowhere(new, chatty_daphne, "CP16-ROT")


@pytest.mark.django_db
def test_a_viewer_cannot_rotate_and_the_button_is_for_operators(station_factory, client_as):
    station_factory("CP16-VIEW", evses=1)
    url = reverse("dashboard:station-password-rotate", args=["CP16-VIEW"])
    assert client_as("viewer").post(url).status_code == 403
    page = client_as("operator").get(reverse("dashboard:station", args=["CP16-VIEW"]))
    assert 'data-command="password-rotate"' in page.content.decode()
    assert not AuditLog.objects.exists()
