"""Partner isolation, tried from the outside: EMSP A (NL/EXM) has data in every module (tokens it pushed, sessions
and a CDR of its token, commands, a reservation, a charging profile request, charging preferences, pushes queued for
it); EMSP B (NL/EX2), with its own valid token, calls every endpoint and method we serve with its own party in the
URL, with A's, with routing headers naming A or a stranger, and with roles it declared for itself (A's party, SCSP,
HUB). For every (module, method, variant): B's answer carries none of A's ids it did not send itself, no command of B
against A's objects is carried out, and A's rows (fields and last_updated) and A's outbox are exactly as before."""

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from billing.models import Cdr, Session
from billing.services import transaction_bill
from cpo.models import ChargingStation
from ocpi_api.authorization import partner_token_authorize
from ocpi_api.models import (
    ChargingPreferences,
    ClientInfo,
    Command,
    CommandState,
    CommandType,
    OutboxMessage,
    Partner,
    PartnerToken,
    Role,
)
from ocpi_api.services import partner_token_put
from ocpp_gateway.authorization import AuthorizationRequest
from tests.ocpi_api.factories import EMSP_TOKEN, auth, make_partner, make_session, start, stop

pytestmark = pytest.mark.django_db

A_PARTY = ("NL", "EXM")
B_PARTY = ("NL", "EX2")
A_CONTRACT = "NL-EXM-C00000001-X"
A_LIVE_SESSION = "A-LIVE-SESSION-1"
A_RESERVATION = "A-RESERVATION-1"
A_HOST = "a-emsp.example"
B_RESPONSE_URL = "http://b-emsp.example/ocpi/results/1"


@dataclass
class World:
    a: Partner
    b: Partner
    b_token: str
    location_id: str
    evse_uid: str
    ended_session_id: str
    cdr_id: str

    def a_ids(self) -> set[str]:
        """What identifies A's data: nothing of it may reach B unless B put it in its own request."""
        return {
            EMSP_TOKEN,
            A_CONTRACT,
            A_LIVE_SESSION,
            self.ended_session_id,
            self.cdr_id,
            A_RESERVATION,
            A_HOST,
        }


