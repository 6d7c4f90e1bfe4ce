"""The station's configuration as it reported it: 1.6 GetConfiguration keys and the 2.0.1 device model (GetBaseReport
-> NotifyReport), read on the first accepted boot and on demand, and staff's changes with the charger's answers.

Rows are upserted by natural key, and a row is only written when something in it changed, so a replayed
NotifyReport (or a second read of an unchanged configuration) changes nothing. Secret values are never stored."""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from cpo.models import ChargingStation
from ocpp_gateway.commands import CommandError, command_send
from ocpp_gateway.models import StationVariable
from ocpp_gateway.redaction import REDACTED, SECRET_CONFIGURATION_KEYS, SECRET_VARIABLES
from ocpp_gateway.requests import ChangeConfiguration, GetBaseReport, is_ocpp16

logger = logging.getLogger(__name__)

NATURAL_KEY = (
    "component",
    "component_instance",
    "evse_id",
    "connector_id",
    "variable",
    "variable_instance",
    "attribute_type",
)
REPORTED = ("value", "mutability", "unit", "data_type", "max_limit")
READ_ONLY, READ_WRITE = StationVariable.Mutability.READ_ONLY, StationVariable.Mutability.READ_WRITE


@dataclass(frozen=True)
class Reported:
    """One attribute of one variable as the charger reported it."""

    component: str
    component_instance: str
    evse_id: int
    connector_id: int
    variable: str
    variable_instance: str
    attribute_type: str
    value: str
    mutability: str
    unit: str = ""
    data_type: str = ""
    max_limit: Decimal | None = None

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in NATURAL_KEY)


def is_secret(*, component: str, variable: str) -> bool:
    return variable in (SECRET_CONFIGURATION_KEYS if not component else SECRET_VARIABLES)


def _value(*, component: str, variable: str, value) -> str:
    if value is None:
        return ""
    return REDACTED if is_secret(component=component, variable=variable) else str(value)[:2500]


def _max_limit(value) -> Decimal | None:
    """variableCharacteristics.maxLimit (a number), e.g. LocalAuthListCtrlr.Entries: how many the station can hold."""
    try:
        limit = Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        return None
    return limit if limit is not None and limit.is_finite() and abs(limit) < 10**14 else None


def configuration_keys_reported(configuration_key: list[dict]) -> list[Reported]:
    """A 1.6 GetConfiguration answer's configurationKey (camelCase KeyValue: key, readonly, value)."""
    return [
        Reported(
            component="",
            component_instance="",
            evse_id=0,
            connector_id=0,
            variable=str(item["key"])[:50],
            variable_instance="",
            attribute_type="Actual",
            value=_value(component="", variable=str(item["key"]), value=item.get("value")),
            mutability=StationVariable.Mutability.READ_ONLY
            if item.get("readonly")
            else StationVariable.Mutability.READ_WRITE,
        )
        for item in configuration_key or []
        if item.get("key")
    ]


def report_data_reported(report_data: list[dict]) -> list[Reported]:
    """A 2.0.1 NotifyReport's reportData (snake_case, as handlers get it): one row per variable attribute."""
    found = []
    for data in report_data or []:
        component, variable = data.get("component") or {}, data.get("variable") or {}
        evse = component.get("evse") or {}
        characteristics = data.get("variable_characteristics") or {}
        for attribute in data.get("variable_attribute") or []:
            found.append(
                Reported(
                    component=str(component.get("name", ""))[:50],
                    component_instance=str(component.get("instance") or "")[:50],
                    evse_id=int(evse.get("id") or 0),
                    connector_id=int(evse.get("connector_id") or 0),
                    variable=str(variable.get("name", ""))[:50],
                    variable_instance=str(variable.get("instance") or "")[:50],
                    attribute_type=str(attribute.get("type") or "Actual")[:8],
                    value=_value(
                        component=str(component.get("name", "")),
                        variable=str(variable.get("name", "")),
                        value=attribute.get("value"),
                    ),
                    mutability=str(attribute.get("mutability") or READ_WRITE)[:9],
                    unit=str(characteristics.get("unit") or "")[:16],
                    data_type=str(characteristics.get("data_type") or "")[:20],
                    max_limit=_max_limit(characteristics.get("max_limit")),
                )
            )
    return found


