"""Commands and charging profiles Receiver interfaces: what is answered at once, for good and bad requests."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ocpi_api.models import Command, PartnerStatus
from ocpp_gateway.models import GatewayProcess, Reservation
from tests.ocpi_api.factories import auth, make_partner, make_session

pytestmark = pytest.mark.django_db
RESPONSE_URL = "https://emsp.example.com/ocpi/2.2.1/results/1"
# Results are POSTed only to the partner's own hosts: these partners are registered at emsp.example.com.
PARTNER_VERSIONS_URL = "https://emsp.example.com/ocpi/versions"
OTHER_VERSIONS_URL = "https://emsp.example.com/other/ocpi/versions"


@pytest.fixture
def partner(db):
    return make_partner(token="token-of-partner-one", versions_url=PARTNER_VERSIONS_URL)


@pytest.fixture
def other_partner(db):
    return make_partner(
        token="token-of-partner-two", country_code="DE", party_id="OTH", versions_url=OTHER_VERSIONS_URL
    )


def post(client, headers, command, body):
    return client.post(
        f"/ocpi/2.2.1/commands/{command}",
        data=body if isinstance(body, str) else json.dumps(body),
        content_type="application/json",
        **headers,
    )


def token_object(**changes):
    return {
        "country_code": "NL",
        "party_id": "EXM",
        "uid": "APP-1",
        "type": "APP_USER",
        "contract_id": "NL-EXM-C1",
        "issuer": "Example",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T00:00:00Z",
        **changes,
    }


def start_body(**changes):
    return {
        "response_url": RESPONSE_URL,
        "token": token_object(),
        "location_id": "LOC-T1",
        "evse_uid": "CP-C-1",
        **changes,
    }


@pytest.fixture
def station(station_factory):
    station, _ = station_factory("CP-C")
    station.online = True
    station.ocpp_version = "1.6"
    station.save()
    return station


def ocpi(response):
    body = response.json()
    return response.status_code, body["status_code"], (body["data"] or {}).get("result")


class TestCommands:
    def test_an_accepted_command_is_answered_at_once_with_a_timeout_and_kept(self, client, headers, station):
        response = post(client, headers, "START_SESSION", start_body(authorization_reference="REF-9"))
        assert ocpi(response) == (200, 1000, "ACCEPTED")
        assert response.json()["data"]["timeout"] >= 30
        command = Command.objects.get()
        assert (command.state, command.station, command.evse.uid, command.id_tag, command.authorization_reference) == (
            "PENDING",
            station,
            "CP-C-1",
            "APP-1",
            "REF-9",
        )

    def test_a_token_longer_than_ocpp_16_allows_gets_a_stand_in_id_tag(self, client, headers, station):
        uid = "0123456789abcdef0123456789abcdef"
        post(client, headers, "START_SESSION", start_body(token=token_object(uid=uid)))
        command = Command.objects.get()
        assert len(command.id_tag) == 20 and command.id_tag != uid[:20] and command.token["uid"] == uid

    @pytest.mark.parametrize(
        "body, problem",
        [
            ("{not json", "JSON parse error"),
            ("[1, 2]", "object is expected"),
            ({"response_url": RESPONSE_URL}, "token"),
            (start_body(response_url="not a url"), "response_url"),
            (start_body(token=token_object(valid="yes")), "valid"),
            (start_body(location_id=12), "location_id"),
            (start_body(evse_uid=None, connector_id="1"), "evse_uid"),
        ],
    )
    def test_bad_bodies_are_2001(self, client, headers, station, body, problem):
        status, code, _ = ocpi(post(client, headers, "START_SESSION", body))
        assert (status, code) == (400 if body == "{not json" else 200, 2001)  # not JSON: the transport layer
        assert problem in post(client, headers, "START_SESSION", body).json()["status_message"]
        assert not Command.objects.exists()

    def test_an_unknown_command_is_2001_and_get_is_not_allowed(self, client, headers):
        assert ocpi(post(client, headers, "SELF_DESTRUCT", {"response_url": RESPONSE_URL}))[:2] == (200, 2001)
        response = client.get("/ocpi/2.2.1/commands/START_SESSION", **headers)
        assert (response.status_code, response.json()["status_code"]) == (405, 2000)

    def test_credentials_are_checked(self, client, station):
        assert post(client, {}, "START_SESSION", start_body()).status_code == 401
        assert post(client, auth("nobody"), "START_SESSION", start_body()).status_code == 401
        make_partner(token="token-a", country_code="DE", party_id="NEW", status=PartnerStatus.INVITED)
        assert post(client, auth("token-a"), "START_SESSION", start_body()).status_code == 401

    @pytest.mark.parametrize(
        "changes, what",
        [
            ({"location_id": "NOWHERE"}, "location"),
            ({"evse_uid": "NO-EVSE"}, "EVSE"),
            ({"evse_uid": "CP-C-1", "connector_id": "9"}, "connector"),
        ],
    )
    def test_unknown_locations_evses_and_connectors_are_2003_rejected(self, client, headers, station, changes, what):
        """The command endpoint exists: the request reached the OCPI layer, so HTTP 200 (status_codes.asciidoc)."""
        response = post(client, headers, "START_SESSION", start_body(**changes))
        assert ocpi(response) == (200, 2003, "REJECTED") and what in response.json()["status_message"]
        assert Command.objects.get().state == "REFUSED"

    def test_unlock_at_an_unknown_location_is_http_200_with_2003(self, client, headers, station):
        body = {"response_url": RESPONSE_URL, "location_id": "NOWHERE", "evse_uid": "CP-C-1", "connector_id": "1"}
        assert ocpi(post(client, headers, "UNLOCK_CONNECTOR", body)) == (200, 2003, "REJECTED")

    def test_another_partys_token_and_an_offline_charger_are_rejected(self, client, headers, station):
        response = post(client, headers, "START_SESSION", start_body(token=token_object(party_id="OTH")))
        assert ocpi(response) == (200, 1000, "REJECTED")
        station.online = False
        station.save()
        response = post(
            client,
            headers,
            "UNLOCK_CONNECTOR",
            {"response_url": RESPONSE_URL, "location_id": "LOC-T1", "evse_uid": "CP-C-1", "connector_id": "1"},
        )
        assert ocpi(response) == (200, 1000, "REJECTED") and "offline" in response.json()["status_message"]

    def test_a_charger_whose_gateway_process_died_is_rejected_as_offline_at_once(self, client, headers, station):
        """Still marked online (housekeeping has not run yet), but the process holding its socket stopped renewing
        its lease: REJECTED now, not a command result after the charger's timeout."""
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        GatewayProcess.objects.create(
            id="dead", host="gw", pid=1, started_at=long_ago, renewed_since=long_ago, renewed_at=long_ago
        )
        station.online, station.gateway_process = True, "dead"
        station.save()
        body = {"response_url": RESPONSE_URL, "location_id": "LOC-T1", "evse_uid": "CP-C-1", "connector_id": "1"}
        response = post(client, headers, "UNLOCK_CONNECTOR", body)
        assert ocpi(response) == (200, 1000, "REJECTED") and "offline" in response.json()["status_message"]

    def test_stop_session_knows_whose_session_it_is(self, client, headers, other_headers, station):
        make_session(station)
        assert ocpi(post(client, headers, "STOP_SESSION", {"response_url": RESPONSE_URL, "session_id": "NOPE"})) == (
            200,
            1000,
            "UNKNOWN_SESSION",
        )
        body = {"response_url": RESPONSE_URL, "session_id": "SESSION-1"}
        assert ocpi(post(client, other_headers, "STOP_SESSION", body)) == (200, 1000, "REJECTED")
        assert ocpi(post(client, headers, "STOP_SESSION", body)) == (200, 1000, "ACCEPTED")
        assert Command.objects.get(state="PENDING").transaction.transaction_id == "77"

    def test_reservations_get_our_own_ids_and_cancel_finds_only_the_partners_own(
        self, client, headers, other_headers, station
    ):
        expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        body = {
            "response_url": RESPONSE_URL,
            "token": token_object(),
            "expiry_date": expiry,
            "reservation_id": "R1",
            "location_id": "LOC-T1",
            "evse_uid": "CP-C-2",
        }
        assert ocpi(post(client, headers, "RESERVE_NOW", body))[2] == "ACCEPTED"
        assert ocpi(post(client, headers, "RESERVE_NOW", body))[2] == "ACCEPTED"  # same id: replaces it
        first, second = Command.objects.filter(command="RESERVE_NOW").order_by("id")
        # The OCPP reservationId is our Reservation's id (one reservation, replaced by the second RESERVE_NOW).
        assert first.ocpp_reservation_id == second.ocpp_reservation_id == Reservation.objects.get().pk
        past = {**body, "expiry_date": "2020-01-01T00:00:00Z"}
        assert ocpi(post(client, headers, "RESERVE_NOW", past))[:2] == (200, 2001)
        cancel = {"response_url": RESPONSE_URL, "reservation_id": "R1"}
        assert ocpi(post(client, other_headers, "CANCEL_RESERVATION", cancel)) == (200, 1000, "REJECTED")
        assert ocpi(post(client, headers, "CANCEL_RESERVATION", cancel)) == (200, 1000, "ACCEPTED")
        cancelled = Command.objects.get(command="CANCEL_RESERVATION", state="PENDING")
        assert cancelled.ocpp_reservation_id == first.ocpp_reservation_id


