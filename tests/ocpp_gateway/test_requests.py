"""The gateway's request builders: one per command, a form per OCPP version, each fitting the official schema; the
one mapping of OCPI token types to idToken types; the dashboard and OCPI commands build the same requests."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import ocpp
import pytest
from ocpp.messages import Call

from ocpi_api.commands.send import command_request
from ocpi_api.models import Command, CommandState, CommandType
from ocpp_gateway.handlers.validation import payload_validate
from ocpp_gateway.id_tokens import (
    ID_TOKEN_TYPE_OF_TOKEN_TYPE,
    TOKEN_TYPES_OF_ID_TOKEN_TYPE,
    id_token_type_for,
    token_type_for,
    token_types_for,
)
from ocpp_gateway.requests import (
    REQUESTS,
    CancelReservation,
    ChangeAvailability,
    ChangeConfiguration,
    ChargingSchedule,
    ChargingSchedulePeriod,
    ClearChargingProfile,
    GetBaseReport,
    GetCompositeSchedule,
    GetConfiguration,
    GetDiagnostics,
    GetLocalListVersion,
    LocalListEntry,
    RemoteStart,
    RemoteStop,
    ReserveNow,
    Reset,
    SendLocalList,
    SetChargingProfile,
    TriggerMessage,
    UnlockConnector,
    UpdateFirmware,
    charging_profile_purpose,
    request_from_arguments,
)
from ocpp_gateway.selectors import connector_ocpp_id

EXPIRY = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
SCHEDULE = ChargingSchedule(
    charging_rate_unit="A",
    periods=(ChargingSchedulePeriod(start_period=0, limit=16), ChargingSchedulePeriod(start_period=600, limit=8.25)),
    duration=3600,
    start_schedule=EXPIRY,
    min_charging_rate=6,
)
# Every builder, with arguments a caller would give it.
EXAMPLES = [
    RemoteStart(id_tag="RFID-1", token_type="RFID", evse_id=1, remote_start_id=7, group_id="GROUP-1"),
    RemoteStart(id_tag="APP-USER-1"),
    RemoteStop(transaction_id="42"),
    Reset(hard=True),
    Reset(),
    UnlockConnector(evse_id=2, connector_id=1),
    ChangeAvailability(operative=False, evse_id=1),
    ChangeAvailability(),
    TriggerMessage(message="StatusNotification", evse_id=1),
    TriggerMessage(message="Heartbeat"),
    GetConfiguration(keys=("OCPPCommCtrlr.HeartbeatInterval",)),
    ChangeConfiguration(key="OCPPCommCtrlr.HeartbeatInterval", value="300"),
    ChangeConfiguration(
        key="EVSE.Power", value="11000", evse_id=1, connector_id=1, variable_instance="L1", attribute_type="MaxSet"
    ),
    GetBaseReport(request_id=7),
    ReserveNow(reservation_id=3, expiry=EXPIRY, id_tag="RFID-1", token_type="RFID", evse_id=1, group_id="G-1"),
    ReserveNow(reservation_id=4, expiry="2026-11-20T10:30:00Z", id_tag="APP-1", token_type="APP_USER"),
    CancelReservation(reservation_id=3),
    SetChargingProfile(evse_id=1, transaction_id="42", profile_id=42, schedule=SCHEDULE),
    SetChargingProfile(
        evse_id=0, transaction_id=None, profile_id=7, schedule=SCHEDULE, purpose="ChargePointMaxProfile", stack_level=2
    ),
    GetCompositeSchedule(evse_id=1, duration=600),
    GetCompositeSchedule(evse_id=0, duration=3600, charging_rate_unit="W"),
    ClearChargingProfile(profile_id=42),
    SendLocalList(
        version=3,
        entries=(
            LocalListEntry(id_tag="RFID-1", status="Accepted", expiry_date=EXPIRY, group_id="G-1"),
            LocalListEntry(id_tag="APP-1", status="Blocked", token_type="APP_USER"),
        ),
    ),
    SendLocalList(version=4, entries=(LocalListEntry(id_tag="RFID-1", status=None),), full=False),
    SendLocalList(version=5),
    GetLocalListVersion(),
    GetDiagnostics(location="https://cpo.example/ocpp-uploads/t0k3n/", request_id=7),
    GetDiagnostics(
        location="https://cpo.example/ocpp-uploads/t0k3n/",
        request_id=8,
        log_type="SecurityLog",
        retries=2,
        retry_interval=60,
        start_time=EXPIRY,
        stop_time=EXPIRY,
    ),
    UpdateFirmware(location="https://cpo.example/ocpp-firmware/x/fw.bin", request_id=9, retrieve_date=EXPIRY),
    UpdateFirmware(
        location="https://cpo.example/ocpp-firmware/x/fw.bin",
        request_id=10,
        retrieve_date=EXPIRY,
        signing_certificate="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        signature="c2lnbmF0dXJl",
        retries=3,
        retry_interval=120,
    ),
]


def schema_of(action: str, version: str) -> dict:
    folder = "v" + version.replace(".", "")
    name = action if version == "1.6" else f"{action}Request"
    path = Path(ocpp.__file__).parent / folder / "schemas" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8-sig"))


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
@pytest.mark.parametrize("request_", EXAMPLES, ids=lambda r: type(r).__name__)
def test_every_builder_writes_a_request_that_fits_the_official_schema_of_each_version(request_, version):
    action, payload = request_.for_version(version)
    asyncio.run(payload_validate(Call("1", action, payload), version))  # raises the spec's error when it does not fit


def test_every_command_has_a_builder():
    # (Builders the platform's own services use, e.g. SendLocalList, are not named for the command line.)
    assert set(REQUESTS.values()) <= {type(r) for r in EXAMPLES}


def test_each_version_gets_its_own_names():
    assert RemoteStart(id_tag="X", evse_id=1).for_version("1.6") == (
        "RemoteStartTransaction",
        {"idTag": "X", "connectorId": 1},
    )
    assert RemoteStart(id_tag="X", token_type="RFID", evse_id=1, remote_start_id=5).for_version("2.0.1") == (
        "RequestStartTransaction",
        {"idToken": {"idToken": "X", "type": "ISO14443"}, "remoteStartId": 5, "evseId": 1},
    )
    assert RemoteStop(transaction_id="42").for_version("") == ("RemoteStopTransaction", {"transactionId": 42})
    assert RemoteStop(transaction_id="42").for_version("2.0.1") == ("RequestStopTransaction", {"transactionId": "42"})
    assert Reset(hard=False).for_version("1.6").payload == {"type": "Soft"}
    assert Reset(hard=False).for_version("2.1").payload == {"type": "OnIdle"}
    assert GetConfiguration().for_version("1.6") == ("GetConfiguration", {})
    assert GetBaseReport(request_id=7).for_version("1.6") == ("GetConfiguration", {})
    assert GetBaseReport(request_id=7).for_version("2.0.1") == (
        "GetBaseReport",
        {"requestId": 7, "reportBase": "FullInventory"},
    )
    assert ChangeConfiguration(key="A.B", value="1").for_version("2.0.1") == (
        "SetVariables",
        {"setVariableData": [{"attributeValue": "1", "component": {"name": "A"}, "variable": {"name": "B"}}]},
    )
    assert (
        ReserveNow(reservation_id=1, expiry=EXPIRY, id_tag="X" * 21, group_id="G" * 21)
        .for_version("1.6")
        .payload["expiryDate"]
        == "2026-11-20T10:30:00Z"
    )
    assert (
        "parentIdTag"
        not in ReserveNow(reservation_id=1, expiry=EXPIRY, id_tag="X", group_id="G" * 21).for_version("1.6").payload
    )  # 1.6 idTags are at most 20 characters
    profile16 = SetChargingProfile(evse_id=1, transaction_id="42", profile_id=42, schedule=SCHEDULE).for_version("1.6")
    assert profile16.payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][1]["limit"] == 8.2
    assert profile16.payload["csChargingProfiles"]["chargingProfileKind"] == "Absolute"


def test_unlock_connector_201_names_the_evse_and_its_connector_as_the_schema_requires():
    schema = schema_of("UnlockConnector", "2.0.1")
    assert set(schema["required"]) == {"evseId", "connectorId"}
    assert UnlockConnector(evse_id=2, connector_id=3).for_version("2.0.1").payload == {"evseId": 2, "connectorId": 3}
    assert UnlockConnector(evse_id=2, connector_id=3).for_version("1.6").payload == {"connectorId": 2}


def test_one_mapping_of_ocpi_token_types_to_id_token_types():
    assert id_token_type_for(token_type="RFID") == "ISO14443"
    assert id_token_type_for(token_type="APP_USER") == id_token_type_for(token_type="OTHER") == "Central"
    for token_type, id_token_type in ID_TOKEN_TYPE_OF_TOKEN_TYPE.items():
        assert token_type in token_types_for(id_token_type=id_token_type)  # the way back finds it
    assert token_types_for(id_token_type="NoSuchType") == TOKEN_TYPES_OF_ID_TOKEN_TYPE[""]
    assert [token_type_for(id_token_type=t) for t in ("", "ISO14443", "Central", "eMAID", "KeyCode", "Odd")] == [
        "RFID",
        "RFID",
        "APP_USER",
        "APP_USER",
        "OTHER",
        "OTHER",
    ]


def test_the_command_line_names_a_builder_and_its_arguments():
    assert request_from_arguments("reset", {"hard": True}) == Reset(hard=True)
    assert request_from_arguments("get-configuration", {"keys": ["A"]}) == GetConfiguration(keys=("A",))
    profile = request_from_arguments(
        "set-charging-profile",
        {
            "evse_id": 1,
            "transaction_id": "9",
            "profile_id": 9,
            "schedule": {"charging_rate_unit": "W", "periods": [{"start_period": 0, "limit": 11000}]},
        },
    )
    assert profile.for_version("2.0.1").payload["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] == "W"
    for name, arguments in (("make-coffee", {}), ("reset", {"gently": True}), ("unlock", {})):
        with pytest.raises(ValueError):  # noqa: PT011 - three different refusals, each its own message
            request_from_arguments(name, arguments)


@pytest.mark.django_db
def test_the_dashboard_and_ocpi_unlock_the_same_connector_of_a_201_station(station_factory):
    from cpo.dashboard.forms import UnlockConnectorForm
    from ocpi_api.models import Partner

    station, _ = station_factory("CS-UNLOCK-201", evses=2)
    station.ocpp_version = "2.0.1"
    station.save()
    evse = station.evses.get(ocpp_evse_id=2)
    form = UnlockConnectorForm({"evse": "2"}, station=station)
    assert form.is_valid(), form.errors
    partner = Partner.objects.create(name="p", country_code="NL", party_id="EXM", version="2.2.1")
    cmd = Command.objects.create(
        partner=partner,
        command=CommandType.UNLOCK_CONNECTOR,
        request={},
        response_url="https://x.test/r",
        state=CommandState.PENDING,
        station=station,
        evse=evse,
        connector_id="1",
    )
    assert (
        form.request().for_version(station.ocpp_version)
        == command_request(cmd).for_version(station.ocpp_version)
        == ("UnlockConnector", {"evseId": 2, "connectorId": 1})
    )


@pytest.mark.django_db
def test_the_201_connector_id_of_a_connector(station_factory):
    from cpo.models import Connector

    station, _ = station_factory("CS-CONNECTORS", evses=1)
    evse = station.evses.get()
    Connector.objects.create(evse=evse, connector_id="2")
    assert connector_ocpp_id(evse=evse) == 1
    assert connector_ocpp_id(evse=evse, connector_id="2") == 2
    evse.connectors.all().delete()
    Connector.objects.create(evse=evse, connector_id="TYPE2-LEFT")
    Connector.objects.create(evse=evse, connector_id="TYPE2-RIGHT")
    assert connector_ocpp_id(evse=evse, connector_id="type2-right") == 2  # its place when the id is no number
    assert connector_ocpp_id(evse=evse) == 1


@pytest.mark.django_db
def test_ocpi_commands_are_built_by_the_gateway(station_factory):
    from ocpi_api.models import Partner

    station, _ = station_factory("CS-OCPI-BUILD", evses=1)
    evse = station.evses.get()
    partner = Partner.objects.create(name="p", country_code="NL", party_id="EXM", version="2.2.1")
    token = {"uid": "APP-1", "type": "APP_USER", "group_id": "GROUP-7", "country_code": "NL", "party_id": "EXM"}
    start = Command.objects.create(
        partner=partner,
        command=CommandType.START_SESSION,
        request={},
        response_url="https://x.test/r",
        state=CommandState.PENDING,
        station=station,
        evse=evse,
        token=token,
        id_tag="APP-1",
    )
    assert command_request(start).for_version("2.0.1") == (
        "RequestStartTransaction",
        {
            "idToken": {"idToken": "APP-1", "type": "Central"},
            "remoteStartId": start.pk,
            "evseId": 1,
            "groupIdToken": {"idToken": "GROUP-7", "type": "Central"},
        },
    )
    expiry = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    reserve = Command.objects.create(
        partner=partner,
        command=CommandType.RESERVE_NOW,
        request={"expiry_date": expiry.isoformat()},
        response_url="https://x.test/r",
        state=CommandState.PENDING,
        station=station,
        token=token,
        id_tag="APP-1",
        ocpp_reservation_id=11,
    )
    assert command_request(reserve).for_version("1.6") == (
        "ReserveNow",
        {
            "connectorId": 0,
            "expiryDate": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "idTag": "APP-1",
            "reservationId": 11,
            "parentIdTag": "GROUP-7",
        },
    )


# What staff set from the station page: the station-wide maximum (under either version's name) and a default for
# sessions, in A and W, for a while or until cleared, on three phases or one.
STAFF_PROFILES = [
    SetChargingProfile(
        evse_id=0,
        transaction_id=None,
        profile_id=2_000_000_000,
        schedule=ChargingSchedule("A", (ChargingSchedulePeriod(0, 32),), duration=5400, start_schedule=EXPIRY),
        stack_level=2,
        purpose=purpose,
    )
    for purpose in ("ChargePointMaxProfile", "ChargingStationMaxProfile")
] + [
    SetChargingProfile(
        evse_id=2,
        transaction_id=None,
        profile_id=2_000_000_021,
        schedule=ChargingSchedule("W", (ChargingSchedulePeriod(0, 7400.4, number_phases=1),), start_schedule=EXPIRY),
        stack_level=2,
        purpose="TxDefaultProfile",
    )
]


def official_schema_validate(payload: dict, action: str, version: str) -> None:
    """`jsonschema` against the schema the `ocpp` package ships; numbers read as Decimal, as the package reads them,
    so that 1.6's multipleOf 0.1 is exact (7.4 / 0.1 is not a whole number in floating point)."""
    schema = json.loads(json.dumps(schema_of(action, version)), parse_float=Decimal)
    instance = json.loads(json.dumps(payload), parse_float=Decimal)
    jsonschema.validators.validator_for(schema)(schema).validate(instance)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("request_", STAFF_PROFILES, ids=lambda r: f"{r.purpose}-{r.evse_id}")
