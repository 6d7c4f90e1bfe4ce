"""Transactions always end, once: simulated 1.6 and 2.0.1 chargers on a live daphne reboot mid-transaction, start a
new transaction on a busy connector, report the connector free without a stop, and send their stop late. Each
transaction ends exactly once (one `transaction_ended`, so billing completes one session and issues one CDR), at the
last reading we had, saying who ended it; a late stop corrects the stored reading and time, nothing more."""

import asyncio
from decimal import Decimal

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from billing.enums import SessionStatus
from billing.models import Cdr, Session
from billing.services import transaction_bill
from ocpp_gateway.models import Transaction
from tests.ocpp_gateway.chargers import connected

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def energy(ts: str, wh: str) -> dict:
    return {
        "timestamp": ts,
        "sampledValue": [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic"}
        ],
    }


def boot16() -> call16.BootNotification:
    return call16.BootNotification(charge_point_model="Wallbox X", charge_point_vendor="ACME")


def billed(tx: Transaction) -> tuple[list[Session], list[Cdr]]:
    """Billing's result for `tx`, running its pipeline once more as a worker would (idempotent: with the embedded
    default's eager tasks the live server has run it already): its sessions and its live CDRs (a CDR a late stop
    corrected is credited and re-issued: the credited one no longer counts)."""
    transaction_bill(transaction_pk=tx.pk)
    credited = Cdr.objects.filter(credit=True).values("credit_reference_id")
    return (
        list(Session.objects.filter(transaction=tx)),
        list(Cdr.objects.filter(session__transaction=tx, credit=False).exclude(pk__in=credited)),
    )


def assert_billed_once(tx: Transaction) -> None:
    sessions, cdrs = billed(tx)
    assert [s.status for s in sessions] == [SessionStatus.COMPLETED]
    assert len(cdrs) == 1 and cdrs[0].total_energy == (tx.meter_stop - tx.meter_start) / 1000


def test_16_charger_reboots_mid_transaction_it_ends_once_and_the_next_connectors_transaction_is_untouched(
    live_daphne, station_factory, local_token
):
    """Reboot: connector 1's transaction ends at its last reading (Reboot, ended_by reboot). After the boot the
    charger charges on connector 2 and reports connector 1 Available: connector 2's transaction stays ACTIVE, and
    connector 1's is not ended a second time."""
    _, secret = station_factory("CP16-REBOOT")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-REBOOT"), "CP16-REBOOT", secret) as cp:
            await cp.call(boot16())
            first = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=local_token.uid, meter_start=1000, timestamp="2026-11-20T10:00:00Z"
                )
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=first.transaction_id,
                    meter_value=[energy("2026-11-20T10:15:00Z", "3500")],
                )
            )
        async with connected(live_daphne.ocpp_url("CP16-REBOOT"), "CP16-REBOOT", secret) as cp:
            await cp.call(boot16())  # power cut: the charger comes back without having stopped anything
            second = await cp.call(
                call16.StartTransaction(
                    connector_id=2, id_tag=local_token.uid, meter_start=500, timestamp="2026-11-20T10:30:00Z"
                )
            )
            await cp.call(
                call16.StatusNotification(
                    connector_id=1, error_code="NoError", status="Available", timestamp="2026-11-20T10:31:00Z"
                )
            )
        return first, second

    first, second = asyncio.run(scenario())
    old = Transaction.objects.get(station__identity="CP16-REBOOT", transaction_id=str(first.transaction_id))
    assert (old.status, old.ended_by, old.stop_reason) == ("ENDED", "reboot", "Reboot")
    assert old.meter_stop == Decimal(3500) and old.ended_at.isoformat() == "2026-11-20T10:15:00+00:00"
    new = Transaction.objects.get(station__identity="CP16-REBOOT", transaction_id=str(second.transaction_id))
    assert new.status == "ACTIVE" and new.ended_by == ""
    assert_billed_once(old)