class TestResponseUrl:
    """We POST results to response_url with our token: only http(s), only on the host of the partner's versions URL."""

    @pytest.mark.parametrize(
        "response_url, problem",
        [
            ("https://attacker.example.net/ocpi/results/1", "not the host of your registered versions URL"),
            ("http://127.0.0.1:8000/admin/", "not the host of your registered versions URL"),
            ("ftp://emsp.example.com/results/1", "http or https"),
        ],
    )
    def test_a_foreign_host_or_a_non_http_scheme_is_2001_and_nothing_is_kept(
        self, client, headers, station, response_url, problem
    ):
        response = post(client, headers, "START_SESSION", start_body(response_url=response_url))
        assert ocpi(response) == (200, 2001, None) and problem in response.json()["status_message"]
        assert not Command.objects.exists()

    def test_the_versions_url_host_is_accepted_in_any_case_and_port(self, client, partner, headers, station):
        host = partner.versions_url.split("/")[2].split(":")[0]
        url = f"http://{host.upper()}:8443/results/7"
        assert ocpi(post(client, headers, "START_SESSION", start_body(response_url=url))) == (200, 1000, "ACCEPTED")

    def test_an_extra_endpoint_on_an_internal_host_does_not_make_it_a_response_url_host(
        self, client, partner, headers, station
    ):
        """Finding (issue 10): a partner declared one extra endpoint on an internal host, then named that host as
        response_url; we POSTed a CommandResult carrying our credentials token to an internal address."""
        partner.endpoints = [
            *partner.endpoints,
            {"identifier": "x-internal", "role": "RECEIVER", "url": "http://10.0.0.5:8105/x"},
        ]
        partner.save()
        response = post(client, headers, "START_SESSION", start_body(response_url="http://10.0.0.5:8105/admin/"))
        assert ocpi(response)[:2] == (200, 2001)
        assert "versions URL" in response.json()["status_message"]
        assert not Command.objects.exists()

    def test_a_partner_without_registered_urls_gets_2001(self, client, partner, headers, station):
        partner.versions_url = ""
        partner.save()
        response = post(client, headers, "START_SESSION", start_body())
        assert ocpi(response)[:2] == (200, 2001) and "none registered" in response.json()["status_message"]

    def test_any_host_when_the_setting_allows_it_but_still_only_http(self, client, headers, station, settings):
        settings.OCPI_RESPONSE_URL_ANY_HOST = True
        url = "https://elsewhere.example.org/results/1"
        assert ocpi(post(client, headers, "START_SESSION", start_body(response_url=url))) == (200, 1000, "ACCEPTED")
        assert ocpi(post(client, headers, "START_SESSION", start_body(response_url="ftp://elsewhere.example.org/r")))[
            :2
        ] == (200, 2001)

    def test_charging_profile_requests_are_checked_too(self, client, headers, station):
        make_session(station)
        foreign = "https://attacker.example.net/results/2"
        url = "/ocpi/2.2.1/chargingprofiles/SESSION-1"
        body = {
            "response_url": foreign,
            "charging_profile": {
                "charging_rate_unit": "A",
                "charging_profile_period": [{"start_period": 0, "limit": 16.0}],
            },
        }
        response = client.put(url, data=json.dumps(body), content_type="application/json", **headers)
        assert ocpi(response)[:2] == (200, 2001)
        assert ocpi(client.get(url, {"duration": 900, "response_url": foreign}, **headers))[:2] == (200, 2001)
        assert ocpi(client.delete(f"{url}?response_url={foreign}", **headers))[:2] == (200, 2001)
        assert not Command.objects.exists()


