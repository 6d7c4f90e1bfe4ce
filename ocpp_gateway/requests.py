"""One request builder per CSMS -> charger command, with a form per OCPP version (cf. SteVe's
`RemoteStartTransactionTask.getOcpp16Request()`): the dashboard, OCPI commands and `manage.py ocpp_call` describe a
command in the platform's terms and the gateway writes it in the words of the station's version.

    call = Reset(hard=True).for_version(station.ocpp_version)   # OcppCall("Reset", {"type": "Immediate"}) on 2.0.1
    command_send(identity=station.identity, action=call.action, payload=call.payload)

A station whose version is not known yet ("") is spoken to in 1.6; 2.1 stations get the 2.0.1 form (our 2.1 support
is the 2.0.1 message set). Builders check nothing the schema checks: the handler validates every request against
the official schema before it is sent.
"""

import re
import secrets
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from ocpp_gateway.id_tokens import id_token_type_for

# OCPP 1.6 CiString20Type: idTag and parentIdTag.
OCPP_16_ID_TAG_LENGTH = 20
# 2.0.1 names a configuration value Component.Variable (GetVariables / SetVariables).
COMPONENT_VARIABLE = re.compile(r"^[A-Za-z0-9_*+-]+\.[A-Za-z0-9_*+.-]+$")


class OcppCall(NamedTuple):
    """An OCPP action and its payload in the spec's camelCase, ready for the command service."""

    action: str
    payload: dict


def is_ocpp16(ocpp_version: str) -> bool:
    return ocpp_version in ("", "1.6")