@pytest.fixture
def world(session_station, emsp_token) -> World:
    a = make_partner(token="token-of-a", country_code="NL", party_id="EXM", versions_url=f"http://{A_HOST}/versions")
    b = make_partner(token="token-of-b", country_code="NL", party_id="EX2", versions_url="http://b-emsp.example/v")
    # A's token, pushed to us (tokens Receiver).
    partner_token_put(
        partner=a,
        country_code="NL",
        party_id="EXM",
        uid=EMSP_TOKEN,
        token_type="RFID",
        token={
            "country_code": "NL",
            "party_id": "EXM",
            "uid": EMSP_TOKEN,
            "type": "RFID",
            "contract_id": A_CONTRACT,
            "issuer": "A",
            "valid": True,
            "whitelist": "ALLOWED",
            "last_updated": timezone.now(),
        },
    )
    # An ended, billed session of A's token with its CDR (sessions and cdrs Sender).
    tx = start(session_station)
    stop(session_station, tx, 20, 5000)
    transaction_bill(transaction_pk=tx.pk)
    ended = Session.objects.get(transaction=tx)
    cdr = Cdr.objects.get(session=ended)
    # A live session of A's token on the other EVSE, on a charger that is online: a command on it would be carried out.
    ChargingStation.objects.filter(pk=session_station.pk).update(online=True)
    live = make_session(session_station, party_id="EXM", session_id=A_LIVE_SESSION, transaction_id="78")
    live_tx = live.transaction
    live_tx.evse = session_station.evses.order_by("pk").last()
    live_tx.save()
    a_url = f"http://{A_HOST}/results"
    Command.objects.create(
        partner=a,
        command=CommandType.STOP_SESSION,
        request={"session_id": A_LIVE_SESSION, "response_url": f"{a_url}/1"},
        response_url=f"{a_url}/1",
        response="ACCEPTED",
        state=CommandState.PENDING,
        session_id=A_LIVE_SESSION,
        transaction=live_tx,
        station=session_station,
    )
    Command.objects.create(
        partner=a,
        command=CommandType.RESERVE_NOW,
        request={"reservation_id": A_RESERVATION, "response_url": f"{a_url}/2"},
        response_url=f"{a_url}/2",
        response="ACCEPTED",
        state=CommandState.PENDING,
        reservation_id=A_RESERVATION,
        ocpp_reservation_id=4711,
        station=session_station,
    )
    Command.objects.create(
        partner=a,
        command=CommandType.SET_CHARGING_PROFILE,
        request={"charging_profile": {"charging_rate_unit": "W"}, "response_url": f"{a_url}/3"},
        response_url=f"{a_url}/3",
        response="ACCEPTED",
        state=CommandState.PENDING,
        session_id=A_LIVE_SESSION,
        transaction=live_tx,
        station=session_station,
    )
    ChargingPreferences.objects.create(
        partner=a,
        session_id=A_LIVE_SESSION,
        transaction=live_tx,
        evse=live_tx.evse,
        profile_type="FAST",
        response="ACCEPTED",
        request={"profile_type": "FAST"},
    )
    ClientInfo.objects.create(
        partner=a, country_code="NL", party_id="EXM", role="EMSP", status="CONNECTED", last_updated=timezone.now()
    )
    now = timezone.now()
    OutboxMessage.objects.create(
        partner=a,
        module="sessions",
        method="PUT",
        path=f"NL/CPO/{A_LIVE_SESSION}",
        body={},
        object_key=A_LIVE_SESSION,
        order_key=A_LIVE_SESSION,
        due_at=now,
        next_attempt_at=now + timedelta(hours=1),
        give_up_at=now + timedelta(days=1),
        correlation_id="a-correlation",
    )
    return World(
        a=a,
        b=b,
        b_token="token-of-b",
        location_id=session_station.location_id,
        evse_uid=live_tx.evse.uid,
        ended_session_id=ended.id,
        cdr_id=cdr.id,
    )


def snapshot_of_a(world: World) -> dict:
    """Every row of A's data, every field (last_updated included)."""

    def rows(queryset):
        return sorted((json.dumps(model_to_dict(row), sort_keys=True, default=str) for row in queryset), key=str)

    a = world.a
    parties = [(c.upper(), p.upper()) for c, p in [A_PARTY]]
    return {
        "partner": rows(Partner.objects.filter(pk=a.pk)),
        "parties": sorted(a.party_ids()),
        "tokens": rows(PartnerToken.objects.filter(country_code__iexact="NL", party_id__iexact="EXM")),
        "token_owners": sorted(
            PartnerToken.objects.filter(uid__iexact=EMSP_TOKEN).values_list("partner_id", "country_code", "party_id")
        ),
        "sessions": rows(Session.objects.filter(emsp_party_id__in=[p for _, p in parties])),
        "cdrs": rows(Cdr.objects.filter(emsp_party_id__in=[p for _, p in parties])),
        "commands": rows(Command.objects.filter(partner=a)),
        "preferences": rows(
            ChargingPreferences.objects.filter(session_id__in=[A_LIVE_SESSION, world.ended_session_id])
        ),
        "client_info": rows(ClientInfo.objects.filter(partner=a)),
        "outbox": rows(OutboxMessage.objects.filter(partner=a)),
    }


# --- Every endpoint and method, as B ------------------------------------------------------------------------------


def _token_body(party) -> dict:
    return {
        "country_code": party[0],
        "party_id": party[1],
        "uid": EMSP_TOKEN,
        "type": "RFID",
        "contract_id": "NL-EX2-C99999999-X",
        "issuer": "B",
        "valid": False,
        "whitelist": "NEVER",
        "last_updated": "2026-12-01T10:00:00Z",
    }


def _a_token_object(party) -> dict:
    """A's card (uid and contract) as a Token object, under `party`."""
    return {**_token_body(party), "contract_id": A_CONTRACT, "issuer": "A", "valid": True, "whitelist": "ALLOWED"}


