"""Sessions Sender interface, PUT sessions/{session_id}/charging_preferences: an eMSP sends its driver's wishes for
an ongoing session and gets a ChargingPreferencesResponse."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from ocpi_api.charging_preferences import charging_preferences_current
from ocpi_api.models import ChargingPreferences
from ocpp_gateway.models import Transaction
from tests.ocpi_api.factories import auth, make_session

pytestmark = pytest.mark.django_db
URL = "/ocpi/2.2.1/sessions/SESSION-1/charging_preferences"


@pytest.fixture
def station(station_factory):
    station, _ = station_factory("CP-P")
    station.online = True
    station.save()
    evse = station.evses.first()
    evse.capabilities = ["REMOTE_START_STOP_CAPABLE", "CHARGING_PREFERENCES_CAPABLE"]
    evse.save()
    return station


def departure(hours: float = 3) -> str:
    return (timezone.now() + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def preferences(**changes):
    return {
        "profile_type": "CHEAP",
        "departure_time": departure(),
        "energy_need": 30.5,
        "discharge_allowed": False,
        **changes,
    }


def put(client, headers, body, url=URL):
    return client.put(
        url, data=body if isinstance(body, str) else json.dumps(body), content_type="application/json", **headers
    )


def ocpi(response):
    body = response.json()
    return response.status_code, body["status_code"], body["data"]


class TestAnswers:
    def test_complete_preferences_are_accepted_and_kept_for_staff(self, client, headers, partner, station):
        make_session(station)
        response = put(client, headers, preferences(energy_need=30.12345, discharge_allowed=True))
        assert ocpi(response) == (200, 1000, "ACCEPTED")
        kept = charging_preferences_current(session_id="SESSION-1")
        assert (
            kept.partner,
            kept.profile_type,
            str(kept.energy_need),
            kept.discharge_allowed,
            kept.transaction.transaction_id,
            kept.evse.uid,
        ) == (partner, "CHEAP", "30.1235", True, "77", "CP-P-1")
        assert response["OCPI-to-party-id"] == "EXM"

    @pytest.mark.parametrize("profile_type", ["FAST", "REGULAR"])
    def test_fast_and_regular_need_neither_departure_nor_energy(self, client, headers, station, profile_type):
        make_session(station)
        assert ocpi(put(client, headers, {"profile_type": profile_type})) == (200, 1000, "ACCEPTED")

    @pytest.mark.parametrize("profile_type,priority", [("FAST", 1), ("REGULAR", 0), ("CHEAP", -1), ("GREEN", -1)])
    def test_accepted_preferences_set_the_sessions_place_in_load_management(
        self, client, headers, station, profile_type, priority
    ):
        """A site under a grid limit shares its current by priority (ocpp_gateway.load_planner): a driver asking
        FAST goes before REGULAR sessions, CHEAP and GREEN after them."""
        session = make_session(station)
        assert ocpi(put(client, headers, preferences(profile_type=profile_type))) == (200, 1000, "ACCEPTED")
        session.transaction.refresh_from_db()
        assert session.transaction.preference_priority == priority

    @pytest.mark.parametrize("profile_type", ["CHEAP", "GREEN"])
    def test_cheap_and_green_need_a_departure_time_then_an_energy_need(self, client, headers, station, profile_type):
        make_session(station)
        without_departure = preferences(profile_type=profile_type, departure_time=None)
        assert ocpi(put(client, headers, without_departure)) == (200, 1000, "DEPARTURE_REQUIRED")
        without_both = {"profile_type": profile_type}
        assert ocpi(put(client, headers, without_both)) == (200, 1000, "DEPARTURE_REQUIRED")
        without_energy = preferences(profile_type=profile_type)
        del without_energy["energy_need"]
        assert ocpi(put(client, headers, without_energy)) == (200, 1000, "ENERGY_NEED_REQUIRED")
        assert list(ChargingPreferences.objects.order_by("id").values_list("response", flat=True)) == [
            "DEPARTURE_REQUIRED",
            "DEPARTURE_REQUIRED",
            "ENERGY_NEED_REQUIRED",
        ]
        assert charging_preferences_current(session_id="SESSION-1") is None

    def test_an_evse_without_the_capability_is_not_possible_with_404_2001_as_the_spec_says(
        self, client, headers, station
    ):
        evse = station.evses.first()
        evse.capabilities = ["REMOTE_START_STOP_CAPABLE"]
        evse.save()
        make_session(station)
        response = put(client, headers, preferences())
        assert ocpi(response) == (404, 2001, "NOT_POSSIBLE")
        assert "CHARGING_PREFERENCES_CAPABLE" in response.json()["status_message"]
        assert ChargingPreferences.objects.get().response == "NOT_POSSIBLE"

    def test_a_departure_in_the_past_or_an_ended_session_is_not_possible(self, client, headers, station):
        make_session(station)
        assert ocpi(put(client, headers, preferences(departure_time=departure(-1)))) == (200, 1000, "NOT_POSSIBLE")
        Transaction.objects.update(status="ENDED", ended_at=timezone.now())
        assert ocpi(put(client, headers, preferences())) == (200, 1000, "NOT_POSSIBLE")


class TestRefusals:
    def test_an_unknown_session_is_404_2003(self, client, headers, station):
        make_session(station)
        response = put(client, headers, preferences(), url="/ocpi/2.2.1/sessions/NOPE/charging_preferences")
        assert ocpi(response) == (404, 2003, None)
        assert not ChargingPreferences.objects.exists()

    def test_another_partners_session_is_as_unknown(self, client, other_headers, station):
        make_session(station)
        response = put(client, other_headers, preferences())
        assert ocpi(response) == (404, 2003, None)
        assert "Unknown session" in response.json()["status_message"]
        assert not ChargingPreferences.objects.exists()

    def test_a_bad_or_missing_token_is_401(self, client, headers, station):
        make_session(station)
        assert put(client, {}, preferences()).status_code == 401
        response = put(client, auth("nobody"), preferences())
        assert (response.status_code, response.json()["status_code"]) == (401, 2000)
        assert not ChargingPreferences.objects.exists()

    @pytest.mark.parametrize(
        "body, problem",
        [
            ("{not json", "JSON parse error"),
            ("[1, 2]", "ChargingPreferences object is expected"),
            ({"departure_time": departure()}, "profile_type"),
            (preferences(profile_type="SLOW"), "profile_type"),
            (preferences(departure_time="tomorrow"), "departure_time"),
            (preferences(energy_need="30"), "energy_need"),
            (preferences(energy_need=-1), "energy_need"),
            (preferences(energy_need=True), "energy_need"),
            (preferences(discharge_allowed="yes"), "discharge_allowed"),
            (preferences(discharge_allowed=1), "discharge_allowed"),
        ],
    )
    def test_malformed_bodies_are_200_2001(self, client, headers, station, body, problem):
        make_session(station)
        response = put(client, headers, body)
        http_status = 400 if body == "{not json" else 200  # not JSON: the transport layer; else the OCPI layer
        assert ocpi(response) == (http_status, 2001, None) and problem in response.json()["status_message"]
        assert not ChargingPreferences.objects.exists()

    def test_a_too_long_session_id_is_2001_and_other_methods_are_not_allowed(self, client, headers, station):
        long_url = f"/ocpi/2.2.1/sessions/{'X' * 37}/charging_preferences"
        assert ocpi(put(client, headers, preferences(), url=long_url))[:2] == (200, 2001)
        response = client.get(URL, **headers)
        assert (response.status_code, response.json()["status_code"]) == (405, 2000)

    def test_the_sessions_list_is_still_served(self, client, headers, station):
        make_session(station)
        response = client.get("/ocpi/2.2.1/sessions/", {"date_from": "2020-01-01T00:00:00Z"}, **headers)
        assert response.status_code == 200 and [s["id"] for s in response.json()["data"]] == ["SESSION-1"]
