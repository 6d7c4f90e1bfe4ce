"""Commands on the station page are safe and readable: every command that interrupts charging or availability asks
first, naming the station and the session; the answer is shown next to the form (and in the recent commands) as
words, never as a Python or JSON dict; the stop form picks the running session and is hidden without one."""

import re

import pytest
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from cpo.models import Token
from tests.dashboard.test_views import charging, station  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def command_form(html: str, name: str) -> str:
    match = re.search(rf'<form[^>]*data-command="{name}".*?</form>', html, re.S)
    assert match, name
    return match.group(0)


def station_page(client) -> str:
    return client.get(reverse("dashboard:station", args=["CP-V1"])).content.decode()


def test_commands_that_interrupt_charging_or_availability_ask_first_naming_station_and_session(
    client_as,
    charging,  # noqa: F811
):
    operator = client_as("operator")
    html = station_page(operator)
    stop = command_form(html, "remote-stop")
    assert 'data-confirm="Stop charging session {remote-stop-transaction} on station CP-V1?"' in stop
    for name in ("reset", "unlock", "availability"):
        form = command_form(html, name)
        assert "data-confirm=" in form and "station CP-V1" in form, name
        assert "session 4711 on connector 1" in form, name
    assert 'data-confirm-if="availability-operative=0"' in command_form(html, "availability")
    for name in ("remote-start", "trigger", "get-configuration", "change-configuration"):
        assert "data-confirm=" not in command_form(html, name), name
    live = operator.get(reverse("dashboard:station-live", args=["CP-V1"])).content.decode()
    assert 'data-confirm="Stop charging session 4711 (token RFID-OK-1, connector 1) on station CP-V1?"' in live


def test_the_stop_form_preselects_the_running_session(client_as, charging):  # noqa: F811
    stop = command_form(station_page(client_as("operator")), "remote-stop")
    assert f'<option value="{charging.pk}" selected>4711 · connector 1 · RFID-OK-1</option>' in stop
    assert "---------" not in stop


def test_without_a_running_session_the_stop_form_says_so_and_has_no_dropdown(client_as, station):  # noqa: F811
    stop = command_form(station_page(client_as("operator")), "remote-stop")
    assert "No session is running on this station." in stop
    assert "<select" not in stop and "<button" not in stop


def test_the_remote_start_token_list_has_no_empty_choice(client_as, station):  # noqa: F811
    Token.objects.create(uid="RFID-A", contract_id="NL-CPO-C00000002-X")
    start = command_form(station_page(client_as("operator")), "remote-start")
    assert "---------" not in start
    assert ">RFID-A</option>" in start


def test_the_result_is_shown_next_to_its_form_and_the_page_opens_there(client_as, station):  # noqa: F811
    operator = client_as("operator")
    url = reverse("dashboard:station-command", args=["CP-V1", "reset"])
    response = operator.post(url, {"reset-kind": "hard"})
    assert response.url.endswith("/stations/CP-V1/#command-reset")
    html = station_page(operator)
    reset = command_form(html, "reset")
    assert re.search(r'data-testid="command-result"[^>]*>Reset failed: offline: CP-V1 is offline<', reset)
    assert html.count("Reset failed") == 1  # not repeated at the top of the page


def test_recent_commands_show_answers_as_words(client_as, station):  # noqa: F811
    AuditLog.objects.create(
        username="olga",
        station=station,
        identity="CP-V1",
        action="RemoteStopTransaction",
        payload={"transactionId": 4711},
        ok=True,
        answer={"status": "Accepted"},
    )
    AuditLog.objects.create(
        username="olga",
        station=station,
        identity="CP-V1",
        action="ChangeAvailability",
        payload={"connectorId": 0, "type": "Inoperative"},
        ok=True,
        answer={"status": "Rejected", "statusInfo": {"reasonCode": "Busy"}},
    )
    html = station_page(client_as("viewer"))
    answers = re.findall(r'data-testid="answer">([^<]*)<', html)
    assert answers == ["Rejected (Busy)", "Accepted"]
    assert "{&#x27;" not in html and "transactionId: 4711" in html