def test_201_station_reboots_mid_transaction_it_ends_once_but_a_triggered_boot_ends_nothing(
    live_daphne, station_factory, local_token
):
    _, secret = station_factory("CP201-REBOOT")
    boot = {"charging_station": {"model": "W201", "vendor_name": "ACME"}}

    def started(tx_id: str, evse: int, ts: str) -> call201.TransactionEvent:
        return call201.TransactionEvent(
            event_type="Started",
            timestamp=ts,
            trigger_reason="Authorized",
            seq_no=0,
            transaction_info={"transactionId": tx_id, "chargingState": "Charging"},
            evse={"id": evse, "connectorId": 1},
            id_token={"idToken": local_token.uid, "type": "ISO14443"},
            meter_value=[{"timestamp": ts, "sampledValue": [{"value": 2000, "context": "Transaction.Begin"}]}],
        )

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP201-REBOOT"), "CP201-REBOOT", secret, version="2.0.1") as cp:
            await cp.call(call201.BootNotification(reason="PowerUp", **boot))
            await cp.call(started("TX-R1", 1, "2026-11-20T10:00:00Z"))
            await cp.call(
                call201.MeterValues(
                    evse_id=1, meter_value=[{"timestamp": "2026-11-20T10:20:00Z", "sampledValue": [{"value": 6000}]}]
                )
            )
            await cp.call(call201.BootNotification(reason="Triggered", **boot))  # asked for, not a reboot
            assert (await asyncio.to_thread(lambda: Transaction.objects.get(transaction_id="TX-R1").status)) == "ACTIVE"
        async with connected(live_daphne.ocpp_url("CP201-REBOOT"), "CP201-REBOOT", secret, version="2.0.1") as cp:
            await cp.call(call201.BootNotification(reason="PowerUp", **boot))

    asyncio.run(scenario())
    tx = Transaction.objects.get(station__identity="CP201-REBOOT", transaction_id="TX-R1")
    assert (tx.status, tx.ended_by, tx.stop_reason, tx.meter_stop) == ("ENDED", "reboot", "Reboot", Decimal(6000))
    assert tx.ended_at.isoformat() == "2026-11-20T10:20:00+00:00"
    assert_billed_once(tx)


def test_16_a_new_transaction_on_the_same_connector_ends_the_old_one(live_daphne, station_factory, local_token):
    _, secret = station_factory("CP16-NEWTX")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-NEWTX"), "CP16-NEWTX", secret) as cp:
            old = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=local_token.uid, meter_start=100, timestamp="2026-11-20T10:00:00Z"
                )
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=old.transaction_id,
                    meter_value=[energy("2026-11-20T10:40:00Z", "7100")],
                )
            )
            new = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=local_token.uid, meter_start=7100, timestamp="2026-11-20T11:00:00Z"
                )
            )
            return old, new

    old_id, new_id = asyncio.run(scenario())
    assert old_id.transaction_id != new_id.transaction_id
    old = Transaction.objects.get(station__identity="CP16-NEWTX", transaction_id=str(old_id.transaction_id))
    assert (old.status, old.ended_by, old.stop_reason, old.meter_stop) == (
        "ENDED",
        "new_transaction",
        "Other",
        Decimal(7100),
    )
    assert old.ended_at.isoformat() == "2026-11-20T10:40:00+00:00"
    assert Transaction.objects.filter(station__identity="CP16-NEWTX", status="ACTIVE").count() == 1
    assert_billed_once(old)