def ocpp_datetime(value: datetime | str) -> str:
    """An OCPP dateTime we send: UTC with Z, whole seconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_token(*, id_tag: str, token_type: str) -> dict:
    """A 2.0.1 IdTokenType for a token of OCPI type `token_type` (RFID, APP_USER, ...)."""
    return {"idToken": id_tag, "type": id_token_type_for(token_type=token_type)}


def group_id_token(group_id: str) -> dict:
    return {"idToken": group_id, "type": "Central"}


def component_variable(name: str) -> dict:
    """'OCPPCommCtrlr.HeartbeatInterval' -> 2.0.1 component and variable."""
    component, _, variable = name.partition(".")
    return {"component": {"name": component}, "variable": {"name": variable}}


def remote_start_id_new() -> int:
    return secrets.randbelow(2**31 - 1) + 1


@dataclass(frozen=True)
class OcppRequest:
    """A command to a charger. Subclasses write the 1.6 and the 2.0.1 form."""

    def for_version(self, ocpp_version: str) -> OcppCall:
        return self.ocpp16() if is_ocpp16(ocpp_version) else self.ocpp201()

    def ocpp16(self) -> OcppCall:
        raise NotImplementedError

    def ocpp201(self) -> OcppCall:
        raise NotImplementedError


# --- Remote control (1.6 Core; 2.0.1 F) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteStart(OcppRequest):
    """1.6 RemoteStartTransaction / 2.0.1 RequestStartTransaction. `evse_id` is the EVSE's OCPP number (1.6
    connectorId); None lets the charger choose. `token_type` is the OCPI TokenType of the token."""

    id_tag: str
    token_type: str = "RFID"  # noqa: S105 - an OCPP IdTokenType, not a secret
    evse_id: int | None = None
    remote_start_id: int = field(default_factory=remote_start_id_new)
    group_id: str = ""

    def ocpp16(self) -> OcppCall:
        payload: dict = {"idTag": self.id_tag}
        if self.evse_id is not None:
            payload["connectorId"] = self.evse_id
        return OcppCall("RemoteStartTransaction", payload)

    def ocpp201(self) -> OcppCall:
        payload = {
            "idToken": id_token(id_tag=self.id_tag, token_type=self.token_type),
            "remoteStartId": self.remote_start_id,
        }
        if self.evse_id is not None:
            payload["evseId"] = self.evse_id
        if self.group_id:
            payload["groupIdToken"] = group_id_token(self.group_id)
        return OcppCall("RequestStartTransaction", payload)


@dataclass(frozen=True)
class RemoteStop(OcppRequest):
    """1.6 RemoteStopTransaction (integer ids) / 2.0.1 RequestStopTransaction (string ids)."""

    transaction_id: str

    def ocpp16(self) -> OcppCall:
        return OcppCall("RemoteStopTransaction", {"transactionId": int(self.transaction_id)})

    def ocpp201(self) -> OcppCall:
        return OcppCall("RequestStopTransaction", {"transactionId": str(self.transaction_id)})


@dataclass(frozen=True)
class Reset(OcppRequest):
    """Soft (2.0.1: OnIdle, after the transactions end) or hard (2.0.1: Immediate)."""

    hard: bool = False

    def ocpp16(self) -> OcppCall:
        return OcppCall("Reset", {"type": "Hard" if self.hard else "Soft"})

    def ocpp201(self) -> OcppCall:
        return OcppCall("Reset", {"type": "Immediate" if self.hard else "OnIdle"})


@dataclass(frozen=True)
class UnlockConnector(OcppRequest):
    """1.6: the connectorId is the EVSE's number. 2.0.1: evseId and the connectorId within that EVSE, both required
    (UnlockConnectorRequest.json); see `ocpp_gateway.selectors.connector_ocpp_id`."""

    evse_id: int
    connector_id: int = 1

    def ocpp16(self) -> OcppCall:
        return OcppCall("UnlockConnector", {"connectorId": self.evse_id})

    def ocpp201(self) -> OcppCall:
        return OcppCall("UnlockConnector", {"evseId": self.evse_id, "connectorId": self.connector_id})


TRIGGERABLE = {
    "1.6": [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "MeterValues",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
    ],
    "2.0.1": [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "MeterValues",
        "TransactionEvent",
        "LogStatusNotification",
        "FirmwareStatusNotification",
        "SignChargingStationCertificate",
    ],
}


def triggerable_messages(ocpp_version: str) -> list[str]:
    """The messages a TriggerMessage may ask a station of this version for."""
    return TRIGGERABLE["1.6" if is_ocpp16(ocpp_version) else "2.0.1"]


@dataclass(frozen=True)
class TriggerMessage(OcppRequest):
    """Ask for a message now; `evse_id` 0 means the station itself."""

    message: str
    evse_id: int = 0

    def ocpp16(self) -> OcppCall:
        payload: dict = {"requestedMessage": self.message}
        if self.evse_id:
            payload["connectorId"] = self.evse_id
        return OcppCall("TriggerMessage", payload)

    def ocpp201(self) -> OcppCall:
        payload: dict = {"requestedMessage": self.message}
        if self.evse_id:
            payload["evse"] = {"id": self.evse_id}
        return OcppCall("TriggerMessage", payload)


@dataclass(frozen=True)
class GetTransactionStatus(OcppRequest):
    """2.0.1 GetTransactionStatus (E14): is the transaction still ongoing, are messages about it queued? 1.6 has no
    such question (ask for its MeterValues with TriggerMessage instead)."""

    transaction_id: str

    def ocpp16(self) -> OcppCall:
        raise ValueError("OCPP 1.6 has no GetTransactionStatus")

    def ocpp201(self) -> OcppCall:
        return OcppCall("GetTransactionStatus", {"transactionId": str(self.transaction_id)})


# --- Availability (1.6 Core; 2.0.1 G) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeAvailability(OcppRequest):
    """Operative or Inoperative; `evse_id` 0 is the whole station."""

    operative: bool = True
    evse_id: int = 0

    @property
    def status(self) -> str:
        return "Operative" if self.operative else "Inoperative"

    def ocpp16(self) -> OcppCall:
        return OcppCall("ChangeAvailability", {"connectorId": self.evse_id, "type": self.status})

    def ocpp201(self) -> OcppCall:
        payload: dict = {"operationalStatus": self.status}
        if self.evse_id:
            payload["evse"] = {"id": self.evse_id}
        return OcppCall("ChangeAvailability", payload)


# --- Configuration (1.6 Core; 2.0.1 B, device model) ---------------------------------------------------------------


@dataclass(frozen=True)
class GetConfiguration(OcppRequest):
    """1.6 GetConfiguration (no keys: all) / 2.0.1 GetVariables (keys as Component.Variable, at least one)."""

    keys: tuple[str, ...] = ()

    def ocpp16(self) -> OcppCall:
        return OcppCall("GetConfiguration", {"key": list(self.keys)} if self.keys else {})

    def ocpp201(self) -> OcppCall:
        return OcppCall("GetVariables", {"getVariableData": [component_variable(k) for k in self.keys]})


@dataclass(frozen=True)
class GetBaseReport(OcppRequest):
    """Read the station's whole configuration: 2.0.1 GetBaseReport FullInventory (the data follows in NotifyReport
    frames carrying `request_id`) / 1.6 GetConfiguration of all keys (the data is in the answer)."""

    request_id: int = field(default_factory=remote_start_id_new)
    report_base: str = "FullInventory"

    def ocpp16(self) -> OcppCall:
        return GetConfiguration().ocpp16()

    def ocpp201(self) -> OcppCall:
        return OcppCall("GetBaseReport", {"requestId": self.request_id, "reportBase": self.report_base})


@dataclass(frozen=True)
class ChangeConfiguration(OcppRequest):
    """1.6 ChangeConfiguration / 2.0.1 SetVariables (key as Component.Variable; the other fields name one attribute
    of a device-model variable exactly: instances, EVSE (0: none), attribute type)."""

    key: str
    value: str
    component_instance: str = ""
    evse_id: int = 0
    connector_id: int = 0
    variable_instance: str = ""
    attribute_type: str = "Actual"

    def ocpp16(self) -> OcppCall:
        return OcppCall("ChangeConfiguration", {"key": self.key, "value": self.value})

    def ocpp201(self) -> OcppCall:
        target = component_variable(self.key)
        if self.component_instance:
            target["component"]["instance"] = self.component_instance
        if self.evse_id:
            target["component"]["evse"] = {"id": self.evse_id}
            if self.connector_id:
                target["component"]["evse"]["connectorId"] = self.connector_id
        if self.variable_instance:
            target["variable"]["instance"] = self.variable_instance
        data: dict = {"attributeValue": self.value, **target}
        if self.attribute_type != "Actual":
            data["attributeType"] = self.attribute_type
        return OcppCall("SetVariables", {"setVariableData": [data]})

    @staticmethod
    def status(answer: dict) -> str:
        """The charger's answer: Accepted, RebootRequired, Rejected, NotSupported (1.6), UnknownComponent,
        UnknownVariable, NotSupportedAttributeType (2.0.1)."""
        if "setVariableResult" in answer:
            results = answer.get("setVariableResult") or [{}]
            return str(results[0].get("attributeStatus", ""))
        return str(answer.get("status", ""))


@dataclass(frozen=True)
class BasicAuthPasswordSet(OcppRequest):
    """The charger's HTTP Basic password: 1.6 ChangeConfiguration `AuthorizationKey` (security whitepaper) / 2.0.1
    SetVariables `SecurityCtrlr.BasicAuthPassword` (A01). Kept out of repr; the message log redacts it."""

    password: str = field(repr=False)

    def ocpp16(self) -> OcppCall:
        return ChangeConfiguration(key="AuthorizationKey", value=self.password).ocpp16()

    def ocpp201(self) -> OcppCall:
        return ChangeConfiguration(key="SecurityCtrlr.BasicAuthPassword", value=self.password).ocpp201()

    @staticmethod
    def status(answer: dict) -> str:
        """As ChangeConfiguration.status; RebootRequired: the new password counts after a reboot."""
        return ChangeConfiguration.status(answer)


# --- Reservation (1.6 Reservation profile; 2.0.1 H) ----------------------------------------------------------------


@dataclass(frozen=True)
class ReserveNow(OcppRequest):
    """Reserve an EVSE (None: any EVSE of the station, 1.6 connectorId 0) for a token until `expiry`."""

    reservation_id: int
    expiry: datetime | str
    id_tag: str
    token_type: str = "RFID"  # noqa: S105 - an OCPP IdTokenType, not a secret
    evse_id: int | None = None
    group_id: str = ""

    def ocpp16(self) -> OcppCall:
        payload = {
            "connectorId": self.evse_id or 0,
            "expiryDate": ocpp_datetime(self.expiry),
            "idTag": self.id_tag,
            "reservationId": self.reservation_id,
        }
        if self.group_id and len(self.group_id) <= OCPP_16_ID_TAG_LENGTH:
            payload["parentIdTag"] = self.group_id
        return OcppCall("ReserveNow", payload)

    def ocpp201(self) -> OcppCall:
        payload = {
            "id": self.reservation_id,
            "expiryDateTime": ocpp_datetime(self.expiry),
            "idToken": id_token(id_tag=self.id_tag, token_type=self.token_type),
        }
        if self.evse_id is not None:
            payload["evseId"] = self.evse_id
        if self.group_id:
            payload["groupIdToken"] = group_id_token(self.group_id)
        return OcppCall("ReserveNow", payload)


@dataclass(frozen=True)
class CancelReservation(OcppRequest):
    reservation_id: int

    def ocpp16(self) -> OcppCall:
        return OcppCall("CancelReservation", {"reservationId": self.reservation_id})

    def ocpp201(self) -> OcppCall:
        return self.ocpp16()


# --- Smart charging (1.6 Smart Charging profile; 2.0.1 K) ----------------------------------------------------------


def charging_limit(value) -> float:
    """A limit with one decimal (1.6's schema: multipleOf 0.1)."""
    return float(round(Decimal(str(value)), 1))


@dataclass(frozen=True)
class ChargingSchedulePeriod:
    """A period of a schedule; `number_phases` (1.6 and 2.0.1 numberPhases: the charger assumes 3 without it) keeps
    a single-phase session on one phase."""

    start_period: int
    limit: Decimal | float | int
    number_phases: int | None = None

    def ocpp(self) -> dict:
        period = {"startPeriod": int(self.start_period), "limit": charging_limit(self.limit)}
        if self.number_phases is not None:
            period["numberPhases"] = int(self.number_phases)
        return period


@dataclass(frozen=True)
class ChargingSchedule:
    """A ChargingSchedule (1.6 and 2.0.1 share these names; 2.0.1 adds an id, given by the profile)."""

    charging_rate_unit: str  # "W" | "A"
    periods: tuple[ChargingSchedulePeriod, ...]
    duration: int | None = None
    start_schedule: datetime | str | None = None
    min_charging_rate: Decimal | float | int | None = None

    def ocpp(self) -> dict:
        schedule: dict = {
            "chargingRateUnit": self.charging_rate_unit,
            "chargingSchedulePeriod": [period.ocpp() for period in self.periods],
        }
        if self.duration is not None:
            schedule["duration"] = int(self.duration)
        if self.start_schedule:
            schedule["startSchedule"] = ocpp_datetime(self.start_schedule)
        if self.min_charging_rate is not None:
            schedule["minChargingRate"] = charging_limit(self.min_charging_rate)
        return schedule


# A purpose in the words of each version: (1.6, 2.0.1). The station-wide maximum has a name per version; a caller may
# give either and the station gets its own version's. Other purposes (2.0.1 ChargingStationExternalConstraints) go
# out as given, for the schema to judge.
CHARGING_PROFILE_PURPOSES = {
    "ChargePointMaxProfile": ("ChargePointMaxProfile", "ChargingStationMaxProfile"),
    "ChargingStationMaxProfile": ("ChargePointMaxProfile", "ChargingStationMaxProfile"),
    "TxDefaultProfile": ("TxDefaultProfile", "TxDefaultProfile"),
    "TxProfile": ("TxProfile", "TxProfile"),
}


def charging_profile_purpose(purpose: str, ocpp_version: str) -> str:
    """`purpose` as a station of `ocpp_version` names it: 1.6 ChargePointMaxProfile is 2.0.1 ChargingStationMaxProfile
    and the other way round; TxDefaultProfile and TxProfile are the same in both."""
    names = CHARGING_PROFILE_PURPOSES.get(purpose)
    if names is None:
        return purpose
    return names[0] if is_ocpp16(ocpp_version) else names[1]


def is_station_max_profile(purpose: str) -> bool:
    """The station-wide maximum (1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile), under either name."""
    return CHARGING_PROFILE_PURPOSES.get(purpose, ("",))[0] == "ChargePointMaxProfile"


def check_charging_profile_target(*, evse_id: int, purpose: str, transaction_id: str | None = None) -> None:
    """Raise ValueError for a profile no station may accept whatever its schema says: the station-wide maximum belongs
    to the whole station (1.6: "only valid on connectorId 0"; 2.0.1: evseId 0), and only a TxProfile names a
    transaction."""
    if is_station_max_profile(purpose) and evse_id != 0:
        raise ValueError(
            "the station-wide maximum (1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile) is only valid on "
            f"connector 0, the whole station, not on connector {evse_id}"
        )
    if transaction_id is not None and charging_profile_purpose(purpose, "1.6") != "TxProfile":
        raise ValueError(f"only a TxProfile names a transaction, not a {purpose}")


@dataclass(frozen=True)
class SetChargingProfile(OcppRequest):
    """A TxProfile for one transaction on one EVSE (Absolute when the schedule has a start, else Relative), or with
    `purpose` TxDefaultProfile and no transaction, the default for sessions that start on the EVSE (0: all), or the
    station-wide maximum on EVSE 0 (`purpose` ChargePointMaxProfile or ChargingStationMaxProfile: each version gets
    its own name, see `charging_profile_purpose`). 2.0.1 requires the profile's id, stackLevel and kind, and an id
    for each schedule: the schedule's is the profile's. Raises ValueError for a target no station accepts
    (`check_charging_profile_target`)."""

    evse_id: int
    transaction_id: str | None
    profile_id: int
    schedule: ChargingSchedule
    stack_level: int = 1
    purpose: str = "TxProfile"

    def __post_init__(self) -> None:
        check_charging_profile_target(evse_id=self.evse_id, purpose=self.purpose, transaction_id=self.transaction_id)

    def _profile(self, ocpp_version: str) -> dict:
        return {
            "stackLevel": self.stack_level,
            "chargingProfilePurpose": charging_profile_purpose(self.purpose, ocpp_version),
            "chargingProfileKind": "Absolute" if self.schedule.start_schedule else "Relative",
        }

    def ocpp16(self) -> OcppCall:
        profile = {
            **self._profile("1.6"),
            "chargingProfileId": self.profile_id,
            "chargingSchedule": self.schedule.ocpp(),
        }
        if self.transaction_id is not None:
            profile["transactionId"] = int(self.transaction_id)
        return OcppCall("SetChargingProfile", {"connectorId": self.evse_id, "csChargingProfiles": profile})

    def ocpp201(self) -> OcppCall:
        profile = {
            **self._profile("2.0.1"),
            "id": self.profile_id,
            "chargingSchedule": [{"id": self.profile_id, **self.schedule.ocpp()}],
        }
        if self.transaction_id is not None:
            profile["transactionId"] = str(self.transaction_id)
        return OcppCall("SetChargingProfile", {"evseId": self.evse_id, "chargingProfile": profile})


@dataclass(frozen=True)
class GetCompositeSchedule(OcppRequest):
    """The schedule an EVSE (0: the station's grid connection) will follow for the next `duration` seconds, in
    `charging_rate_unit` ("A" or "W"; empty: the charger's choice)."""

    evse_id: int
    duration: int
    charging_rate_unit: str = ""

    def ocpp16(self) -> OcppCall:
        payload: dict = {"connectorId": self.evse_id, "duration": int(self.duration)}
        if self.charging_rate_unit:
            payload["chargingRateUnit"] = self.charging_rate_unit
        return OcppCall("GetCompositeSchedule", payload)

    def ocpp201(self) -> OcppCall:
        payload: dict = {"evseId": self.evse_id, "duration": int(self.duration)}
        if self.charging_rate_unit:
            payload["chargingRateUnit"] = self.charging_rate_unit
        return OcppCall("GetCompositeSchedule", payload)


@dataclass(frozen=True)
class ClearChargingProfile(OcppRequest):
    profile_id: int

    def ocpp16(self) -> OcppCall:
        return OcppCall("ClearChargingProfile", {"id": self.profile_id})

    def ocpp201(self) -> OcppCall:
        return OcppCall("ClearChargingProfile", {"chargingProfileId": self.profile_id})


# --- By name, for the command line -------------------------------------------------------------------------------

# The dashboard's command names (its COMMAND_FORMS) and the rest, each to its builder.
REQUESTS: dict[str, type[OcppRequest]] = {
    "remote-start": RemoteStart,
    "remote-stop": RemoteStop,
    "reset": Reset,
    "unlock": UnlockConnector,
    "availability": ChangeAvailability,
    "trigger": TriggerMessage,
    "get-configuration": GetConfiguration,
    "change-configuration": ChangeConfiguration,
    "get-base-report": GetBaseReport,
    "reserve-now": ReserveNow,
    "cancel-reservation": CancelReservation,
    "set-charging-profile": SetChargingProfile,
    "get-composite-schedule": GetCompositeSchedule,
    "clear-charging-profile": ClearChargingProfile,
}


def request_from_arguments(name: str, arguments: dict) -> OcppRequest:
    """A builder from JSON arguments (its field names), e.g. ("reset", {"hard": true}). Raises ValueError when the
    name or the arguments do not fit."""
    request_cls = REQUESTS.get(name)
    if request_cls is None:
        raise ValueError(f"no command {name!r}; one of {', '.join(REQUESTS)}")
    names = {f.name for f in fields(request_cls)}
    unknown = set(arguments) - names
    if unknown:
        raise ValueError(f"{name} takes {', '.join(sorted(names)) or 'no arguments'}, not {', '.join(sorted(unknown))}")
    arguments = dict(arguments)
    try:
        if request_cls is GetConfiguration and "keys" in arguments:
            arguments["keys"] = tuple(arguments["keys"])
        if request_cls is SetChargingProfile and isinstance(arguments.get("schedule"), dict):
            schedule = dict(arguments["schedule"])
            schedule["periods"] = tuple(ChargingSchedulePeriod(**p) for p in schedule.get("periods") or [])
            arguments["schedule"] = ChargingSchedule(**schedule)
        return request_cls(**arguments)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from exc


# --- Security (1.6 security extension; 2.0.1 A) -------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateSigned(OcppRequest):
    """The certificate we signed for the station's CSR (PEM, leaf first). 2.0.1 names its use when the station's
    SignCertificate did."""

    certificate_chain: str
    certificate_type: str = ""

    def ocpp16(self) -> OcppCall:
        return OcppCall("CertificateSigned", {"certificateChain": self.certificate_chain})

    def ocpp201(self) -> OcppCall:
        payload = {"certificateChain": self.certificate_chain}
        if self.certificate_type:
            payload["certificateType"] = self.certificate_type
        return OcppCall("CertificateSigned", payload)


# --- Local authorization list (1.6 Local Auth List Management profile; 2.0.1 D) ------------------------------------


@dataclass(frozen=True)
class LocalListEntry:
    """One token of a local list: `status` is the AuthorizationStatus the station gives it offline (Accepted,
    Blocked, Expired, ...); None removes it (differential updates only). `token_type` is the OCPI TokenType."""

    id_tag: str
    status: str | None
    token_type: str = "RFID"  # noqa: S105 - an OCPI token type, not a secret
    expiry_date: datetime | None = None
    group_id: str = ""

    def ocpp16(self) -> dict:
        entry: dict = {"idTag": self.id_tag}
        if self.status is not None:
            info: dict = {"status": self.status}
            if self.expiry_date is not None:
                info["expiryDate"] = ocpp_datetime(self.expiry_date)
            if self.group_id and len(self.group_id) <= OCPP_16_ID_TAG_LENGTH:
                info["parentIdTag"] = self.group_id
            entry["idTagInfo"] = info
        return entry

    def ocpp201(self) -> dict:
        entry: dict = {"idToken": id_token(id_tag=self.id_tag, token_type=self.token_type)}
        if self.status is not None:
            info: dict = {"status": self.status}
            if self.expiry_date is not None:
                info["cacheExpiryDateTime"] = ocpp_datetime(self.expiry_date)
            if self.group_id:
                info["groupIdToken"] = group_id_token(self.group_id)
            entry["idTokenInfo"] = info
        return entry


@dataclass(frozen=True)
class SendLocalList(OcppRequest):
    """1.6 SendLocalList (listVersion, localAuthorizationList of idTag + idTagInfo) / 2.0.1 SendLocalList
    (versionNumber, idToken + idTokenInfo). `full`: the entries replace the station's list (Full); otherwise they
    are added, changed or (no status) removed (Differential). `version` is the list's version once applied."""

    version: int
    entries: tuple[LocalListEntry, ...] = ()
    full: bool = True

    def ocpp16(self) -> OcppCall:
        payload: dict = {"listVersion": self.version, "updateType": "Full" if self.full else "Differential"}
        if self.entries:
            payload["localAuthorizationList"] = [entry.ocpp16() for entry in self.entries]
        return OcppCall("SendLocalList", payload)

    def ocpp201(self) -> OcppCall:
        payload: dict = {"versionNumber": self.version, "updateType": "Full" if self.full else "Differential"}
        if self.entries:
            payload["localAuthorizationList"] = [entry.ocpp201() for entry in self.entries]
        return OcppCall("SendLocalList", payload)

    @staticmethod
    def status(answer: dict) -> str:
        """Accepted, Failed, VersionMismatch (both versions), NotSupported (1.6)."""
        return str(answer.get("status", ""))


@dataclass(frozen=True)
class GetLocalListVersion(OcppRequest):
    """The version of the station's local list: 0 none, -1 (1.6) not supported."""

    def ocpp16(self) -> OcppCall:
        return OcppCall("GetLocalListVersion", {})

    def ocpp201(self) -> OcppCall:
        return OcppCall("GetLocalListVersion", {})

    @staticmethod
    def version(answer: dict) -> int | None:
        value = answer.get("listVersion", answer.get("versionNumber"))
        return int(value) if isinstance(value, int) else None


# --- Diagnostics and logs (1.6 Firmware Management GetDiagnostics, security extension GetLog; 2.0.1 N01) ----------


@dataclass(frozen=True)
class GetDiagnostics(OcppRequest):
    """Upload diagnostics to `location`. 1.6: GetDiagnostics (the security extension's GetLog when `log_type` is
    SecurityLog); 2.0.1: GetLog with `log_type` DiagnosticsLog or SecurityLog and our `request_id`."""

    location: str
    request_id: int
    log_type: str = "DiagnosticsLog"
    retries: int | None = None
    retry_interval: int | None = None
    start_time: datetime | None = None
    stop_time: datetime | None = None

    def ocpp16(self) -> OcppCall:
        if self.log_type == "SecurityLog":
            return self.ocpp201()
        payload: dict = {"location": self.location}
        if self.retries is not None:
            payload["retries"] = self.retries
        if self.retry_interval is not None:
            payload["retryInterval"] = self.retry_interval
        if self.start_time is not None:
            payload["startTime"] = ocpp_datetime(self.start_time)
        if self.stop_time is not None:
            payload["stopTime"] = ocpp_datetime(self.stop_time)
        return OcppCall("GetDiagnostics", payload)

    def ocpp201(self) -> OcppCall:
        log: dict = {"remoteLocation": self.location}
        if self.start_time is not None:
            log["oldestTimestamp"] = ocpp_datetime(self.start_time)
        if self.stop_time is not None:
            log["latestTimestamp"] = ocpp_datetime(self.stop_time)
        payload: dict = {"log": log, "logType": self.log_type, "requestId": self.request_id}
        if self.retries is not None:
            payload["retries"] = self.retries
        if self.retry_interval is not None:
            payload["retryInterval"] = self.retry_interval
        return OcppCall("GetLog", payload)

    @staticmethod
    def accepted(answer: dict) -> tuple[bool, str]:
        """(will it upload, the file name it gave). 1.6 GetDiagnostics answers a fileName, or none when it has no
        diagnostics; GetLog answers Accepted / AcceptedCanceled (an earlier upload stopped) / Rejected."""
        if "status" in answer:
            return answer["status"] in ("Accepted", "AcceptedCanceled"), str(answer.get("filename") or "")
        name = str(answer.get("fileName") or "")
        return bool(name), name


# --- Firmware (1.6 Firmware Management, security extension SignedUpdateFirmware; 2.0.1 L01) -----------------------


@dataclass(frozen=True)
class UpdateFirmware(OcppRequest):
    """Fetch the image at `location` from `retrieve_date` and install it. Signed firmware (a signing certificate and a
    signature) is 2.0.1 UpdateFirmware with both, and the 1.6 security extension's SignedUpdateFirmware."""

    location: str
    request_id: int
    retrieve_date: datetime | str
    signing_certificate: str = ""
    signature: str = ""
    retries: int | None = None
    retry_interval: int | None = None

    @property
    def signed(self) -> bool:
        return bool(self.signing_certificate and self.signature)

    def _firmware(self) -> dict:
        firmware = {"location": self.location, "retrieveDateTime": ocpp_datetime(self.retrieve_date)}
        if self.signed:
            firmware.update(signingCertificate=self.signing_certificate, signature=self.signature)
        return firmware

    def _retries(self, payload: dict) -> dict:
        if self.retries is not None:
            payload["retries"] = self.retries
        if self.retry_interval is not None:
            payload["retryInterval"] = self.retry_interval
        return payload

    def ocpp16(self) -> OcppCall:
        if self.signed:
            payload = {"requestId": self.request_id, "firmware": self._firmware()}
            return OcppCall("SignedUpdateFirmware", self._retries(payload))
        payload = {"location": self.location, "retrieveDate": ocpp_datetime(self.retrieve_date)}
        return OcppCall("UpdateFirmware", self._retries(payload))

    def ocpp201(self) -> OcppCall:
        return OcppCall("UpdateFirmware", self._retries({"requestId": self.request_id, "firmware": self._firmware()}))

    @staticmethod
    def status(answer: dict) -> str:
        """Accepted, Rejected, AcceptedCanceled, InvalidCertificate, RevokedCertificate; 1.6's unsigned
        UpdateFirmware answers an empty object, which is its yes."""
        return str(answer.get("status", "Accepted"))


REQUESTS["get-local-list-version"] = GetLocalListVersion
