"""End to end: chargers with wrong clocks and late charging states, as the EMSP sees them. Real PostgreSQL, Redis,
daphne, a Celery worker and the EMSP on loopback.

A 1.6 charger whose clock reset to 1970 and a 2.0.1 charger a year ahead each give the EMSP one CDR of today that
lasts as long as the charge did; a 1.6 charger whose SuspendedEV arrives after its Finishing gives the CDR the OCPI
spec states for tariff example 10 (7.00 / 7.90 with 40 minutes parked), not the energy-only 5.50 / 6.10."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from billing.models import Session, Tariff
from cpo.models import ChargingStation, Connector
from tests.billing.examples import example
from tests.e2e.scenario import TOKEN_16, TOKEN_201, cdr_of, energy_16, iso
from tests.ocpp_gateway.chargers import connected
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def the_cdr_at_the_emsp(emsp, identity: str) -> dict:
    session = wait_until(
        lambda: Session.objects.filter(transaction__station__identity=identity, status="COMPLETED").first(), timeout=30
    )
    [cdr] = wait_until(lambda: cdr_of(emsp, session.id) or None, timeout=30)
    return cdr


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_16_charger_whose_clock_reset_to_1970_gives_the_emsp_a_cdr_of_today_with_the_real_duration(
    daphne, roaming, emsp, network, worker
):
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]

    async def charge():
        async with connected(url, "E2E-1.6", secret) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=1000, timestamp=iso(EPOCH))
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[energy_16(EPOCH + timedelta(seconds=1), 3000)],
                )
            )
            await asyncio.sleep(2)
            await cp.call(
                call16.StopTransaction(
                    meter_stop=5000, timestamp=iso(EPOCH + timedelta(seconds=3)), transaction_id=started.transaction_id
                )
            )

    before = now()
    asyncio.run(charge())
    cdr = the_cdr_at_the_emsp(emsp, "E2E-1.6")
    start, end = parse(cdr["start_date_time"]), parse(cdr["end_date_time"])
    assert before <= start < end <= datetime.now(UTC) and 0 < cdr["total_time"] < 0.01  # seconds, not 498,940 h
    assert cdr["total_energy"] == 4.0
    assert ChargingStation.objects.get(identity="E2E-1.6").clock_skew < -50 * 365 * 86400  # staff see it


def test_a_201_charger_a_year_ahead_gives_the_emsp_a_cdr_of_today_not_of_next_year(
    daphne, roaming, emsp, network, worker
):
    url, secret = daphne.ocpp_url("E2E-2.0.1"), network["2.0.1"][1]
    token = {"idToken": TOKEN_201, "type": "ISO14443"}

    def event(event_type: str, seq_no: int, at: datetime, wh: int, **kwargs) -> call201.TransactionEvent:
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(event_type, "Sample.Periodic")
        sample = {"value": wh, "measurand": "Energy.Active.Import.Register", "context": context}
        return call201.TransactionEvent(
            event_type=event_type,
            timestamp=iso(at),
            seq_no=seq_no,
            evse={"id": 1, "connectorId": 1},
            meter_value=[{"timestamp": iso(at), "sampledValue": [sample]}],
            **kwargs,
        )

    async def charge():
        async with connected(url, "E2E-2.0.1", secret, version="2.0.1") as cp:
            await cp.call(
                call201.BootNotification(charging_station={"model": "AC-22", "vendor_name": "ACME"}, reason="PowerUp")
            )
            ahead = now() + timedelta(days=365)
            info = {"transactionId": "TX-AHEAD"}
            await cp.call(
                event("Started", 0, ahead, 0, trigger_reason="Authorized", transaction_info=info, id_token=token)
            )
            await asyncio.sleep(2)
            await cp.call(
                event(
                    "Ended",
                    1,
                    now() + timedelta(days=365),
                    3000,
                    trigger_reason="EVDeparted",
                    transaction_info={**info, "stoppedReason": "EVDisconnected"},
                )
            )

    before = now()
    asyncio.run(charge())
    cdr = the_cdr_at_the_emsp(emsp, "E2E-2.0.1")
    start, end = parse(cdr["start_date_time"]), parse(cdr["end_date_time"])
    assert before <= start < end <= datetime.now(UTC) and 0 < cdr["total_time"] < 0.01
    assert cdr["total_energy"] == 3.0


def test_a_16_charger_whose_suspended_ev_arrives_late_bills_the_spec_parking_example_at_the_emsp(
    daphne, roaming, emsp, network, worker
):
    """OCPI tariff example 10: 20 kWh in 2 h, then 40 min parked (SuspendedEV), reported after the Finishing."""
    tariff_data = {k: v for k, v in example("tariff_10_025kwh_parking_start.json").items() if k != "last_updated"}
    tariff = Tariff(**tariff_data)
    tariff.full_clean()
    tariff.save()
    Connector.objects.filter(evse__station__identity="E2E-1.6").update(tariff_ids=[tariff.id])
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]
    t0 = now() - timedelta(hours=3)
    full, leaves = t0 + timedelta(hours=2), t0 + timedelta(minutes=160)

    def status(at: datetime, value: str) -> call16.StatusNotification:
        return call16.StatusNotification(connector_id=1, error_code="NoError", status=value, timestamp=iso(at))

    async def charge():
        async with connected(url, "E2E-1.6", secret) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=0, timestamp=iso(t0))
            )
            await cp.call(status(t0, "Charging"))
            await cp.call(
                call16.MeterValues(
                    connector_id=1, transaction_id=started.transaction_id, meter_value=[energy_16(full, 20000)]
                )
            )
            await cp.call(status(leaves, "Finishing"))
            await cp.call(status(full, "SuspendedEV"))  # from the charger's queue, after the newer Finishing
            await cp.call(
                call16.StopTransaction(meter_stop=20000, timestamp=iso(leaves), transaction_id=started.transaction_id)
            )

    asyncio.run(charge())
    cdr = the_cdr_at_the_emsp(emsp, "E2E-1.6")
    assert cdr["total_cost"] == {"excl_vat": 7.0, "incl_vat": 7.9}
    assert cdr["total_parking_time"] == 0.6667 and cdr["total_energy"] == 20.0
