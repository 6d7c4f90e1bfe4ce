"""The dashboard's pages and who may do what: anonymous users go to the login page, viewers read, operators also
send commands, admins also onboard stations. The stations here are offline, so
the command service answers "offline" and the audit log keeps that; live chargers answer in test_browser.py."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from cpo.dashboard.selectors.sessions import transactions_with_energy
from cpo.models import EVSE, ChargingStation, RegistrationStatus
from ocpp_gateway.models import MessageLog, MeterValue, Transaction

pytestmark = pytest.mark.django_db

PAGES = [
    ("dashboard:overview", []),
    ("dashboard:overview-live", []),
    ("dashboard:stations", []),
    ("dashboard:station", ["CP-V1"]),
    ("dashboard:station-live", ["CP-V1"]),
    ("dashboard:sessions", []),
]


@pytest.fixture
def station(station_factory):
    station, _ = station_factory("CP-V1", evses=2)
    return station


@pytest.fixture
def charging(station, local_token):
    """Connector 1 charging for 30 minutes with 2 kWh delivered at 7.2 kW; connector 2 faulted."""
    EVSE.objects.filter(station=station, ocpp_evse_id=1).update(status="CHARGING", ocpp_status="Charging")
    EVSE.objects.filter(station=station, ocpp_evse_id=2).update(
        status="OUTOFORDER", ocpp_status="Faulted", ocpp_error_code="GroundFailure"
    )
    start = datetime.now(UTC) - timedelta(minutes=30)
    tx = Transaction.objects.create(
        station=station,
        evse=station.evses.get(ocpp_evse_id=1),
        transaction_id="4711",
        ocpp_version="1.6",
        ocpp_evse_id=1,
        connector_id=1,
        id_tag=local_token.uid,
        started_at=start,
        meter_start=Decimal(1000),
        meter_last=Decimal(3000),
        power_last=Decimal(7200),
    )
    for minutes, wh, w in [(0, "1000", "0"), (10, "2000", "7100"), (20, "3000", "7200")]:
        ts = start + timedelta(minutes=minutes)
        MeterValue.objects.create(
            station=station,
            transaction=tx,
            ocpp_evse_id=1,
            timestamp=ts,
            measurand="Energy.Active.Import.Register",
            value=Decimal(wh),
            unit="Wh",
        )
        MeterValue.objects.create(
            station=station,
            transaction=tx,
            ocpp_evse_id=1,
            timestamp=ts,
            measurand="Power.Active.Import",
            value=Decimal(w),
            unit="W",
        )
    return tx


# --- Access --------------------------------------------------------------------------------------------------


def test_migrating_creates_the_three_roles_as_groups():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "operator", "admin"}


@pytest.mark.parametrize("name,args", PAGES + [("dashboard:onboarding", []), ("dashboard:session", [1])])
def test_anonymous_users_are_sent_to_the_login_page(client, station, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('dashboard:login')}?next={url}"


@pytest.mark.parametrize("name,args", PAGES)
def test_a_user_without_a_dashboard_role_is_refused(client_as, station, name, args):
    assert client_as("none").get(reverse(name, args=args)).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator", "admin", "superuser"])
@pytest.mark.parametrize("name,args", PAGES)
def test_every_role_reads_every_page(client_as, charging, role, name, args):
    assert client_as(role).get(reverse(name, args=args)).status_code == 200


def test_the_login_page_logs_in_with_csrf_and_lands_on_the_overview(make_user):
    from django.test import Client

    make_user("ann", "viewer")
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("dashboard:login"))
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    without_token = browser.post(
        reverse("dashboard:login"), {"username": "ann", "password": "correct horse battery staple"}
    )
    assert without_token.status_code == 403
    token = page.cookies["csrftoken"].value
    response = browser.post(
        reverse("dashboard:login"),
        {"username": "ann", "password": "correct horse battery staple", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:overview")
    assert browser.get(reverse("dashboard:overview")).status_code == 200


def test_a_wrong_password_does_not_log_in(client, make_user):
    make_user("ann", "viewer")
    response = client.post(reverse("dashboard:login"), {"username": "ann", "password": "nope"})
    assert response.status_code == 200 and b"Please enter a correct username and password" in response.content
    assert client.get(reverse("dashboard:overview")).status_code == 302


def command_url(command: str, identity: str = "CP-V1") -> str:
    return reverse("dashboard:station-command", args=[identity, command])


def test_a_viewer_sees_no_command_buttons_and_cannot_send_one(client_as, station):
    viewer = client_as("viewer")
    page = viewer.get(reverse("dashboard:station", args=["CP-V1"]))
    assert b'data-command="reset"' not in page.content
    response = viewer.post(command_url("reset"), {"reset-kind": "soft"})
    assert response.status_code == 403
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_an_operator_sends_a_command_and_the_outcome_is_audited(client_as, station, role):
    user = client_as(role)
    page = user.get(reverse("dashboard:station", args=["CP-V1"]))
    for command in (
        "remote-start",
        "remote-stop",
        "reset",
        "unlock",
        "availability",
        "trigger",
        "get-configuration",
        "change-configuration",
    ):
        assert f'data-command="{command}"'.encode() in page.content
    response = user.post(command_url("reset"), {"reset-kind": "hard"}, follow=True)
    entry = AuditLog.objects.get()
    assert (entry.username, entry.station, entry.action, entry.payload) == (
        f"user-{role}",
        station,
        "Reset",
        {"type": "Hard"},
    )
    assert not entry.ok and entry.error == "offline: CP-V1 is offline"
    assert b"Reset failed: offline: CP-V1 is offline" in response.content


def test_the_stop_button_next_to_a_running_transaction_is_for_operators_only(client_as, charging):
    url = reverse("dashboard:station-live", args=["CP-V1"])
    assert b'data-testid="stop"' not in client_as("viewer").get(url).content


def test_an_operator_gets_a_stop_button_next_to_a_running_transaction(client_as, charging):
    html = client_as("operator").get(reverse("dashboard:station-live", args=["CP-V1"])).content.decode()
    assert 'data-testid="stop"' in html and f'name="remote-stop-transaction" value="{charging.pk}"' in html
    assert "csrfmiddlewaretoken" in html


def test_an_invalid_command_form_sends_nothing(client_as, station):
    response = client_as("operator").post(command_url("unlock"), {"unlock-evse": "9"}, follow=True)
    assert b"Unlock connector: not sent" in response.content
    assert not AuditLog.objects.exists()


def test_an_unknown_command_is_404(client_as, station):
    assert client_as("operator").post(command_url("self-destruct"), {}).status_code == 404


def test_commands_need_csrf(make_user, station):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("op", "operator"))
    assert browser.post(command_url("reset"), {"reset-kind": "soft"}).status_code == 403
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_onboard(client_as, location, role):
    user = client_as(role)
    assert user.get(reverse("dashboard:onboarding")).status_code == 403
    response = user.post(reverse("dashboard:onboarding"), {"identity": "CP-NEW", "location": location.pk, "evses": 2})
    assert response.status_code == 403
    assert not ChargingStation.objects.filter(identity="CP-NEW").exists()
    assert b"Onboarding</a>" not in user.get(reverse("dashboard:overview")).content


# --- Onboarding ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "superuser"])
def test_an_admin_adds_a_station_and_sees_its_secret_once(client_as, location, role):
    from cpo.services import station_secret_check

    admin = client_as(role)
    response = admin.post(reverse("dashboard:onboarding"), {"identity": "CP-NEW", "location": location.pk, "evses": 3})
    assert response.status_code == 200
    secret = response.context["secret"]
    station = ChargingStation.objects.get(identity="CP-NEW")
    assert station_secret_check(secret_hash=station.secret_hash, secret=secret)
    assert station.evses.count() == 3
    assert secret.encode() in response.content
    assert b"ws://testserver/ocpp/CP-NEW" in response.content
    assert "no-store" in response["Cache-Control"]
    for page in (
        reverse("dashboard:station", args=["CP-NEW"]),
        reverse("dashboard:onboarding"),
        reverse("dashboard:stations"),
        reverse("dashboard:overview"),
    ):
        assert secret.encode() not in admin.get(page).content
    audit = AuditLog.objects.get(action="StationCreate")
    assert secret not in str(audit.payload) and audit.station == station


def test_onboarding_refuses_a_taken_identity(client_as, station, location):
    response = client_as("admin").post(
        reverse("dashboard:onboarding"), {"identity": "CP-V1", "location": location.pk, "evses": 1}
    )
    assert response.status_code == 400 and b"exists already" in response.content


def test_an_admin_accepts_a_pending_station_without_location(client_as, location):
    pending = ChargingStation.objects.create(identity="CP-UNKNOWN", registration_status=RegistrationStatus.PENDING)
    admin = client_as("admin")
    page = admin.get(reverse("dashboard:onboarding"))
    assert b"CP-UNKNOWN" in page.content
    refused = admin.post(
        reverse("dashboard:station-accept", args=["CP-UNKNOWN"]), {f"accept-{pending.pk}-evses": 2}, follow=True
    )
    assert b"Choose a location" in refused.content
    admin.post(
        reverse("dashboard:station-accept", args=["CP-UNKNOWN"]),
        {f"accept-{pending.pk}-location": location.pk, f"accept-{pending.pk}-evses": 2},
    )
    pending.refresh_from_db()
    assert pending.registration_status == "Accepted" and pending.location == location
    assert pending.evses.count() == 2
    assert AuditLog.objects.filter(action="StationAccept", station=pending).exists()


def test_an_operator_cannot_accept_a_pending_station(client_as):
    pending = ChargingStation.objects.create(identity="CP-UNKNOWN", registration_status=RegistrationStatus.PENDING)
    assert client_as("operator").post(reverse("dashboard:station-accept", args=["CP-UNKNOWN"]), {}).status_code == 403
    pending.refresh_from_db()
    assert pending.registration_status == "Pending"


# --- Page content --------------------------------------------------------------------------------------------


def test_the_overview_counts_stations_connectors_sessions_and_faults(client_as, charging, station_factory):
    station_factory("CP-V2", evses=1)
    ChargingStation.objects.filter(identity="CP-V1").update(online=True)
    response = client_as("viewer").get(reverse("dashboard:overview"))
    summary = response.context["summary"]
    assert (summary.stations_total, summary.stations_online, summary.stations_offline) == (2, 1, 1)
    assert dict(summary.connectors_by_status) == {"CHARGING": 1, "OUTOFORDER": 1, "UNKNOWN": 1}
    assert summary.active_count == 1
    assert summary.energy_today_kwh == Decimal("2.000") or charging.started_at.date() != datetime.now(UTC).date()
    html = response.content.decode()
    assert "GroundFailure" in html  # needs attention
    assert "2.00" in html and "7.2" in html  # active session kWh and kW
    assert response.context["markers"][0]["evses_charging"] == 1
    assert 'id="map"' in html and "vendor/leaflet/leaflet.js" in html


def test_the_station_page_shows_connectors_with_the_current_transaction_and_the_message_log(client_as, charging):
    station = charging.station
    ChargingStation.objects.filter(pk=station.pk).update(
        vendor="ACME",
        model="Wallbox X",
        firmware_version="1.2.3",
        ocpp_version="1.6",
        online=True,
        connected_since=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )
    now = datetime.now(UTC)

    def frame(direction, message_type, unique_id, action, payload, at):
        MessageLog.objects.create(
            station=station,
            identity=station.identity,
            direction=direction,
            message_type=message_type,
            unique_id=unique_id,
            action=action,
            payload=payload,
            created_at=at,
        )

    for i in range(30):
        at = now - timedelta(seconds=100 - i)
        frame("IN", 2, f"h{i}", "Heartbeat", f'[2,"h{i}","Heartbeat",{{}}]', at)
        frame("OUT", 3, f"h{i}", "Heartbeat", f'[3,"h{i}",{{"currentTime":"x"}}]', at + timedelta(milliseconds=3))
    frame("IN", 2, "b1", "BootNotification", '[2,"b1","BootNotification",{}]', now - timedelta(seconds=1))
    frame("OUT", 3, "b1", "BootNotification", '[3,"b1",{"status":"Accepted"}]', now - timedelta(milliseconds=988))
    frame("OUT", 2, "r1", "RemoteStartTransaction", '[2,"r1","RemoteStartTransaction",{}]', now)
    url = reverse("dashboard:station", args=[station.identity])
    viewer = client_as("viewer")
    html = viewer.get(url).content.decode()
    for text in (
        "ACME",
        "Wallbox X",
        "1.2.3",
        "OCPP 1.6J",
        "2026-11-20 09:00:00",
        "GroundFailure",
        "4711",
        "RFID-OK-1",
        "2.00",
        "7.20",
    ):
        assert text in html, text
    # Calls with their answers, newest first; the heartbeats that flood the log are hidden unless asked for.
    exchanges = viewer.get(url).context["log_exchanges"]
    assert [(x.call.action, x.answer and x.answer.payload, x.round_trip_ms) for x in exchanges] == [
        ("RemoteStartTransaction", None, None),
        ("BootNotification", '[3,"b1",{"status":"Accepted"}]', 12),
    ]
    assert "no answer logged" in html
    with_heartbeats = viewer.get(url, {"heartbeats": "on"})
    assert with_heartbeats.context["log_page"].paginator.count == 32
    assert with_heartbeats.context["log_exchanges"][2].round_trip_ms == 3
    assert viewer.get(url, {"heartbeats": "on", "page": 2}).context["log_page"].object_list[6].unique_id == "h0"
    # Every frame, as sent on the wire.
    frames = viewer.get(url, {"view": "frames", "heartbeats": "on"}).context["log_page"]
    assert frames.paginator.count == 63
    only_out = viewer.get(url, {"view": "frames", "direction": "OUT"}).context["log_page"]
    assert [m.unique_id for m in only_out] == ["r1", "b1"]
    heartbeats = viewer.get(url, {"action": "heartbeat"}).context["log_page"]
    assert heartbeats.paginator.count == 30
    assert "action=heartbeat" in viewer.get(url, {"action": "heartbeat"}).content.decode()  # pager keeps the filter


def test_a_missing_station_is_404(client_as):
    assert client_as("viewer").get(reverse("dashboard:station", args=["NOPE"])).status_code == 404


def test_sessions_are_filtered_by_status_location_station_token_and_period(client_as, charging, station_factory):
    other, _ = station_factory("CP-V2", evses=1)
    ended = Transaction.objects.create(
        station=other,
        transaction_id="9",
        ocpp_version="1.6",
        ocpp_evse_id=1,
        id_tag="OTHER",
        started_at=datetime(2026, 1, 10, 8, tzinfo=UTC),
        ended_at=datetime(2026, 1, 10, 9, tzinfo=UTC),
        meter_start=0,
        meter_stop=5500,
        status="ENDED",
        stop_reason="Local",
    )
    viewer = client_as("viewer")

    def ids(**query):
        return [tx.pk for tx in viewer.get(reverse("dashboard:sessions"), query).context["page"]]

    assert ids() == [charging.pk, ended.pk]
    assert ids(status="ENDED") == [ended.pk]
    assert ids(station="cp-v2") == [ended.pk]
    assert ids(token="RFID-OK-1") == [charging.pk]
    assert ids(started_from="2026-01-10", started_to="2026-01-10") == [ended.pk]
    assert ids(started_to="2026-01-09") == []
    assert ids(location=charging.station.location_id) == [charging.pk, ended.pk]
    assert "5.50" in viewer.get(reverse("dashboard:sessions"), {"status": "ENDED"}).content.decode()


def test_kwh_and_kw_keep_their_fractions_on_every_page_and_backend(client_as, station):
    """SQLite keeps 9900.000 Wh as an integer and would divide it by 1000 as one: the overview and the session list
    showed 9.000 kWh (and 7 kW) where the session page showed 9.900."""
    tx = Transaction.objects.create(
        station=station,
        evse=station.evses.get(ocpp_evse_id=1),
        transaction_id="99",
        ocpp_version="1.6",
        ocpp_evse_id=1,
        connector_id=1,
        id_tag="T",
        started_at=datetime.now(UTC) - timedelta(minutes=80),
        meter_start=Decimal(100),
        meter_last=Decimal(10000),
        power_last=Decimal(7400),
    )
    row = transactions_with_energy(Transaction.objects.filter(pk=tx.pk)).get()
    assert (row.energy_delivered_wh, row.energy_kwh, row.power_kw) == (Decimal(9900), Decimal("9.9"), Decimal("7.4"))
    viewer = client_as("viewer")
    overview = viewer.get(reverse("dashboard:overview")).content.decode()
    assert '<td class="num" data-testid="energy">9.90</td>' in overview and "7.4" in overview
    assert '<td class="num">9.90</td>' in viewer.get(reverse("dashboard:sessions")).content.decode()
    assert "9.90 kWh" in viewer.get(reverse("dashboard:session", args=[tx.pk])).content.decode()


def test_kwh_follow_the_readers_number_format_with_two_decimals(client_as, station):
    """Three decimals read as thousands to European staff ("2.400"): two decimals, in the browser's language."""
    Transaction.objects.create(
        station=station,
        evse=station.evses.get(ocpp_evse_id=1),
        transaction_id="98",
        ocpp_version="1.6",
        ocpp_evse_id=1,
        connector_id=1,
        id_tag="T",
        started_at=datetime.now(UTC) - timedelta(minutes=80),
        meter_start=Decimal(0),
        meter_last=Decimal(1234567),
    )
    viewer = client_as("viewer")
    english = viewer.get(reverse("dashboard:sessions"), HTTP_ACCEPT_LANGUAGE="en-GB").content.decode()
    german = viewer.get(reverse("dashboard:sessions"), HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").content.decode()
    assert '<td class="num">1,234.57</td>' in english
    assert '<td class="num">1.234,57</td>' in german


def test_a_session_shows_its_meter_values_as_power_and_energy_series(client_as, charging):
    response = client_as("viewer").get(reverse("dashboard:session", args=[charging.pk]))
    series = response.context["series"]
    assert [p[1] for p in series["energy_kwh"]] == [0.0, 1.0, 2.0]
    assert [p[1] for p in series["power_kw"]] == [0.0, 7.1, 7.2]
    assert series["energy_kwh"][1][0] - series["energy_kwh"][0][0] == 600_000  # ten minutes in ms
    html = response.content.decode()
    assert 'id="series-data"' in html and "vendor/chartjs/chart.umd.min.js" in html and "2.00 kWh" in html


def test_vendored_libraries_ship_with_their_licences():
    from pathlib import Path

    vendor = Path(__file__).resolve().parents[2] / "cpo" / "dashboard" / "static" / "vendor"
    assert "MIT" in (vendor / "chartjs" / "LICENSE.md").read_text()
    assert (
        "BSD" in (vendor / "leaflet" / "LICENSE").read_text()
        or "Copyright" in (vendor / "leaflet" / "LICENSE").read_text()
    )
    assert (vendor / "chartjs" / "chart.umd.min.js").stat().st_size > 100_000
    assert (vendor / "leaflet" / "leaflet.js").stat().st_size > 100_000


def test_the_station_page_shows_a_station_wide_fault_and_the_vendors_details(client_as, station):
    from django.utils import timezone

    from cpo.models import EVSE, ChargingStation

    ChargingStation.objects.filter(pk=station.pk).update(
        ocpp_status="Faulted",
        ocpp_error_code="PowerMeterFailure",
        status_info="meter bus timeout",
        vendor_id="com.acme",
        vendor_error_code="E-417",
        status_updated=timezone.now(),
    )
    EVSE.objects.filter(station=station, ocpp_evse_id=1).update(status_info="door open", vendor_error_code="D-1")
    html = client_as("viewer").get(reverse("dashboard:station", args=["CP-V1"])).content.decode()
    assert "Faulted <code>PowerMeterFailure</code>" in html and "meter bus timeout (com.acme E-417)" in html
    assert 'data-testid="vendor-details">door open (D-1)' in html


def test_a_station_wide_fault_needs_attention_on_the_overview(client_as, station):
    from django.utils import timezone

    from cpo.models import ChargingStation

    ChargingStation.objects.filter(pk=station.pk).update(
        ocpp_status="Faulted", ocpp_error_code="PowerMeterFailure", status_updated=timezone.now()
    )
    html = client_as("viewer").get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="station-attention"' in html and "<code>PowerMeterFailure</code>" in html
    assert "Nothing faulted" not in html


def test_onboarding_puts_the_new_connectors_on_the_chosen_tariff_or_the_locations_default(client_as, location):
    from tests.billing.factories import component, tariff_make

    chosen = tariff_make("ONBOARD-CHOSEN", component("ENERGY", "0.30"))
    default = tariff_make("ONBOARD-DEFAULT", component("ENERGY", "0.25"))
    location.default_tariff_id = default.id
    location.save()
    admin = client_as("admin")
    form = {"location": location.pk, "evses": 1}
    admin.post(reverse("dashboard:onboarding"), {**form, "identity": "CP-CHOSEN", "tariff": chosen.id})
    admin.post(reverse("dashboard:onboarding"), {**form, "identity": "CP-DEFAULT"})
    tariffs = {
        identity: ChargingStation.objects.get(identity=identity).evses.get().connectors.get().tariff_ids
        for identity in ("CP-CHOSEN", "CP-DEFAULT")
    }
    assert tariffs == {"CP-CHOSEN": [chosen.id], "CP-DEFAULT": [default.id]}
    assert b'data-testid="no-tariff"' not in admin.get(reverse("dashboard:station", args=["CP-DEFAULT"])).content


def test_connectors_without_any_tariff_are_flagged_on_the_station_page_and_the_overview(client_as, location):
    from cpo.services import station_create

    station_create(identity="CP-FREE", location=location, evses=1, tariff_id="")
    viewer = client_as("viewer")
    assert b'data-testid="no-tariff"' in viewer.get(reverse("dashboard:station", args=["CP-FREE"])).content
    overview = viewer.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="evse-no-tariff"' in overview and "CP-FREE</a> connector 1" in overview


def test_only_admins_register_a_connector_the_charger_reported_and_it_is_audited(client_as, location):
    from cpo.services import station_create, station_evse_add

    station, _ = station_create(identity="CP-PHANTOM", location=location, evses=1)
    station_evse_add(station=station, ocpp_evse_id=7, registered=False)
    url = reverse("dashboard:station-evse-register", args=["CP-PHANTOM", 7])
    assert client_as("operator").post(url).status_code == 403
    admin = client_as("admin")
    page = admin.get(reverse("dashboard:station", args=["CP-PHANTOM"])).content.decode()
    assert 'data-testid="unregistered"' in page and url in page
    assert admin.post(url).status_code == 302
    assert station.evses.get(ocpp_evse_id=7).registered
    assert AuditLog.objects.filter(action="EvseRegister", station=station).count() == 1
    admin.post(url)  # a second click changes nothing
    assert AuditLog.objects.filter(action="EvseRegister").count() == 1
