"""End to end: housekeeping asks a charger that is online about a transaction it went silent on, and ends it only when
the charger says it is over. The Celery worker's beat looks every second for transactions silent for 3 s. Real
PostgreSQL, Redis, daphne, a Celery worker and the EMSP on loopback."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from billing.models import Cdr, Session
from ocpp_gateway.models import Transaction
from tests.e2e.conftest import CeleryWorker
from tests.e2e.scenario import TOKEN_16, TOKEN_201, cdr_of, iso
from tests.ocpp_gateway.chargers import Charger16, Charger201, connected
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

SILENT_SECONDS = 3


@pytest.fixture
def worker(e2e, daphne):
    """The scenarios' worker, its beat asking about transactions silent for SILENT_SECONDS every second."""
    worker = CeleryWorker(
        {
            **e2e,
            "OCPP_SILENT_TRANSACTION_MINUTES": str(SILENT_SECONDS / 60),
            "OCPP_SILENT_TRANSACTION_CHECK_SECONDS": "1",
        }
    ).start()
    yield worker
    worker.stop()


class ChargerWhoseTransactionIsOver(Charger201):
    """Answers GetTransactionStatus: no such transaction going on, nothing queued about it."""

    ongoing = False

    @on(Action201.get_transaction_status)
    def on_get_transaction_status(self, transaction_id=None, **kwargs):
        self.received.append(("GetTransactionStatus", {"transaction_id": transaction_id}))
        return result201.GetTransactionStatus(messages_in_queue=False, ongoing_indicator=self.ongoing)


class ChargerStillCharging(ChargerWhoseTransactionIsOver):
    ongoing = True


def started(at: datetime, wh: int) -> call201.TransactionEvent:
    return call201.TransactionEvent(
        event_type="Started",
        timestamp=iso(at),
        trigger_reason="Authorized",
        seq_no=0,
        transaction_info={"transactionId": "E2E-SILENT-1", "chargingState": "Charging"},
        evse={"id": 1, "connectorId": 1},
        id_token={"idToken": TOKEN_201, "type": "ISO14443"},
        meter_value=[
            {
                "timestamp": iso(at),
                "sampledValue": [
                    {
                        "value": wh,
                        "measurand": "Energy.Active.Import.Register",
                        "context": "Transaction.Begin",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ],
    )


async def start_and_go_silent(daphne, secret, cls, *, hold: float) -> Charger201:
    """Boot, start a transaction, then say nothing for `hold` seconds with the socket open (answering the CSMS)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    async with connected(daphne.ocpp_url("E2E-2.0.1"), "E2E-2.0.1", secret, version="2.0.1", cls=cls) as cp:
        await cp.call(
            call201.BootNotification(charging_station={"model": "DC-50", "vendor_name": "VoltCo"}, reason="PowerUp")
        )
        await cp.call(started(start, 10000))
        await asyncio.sleep(hold)
    return cp


def test_a_silent_transaction_the_online_charger_says_is_over_ends_by_housekeeping_with_one_cdr(
    daphne, roaming, emsp, network, worker
):
    """silent transaction on an online 2.0.1 charger that says it's over -> one COMPLETED session, one CDR marked
    housekeeping."""
    charger = asyncio.run(start_and_go_silent(daphne, network["2.0.1"][1], ChargerWhoseTransactionIsOver, hold=8))
    assert ("GetTransactionStatus", {"transaction_id": "E2E-SILENT-1"}) in charger.received
    session = wait_until(lambda: Session.objects.filter(status="COMPLETED").first(), timeout=30)
    [cdr] = wait_until(lambda: cdr_of(emsp, session.id) or None, timeout=30)
    worker.drain(gateway_events=True)
    assert emsp.sessions[f"NL/CPO/{session.id}"]["status"] == "COMPLETED"
    tx = Transaction.objects.get(transaction_id="E2E-SILENT-1")
    assert (tx.status, tx.ended_by) == ("ENDED", "housekeeping")
    assert Cdr.objects.filter(session__transaction__ended_by="housekeeping").count() == 1
    assert Session.objects.count() == 1 and len(emsp.cdr_posts) == 1


def test_a_silent_transaction_the_online_charger_says_goes_on_stays_active(daphne, roaming, emsp, network, worker):
    """silent transaction on an online 2.0.1 charger that says it is still charging -> asked, left ACTIVE, no CDR."""
    charger = asyncio.run(start_and_go_silent(daphne, network["2.0.1"][1], ChargerStillCharging, hold=8))
    assert ("GetTransactionStatus", {"transaction_id": "E2E-SILENT-1"}) in charger.received
    worker.drain(gateway_events=True)
    assert Transaction.objects.get(transaction_id="E2E-SILENT-1").status == "ACTIVE"
    assert not emsp.cdr_posts


class Charger16ThatForgotItsTransaction(Charger16):
    """Accepts TriggerMessage MeterValues and then sends nothing about the transaction."""

    @on(Action16.trigger_message)
    def on_trigger_message(self, requested_message, connector_id=None, **kwargs):
        self.received.append(("TriggerMessage", {"requested_message": requested_message, "connector_id": connector_id}))
        return result16.TriggerMessage(status="Accepted")


def test_a_silent_16_transaction_whose_charger_sends_nothing_when_asked_ends_by_housekeeping(
    daphne, roaming, emsp, network, worker
):
    """silent transaction on an online 1.6 charger that accepts TriggerMessage MeterValues and then sends nothing ->
    one COMPLETED session, one CDR marked housekeeping."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    async def start_and_go_silent():
        url = daphne.ocpp_url("E2E-1.6")
        async with connected(url, "E2E-1.6", network["1.6"][1], cls=Charger16ThatForgotItsTransaction) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=1000, timestamp=iso(start))
            )
            await asyncio.sleep(10)
        return cp

    charger = asyncio.run(start_and_go_silent())
    assert ("TriggerMessage", {"requested_message": "MeterValues", "connector_id": 1}) in charger.received
    session = wait_until(lambda: Session.objects.filter(status="COMPLETED").first(), timeout=30)
    wait_until(lambda: cdr_of(emsp, session.id) or None, timeout=30)
    assert Transaction.objects.get(pk=session.transaction_id).ended_by == "housekeeping"
    assert Cdr.objects.filter(session__transaction__ended_by="housekeeping").count() == 1