def station_variables_record(*, station_pk: int, reported: list[Reported]) -> int:
    """Upsert what the charger reported; returns how many rows were created or changed (0 for a replay)."""
    if not reported:
        return 0
    latest = {item.key(): item for item in reported}  # a key twice in one report: its last value counts
    with transaction.atomic():
        existing = {
            tuple(getattr(row, name) for name in NATURAL_KEY): row
            for row in StationVariable.objects.select_for_update().filter(
                station_id=station_pk, variable__in={key[4] for key in latest}
            )
        }
        created, changed = [], []
        now = timezone.now()
        for key, item in latest.items():
            row = existing.get(key)
            if row is None:
                created.append(
                    StationVariable(station_id=station_pk, **{n: getattr(item, n) for n in NATURAL_KEY + REPORTED})
                )
            elif any(getattr(row, n) != getattr(item, n) for n in REPORTED):
                for name in REPORTED:
                    setattr(row, name, getattr(item, name))
                row.updated_at = now
                changed.append(row)
        StationVariable.objects.bulk_create(created, ignore_conflicts=True)
        StationVariable.objects.bulk_update(changed, [*REPORTED, "updated_at"])
    return len(created) + len(changed)


def station_configuration_wanted(*, station_pk: int) -> bool:
    """A station whose configuration was never read (its first boot with us)."""
    return not StationVariable.objects.filter(station_id=station_pk).exists()


def station_configuration_read(*, station_pk: int) -> str:
    """Ask the station for its whole configuration (1.6: the keys come in the answer and are stored here; 2.0.1: the
    station answers GetBaseReport and sends NotifyReport frames, stored by their handler). Returns the charger's
    answer status, or why there was none. Waits for the charger: call it from a task or a view, never a handler."""
    station = ChargingStation.objects.get(pk=station_pk)
    call = GetBaseReport().for_version(station.ocpp_version)
    try:
        answer = command_send(identity=station.identity, action=call.action, payload=call.payload)
    except CommandError as exc:
        logger.warning("%s: configuration not read: %s", station.identity, exc)
        return exc.reason
    return station_configuration_answer_record(station=station, answer=answer)


def station_configuration_answer_record(*, station: ChargingStation, answer: dict) -> str:
    """The answer to GetBaseReport (2.0.1: a status) or to GetConfiguration (1.6: the keys, stored now)."""
    if is_ocpp16(station.ocpp_version):
        station_variables_record(
            station_pk=station.pk, reported=configuration_keys_reported(answer.get("configurationKey") or [])
        )
        return "Accepted"
    return str(answer.get("status", ""))


def station_variable_change_request(*, variable: StationVariable, value: str) -> ChangeConfiguration:
    """The ChangeConfiguration / SetVariables that sets exactly this variable attribute."""
    return ChangeConfiguration(
        key=f"{variable.component}.{variable.variable}" if variable.component else variable.variable,
        value=value,
        component_instance=variable.component_instance,
        evse_id=variable.evse_id,
        connector_id=variable.connector_id,
        variable_instance=variable.variable_instance,
        attribute_type=variable.attribute_type,
    )


def station_variable_set_record(*, variable_pk: int, value: str, status: str) -> StationVariable:
    """Keep staff's change and the charger's answer with the value; an Accepted change is the value now (a
    RebootRequired one is once the charger restarts, and it reports it again then)."""
    with transaction.atomic():
        variable = StationVariable.objects.select_for_update().get(pk=variable_pk)
        secret = is_secret(component=variable.component, variable=variable.variable)
        variable.last_set_value = REDACTED if secret else value[:2500]
        variable.last_set_status = status[:40]
        variable.last_set_at = timezone.now()
        if status == "Accepted" and not secret:
            variable.value = value[:2500]
        variable.save()
    return variable