def test_a_staff_profile_fits_the_official_schema_with_each_version_s_purpose_name(request_, version):
    action, payload = request_.for_version(version)
    official_schema_validate(payload, action, version)
    if version == "1.6":
        profile = payload["csChargingProfiles"]
        assert (payload["connectorId"], profile["chargingProfileId"]) == (request_.evse_id, request_.profile_id)
    else:
        profile = payload["chargingProfile"]
        assert (payload["evseId"], profile["id"]) == (request_.evse_id, request_.profile_id)
        assert [schedule["id"] for schedule in profile["chargingSchedule"]] == [request_.profile_id]
    assert profile["chargingProfilePurpose"] == charging_profile_purpose(request_.purpose, version)
    assert (
        profile["chargingProfilePurpose"]
        in {
            "1.6": {"ChargePointMaxProfile", "TxDefaultProfile"},
            "2.0.1": {"ChargingStationMaxProfile", "TxDefaultProfile"},
        }[version]
    )
    assert (profile["stackLevel"], profile["chargingProfileKind"]) == (2, "Absolute")
    assert "transactionId" not in profile
    clear_action, clear = ClearChargingProfile(profile_id=request_.profile_id).for_version(version)
    official_schema_validate(clear, clear_action, version)


def test_each_version_names_the_station_wide_maximum_its_own_way():
    for purpose in ("ChargePointMaxProfile", "ChargingStationMaxProfile"):
        assert charging_profile_purpose(purpose, "1.6") == "ChargePointMaxProfile"
        assert charging_profile_purpose(purpose, "") == "ChargePointMaxProfile"
        assert charging_profile_purpose(purpose, "2.0.1") == "ChargingStationMaxProfile"
        assert charging_profile_purpose(purpose, "2.1") == "ChargingStationMaxProfile"
    for purpose in ("TxDefaultProfile", "TxProfile"):
        assert charging_profile_purpose(purpose, "1.6") == charging_profile_purpose(purpose, "2.0.1") == purpose


def test_a_profile_no_station_accepts_is_not_built():
    schedule = ChargingSchedule("A", (ChargingSchedulePeriod(0, 16),))
    with pytest.raises(ValueError, match="only valid on connector 0"):
        SetChargingProfile(
            evse_id=1, transaction_id=None, profile_id=1, schedule=schedule, purpose="ChargePointMaxProfile"
        )
    with pytest.raises(ValueError, match="only a TxProfile names a transaction"):
        SetChargingProfile(evse_id=1, transaction_id="42", profile_id=1, schedule=schedule, purpose="TxDefaultProfile")
    with pytest.raises(ValueError, match="only valid on connector 0"):
        request_from_arguments(
            "set-charging-profile",
            {
                "evse_id": 2,
                "transaction_id": None,
                "profile_id": 1,
                "purpose": "ChargingStationMaxProfile",
                "schedule": {"charging_rate_unit": "A", "periods": [{"start_period": 0, "limit": 16}]},
            },
        )
