"""A 2.0.1 charging station against a live daphne: provisioning, transactions by seqNo, reports and notifications."""

import asyncio
from decimal import Decimal

import pytest
from ocpp.v201 import call

from cpo.models import EVSE
from ocpp_gateway.models import MeterValue, Transaction, TransactionEvent
from tests.ocpp_gateway.chargers import connected, now_iso

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def energy(ts: str, wh: float, context: str = "Sample.Periodic") -> dict:
    return {
        "timestamp": ts,
        "sampledValue": [
            {
                "value": wh,
                "measurand": "Energy.Active.Import.Register",
                "context": context,
                "unitOfMeasure": {"unit": "Wh"},
            }
        ],
    }


def tx_event(event_type, seq_no, ts, trigger, *, tx_id="TX-201-A", meter=None, id_token=None, **info):
    return call.TransactionEvent(
        event_type=event_type,
        timestamp=ts,
        trigger_reason=trigger,
        seq_no=seq_no,
        transaction_info={"transactionId": tx_id, **info},
        evse={"id": 1, "connectorId": 1},
        id_token=id_token,
        meter_value=meter,
    )


def test_a_201_station_runs_a_transaction_and_retransmissions_change_nothing(live_daphne, station_factory, local_token):
    station, secret = station_factory("CS201-LIFE")
    token = {"idToken": local_token.uid, "type": "ISO14443"}
    started = tx_event(
        "Started",
        0,
        "2026-11-22T07:00:00Z",
        "Authorized",
        id_token=token,
        meter=[energy("2026-11-22T07:00:00Z", 200, "Transaction.Begin")],
        chargingState="Charging",
    )
    updated = tx_event(
        "Updated", 1, "2026-11-22T07:30:00Z", "MeterValuePeriodic", meter=[energy("2026-11-22T07:30:00Z", 5200)]
    )
    ended = tx_event(
        "Ended",
        2,
        "2026-11-22T08:00:00Z",
        "EVCommunicationLost",
        meter=[energy("2026-11-22T08:00:00Z", 10200, "Transaction.End")],
        stoppedReason="EVDisconnected",
    )

    async def scenario():
        async with connected(live_daphne.ocpp_url("CS201-LIFE"), "CS201-LIFE", secret, version="2.0.1") as cp:
            boot = await cp.call(
                call.BootNotification(
                    charging_station={
                        "model": "DC-50",
                        "vendorName": "VoltCo",
                        "serialNumber": "SN-9",
                        "firmwareVersion": "4.0.1",
                    },
                    reason="PowerUp",
                )
            )
            await cp.call(
                call.StatusNotification(timestamp=now_iso(), connector_status="Occupied", evse_id=1, connector_id=1)
            )
            auth = await cp.call(call.Authorize(id_token=token))
            first = await cp.call(started)
            await cp.call(updated)
            await cp.call(updated)  # retransmitted after a lost CALLRESULT
            await cp.call(ended)
            again = await cp.call(ended)
            await cp.call(
                call.NotifyEvent(
                    generated_at=now_iso(),
                    seq_no=0,
                    event_data=[
                        {
                            "eventId": 1,
                            "timestamp": now_iso(),
                            "trigger": "Delta",
                            "actualValue": "Faulted",
                            "eventNotificationType": "HardWiredNotification",
                            "component": {"name": "Connector"},
                            "variable": {"name": "AvailabilityState"},
                        }
                    ],
                )
            )
            await cp.call(call.NotifyReport(request_id=1, generated_at=now_iso(), seq_no=0))
            await cp.call(call.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now_iso()))
            await cp.call(call.FirmwareStatusNotification(status="Installed"))
            await cp.call(call.LogStatusNotification(status="Idle"))
            data = await cp.call(call.DataTransfer(vendor_id="com.example"))
            return boot, auth, first, again, data

    boot, auth, first, again, data = asyncio.run(scenario())
    assert boot.status == "Accepted"
    assert auth.id_token_info["status"] == "Accepted"
    assert first.id_token_info["status"] == "Accepted" and again is not None
    assert data.status == "UnknownVendorId"
    station.refresh_from_db()
    assert (station.vendor, station.model, station.serial_number, station.ocpp_version) == (
        "VoltCo",
        "DC-50",
        "SN-9",
        "2.0.1",
    )
    assert EVSE.objects.get(station=station, ocpp_evse_id=1).status == "CHARGING"
    tx = Transaction.objects.get(station=station)
    assert tx.transaction_id == "TX-201-A" and tx.status == "ENDED" and tx.stop_reason == "EVDisconnected"
    assert (tx.meter_start, tx.meter_stop, tx.energy_wh) == (Decimal(200), Decimal(10200), Decimal(10000))
    assert tx.started_at.isoformat() == "2026-11-22T07:00:00+00:00"
    assert list(TransactionEvent.objects.filter(transaction=tx).values_list("seq_no", flat=True)) == [0, 1, 2]
    assert MeterValue.objects.filter(transaction=tx).count() == 3
    assert list(tx.charging_states.values_list("charging_state", flat=True)) == ["Charging"]


