"""Messages cut to what a station takes: a 2.0.1 station that reports DeviceDataCtrlr ItemsPerMessage and
BytesPerMessage for GetVariables gets staff's read of many variables in several GetVariables, each within its
limits, and the page shows every answer as one; the cutting itself keeps order and both limits."""

import asyncio
import re

import pytest
from django.urls import reverse
from ocpp.v201 import call as call201

from cpo.dashboard.models import AuditLog
from cpo.models import ChargingStation
from ocpp_gateway.models import StationVariable
from ocpp_gateway.requests import GetConfiguration
from ocpp_gateway.services.message_limits import MessageLimits, batches, frame_size, request_messages
from tests.ocpp_gateway.chargers import connected
from tests.ocpp_gateway.local_list_chargers import SmallMessagesCharger201, limit
from tests.support import StaffBrowser, in_thread, start_daphne, stop, wait_until

KEYS = [
    "OCPPCommCtrlr.HeartbeatInterval",
    "OCPPCommCtrlr.MessageTimeout",
    "AuthCtrlr.Enabled",
    "TxCtrlr.EVConnectionTimeOut",
    "SampledDataCtrlr.TxUpdatedInterval",
]


@pytest.fixture(scope="module")
def limits_daphne(django_db_setup, django_db_blocker):
    server = start_daphne("message-limits", CELERY_TASK_ALWAYS_EAGER="1", OCPP_CALL_TIMEOUT="3")
    yield server
    stop(server)


class SmallGetVariables201(SmallMessagesCharger201):
    limits = [
        limit("DeviceDataCtrlr", "ItemsPerMessage", 2, instance="GetVariables"),
        limit("DeviceDataCtrlr", "BytesPerMessage", 220, instance="GetVariables"),
        limit("DeviceDataCtrlr", "ItemsPerMessage", 50, instance="GetReport"),
    ]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_staff_reading_five_variables_of_a_station_that_takes_two_per_message_get_every_answer(
    limits_daphne, station_factory
):
    _, secret = station_factory("DM-SMALL", evses=1)
    staff = StaffBrowser(limits_daphne)

    async def scenario():
        url = limits_daphne.ocpp_url("DM-SMALL")
        async with connected(url, "DM-SMALL", secret, version="2.0.1", cls=SmallGetVariables201) as cp:
            await cp.call(
                call201.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp")
            )
            await in_thread(
                wait_until,
                predicate=lambda: StationVariable.objects.filter(station__identity="DM-SMALL").count() == 3,
                timeout=10,
            )
            page = await asyncio.to_thread(
                staff.post,
                reverse("dashboard:station-command", args=["DM-SMALL", "get-configuration"]),
                {"get-configuration-keys": ", ".join(KEYS)},
            )
            return cp, page

    cp, page = asyncio.run(scenario())
    sent = [frame for frame in cp.frames if frame[0] == "GetVariables"]
    # Two per message at most, and 220 bytes: two long names do not fit together, so some go alone.
    assert [entries for _, _, entries in sent] == [1, 2, 1, 1] and cp.oversized == []
    assert all(size <= 220 for _, size, _ in sent)
    shown = re.sub(r"\s+", " ", page)
    for key in KEYS:
        assert f"{key} Accepted = value of {key.partition('.')[2]}" in shown
    audit = AuditLog.objects.get(username="staff-operator", action="GetVariables")
    assert audit.ok and len(audit.answer["getVariableResult"]) == 5
    assert len(audit.payload["getVariableData"]) == 5  # what staff asked, once


@pytest.mark.django_db
def test_a_request_is_cut_by_entries_and_by_bytes_and_a_station_without_limits_gets_one_message(station_factory):
    station, _ = station_factory("DM-CUT", evses=0)
    ChargingStation.objects.filter(pk=station.pk).update(ocpp_version="2.0.1")
    station.refresh_from_db()
    request = GetConfiguration(keys=tuple(KEYS))
    assert [len(c.payload["getVariableData"]) for c in request_messages(station=station, request=request)] == [5]
    two = MessageLimits(items=2)
    assert batches(list(range(5)), limits=two, call_for=lambda _: None, wire=str) == [[0, 1], [2, 3], [4]]
    assert batches([], limits=two, call_for=lambda _: None, wire=str) == [[]]  # a Full update that empties a list
    call_for = GetConfiguration(keys=tuple(KEYS[:1])).for_version
    one = frame_size(call_for("2.0.1"))
    cut = batches(
        KEYS,
        limits=MessageLimits(size=one + 60),
        call_for=lambda keys: GetConfiguration(keys=tuple(keys)).for_version("2.0.1"),
        wire=lambda key: {"component": {"name": key.partition(".")[0]}, "variable": {"name": key.partition(".")[2]}},
    )
    assert [key for batch in cut for key in batch] == KEYS  # order kept, nothing lost
    assert all(frame_size(GetConfiguration(keys=tuple(b)).for_version("2.0.1")) <= one + 60 for b in cut)
    assert len(cut) > 1