def _client_info(party) -> dict:
    return {"party_id": party[1], "country_code": party[0], "role": "EMSP", "status": "SUSPENDED",
            "last_updated": "2026-12-01T10:00:00Z"}  # fmt: skip


SET_PROFILE = {
    "charging_profile": {"charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0, "limit": 1.0}]},
    "response_url": B_RESPONSE_URL,
}

# (module, method, name) -> (world, party in the URL) -> (path, body); the party is B's or A's depending on the variant.
CALLS = {
    ("versions", "GET", "list"): lambda w, p: ("/ocpi/versions", None),
    ("versions", "GET", "details"): lambda w, p: ("/ocpi/2.2.1", None),
    ("credentials", "GET", "object"): lambda w, p: ("/ocpi/2.2.1/credentials", None),
    ("credentials", "POST", "object"): lambda w, p: ("/ocpi/2.2.1/credentials", {}),
    ("credentials", "DELETE", "object"): lambda w, p: ("/ocpi/2.2.1/credentials", None),
    ("locations", "GET", "list"): lambda w, p: ("/ocpi/2.2.1/locations", None),
    ("locations", "GET", "object"): lambda w, p: (f"/ocpi/2.2.1/locations/{w.location_id}/{w.evse_uid}/1", None),
    ("tariffs", "GET", "list"): lambda w, p: ("/ocpi/2.2.1/tariffs", None),
    ("tokens", "GET", "module"): lambda w, p: ("/ocpi/2.2.1/tokens", None),
    ("tokens", "GET", "object"): lambda w, p: (f"/ocpi/2.2.1/tokens/{p[0]}/{p[1]}/{EMSP_TOKEN}?type=RFID", None),
    ("tokens", "PUT", "object"): lambda w, p: (f"/ocpi/2.2.1/tokens/{p[0]}/{p[1]}/{EMSP_TOKEN}", _token_body(p)),
    ("tokens", "PATCH", "object"): lambda w, p: (
        f"/ocpi/2.2.1/tokens/{p[0]}/{p[1]}/{EMSP_TOKEN}",
        {"valid": False, "last_updated": "2026-12-01T10:00:00Z"},
    ),
    ("tokens", "POST", "object"): lambda w, p: (f"/ocpi/2.2.1/tokens/{p[0]}/{p[1]}/{EMSP_TOKEN}", _token_body(p)),
    ("tokens", "DELETE", "object"): lambda w, p: (f"/ocpi/2.2.1/tokens/{p[0]}/{p[1]}/{EMSP_TOKEN}", None),
    ("sessions", "GET", "list"): lambda w, p: ("/ocpi/2.2.1/sessions?date_from=2020-01-01T00:00:00Z", None),
    ("sessions", "GET", "object"): lambda w, p: (f"/ocpi/2.2.1/sessions/{A_LIVE_SESSION}", None),
    ("sessions", "PUT", "charging_preferences"): lambda w, p: (
        f"/ocpi/2.2.1/sessions/{A_LIVE_SESSION}/charging_preferences",
        {"profile_type": "REGULAR"},
    ),
    ("cdrs", "GET", "list"): lambda w, p: ("/ocpi/2.2.1/cdrs", None),
    ("cdrs", "GET", "object"): lambda w, p: (f"/ocpi/2.2.1/cdrs/{w.cdr_id}", None),
    ("commands", "POST", "START_SESSION"): lambda w, p: (
        "/ocpi/2.2.1/commands/START_SESSION",
        {
            "response_url": B_RESPONSE_URL,
            "token": _a_token_object(p),
            "location_id": w.location_id,
            "evse_uid": w.evse_uid,
            "connector_id": "1",
        },
    ),  # fmt: skip
    ("commands", "POST", "STOP_SESSION"): lambda w, p: (
        "/ocpi/2.2.1/commands/STOP_SESSION",
        {"response_url": B_RESPONSE_URL, "session_id": A_LIVE_SESSION},
    ),
    ("commands", "POST", "RESERVE_NOW"): lambda w, p: (
        "/ocpi/2.2.1/commands/RESERVE_NOW",
        {
            "response_url": B_RESPONSE_URL,
            "token": _a_token_object(p),
            "location_id": w.location_id,
            "evse_uid": w.evse_uid,
            "reservation_id": "B-RES-1",
            "expiry_date": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    ),  # fmt: skip
    ("commands", "POST", "CANCEL_RESERVATION"): lambda w, p: (
        "/ocpi/2.2.1/commands/CANCEL_RESERVATION",
        {"response_url": B_RESPONSE_URL, "reservation_id": A_RESERVATION},
    ),
    ("commands", "POST", "UNLOCK_CONNECTOR"): lambda w, p: (
        "/ocpi/2.2.1/commands/UNLOCK_CONNECTOR",
        {"response_url": B_RESPONSE_URL, "location_id": w.location_id, "evse_uid": w.evse_uid, "connector_id": "1"},
    ),
    ("commands", "GET", "module"): lambda w, p: ("/ocpi/2.2.1/commands/STOP_SESSION", None),
    ("chargingprofiles", "GET", "object"): lambda w, p: (
        f"/ocpi/2.2.1/chargingprofiles/{A_LIVE_SESSION}?duration=900&response_url={B_RESPONSE_URL}",
        None,
    ),
    ("chargingprofiles", "PUT", "object"): lambda w, p: (f"/ocpi/2.2.1/chargingprofiles/{A_LIVE_SESSION}", SET_PROFILE),
    ("chargingprofiles", "DELETE", "object"): lambda w, p: (
        f"/ocpi/2.2.1/chargingprofiles/{A_LIVE_SESSION}?response_url={B_RESPONSE_URL}",
        None,
    ),
    ("chargingprofiles", "POST", "object"): lambda w, p: (
        f"/ocpi/2.2.1/chargingprofiles/{A_LIVE_SESSION}",
        SET_PROFILE,
    ),
    ("hubclientinfo", "GET", "object"): lambda w, p: (f"/ocpi/2.2.1/hubclientinfo/{p[0]}/{p[1]}", None),
    ("hubclientinfo", "PUT", "object"): lambda w, p: (f"/ocpi/2.2.1/hubclientinfo/{p[0]}/{p[1]}", _client_info(p)),
    ("hubclientinfo", "PATCH", "object"): lambda w, p: (f"/ocpi/2.2.1/hubclientinfo/{p[0]}/{p[1]}", _client_info(p)),
}


def _routing(direction: str, party) -> dict:
    return {
        f"HTTP_OCPI_{direction.upper()}_COUNTRY_CODE": party[0],
        f"HTTP_OCPI_{direction.upper()}_PARTY_ID": party[1],
    }


def _declare_roles(b: Partner, *roles: dict) -> None:
    """What B put in its credentials' roles (its claimed parties stay its own: PartnerParty refuses A's)."""
    b.roles = [*b.roles, *roles]
    b.save()


# variant -> (party in the URL, extra headers, what B declared about itself)
VARIANTS = {
    "own_party": (B_PARTY, {}, ()),
    "a_party_in_url": (A_PARTY, {}, ()),
    "from_a": (A_PARTY, _routing("from", A_PARTY), ()),
    "to_a": (A_PARTY, _routing("to", A_PARTY), ()),
    "to_stranger": (A_PARTY, _routing("to", ("DE", "XYZ")), ()),
    "roles_naming_a": (
        A_PARTY,
        _routing("from", A_PARTY),
        ({"role": "EMSP", "country_code": "NL", "party_id": "EXM", "business_details": {"name": "Not A"}},),
    ),
    "role_scsp": (
        A_PARTY,
        {},
        ({"role": Role.SCSP, "country_code": "NL", "party_id": "EX2", "business_details": {"name": "B"}},),
    ),
    "role_hub": (
        A_PARTY,
        _routing("from", A_PARTY),
        ({"role": Role.HUB, "country_code": "NL", "party_id": "EX2", "business_details": {"name": "B"}},),
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("call", list(CALLS), ids=lambda c: "-".join(c))
def test_a_second_partner_reads_and_writes_nothing_of_the_first(client, world, call, variant):
    party, headers, roles = VARIANTS[variant]
    _declare_roles(world.b, *roles)
    if variant == "role_hub":
        # The hub told us A's party is behind it, so OCPI-from A passes the routing check; it still owns nothing of A's.
        ClientInfo.objects.create(
            partner=world.b,
            country_code="NL",
            party_id="EXM",
            role="EMSP",
            status="CONNECTED",
            last_updated=timezone.now(),
        )
    before = snapshot_of_a(world)
    commands_before = set(Command.objects.values_list("pk", flat=True))
    _, method, _ = call
    path, body = CALLS[call](world, party)

    response = client.generic(
        method,
        path,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        **auth(world.b_token),
        **headers,
    )

    assert response.status_code < 500, response.content
    sent = path + json.dumps(body or {})
    leaked = {an_id for an_id in world.a_ids() if an_id.lower() not in sent.lower()}
    answer = response.content.decode().lower()
    assert not [an_id for an_id in leaked if an_id.lower() in answer], response.content
    assert snapshot_of_a(world) == before
    carried_out = [
        (c.command, c.state, c.response)
        for c in Command.objects.exclude(pk__in=commands_before)
        if c.state != CommandState.REFUSED
        and (
            c.transaction_id is not None
            or (c.evse is not None and c.evse.uid == world.evse_uid)  # where A's driver is charging
            or any(a.lower() in json.dumps(c.request).lower() for a in world.a_ids())
        )
    ]
    assert carried_out == [], f"B's command on A's objects was accepted: {carried_out}"


def test_the_first_partner_itself_reaches_all_of_it(client, world):
    """The matrix is not vacuous: with A's own token the same data is there."""
    a = auth("token-of-a")
    token = client.get(f"/ocpi/2.2.1/tokens/NL/EXM/{EMSP_TOKEN}", **a).json()
    assert token["status_code"] == 1000 and token["data"]["contract_id"] == A_CONTRACT
    sessions = client.get("/ocpi/2.2.1/sessions?date_from=2020-01-01T00:00:00Z", **a).json()["data"]
    assert {s["id"] for s in sessions} == {A_LIVE_SESSION, world.ended_session_id}
    assert [c["id"] for c in client.get("/ocpi/2.2.1/cdrs", **a).json()["data"]] == [world.cdr_id]
    stop = client.post(
        "/ocpi/2.2.1/commands/STOP_SESSION",
        data={"response_url": f"http://{A_HOST}/r/9", "session_id": A_LIVE_SESSION},
        content_type="application/json",
        **a,
    ).json()
    assert stop["data"]["result"] == "ACCEPTED", stop
    profile = client.put(
        f"/ocpi/2.2.1/chargingprofiles/{A_LIVE_SESSION}",
        data={**SET_PROFILE, "response_url": f"http://{A_HOST}/r/10"},
        content_type="application/json",
        **a,
    ).json()
    assert profile["data"]["result"] == "ACCEPTED", profile


# --- The leaks the matrix found, as the partners would notice them -----------------------------------------------


def test_a_second_partner_cannot_push_the_first_partners_card_under_its_own_party(client):
    """A charger only sends the card's uid: whoever holds the uid gets the driver's sessions and CDRs. B pushing A's
    card uid (valid, whitelist ALWAYS) under its own party is refused, and A's driver stays A's."""
    a = make_partner(token="token-of-a", country_code="NL", party_id="EXM")
    make_partner(token="token-of-b", country_code="NL", party_id="EX2")
    assert (
        client.put(
            f"/ocpi/2.2.1/tokens/NL/EXM/{EMSP_TOKEN}",
            data={**_a_token_object(A_PARTY), "whitelist": "ALWAYS"},
            content_type="application/json",
            **auth("token-of-a"),
        ).json()["status_code"]
        == 1000
    )

    answer = client.put(
        f"/ocpi/2.2.1/tokens/NL/EX2/{EMSP_TOKEN.lower()}",
        data={**_token_body(B_PARTY), "uid": EMSP_TOKEN.lower(), "valid": True, "whitelist": "ALWAYS"},
        content_type="application/json",
        **auth("token-of-b"),
    ).json()

    assert answer["status_code"] == 2001, answer
    assert list(PartnerToken.objects.values_list("partner", flat=True)) == [a.pk]
    result = partner_token_authorize(AuthorizationRequest(id_tag=EMSP_TOKEN, station_identity="CP-SESS"))
    assert result is not None and result.source == f"partner:{a.pk}" and result.party_id == "EXM"


def test_a_second_partner_cannot_remote_start_with_the_first_partners_card(client, session_station):
    """A START_SESSION with A's card uid under B's party would make that idTag B's at the charger for 15 minutes."""
    make_partner(token="token-of-a", country_code="NL", party_id="EXM")
    make_partner(token="token-of-b", country_code="NL", party_id="EX2", versions_url="http://b-emsp.example/v")
    client.put(
        f"/ocpi/2.2.1/tokens/NL/EXM/{EMSP_TOKEN}",
        data=_a_token_object(A_PARTY),
        content_type="application/json",
        **auth("token-of-a"),
    )
    ChargingStation.objects.filter(pk=session_station.pk).update(online=True)
    evse = session_station.evses.first()

    answer = client.post(
        "/ocpi/2.2.1/commands/START_SESSION",
        data={
            "response_url": B_RESPONSE_URL,
            "token": {**_a_token_object(B_PARTY), "contract_id": "NL-EX2-C1"},
            "location_id": session_station.location_id,
            "evse_uid": evse.uid,
        },  # fmt: skip
        content_type="application/json",
        **auth("token-of-b"),
    ).json()

    assert answer["data"]["result"] == "REJECTED", answer
    assert not Command.objects.exclude(state=CommandState.REFUSED).exists()


def test_a_self_declared_scsp_role_does_not_open_other_partners_sessions(client, world):
    """Any partner can write SCSP into its credentials' roles; that alone does not let it read or set the charging
    profile of another partner's session."""
    _declare_roles(world.b, {"role": Role.SCSP, "country_code": "NL", "party_id": "EX2", "business_details": {}})
    world.b.role = Role.SCSP
    world.b.save()

    answer = client.put(
        f"/ocpi/2.2.1/chargingprofiles/{A_LIVE_SESSION}",
        data=SET_PROFILE,
        content_type="application/json",
        **auth(world.b_token),
    ).json()

    assert answer["data"]["result"] == "REJECTED", answer


def test_a_second_partner_cannot_unlock_the_connector_of_the_first_partners_ongoing_session(client, world):
    """Unlocking the cable of a car that is charging ends that driver's session: only its own eMSP may ask."""
    unlock = {"response_url": B_RESPONSE_URL, "location_id": world.location_id, "evse_uid": world.evse_uid}

    answer = client.post(
        "/ocpi/2.2.1/commands/UNLOCK_CONNECTOR",
        data={**unlock, "connector_id": "1"},
        content_type="application/json",
        **auth(world.b_token),
    ).json()

    assert answer["data"]["result"] == "REJECTED", answer
    assert not Command.objects.filter(partner=world.b).exclude(state=CommandState.REFUSED).exists()
    free_evse = ChargingStation.objects.get(location_id=world.location_id).evses.exclude(uid=world.evse_uid).first()
    free = client.post(
        "/ocpi/2.2.1/commands/UNLOCK_CONNECTOR",
        data={**unlock, "evse_uid": free_evse.uid, "connector_id": "1"},
        content_type="application/json",
        **auth(world.b_token),
    ).json()
    assert free["data"]["result"] == "ACCEPTED", free
    own = client.post(
        "/ocpi/2.2.1/commands/UNLOCK_CONNECTOR",
        data={**unlock, "connector_id": "1", "response_url": f"http://{A_HOST}/r/11"},
        content_type="application/json",
        **auth("token-of-a"),
    ).json()
    assert own["data"]["result"] == "ACCEPTED", own
