"""How much one CSMS -> charger message may carry, as the station reported it, and requests cut to fit.

OCPP 2.0.1 stations report, per message kind, `ItemsPerMessage` (entries) and `BytesPerMessage` (the message's size):
LocalAuthListCtrlr for SendLocalList, DeviceDataCtrlr with variable instance GetVariables / SetVariables / GetReport
for those. A 1.6 station reports SendLocalListMaxLength and GetConfigurationMaxKeys (entries only). A list longer
than that goes in several messages, each within both limits (ocpp_gateway.services.local_list: a Full update, then
Differential ones; `request_send`: one GetVariables / GetConfiguration per batch of keys, their answers merged)."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cpo.models import ChargingStation
from ocpp_gateway.commands import command_send
from ocpp_gateway.models import StationVariable
from ocpp_gateway.requests import GetConfiguration, OcppCall, OcppRequest, component_variable, is_ocpp16

T = TypeVar("T")
# The ocpp library's message ids are UUID4 strings.
MESSAGE_ID = "0" * 36


@dataclass(frozen=True)
class MessageLimits:
    """At most `items` entries and `size` bytes per message (None: not reported)."""

    items: int | None = None
    size: int | None = None


def positive_number(value) -> int | None:
    """A reported limit: a positive whole number, else not known."""
    try:
        number = int(float(str(value)))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None


def message_limits_201(*, station: ChargingStation, component: str, instance: str = "") -> MessageLimits:
    """ItemsPerMessage and BytesPerMessage of `component` (with variable instance `instance`), as stored from the
    station's device model (ocpp_gateway.services.device_model)."""
    values = dict(
        StationVariable.objects.filter(
            station=station,
            component=component,
            evse_id=0,
            attribute_type="Actual",
            variable__in=("ItemsPerMessage", "BytesPerMessage"),
            variable_instance=instance,
        ).values_list("variable", "value")
    )
    return MessageLimits(
        items=positive_number(values.get("ItemsPerMessage")), size=positive_number(values.get("BytesPerMessage"))
    )


def message_limits_16(*, station: ChargingStation, key: str) -> MessageLimits:
    """A 1.6 key capping the entries of one message (SendLocalListMaxLength, GetConfigurationMaxKeys)."""
    value = StationVariable.objects.filter(station=station, component="", variable=key).values_list("value", flat=True)
    return MessageLimits(items=positive_number(value.first()))


def frame_size(call: OcppCall) -> int:
    """Bytes of the OCPP-J CALL frame that carries `call`, written as the ocpp library writes it (compact JSON)."""
    return len(_compact([2, MESSAGE_ID, call.action, call.payload]))


def _compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def batches(
    items: Sequence[T],
    *,
    limits: MessageLimits,
    call_for: Callable[[list[T]], OcppCall],
    wire: Callable[[T], object],
) -> list[list[T]]:
    """Cut `items` into consecutive batches, each within `limits` once `call_for` makes a message of it. `wire` is an
    item as the message carries it (one element of its list): a batch's size is its first message's plus each further
    item and its comma. An item too large on its own still goes, alone (the station's answer says the rest). Never
    an empty list of batches: no items is one empty batch (a Full update that empties a list)."""
    found: list[list[T]] = []
    batch: list[T] = []
    size = 0
    for item in items:
        if batch and limits.items is not None and len(batch) >= limits.items:
            found.append(batch)
            batch = []
        if batch and limits.size is not None:
            grown = size + len(_compact(wire(item))) + 1
            if grown > limits.size:
                found.append(batch)
                batch = []
            else:
                size = grown
        if not batch:
            size = frame_size(call_for([item])) if limits.size is not None else 0
        batch.append(item)
    if batch or not found:
        found.append(batch)
    return found


def request_messages(*, station: ChargingStation, request: OcppRequest) -> list[OcppCall]:
    """The messages that carry `request` to this station: a GetConfiguration (2.0.1 GetVariables) of more keys than
    one message may hold (DeviceDataCtrlr ItemsPerMessage / BytesPerMessage, instance GetVariables; 1.6
    GetConfigurationMaxKeys) goes in several; any other request in one."""
    call = request.for_version(station.ocpp_version)
    if not isinstance(request, GetConfiguration) or len(request.keys) < 2:
        return [call]
    if is_ocpp16(station.ocpp_version):
        limits = message_limits_16(station=station, key="GetConfigurationMaxKeys")
        wire: Callable[[str], object] = str
    else:
        limits = message_limits_201(station=station, component="DeviceDataCtrlr", instance="GetVariables")
        wire = component_variable
    return [
        GetConfiguration(keys=tuple(keys)).for_version(station.ocpp_version)
        for keys in batches(
            request.keys,
            limits=limits,
            call_for=lambda keys: GetConfiguration(keys=tuple(keys)).for_version(station.ocpp_version),
            wire=wire,
        )
    ]


# Lists in the answers to a request sent in several messages, joined in order into one answer.
MERGED_ANSWER_LISTS = ("getVariableResult", "configurationKey", "unknownKey")


def request_send(*, station: ChargingStation, request: OcppRequest, timeout: float | None = None) -> dict:
    """Send the request in as many messages as the station's limits need (`request_messages`) and return one answer:
    the only one, or the lists of all of them joined. Raises the CommandError of the first message without an answer
    (the request fails whole). Waits for the charger: call it from a task or a view, never a handler."""
    answers = [
        command_send(identity=station.identity, action=call.action, payload=call.payload, timeout=timeout)
        for call in request_messages(station=station, request=request)
    ]
    if len(answers) == 1:
        return answers[0]
    merged: dict = {}
    for answer in answers:
        for name, value in answer.items():
            if name in MERGED_ANSWER_LISTS:
                merged.setdefault(name, []).extend(value or [])
            else:
                merged.setdefault(name, value)
    return merged
