"""A 1.6 charger's whole life against a live daphne: boot, status, authorize, start, meter values, stop, reconnect."""

import asyncio
from decimal import Decimal

import pytest
from ocpp.v16 import call

from cpo.models import EVSE, ChargingStation
from ocpp_gateway.models import MessageLog, MeterValue, Transaction
from tests.ocpp_gateway.chargers import PLATFORM_READS_AFTER_BOOT, connected, now_iso
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def meter(ts: str, wh: str, power_w: str | None = None) -> dict:
    values = [{"value": wh, "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic"}]
    if power_w is not None:
        values.append({"value": power_w, "measurand": "Power.Active.Import", "unit": "W"})
    return {"timestamp": ts, "sampledValue": values}


def test_a_charger_boots_charges_and_stops(live_daphne, station_factory, local_token):
    station, secret = station_factory("CP16-LIFE")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-LIFE"), "CP16-LIFE", secret) as cp:
            boot = await cp.call(
                call.BootNotification(
                    charge_point_model="Wallbox X", charge_point_vendor="ACME", firmware_version="1.2.3"
                )
            )
            await cp.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now_iso())
            )
            auth = await cp.call(call.Authorize(id_tag=local_token.uid))
            start = await cp.call(
                call.StartTransaction(
                    connector_id=1, id_tag=local_token.uid, meter_start=1000, timestamp="2026-11-20T10:00:00Z"
                )
            )
            await cp.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=now_iso())
            )
            await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[meter("2026-11-20T10:15:00Z", "3500", "11000")],
                )
            )
            stop = await cp.call(
                call.StopTransaction(
                    meter_stop=12000,
                    timestamp="2026-11-20T11:00:00Z",
                    transaction_id=start.transaction_id,
                    id_tag=local_token.uid,
                    reason="EVDisconnected",
                    transaction_data=[meter("2026-11-20T11:00:00Z", "12000")],
                )
            )
            return boot, auth, start, stop

    boot, auth, start, stop = asyncio.run(scenario())

    assert boot.status == "Accepted" and boot.interval > 0
    assert auth.id_tag_info["status"] == "Accepted"
    assert start.id_tag_info["status"] == "Accepted"
    assert stop.id_tag_info["status"] == "Accepted"
    station.refresh_from_db()
    assert (station.vendor, station.model, station.firmware_version, station.ocpp_version) == (
        "ACME",
        "Wallbox X",
        "1.2.3",
        "1.6",
    )
    tx = Transaction.objects.get(transaction_id=str(start.transaction_id))
    assert tx.status == "ENDED" and tx.stop_reason == "EVDisconnected"
    assert tx.started_at.isoformat() == "2026-11-20T10:00:00+00:00"  # the charger's time, not ours
    assert tx.energy_wh == Decimal(11000)
    assert MeterValue.objects.filter(transaction=tx, measurand="Power.Active.Import").get().value == 11000
    assert EVSE.objects.get(station=station, ocpp_evse_id=1).status == "CHARGING"
    # 7 CALLs in, 7 answers out (and what the platform asks after a boot, not counted)
    frames = MessageLog.objects.filter(identity="CP16-LIFE").exclude(action__in=PLATFORM_READS_AFTER_BOOT)
    wait_until(lambda: frames.count() == 14)
    assert MessageLog.objects.filter(identity="CP16-LIFE", direction="OUT", action="StartTransaction").exists()
    wait_until(lambda: not ChargingStation.objects.get(pk=station.pk).online)


def test_retransmitted_start_gets_the_same_id_and_repeated_stop_changes_nothing(
    live_daphne, station_factory, local_token
):
    _, secret = station_factory("CP16-RETX")
    start_req = dict(connector_id=2, id_tag=local_token.uid, meter_start=0, timestamp="2026-11-21T08:00:00Z")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-RETX"), "CP16-RETX", secret) as cp:
            first = await cp.call(call.StartTransaction(**start_req))
        async with connected(live_daphne.ocpp_url("CP16-RETX"), "CP16-RETX", secret) as cp:  # reconnect
            again = await cp.call(call.StartTransaction(**start_req))
            stop = call.StopTransaction(
                meter_stop=5000, timestamp="2026-11-21T09:00:00Z", transaction_id=first.transaction_id
            )
            await cp.call(stop)
            await cp.call(
                call.StopTransaction(
                    meter_stop=9999, timestamp="2026-11-21T09:30:00Z", transaction_id=first.transaction_id
                )
            )
            unknown = await cp.call(
                call.StopTransaction(meter_stop=1, timestamp="2026-11-21T09:00:00Z", transaction_id=987654)
            )
        return first, again, unknown

    first, again, unknown = asyncio.run(scenario())
    assert first.transaction_id == again.transaction_id
    assert Transaction.objects.filter(station__identity="CP16-RETX").count() == 1
    tx = Transaction.objects.get(station__identity="CP16-RETX")
    assert tx.meter_stop == 5000 and tx.ended_at.isoformat() == "2026-11-21T09:00:00+00:00"
    assert unknown is not None  # accepted, so the charger can empty its queue


def test_unknown_token_is_invalid_and_blocked_and_expired_tokens_say_so(live_daphne, station_factory, db):
    from datetime import timedelta

    from django.utils import timezone

    from cpo.models import Token

    Token.objects.create(uid="BLOCKED-1", valid=False)
    Token.objects.create(uid="EXPIRED-1", expiry_date=timezone.now() - timedelta(days=1))
    _, secret = station_factory("CP16-AUTH")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-AUTH"), "CP16-AUTH", secret) as cp:
            return [
                (await cp.call(call.Authorize(id_tag=tag))).id_tag_info["status"]
                for tag in ("NOBODY", "BLOCKED-1", "EXPIRED-1")
            ]

    assert asyncio.run(scenario()) == ["Invalid", "Blocked", "Expired"]