def test_201_a_new_transaction_on_the_same_evse_ends_the_old_one_and_an_updated_stopped_reason_ends_it(
    live_daphne, station_factory, local_token
):
    """TX-B's Started ends TX-A (whose Ended never came) at its last reading. An Updated event with a stoppedReason
    ends TX-B; the Ended that follows corrects its reading and time, once."""
    _, secret = station_factory("CP201-NEWTX")

    def event(kind: str, tx_id: str, seq: int, ts: str, **info) -> call201.TransactionEvent:
        return call201.TransactionEvent(
            event_type=kind,
            timestamp=ts,
            trigger_reason="Authorized" if kind == "Started" else "MeterValuePeriodic",
            seq_no=seq,
            transaction_info={"transactionId": tx_id, **info},
            evse={"id": 1, "connectorId": 1},
            id_token={"idToken": local_token.uid, "type": "ISO14443"} if kind == "Started" else None,
            meter_value=[{"timestamp": ts, "sampledValue": [{"value": 1000 + seq * 1000}]}],
        )

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP201-NEWTX"), "CP201-NEWTX", secret, version="2.0.1") as cp:
            await cp.call(event("Started", "TX-A", 0, "2026-11-20T10:00:00Z"))
            await cp.call(event("Updated", "TX-A", 1, "2026-11-20T10:10:00Z"))
            await cp.call(event("Started", "TX-B", 0, "2026-11-20T11:00:00Z"))  # TX-A's Ended never came
            await cp.call(event("Updated", "TX-B", 1, "2026-11-20T11:30:00Z", stoppedReason="EVDisconnected"))
            ended = await asyncio.to_thread(
                lambda: Transaction.objects.values_list("status", "meter_stop").get(transaction_id="TX-B")
            )
            await cp.call(event("Ended", "TX-B", 2, "2026-11-20T11:31:00Z", stoppedReason="EVDisconnected"))
            await cp.call(event("Ended", "TX-B", 3, "2026-11-20T11:35:00Z", stoppedReason="EVDisconnected"))
            return ended

    assert asyncio.run(scenario()) == ("ENDED", Decimal(2000))  # the Updated with a stoppedReason ended it

    a = Transaction.objects.get(station__identity="CP201-NEWTX", transaction_id="TX-A")
    assert (a.status, a.ended_by, a.stop_reason, a.meter_stop) == ("ENDED", "new_transaction", "Other", Decimal(2000))
    b = Transaction.objects.get(station__identity="CP201-NEWTX", transaction_id="TX-B")
    # The Ended that followed is the charger's final word (its reading and time); a second Ended changes nothing.
    assert (b.status, b.ended_by, b.stop_reason, b.meter_stop) == ("ENDED", "charger", "EVDisconnected", Decimal(3000))
    assert b.ended_at.isoformat() == "2026-11-20T11:31:00+00:00"
    assert_billed_once(a)
    sessions, cdrs = billed(b)
    assert [s.status for s in sessions] == [SessionStatus.COMPLETED] and len(cdrs) == 1


def test_16_available_after_a_transaction_without_a_stop_ends_it(live_daphne, station_factory, local_token):
    """Available (and Preparing) say the connector is free: the transaction the stop never came for ends there. A
    status replayed from before the transaction started ends nothing."""
    _, secret = station_factory("CP16-FREE")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-FREE"), "CP16-FREE", secret) as cp:
            start = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp="2026-11-20T10:00:00Z"
                )
            )
            await cp.call(
                call16.StatusNotification(
                    connector_id=1, error_code="NoError", status="Preparing", timestamp="2026-11-20T09:59:00Z"
                )
            )  # from before: no end
            await cp.call(
                call16.StatusNotification(
                    connector_id=1, error_code="NoError", status="Charging", timestamp="2026-11-20T10:00:05Z"
                )
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[energy("2026-11-20T10:30:00Z", "4200")],
                )
            )
            await cp.call(
                call16.StatusNotification(
                    connector_id=1, error_code="NoError", status="Available", timestamp="2026-11-20T10:45:00Z"
                )
            )
            return start

    start = asyncio.run(scenario())
    tx = Transaction.objects.get(station__identity="CP16-FREE", transaction_id=str(start.transaction_id))
    assert (tx.status, tx.ended_by, tx.stop_reason, tx.meter_stop) == (
        "ENDED",
        "status",
        "EVDisconnected",
        Decimal(4200),
    )
    assert tx.ended_at.isoformat() == "2026-11-20T10:30:00+00:00"
    assert_billed_once(tx)


