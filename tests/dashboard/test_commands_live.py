"""Commands sent from the station page reach live chargers through the command service (any daphne process, over
the Redis channel layer), with the names of each OCPP version, and the charger's answer is shown and audited."""

import html
import os
import time

import pytest
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from cpo.models import ChargingStation
from tests.dashboard.chargers import ChargerThread

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL"),
]


def text(response) -> str:
    return html.unescape(response.content.decode())


def online(identity: str) -> None:
    deadline = time.monotonic() + 5
    while not ChargingStation.objects.get(identity=identity).online:
        assert time.monotonic() < deadline, f"{identity} did not come online"
        time.sleep(0.05)


def test_an_operator_resets_and_reads_variables_of_a_2_0_1_station(live_daphne, station_factory, client_as):
    from ocpp.v201 import call

    _, secret = station_factory("CP201-DASH", evses=1)
    charger = ChargerThread(live_daphne.ocpp_url("CP201-DASH"), "CP201-DASH", secret, version="2.0.1")
    try:
        charger.send(call.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp"))
        online("CP201-DASH")
        operator = client_as("operator")
        url = reverse("dashboard:station-command", args=["CP201-DASH", "reset"])
        page = operator.post(url, {"reset-kind": "hard"}, follow=True)
        assert "Reset: Accepted" in text(page)
        assert charger.cp.received == [("Reset", {"type": "Immediate"})]
        url = reverse("dashboard:station-command", args=["CP201-DASH", "get-configuration"])
        page = operator.post(url, {"get-configuration-keys": "OCPPCommCtrlr.HeartbeatInterval"}, follow=True)
        assert "GetVariables: OCPPCommCtrlr.HeartbeatInterval Accepted = 300" in text(page)
        refused = operator.post(url, {"get-configuration-keys": "HeartbeatInterval"}, follow=True)
        assert "Get configuration: not sent" in text(refused)  # 2.0.1 needs Component.Variable
    finally:
        charger.close()
    actions = list(
        AuditLog.objects.exclude(username__startswith="platform:").order_by("id").values_list("action", "ok", "payload")
    )
    assert actions == [
        ("Reset", True, {"type": "Immediate"}),
        (
            "GetVariables",
            True,
            {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]},
        ),
    ]


def test_a_1_6_station_gets_1_6_names_and_a_refusal_or_error_is_shown(
    live_daphne, station_factory, client_as, local_token
):
    from ocpp.v16 import call

    _, secret = station_factory("CP16-DASH", evses=2)
    charger = ChargerThread(live_daphne.ocpp_url("CP16-DASH"), "CP16-DASH", secret)
    try:
        charger.send(call.BootNotification(charge_point_model="Wallbox X", charge_point_vendor="ACME"))
        online("CP16-DASH")
        operator = client_as("operator")
        start = operator.post(
            reverse("dashboard:station-command", args=["CP16-DASH", "remote-start"]),
            {"remote-start-evse": "2", "remote-start-token": local_token.pk},
            follow=True,
        )
        assert "RemoteStartTransaction: Accepted" in text(start)
        assert charger.cp.received == [("RemoteStartTransaction", {"id_tag": "RFID-OK-1", "connector_id": 2})]
        # The simulated charger does not implement TriggerMessage: its CALLERROR is shown and audited.
        trigger = operator.post(
            reverse("dashboard:station-command", args=["CP16-DASH", "trigger"]),
            {"trigger-message": "Heartbeat", "trigger-evse": "0"},
            follow=True,
        )
        assert "TriggerMessage failed: call_error" in text(trigger)
    finally:
        charger.close()
    trigger_audit = AuditLog.objects.get(action="TriggerMessage")
    assert not trigger_audit.ok and trigger_audit.error.startswith("call_error")


def test_a_charger_password_set_from_the_dashboard_is_in_neither_the_message_log_nor_the_audit_log(
    live_daphne, station_factory, client_as
):
    from ocpp.v16 import call

    from ocpp_gateway.models import MessageLog
    from tests.support import wait_until

    _, secret = station_factory("CP16-KEY", evses=1)
    charger = ChargerThread(live_daphne.ocpp_url("CP16-KEY"), "CP16-KEY", secret)
    try:
        charger.send(call.BootNotification(charge_point_model="Wallbox X", charge_point_vendor="ACME"))
        online("CP16-KEY")
        client_as("operator").post(
            reverse("dashboard:station-command", args=["CP16-KEY", "change-configuration"]),
            {"change-configuration-key": "AuthorizationKey", "change-configuration-value": "NEW-PASSWORD-0123456789"},
        )
        logged = wait_until(lambda: list(MessageLog.objects.filter(identity="CP16-KEY", action="ChangeConfiguration")))
    finally:
        charger.close()
    assert any("AuthorizationKey" in entry.payload for entry in logged)
    assert not any("NEW-PASSWORD" in entry.payload for entry in logged)
    audit = AuditLog.objects.get(action="ChangeConfiguration")
    assert "NEW-PASSWORD" not in str(audit.payload)
