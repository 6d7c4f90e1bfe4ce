"""Station-level faults and the vendor's details are kept: a 1.6 StatusNotification for connectorId 0 and a 2.0.1 one
for evseId 0 describe the whole station; 1.6 `info` / `vendorId` / `vendorErrorCode` are stored where they belong."""

import asyncio

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.models import EVSE, ChargingStation
from tests.ocpp_gateway.chargers import connected

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_16_a_faulted_station_and_its_vendor_details_are_stored_on_the_station_and_evse(live_daphne, station_factory):
    station, secret = station_factory("CP16-FAULT")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-FAULT"), "CP16-FAULT", secret) as cp:
            await cp.call(
                call16.StatusNotification(
                    connector_id=0,
                    error_code="PowerMeterFailure",
                    status="Faulted",
                    timestamp="2026-11-20T10:00:00Z",
                    info="meter bus timeout",
                    vendor_id="com.acme",
                    vendor_error_code="E-417",
                )
            )
            await cp.call(
                call16.StatusNotification(  # older than what we hold: ignored
                    connector_id=0, error_code="NoError", status="Available", timestamp="2026-11-20T09:00:00Z"
                )
            )
            await cp.call(
                call16.StatusNotification(
                    connector_id=2,
                    error_code="OtherError",
                    status="Unavailable",
                    timestamp="2026-11-20T10:00:00Z",
                    info="door open",
                    vendor_id="com.acme",
                    vendor_error_code="D-1",
                )
            )

    asyncio.run(scenario())
    station.refresh_from_db()
    assert (
        station.ocpp_status,
        station.ocpp_error_code,
        station.status_info,
        station.vendor_id,
        station.vendor_error_code,
    ) == ("Faulted", "PowerMeterFailure", "meter bus timeout", "com.acme", "E-417")
    assert station.status_updated.isoformat() == "2026-11-20T10:00:00+00:00"
    evse = EVSE.objects.get(station=station, ocpp_evse_id=2)
    assert (evse.ocpp_status, evse.ocpp_error_code, evse.status_info, evse.vendor_id, evse.vendor_error_code) == (
        "Unavailable",
        "OtherError",
        "door open",
        "com.acme",
        "D-1",
    )
    assert EVSE.objects.filter(station=station).count() == 2  # connector 0 is no EVSE


def test_201_a_station_wide_status_is_stored_on_the_station(live_daphne, station_factory):
    station, secret = station_factory("CP201-FAULT")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP201-FAULT"), "CP201-FAULT", secret, version="2.0.1") as cp:
            await cp.call(
                call201.StatusNotification(
                    timestamp="2026-11-20T10:00:00Z", connector_status="Unavailable", evse_id=0, connector_id=0
                )
            )

    asyncio.run(scenario())
    assert ChargingStation.objects.values_list("ocpp_status", flat=True).get(pk=station.pk) == "Unavailable"
    assert EVSE.objects.filter(station=station).count() == 2


def test_201_a_station_wide_fault_reported_by_notify_event_is_stored_on_the_station(live_daphne, station_factory):
    """2.0.1 reports the station's own availability as an event of its ChargingStation component; an EVSE's event of
    the same variable is not about the whole station."""
    station, secret = station_factory("CP201-EVENT")

    def availability(event_id: int, value: str, ts: str, **extra) -> dict:
        return {
            "eventId": event_id,
            "timestamp": ts,
            "trigger": "Delta",
            "actualValue": value,
            "eventNotificationType": "HardWiredNotification",
            "component": {"name": "ChargingStation", **extra},
            "variable": {"name": "AvailabilityState"},
            "techCode": "PWR-METER",
            "techInfo": "meter not answering",
        }

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP201-EVENT"), "CP201-EVENT", secret, version="2.0.1") as cp:
            await cp.call(
                call201.NotifyEvent(
                    generated_at="2026-11-20T10:00:01Z",
                    seq_no=0,
                    event_data=[
                        availability(1, "Faulted", "2026-11-20T10:00:00Z"),
                        availability(2, "Available", "2026-11-20T10:05:00Z", evse={"id": 1}),
                    ],
                )
            )

    asyncio.run(scenario())
    station.refresh_from_db()
    assert (station.ocpp_status, station.vendor_error_code, station.status_info) == (
        "Faulted",
        "PWR-METER",
        "meter not answering",
    )