def test_16_a_late_stop_after_a_reboot_close_changes_nothing_twice(live_daphne, station_factory, local_token):
    """The queued StopTransaction arrives after the boot closed the transaction: answered normally, its better
    reading and time replace ours, no second end, one CDR; a repeat of it, or an older one, changes nothing."""
    _, secret = station_factory("CP16-LATE")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-LATE"), "CP16-LATE", secret) as cp:
            start = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=local_token.uid, meter_start=1000, timestamp="2026-11-20T10:00:00Z"
                )
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[energy("2026-11-20T10:15:00Z", "3500")],
                )
            )
            await cp.call(boot16())
            closed = await asyncio.to_thread(
                lambda: Transaction.objects.values_list("meter_stop", "ended_by").get(station__identity="CP16-LATE")
            )
            stop = call16.StopTransaction(
                meter_stop=4000,
                timestamp="2026-11-20T10:20:00Z",
                reason="PowerLoss",
                transaction_id=start.transaction_id,
                id_tag=local_token.uid,
            )
            first = await cp.call(stop)
            again = await cp.call(stop)
            older = await cp.call(
                call16.StopTransaction(
                    meter_stop=3600, timestamp="2026-11-20T10:16:00Z", transaction_id=start.transaction_id
                )
            )
            return closed, first, again, older

    closed, first, again, older = asyncio.run(scenario())
    assert closed == (Decimal(3500), "reboot")
    assert first.id_tag_info["status"] == again.id_tag_info["status"] == "Accepted"
    assert older is not None
    tx = Transaction.objects.get(station__identity="CP16-LATE")
    assert (tx.status, tx.ended_by, tx.stop_reason) == ("ENDED", "reboot", "Reboot")
    assert tx.meter_stop == Decimal(4000) and tx.ended_at.isoformat() == "2026-11-20T10:20:00+00:00"
    sessions, cdrs = billed(tx)
    assert [s.status for s in sessions] == [SessionStatus.COMPLETED] and len(cdrs) == 1


def test_16_transaction_ids_stay_within_int32_past_the_limit_of_the_sequence(live_daphne, station_factory, local_token):
    """The 1.6 schema's transactionId is an int32. Our primary keys are past 2,147,483,647 and the station's last id
    is the largest int32: the charger gets that id's successor wrapped to 1 (2 is still in use, so 3 after), and
    stops by those ids find the right transactions of that station only."""
    from django.db import connection
    from django.utils import timezone

    station, secret = station_factory("CP16-INT32")
    other, _ = station_factory("CP16-INT32-B")
    beyond = 2**31 + 100
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('ocpp_gateway_transaction', 'id'), %s)", [beyond])
    ended = {"ocpp_version": "1.6", "meter_start": 0, "status": "ENDED", "ended_by": "charger"}
    Transaction.objects.create(
        pk=beyond,
        station=station,
        transaction_id="2",
        ocpp_evse_id=2,
        started_at=timezone.now() - timezone.timedelta(days=9),
        **ended,
    )
    Transaction.objects.create(
        station=station,
        transaction_id="2147483646",
        ocpp_evse_id=2,
        started_at=timezone.now() - timezone.timedelta(days=8),
        **ended,
    )
    Transaction.objects.create(
        station=other, transaction_id="1", ocpp_evse_id=1, started_at=timezone.now(), ocpp_version="1.6", meter_start=0
    )  # another station's 1 is no obstacle

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP16-INT32"), "CP16-INT32", secret) as cp:
            ids = []
            for minute in range(3):
                start = await cp.call(
                    call16.StartTransaction(
                        connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=f"2026-11-20T10:0{minute}:00Z"
                    )
                )
                ids.append(start.transaction_id)
                await cp.call(
                    call16.StopTransaction(
                        meter_stop=10, timestamp=f"2026-11-20T10:0{minute}:30Z", transaction_id=start.transaction_id
                    )
                )
            return ids

    assert asyncio.run(scenario()) == [2147483647, 1, 3]
    ours = Transaction.objects.filter(station=station, started_at__date="2026-11-20")
    assert ours.count() == 3
    assert all(tx.pk > 2**31 for tx in ours) and {tx.ended_by for tx in ours} == {"charger"}
    assert Transaction.objects.get(station=other, transaction_id="1").status == "ACTIVE"