def test_events_arriving_out_of_order_after_an_offline_period_make_one_transaction(live_daphne, station_factory):
    station, secret = station_factory("CS201-OFFLINE")
    ended = tx_event(
        "Ended",
        2,
        "2026-11-22T10:00:00Z",
        "StopAuthorized",
        tx_id="TX-OFF",
        meter=[energy("2026-11-22T10:00:00Z", 3000, "Transaction.End")],
    )
    started = tx_event(
        "Started",
        0,
        "2026-11-22T09:00:00Z",
        "CablePluggedIn",
        tx_id="TX-OFF",
        meter=[energy("2026-11-22T09:00:00Z", 1000, "Transaction.Begin")],
    )

    async def scenario():
        async with connected(live_daphne.ocpp_url("CS201-OFFLINE"), "CS201-OFFLINE", secret, version="2.0.1") as cp:
            await cp.call(ended)
            await cp.call(started)

    asyncio.run(scenario())
    tx = Transaction.objects.get(station=station)
    assert tx.status == "ENDED"
    assert tx.started_at.isoformat() == "2026-11-22T09:00:00+00:00"
    assert tx.ended_at.isoformat() == "2026-11-22T10:00:00+00:00"
    assert tx.meter_start == 1000 and tx.meter_stop == 3000


def test_an_ocpp21_station_is_served_with_the_21_schemas(live_daphne, station_factory, local_token):
    import websockets
    from ocpp.v21 import ChargePoint as ChargePoint21
    from ocpp.v21 import call as call21

    from tests.ocpp_gateway.chargers import basic_auth

    station, secret = station_factory("CS21-A")

    async def scenario():
        async with websockets.connect(
            live_daphne.ocpp_url("CS21-A"), subprotocols=["ocpp2.1"], additional_headers=basic_auth("CS21-A", secret)
        ) as ws:
            cp = ChargePoint21("CS21-A", ws)
            task = asyncio.create_task(cp.start())
            boot = await cp.call(
                call21.BootNotification(charging_station={"model": "M21", "vendorName": "V21"}, reason="PowerUp")
            )
            event = await cp.call(
                call21.TransactionEvent(
                    event_type="Started",
                    timestamp=now_iso(),
                    trigger_reason="Authorized",
                    seq_no=0,
                    transaction_info={"transactionId": "TX21"},
                    id_token={"idToken": local_token.uid, "type": "ISO14443"},
                    evse={"id": 1, "connectorId": 1},
                )
            )
            task.cancel()
            return ws.subprotocol, boot, event

    subprotocol, boot, event = asyncio.run(scenario())
    assert subprotocol == "ocpp2.1" and boot.status == "Accepted"
    assert event.id_token_info["status"] == "Accepted"
    tx = Transaction.objects.get(station=station, transaction_id="TX21")
    assert tx.ocpp_version == "2.1" and tx.events.get().payload["trigger_reason"] == "Authorized"