class TestChargingProfiles:
    URL = "/ocpi/2.2.1/chargingprofiles/SESSION-1"

    def put(self, client, headers, body, url=URL):
        return client.put(url, data=json.dumps(body), content_type="application/json", **headers)

    def profile(self, **changes):
        return {
            "response_url": RESPONSE_URL,
            "charging_profile": {
                "charging_rate_unit": "A",
                "charging_profile_period": [{"start_period": 0, "limit": 16.0}],
                **changes,
            },
        }

    def test_put_get_delete_are_answered_with_a_charging_profile_response(self, client, headers, station):
        make_session(station)
        assert ocpi(self.put(client, headers, self.profile())) == (200, 1000, "ACCEPTED")
        response = client.get(self.URL, {"duration": 900, "response_url": RESPONSE_URL}, **headers)
        assert ocpi(response) == (200, 1000, "ACCEPTED") and set(response.json()["data"]) == {"result", "timeout"}
        response = client.delete(f"{self.URL}?response_url={RESPONSE_URL}", **headers)
        assert ocpi(response) == (200, 1000, "ACCEPTED")
        assert list(Command.objects.order_by("id").values_list("command", flat=True)) == [
            "SET_CHARGING_PROFILE",
            "GET_ACTIVE_CHARGING_PROFILE",
            "CLEAR_CHARGING_PROFILE",
        ]

    @pytest.mark.parametrize(
        "changes",
        [
            {"charging_rate_unit": "kW"},
            {"charging_profile_period": []},
            {"charging_profile_period": [{"start_period": 0, "limit": "16"}]},
            {"charging_profile_period": [{"start_period": 60, "limit": 16}]},
            {"charging_profile_period": [{"start_period": 0, "limit": 16}, {"start_period": 0, "limit": 8}]},
        ],
    )
    def test_bad_profiles_are_2001(self, client, headers, station, changes):
        make_session(station)
        assert ocpi(self.put(client, headers, self.profile(**changes)))[:2] == (200, 2001)

    def test_bad_queries_unknown_and_foreign_sessions(self, client, headers, other_headers, station):
        make_session(station)
        assert ocpi(client.get(self.URL, {"response_url": RESPONSE_URL}, **headers))[:2] == (200, 2001)
        assert ocpi(client.get(self.URL, {"duration": "x", "response_url": RESPONSE_URL}, **headers))[:2] == (200, 2001)
        assert ocpi(client.delete(self.URL, **headers))[:2] == (200, 2001)
        assert ocpi(self.put(client, headers, self.profile(), url="/ocpi/2.2.1/chargingprofiles/NOPE")) == (
            200,
            1000,
            "UNKNOWN_SESSION",
        )
        assert ocpi(self.put(client, other_headers, self.profile())) == (200, 1000, "REJECTED")
        assert client.put(self.URL, data="{", content_type="application/json", **headers).status_code == 400


