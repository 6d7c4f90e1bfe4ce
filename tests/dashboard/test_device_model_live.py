"""Staff change a charger's configuration from the station page: the charger's answer (RebootRequired, Rejected) is
kept with the value, shown on the page and audited; secrets and read-only keys are not offered."""

import html
import os
import time

import pytest
from django.urls import reverse
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from cpo.dashboard.models import AuditLog
from cpo.models import ChargingStation
from ocpp_gateway.models import StationVariable
from tests.dashboard.chargers import ChargerThread, Configurable16
from tests.ocpp_gateway.chargers import Charger201, now_iso
from tests.support import start_daphne, stop


@pytest.fixture(scope="module")
def config_daphne(django_db_setup, django_db_blocker):
    """A daphne running its tasks in-process (also on Redis, where no Celery worker runs in these tests)."""
    server = start_daphne("config", CELERY_TASK_ALWAYS_EAGER="1")
    yield server
    stop(server)


pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL"),
]


def text(response) -> str:
    return html.unescape(response.content.decode())


def wait(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_staff_change_a_value_the_charger_answers_reboot_required_and_it_is_stored_and_shown(
    config_daphne, station_factory, client_as
):
    station, secret = station_factory("CFG16-DASH", evses=2)
    charger = ChargerThread(config_daphne.ocpp_url("CFG16-DASH"), "CFG16-DASH", secret, cls=Configurable16)
    try:
        charger.send(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
        wait(lambda: StationVariable.objects.filter(station=station).count() == 3, "configuration not read on boot")
        operator = client_as("operator")
        page = text(operator.get(reverse("dashboard:station", args=["CFG16-DASH"])))
        assert "HeartbeatInterval" in page and "NumberOfConnectors" in page
        assert "0011223344556677" not in page
        searched = text(operator.get(reverse("dashboard:station", args=["CFG16-DASH"]), {"filter": "heartbeat"}))
        assert 'data-variable="HeartbeatInterval"' in searched
        assert 'data-variable="NumberOfConnectors"' not in searched

        heartbeat = StationVariable.objects.get(station=station, variable="HeartbeatInterval")
        url = reverse("dashboard:station-variable-change", args=["CFG16-DASH", heartbeat.pk])
        page = text(operator.post(url, {"value": "60"}, follow=True))
        assert "HeartbeatInterval = 60: RebootRequired" in page
        assert charger.cp.changes == [("HeartbeatInterval", "60")]
        heartbeat.refresh_from_db()
        assert (heartbeat.value, heartbeat.last_set_value, heartbeat.last_set_status) == ("300", "60", "RebootRequired")
        assert "60 → <strong>RebootRequired</strong>" in page

        # A read-only key and the password are not changed from here: nothing reaches the charger.
        read_only = StationVariable.objects.get(station=station, variable="NumberOfConnectors")
        url = reverse("dashboard:station-variable-change", args=["CFG16-DASH", read_only.pk])
        assert "NumberOfConnectors: not sent, NumberOfConnectors is read-only" in text(
            operator.post(url, {"value": "4"}, follow=True)
        )
        password = StationVariable.objects.get(station=station, variable="AuthorizationKey")
        url = reverse("dashboard:station-variable-change", args=["CFG16-DASH", password.pk])
        assert "not sent" in text(operator.post(url, {"value": "x" * 16}, follow=True))
        assert charger.cp.changes == [("HeartbeatInterval", "60")]

        # The charger reboots with the new value; staff read the configuration again.
        charger.cp.keys["HeartbeatInterval"] = "60"
        page = text(operator.post(reverse("dashboard:station-configuration-read", args=["CFG16-DASH"]), follow=True))
        assert "GetConfiguration: configuration stored" in page
        heartbeat.refresh_from_db()
        assert heartbeat.value == "60"
    finally:
        charger.close()
    audited = list(
        AuditLog.objects.filter(station=station)
        .exclude(username__startswith="platform:")  # what the platform asks by itself after a boot
        .order_by("id")
        .values_list("action", "ok", "payload")
    )
    assert audited == [
        ("ChangeConfiguration", True, {"key": "HeartbeatInterval", "value": "60"}),
        ("GetConfiguration", True, {}),
    ]
    assert "0011223344556677" not in str(AuditLog.objects.values_list("answer", flat=True))


class Configurable201(Charger201):
    @on(Action201.get_base_report)
    def on_get_base_report(self, request_id, report_base, **kwargs):
        return result201.GetBaseReport(status="Accepted")

    @on(Action201.set_variables)
    def on_set_variables(self, set_variable_data, **kwargs):
        self.received.append(("SetVariables", {"set_variable_data": set_variable_data}))
        return result201.SetVariables(
            set_variable_result=[
                {"attribute_status": "Accepted", "component": d["component"], "variable": d["variable"]}
                for d in set_variable_data
            ]
        )


def test_staff_set_an_evse_variable_of_a_2_0_1_station_with_set_variables(config_daphne, station_factory, client_as):
    station, secret = station_factory("CFG201-DASH", evses=1)
    charger = ChargerThread(
        config_daphne.ocpp_url("CFG201-DASH"), "CFG201-DASH", secret, version="2.0.1", cls=Configurable201
    )
    try:
        charger.send(
            call201.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp")
        )
        wait(lambda: ChargingStation.objects.get(pk=station.pk).online, "station not online")
        charger.send(
            call201.NotifyReport(
                request_id=1,
                generated_at=now_iso(),
                seq_no=0,
                report_data=[
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Power"},
                        "variableAttribute": [{"type": "MaxSet", "value": "22000", "mutability": "ReadWrite"}],
                        "variableCharacteristics": {"unit": "W", "dataType": "decimal", "supportsMonitoring": False},
                    }
                ],
            )
        )
        power = StationVariable.objects.get(station=station, variable="Power")
        operator = client_as("operator")
        page = text(
            operator.post(
                reverse("dashboard:station-variable-change", args=["CFG201-DASH", power.pk]),
                {"value": "11000"},
                follow=True,
            )
        )
        assert "EVSE[1].Power MaxSet = 11000: Accepted" in page
        power.refresh_from_db()
        assert (power.value, power.last_set_status) == ("11000", "Accepted")
        assert charger.cp.received[-1] == (
            "SetVariables",
            {
                "set_variable_data": [
                    {
                        "attribute_value": "11000",
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Power"},
                        "attribute_type": "MaxSet",
                    }
                ]
            },
        )
    finally:
        charger.close()
