"""Chargers with wrong clocks: simulated 1.6 and 2.0.1 chargers on a live daphne send timestamps a year ahead, a month
ahead, or from 1970 (a clock reset). We record our receive time instead, flag the frame in the message log, and the
station shows the skew to staff; the EVSE status and the live reading keep moving, and the CDR has the real
duration. Offline replays with genuine old timestamps are kept as sent. Charging states reported late still count
for PARKING_TIME (the OCPI spec's tariff example 10)."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from billing.models import Cdr, Tariff
from billing.services import transaction_bill
from cpo.models import EVSE, ChargingStation, Connector
from ocpp_gateway.models import ChargingStateChange, MessageLog, Transaction
from ocpp_gateway.services.clock import charger_time_check
from tests.billing.examples import example
from tests.ocpp_gateway.chargers import PLATFORM_READS_AFTER_BOOT, connected
from tests.support import in_thread, wait_until

YEAR = timedelta(days=365)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def energy16(at: datetime, wh: int) -> dict:
    return {
        "timestamp": iso(at),
        "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
    }


def energy201(at: datetime, wh: int, context: str = "Sample.Periodic") -> dict:
    return {
        "timestamp": iso(at),
        "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register", "context": context}],
    }


def boot16() -> call16.BootNotification:
    return call16.BootNotification(charge_point_model="Wallbox X", charge_point_vendor="ACME")


def boot201() -> call201.BootNotification:
    return call201.BootNotification(charging_station={"model": "AC-22", "vendor_name": "ACME"}, reason="PowerUp")


def status16(at: datetime, status: str, connector_id: int = 1) -> call16.StatusNotification:
    return call16.StatusNotification(connector_id=connector_id, error_code="NoError", status=status, timestamp=iso(at))


def event201(event_type: str, seq_no: int, at: datetime, **kwargs) -> call201.TransactionEvent:
    info = {"transactionId": "TX-CLOCK", **kwargs.pop("info", {})}
    return call201.TransactionEvent(
        event_type=event_type,
        timestamp=iso(at),
        trigger_reason=kwargs.pop("trigger_reason", "Authorized" if event_type == "Started" else "MeterValuePeriodic"),
        seq_no=seq_no,
        transaction_info=info,
        evse={"id": 1, "connectorId": 1},
        **kwargs,
    )


def the_cdr(tx: Transaction) -> Cdr:
    transaction_bill(transaction_pk=tx.pk)  # idempotent: the live server's eager tasks ran it already
    [cdr] = Cdr.objects.filter(session__transaction=tx, credit=False)
    return cdr


def flagged_frames(identity: str) -> list[tuple[str, int]]:
    return list(
        MessageLog.objects.filter(identity=identity, direction="IN", clock_skew__isnull=False).values_list(
            "action", "clock_skew"
        )
    )


# --- the one check every handler uses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "believed"),
    [
        (timedelta(0), True),
        (timedelta(minutes=4), True),  # inside OCPP_CLOCK_MAX_AHEAD_SECONDS
        (-timedelta(days=3), True),  # an offline replay
        (timedelta(minutes=6), False),
        (timedelta(days=30), False),
        (YEAR, False),
    ],
)
def test_a_charger_time_is_believed_inside_the_window_and_replaced_by_the_receive_time_outside(offset, believed):
    received = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    checked = charger_time_check(sent=received + offset, received=received, registered_at=received - YEAR)
    assert checked.at == (received + offset if believed else received)
    assert checked.skew == (None if believed else offset)


def test_a_time_before_the_station_was_registered_or_before_the_floor_is_not_believed():
    received = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    registered = datetime(2026, 6, 1, tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert charger_time_check(sent=epoch, received=received, registered_at=registered).at == received
    assert charger_time_check(sent=epoch, received=received, registered_at=None).at == received  # the floor
    long_before = registered - timedelta(days=60)
    assert charger_time_check(sent=long_before, received=received, registered_at=registered).at == received
    # Commissioning: a charger may queue transactions a little before staff registered it.
    shortly_before = registered - timedelta(days=2)
    assert charger_time_check(sent=shortly_before, received=received, registered_at=registered).at == shortly_before


@override_settings(OCPP_CLOCK_MAX_AHEAD_SECONDS=3600)
def test_the_window_is_a_setting():
    received = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    sent = received + timedelta(minutes=30)
    assert charger_time_check(sent=sent, received=received, registered_at=None).at == sent


# --- live chargers --------------------------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_16_status_dated_a_year_ahead_does_not_freeze_the_evse_and_staff_see_the_skew(live_daphne, station_factory):
    """A StatusNotification a year ahead, then a correct one: the EVSE shows the later one; the first is recorded
    at our receive time, its frame is flagged in the message log, and the station says its clock was a year off."""
    _, secret = station_factory("CP16-CLOCK-STATUS")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-CLOCK-STATUS"), "CP16-CLOCK-STATUS", secret) as cp:
            await cp.call(boot16())
            await cp.call(status16(now() + YEAR, "Faulted"))
            await asyncio.sleep(1.1)
            await cp.call(status16(now(), "Available"))

    before = now()
    asyncio.run(scenario())
    evse = EVSE.objects.get(station__identity="CP16-CLOCK-STATUS", ocpp_evse_id=1)
    assert evse.ocpp_status == "Available"
    assert before <= evse.status_updated <= now() + timedelta(seconds=1)
    station = ChargingStation.objects.get(identity="CP16-CLOCK-STATUS")
    wait_until(lambda: ChargingStation.objects.get(pk=station.pk).clock_skew is not None)
    station.refresh_from_db()
    assert abs(station.clock_skew - YEAR.total_seconds()) < 60 and station.clock_skew_at >= before
    [(action, skew)] = wait_until(lambda: flagged_frames("CP16-CLOCK-STATUS"))
    assert action == "StatusNotification" and abs(skew - YEAR.total_seconds()) < 60


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_16_meter_value_dated_30_days_ahead_does_not_freeze_the_live_reading(live_daphne, station_factory, local_token):
    _, secret = station_factory("CP16-CLOCK-METER")
    start = now() - timedelta(minutes=20)

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-CLOCK-METER"), "CP16-CLOCK-METER", secret) as cp:
            await cp.call(boot16())
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=iso(start))
            )
            meter = call16.MeterValues(connector_id=1, transaction_id=started.transaction_id, meter_value=[])
            meter.meter_value = [energy16(now() + timedelta(days=30), 4000)]
            await cp.call(meter)
            await asyncio.sleep(1.1)
            meter.meter_value = [energy16(now(), 6000)]
            await cp.call(meter)

    asyncio.run(scenario())
    tx = Transaction.objects.get(station__identity="CP16-CLOCK-METER")
    assert tx.meter_last == 6000 and tx.meter_last_at <= now() + timedelta(seconds=1)
    assert tx.started_at == start  # a sane time is kept as sent


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_16_start_dated_a_year_ahead_gives_a_cdr_of_today_with_its_real_duration(
    live_daphne, station_factory, local_token
):
    """The charger's clock is a year ahead when it starts; NTP puts it right before it stops. The CDR is of today,
    and lasts as long as the charge did (not 0 h, not in 2027). A retransmitted start gets the same transaction."""
    _, secret = station_factory("CP16-CLOCK-START")
    ahead = now() + YEAR

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-CLOCK-START"), "CP16-CLOCK-START", secret) as cp:
            await cp.call(boot16())
            start = call16.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=iso(ahead))
            started = await cp.call(start)
            again = await cp.call(start)  # no answer reached the charger: it sends the same start again
            assert again.transaction_id == started.transaction_id
            await asyncio.sleep(2)
            await cp.call(
                call16.StopTransaction(meter_stop=5000, timestamp=iso(now()), transaction_id=started.transaction_id)
            )

    before = now()
    asyncio.run(scenario())
    [tx] = Transaction.objects.filter(station__identity="CP16-CLOCK-START")
    assert before <= tx.started_at < tx.ended_at
    cdr = the_cdr(tx)
    assert cdr.start_date_time.year == before.year and cdr.end_date_time > cdr.start_date_time
    assert Decimal(0) < cdr.total_time < Decimal("0.01")  # seconds, not 0 h
    assert cdr.total_energy == 5


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_16_charger_whose_clock_reset_to_1970_gives_a_cdr_of_the_real_duration(
    live_daphne, station_factory, local_token
):
    _, secret = station_factory("CP16-CLOCK-1970")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-CLOCK-1970"), "CP16-CLOCK-1970", secret) as cp:
            await cp.call(boot16())
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=iso(epoch))
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[energy16(epoch + timedelta(minutes=1), 1000)],
                )
            )
            await asyncio.sleep(2)  # the stop's time is whole seconds: at least a second after the start's receive time
            await cp.call(
                call16.StopTransaction(meter_stop=2000, timestamp=iso(now()), transaction_id=started.transaction_id)
            )

    asyncio.run(scenario())
    tx = Transaction.objects.get(station__identity="CP16-CLOCK-1970")
    cdr = the_cdr(tx)
    assert Decimal(0) < cdr.total_time < Decimal("0.01") and cdr.total_energy == 2
    assert tx.meter_values.filter(timestamp__year=1970).count() == 0
    wait_until(lambda: flagged_frames("CP16-CLOCK-1970"))
    assert {action for action, _ in flagged_frames("CP16-CLOCK-1970")} == {"StartTransaction", "MeterValues"}


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_16_offline_replay_with_genuine_old_times_is_kept_as_sent_and_not_flagged(
    live_daphne, station_factory, local_token
):
    _, secret = station_factory("CP16-CLOCK-REPLAY")
    start = now() - timedelta(days=3)

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-CLOCK-REPLAY"), "CP16-CLOCK-REPLAY", secret) as cp:
            await cp.call(boot16())
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=iso(start))
            )
            await cp.call(status16(start + timedelta(minutes=1), "Charging"))
            await cp.call(
                call16.StopTransaction(
                    meter_stop=9000, timestamp=iso(start + timedelta(hours=1)), transaction_id=started.transaction_id
                )
            )

    asyncio.run(scenario())
    tx = Transaction.objects.get(station__identity="CP16-CLOCK-REPLAY")
    assert (tx.started_at, tx.ended_at) == (start, start + timedelta(hours=1))
    assert the_cdr(tx).total_time == 1
    # The charger's 4 CALLs and our answers (not what the platform asks after a boot).
    frames = MessageLog.objects.filter(identity="CP16-CLOCK-REPLAY").exclude(action__in=PLATFORM_READS_AFTER_BOOT)
    wait_until(lambda: frames.count() == 8)
    assert flagged_frames("CP16-CLOCK-REPLAY") == []
    assert ChargingStation.objects.get(identity="CP16-CLOCK-REPLAY").clock_skew is None


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_201_clock_a_year_ahead_status_stays_live_and_the_cdr_has_the_real_duration(
    live_daphne, station_factory, local_token
):
    """2.0.1: StatusNotification and TransactionEvents a year ahead, a MeterValues a month ahead; the clock is put
    right before the Ended event. The EVSE shows the later status, the transaction runs from when we received its
    Started to its real end, the live reading moved, and the station shows the skew."""
    _, secret = station_factory("CP201-CLOCK")
    token = {"idToken": local_token.uid, "type": "ISO14443"}

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP201-CLOCK"), "CP201-CLOCK", secret, version="2.0.1") as cp:
            await cp.call(boot201())
            ahead = now() + YEAR
            await cp.call(
                call201.StatusNotification(timestamp=iso(ahead), connector_status="Occupied", evse_id=1, connector_id=1)
            )
            await cp.call(
                event201("Started", 0, ahead, id_token=token, meter_value=[energy201(ahead, 100, "Transaction.Begin")])
            )
            await cp.call(call201.MeterValues(evse_id=1, meter_value=[energy201(now() + timedelta(days=30), 2100)]))
            await asyncio.sleep(1.1)
            await cp.call(call201.MeterValues(evse_id=1, meter_value=[energy201(now(), 3100)]))
            await asyncio.sleep(1)
            end = now()
            await cp.call(
                event201(
                    "Ended",
                    1,
                    end,
                    trigger_reason="EVDeparted",
                    info={"stoppedReason": "EVDisconnected"},
                    meter_value=[energy201(end, 4100, "Transaction.End")],
                )
            )
            await cp.call(
                call201.StatusNotification(
                    timestamp=iso(now()), connector_status="Available", evse_id=1, connector_id=1
                )
            )

    before = now()
    asyncio.run(scenario())
    assert EVSE.objects.get(station__identity="CP201-CLOCK", ocpp_evse_id=1).ocpp_status == "Available"
    tx = Transaction.objects.get(station__identity="CP201-CLOCK")
    assert before <= tx.started_at < tx.ended_at <= now()
    assert tx.meter_values.filter(timestamp__gt=now() + timedelta(minutes=5)).count() == 0
    cdr = the_cdr(tx)
    assert Decimal(0) < cdr.total_time < Decimal("0.01") and cdr.total_energy == 4
    station = wait_until(lambda: ChargingStation.objects.filter(identity="CP201-CLOCK", clock_skew__gt=0).first())
    assert abs(station.clock_skew - timedelta(days=30).total_seconds()) < 60  # the last skew seen: the MeterValues'
    actions = {action for action, _ in wait_until(lambda: flagged_frames("CP201-CLOCK"))}
    assert {"StatusNotification", "TransactionEvent", "MeterValues"} <= actions


# --- charging-state history ----------------------------------------------------------------------------------------


@pytest.fixture
def parking_tariff(db):
    """OCPI 2.2.1 tariff example 10: 0.50 per session, 0.25/kWh, 2.00/h parking in steps of 15 min."""
    tariff = Tariff(**{k: v for k, v in example("tariff_10_025kwh_parking_start.json").items() if k != "last_updated"})
    tariff.full_clean()
    tariff.save()
    return tariff


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_16_suspended_ev_reported_late_still_bills_the_spec_parking_example(
    live_daphne, station_factory, local_token, parking_tariff
):
    """Tariff example 10's scenario, 20 kWh in 2 h then 40 min parked: the charger's SuspendedEV (the car is full)
    reaches us after its Finishing, from its queue after a network cut. The EVSE shows Finishing, the newest; the
    parking time still counts: 7.00 / 7.90 as the spec states (not 5.50 / 6.10)."""
    _, secret = station_factory("CP16-PARKING", evses=1)
    Connector.objects.filter(evse__station__identity="CP16-PARKING").update(tariff_ids=[parking_tariff.id])
    t0 = now() - timedelta(hours=3)
    full, leaves = t0 + timedelta(hours=2), t0 + timedelta(minutes=160)

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-PARKING"), "CP16-PARKING", secret) as cp:
            await cp.call(boot16())
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=iso(t0))
            )
            await cp.call(status16(t0, "Charging"))
            await cp.call(
                call16.MeterValues(
                    connector_id=1, transaction_id=started.transaction_id, meter_value=[energy16(full, 20000)]
                )
            )
            await cp.call(status16(leaves, "Finishing"))
            await cp.call(status16(full, "SuspendedEV"))  # late, from the queue
            await cp.call(
                call16.StopTransaction(
                    meter_stop=20000,
                    timestamp=iso(leaves),
                    transaction_id=started.transaction_id,
                    reason="EVDisconnected",
                )
            )

    asyncio.run(scenario())
    assert EVSE.objects.get(station__identity="CP16-PARKING").ocpp_status == "Finishing"
    tx = Transaction.objects.get(station__identity="CP16-PARKING")
    assert list(tx.charging_states.values_list("timestamp", "charging_state")) == [
        (t0, "Charging"),
        (full, "SuspendedEV"),
        (leaves, "EVConnected"),
    ]
    cdr = the_cdr(tx)
    assert (cdr.total_cost_excl_vat, cdr.total_cost_incl_vat) == (Decimal("7.00"), Decimal("7.90"))
    assert cdr.total_parking_time == Decimal("0.6667")


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_16_charging_state_reported_after_the_stop_is_kept_for_the_transaction_it_belongs_to(
    live_daphne, station_factory, local_token
):
    _, secret = station_factory("CP16-LATE-STATE", evses=1)
    t0 = now() - timedelta(hours=2)

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-LATE-STATE"), "CP16-LATE-STATE", secret) as cp:
            await cp.call(boot16())
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=iso(t0))
            )
            await cp.call(
                call16.StopTransaction(
                    meter_stop=1000, timestamp=iso(t0 + timedelta(hours=1)), transaction_id=started.transaction_id
                )
            )
            await cp.call(status16(t0 + timedelta(hours=1, minutes=5), "Available"))
            await cp.call(status16(t0 + timedelta(minutes=30), "SuspendedEV"))  # late

    asyncio.run(scenario())
    tx = Transaction.objects.get(station__identity="CP16-LATE-STATE")
    assert list(ChargingStateChange.objects.filter(transaction=tx).values_list("charging_state", flat=True)) == [
        "SuspendedEV"
    ]
    assert EVSE.objects.get(station__identity="CP16-LATE-STATE").ocpp_status == "Available"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_201_suspended_ev_event_arriving_after_a_newer_one_still_bills_the_spec_parking_example(
    live_daphne, station_factory, local_token, parking_tariff
):
    """2.0.1: the TransactionEvent saying SuspendedEV (seqNo 2) arrives after the newer EVConnected one (seqNo 3).
    The transaction's charging state stays the newest; the history has both; the CDR is 7.00 / 7.90."""
    _, secret = station_factory("CP201-PARKING", evses=1)
    Connector.objects.filter(evse__station__identity="CP201-PARKING").update(tariff_ids=[parking_tariff.id])
    token = {"idToken": local_token.uid, "type": "ISO14443"}
    t0 = now() - timedelta(hours=3)
    full, leaves = t0 + timedelta(hours=2), t0 + timedelta(minutes=160)

    def state(seq_no: int, at: datetime, charging_state: str) -> call201.TransactionEvent:
        return event201(
            "Updated", seq_no, at, trigger_reason="ChargingStateChanged", info={"chargingState": charging_state}
        )

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP201-PARKING"), "CP201-PARKING", secret, version="2.0.1") as cp:
            await cp.call(boot201())
            await cp.call(
                event201(
                    "Started",
                    0,
                    t0,
                    id_token=token,
                    info={"chargingState": "Charging"},
                    meter_value=[energy201(t0, 0, "Transaction.Begin")],
                )
            )
            await cp.call(event201("Updated", 1, full, meter_value=[energy201(full, 20000)]))
            await cp.call(state(3, leaves, "EVConnected"))
            await cp.call(state(2, full, "SuspendedEV"))  # late
            tx = await in_thread(Transaction.objects.get, station__identity="CP201-PARKING")
            assert tx.charging_state == "EVConnected"
            await cp.call(
                event201(
                    "Ended",
                    4,
                    leaves,
                    trigger_reason="EVDeparted",
                    info={"stoppedReason": "EVDisconnected"},
                    meter_value=[energy201(leaves, 20000, "Transaction.End")],
                )
            )

    asyncio.run(scenario())
    tx = Transaction.objects.get(station__identity="CP201-PARKING")
    assert list(tx.charging_states.values_list("charging_state", flat=True)) == [
        "Charging",
        "SuspendedEV",
        "EVConnected",
    ]
    cdr = the_cdr(tx)
    assert (cdr.total_cost_excl_vat, cdr.total_cost_incl_vat) == (Decimal("7.00"), Decimal("7.90"))