# --- Delivering the result -----------------------------------------------------------------------------------------


class ResultsReceiver:
    """A partner's response_url on loopback that fails with HTTP 500 `failures` times, then takes the result."""

    def __init__(self, failures: int):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.failures, self.posts = failures, []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                ok = len(receiver.posts) > receiver.failures
                body = json.dumps(
                    {
                        "data": None,
                        "status_code": 1000 if ok else 3000,
                        "status_message": "",
                        "timestamp": "2026-01-01T00:00:00Z",
                    }
                ).encode()
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/results/1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("failures,state,posts", [(1, "DELIVERED", 2), (5, "UNDELIVERED", 3)])
def test_a_result_is_delivered_by_a_celery_task_that_retries(partner, failures, state, posts):
    """Celery's retry (2 s, then 4 s, on a worker; at once when run eagerly), three attempts in all."""
    from ocpi_api.commands.tasks import command_result_deliver_task

    partner.outgoing_token = "token-we-present"
    partner.save()
    receiver = ResultsReceiver(failures)
    try:
        cmd = Command.objects.create(
            partner=partner,
            command="START_SESSION",
            request={},
            response_url=receiver.url,
            response="ACCEPTED",
            state="ANSWERED",
            result="ACCEPTED",
            result_body={"result": "ACCEPTED"},
        )
        command_result_deliver_task.apply(args=(cmd.pk,))
    finally:
        receiver.stop()
    cmd.refresh_from_db()
    assert (cmd.state, cmd.delivery_attempts, len(receiver.posts)) == (state, posts, posts)
    assert receiver.posts[-1] == {"result": "ACCEPTED"}
    assert (command_result_deliver_task.max_retries, command_result_deliver_task.retry_backoff) == (2, 2)


@pytest.mark.parametrize("transaction_pk", [1, 899_999, 900_000, 900_002, 999_999_999, 1_000_000_001])
def test_a_partners_profile_id_is_never_one_the_planner_or_staff_use(transaction_pk):
    """A partner's TxProfile shares the charger with the load planner's profiles and staff's: an id in common would
    make one replace the other on the charger. Transaction 900,002 used to get the planner's id of EVSE 2."""
    from cpo.dashboard.services import STAFF_CHARGING_PROFILE_ID_BASE
    from ocpi_api.commands.send import partner_charging_profile_id
    from ocpp_gateway.services.load_management import PLANNER_DEFAULT_PROFILE_ID, PLANNER_TX_PROFILE_ID_BASE

    profile_id = partner_charging_profile_id(transaction_pk=transaction_pk)
    assert PLANNER_TX_PROFILE_ID_BASE + 10_000 < profile_id < STAFF_CHARGING_PROFILE_ID_BASE
    assert profile_id != PLANNER_DEFAULT_PROFILE_ID and profile_id < 2**31
