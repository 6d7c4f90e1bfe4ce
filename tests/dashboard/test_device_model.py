"""The station page's configuration section without a charger: server-side search, who may change what, and a
station whose configuration was not read yet."""

import html

import pytest
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from cpo.models import ChargingStation
from ocpp_gateway.models import ConfigurationBaseline, StationVariable
from ocpp_gateway.redaction import REDACTED
from ocpp_gateway.services.device_model import configuration_keys_reported, station_variables_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(station_factory):
    station, _ = station_factory("CFG-PAGE", evses=1)
    station_variables_record(
        station_pk=station.pk,
        reported=configuration_keys_reported(
            [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "MeterValuesSampledData", "readonly": False, "value": "Energy.Active.Import.Register"},
                {"key": "AuthorizationKey", "readonly": False, "value": "0011223344556677"},
                {"key": "ChargePointVendorInfo", "readonly": True, "value": "ACME"},
            ]
        ),
    )
    return station


def test_staff_search_the_configuration_by_key_or_value(configured, client_as):
    viewer = client_as("viewer")
    url = reverse("dashboard:station", args=["CFG-PAGE"])
    everything = viewer.get(url).content.decode()
    assert everything.count("data-variable=") == 4
    assert "0011223344556677" not in everything and REDACTED in html.unescape(everything)
    by_value = viewer.get(url, {"filter": "energy.active"}).content.decode()
    assert 'data-variable="MeterValuesSampledData"' in by_value and by_value.count("data-variable=") == 1
    none = viewer.get(url, {"filter": "nothing-like-this"}).content.decode()
    assert "No key matches" in none


def test_a_viewer_sees_the_configuration_but_cannot_change_it(configured, client_as):
    viewer = client_as("viewer")
    page = viewer.get(reverse("dashboard:station", args=["CFG-PAGE"])).content.decode()
    assert "station-variable-change" not in page and 'name="value"' not in page
    heartbeat = StationVariable.objects.get(variable="HeartbeatInterval")
    url = reverse("dashboard:station-variable-change", args=["CFG-PAGE", heartbeat.pk])
    assert viewer.post(url, {"value": "60"}).status_code == 403
    heartbeat.refresh_from_db()
    assert heartbeat.last_set_at is None and not AuditLog.objects.exists()


def test_an_operator_gets_a_set_form_for_writable_values_only(configured, client_as):
    page = client_as("operator").get(reverse("dashboard:station", args=["CFG-PAGE"])).content.decode()
    assert page.count('aria-label="new value of') == 2  # not the read-only vendor info, not the password


def test_a_value_of_another_station_is_not_found(configured, station_factory, client_as):
    station_factory("CFG-OTHER", evses=1)
    heartbeat = StationVariable.objects.get(variable="HeartbeatInterval")
    url = reverse("dashboard:station-variable-change", args=["CFG-OTHER", heartbeat.pk])
    assert client_as("operator").post(url, {"value": "60"}).status_code == 404


def test_a_station_not_read_yet_says_so(station_factory, client_as):
    station_factory("CFG-NEW", evses=1)
    page = client_as("viewer").get(reverse("dashboard:station", args=["CFG-NEW"])).content.decode()
    assert "Not read yet" in page


def test_values_that_differ_from_the_models_baseline_are_flagged(configured, client_as):
    ChargingStation.objects.filter(pk=configured.pk).update(vendor="ACME", model="W1")
    ConfigurationBaseline.objects.create(vendor="ACME", model="W1", name="HeartbeatInterval", value="60")
    ConfigurationBaseline.objects.create(vendor="ACME", model="W1", name="ChargePointVendorInfo", value="ACME")
    ConfigurationBaseline.objects.create(vendor="Other", model="W1", name="MeterValuesSampledData", value="")
    page = client_as("viewer").get(reverse("dashboard:station", args=["CFG-PAGE"])).content.decode()
    assert page.count('data-testid="baseline-differs"') == 1
    assert "differs from the W1 baseline: 60" in page
