"""End to end: the chain a partner waits for keeps up while chargers flood the platform with meter values (issue 11,
target 5: StopTransaction -> CDR at the EMSP within seconds).

A burst of MeterValues from a dozen charging chargers queues billing work per gateway batch, not per transaction and
reading; and a CDR is pushed within seconds while the worker's bulk queue holds a thousand re-pricing runs (what a
burst across a network of thousands of chargers queues), because the stop's billing and the partner's pushes have a
queue of their own. Real PostgreSQL, Redis, daphne, a Celery worker process (two processes, as `make run` starts it)
and the EMSP on loopback."""

import asyncio
import math
import os
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from ocpp.v16 import call as call16

from billing.models import Session
from cpo.celery import app
from cpo.models import Token
from ocpp_gateway.models import Transaction
from tests.e2e.conftest import GATEWAY_BATCH_SECONDS
from tests.e2e.scenario import TOKEN_16, cdr_of, energy_16, iso
from tests.ocpp_gateway.chargers import connected, now_iso
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

BURST_CHARGERS = 12
READINGS = 15  # per burst charger, one every READING_PAUSE seconds
READING_PAUSE = 0.2
BACKLOG = 1000  # bulk tasks waiting when the driver stops
CDR_WITHIN = 5.0  # seconds from the StopTransaction's answer to the CDR at the EMSP (target: 2 s on a quiet machine)

# The tasks that bill transactions (the reconciling beat task aside): now batched, before one per transaction.
BILLING_RUNS = {"transactions_bill_batch", "transactions_bill_later", "transaction_bill", "transactions_bill_fan_out"}
RECEIVED = re.compile(r"Task billing\.tasks\.(\w+)\[[^\]]+\] received")


def billing_tasks_received(worker, since: int) -> list[str]:
    """Billing tasks the worker took from its queues after `since` characters of its log (INFO: "Task ... received")."""
    return [m.group(1) for m in RECEIVED.finditer(worker.log()[since:])]


async def burst(url: str, secrets: dict[str, str]) -> None:
    """Every burst charger starts a transaction, then all send READINGS MeterValues as fast as the pause allows."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

    async def one(identity: str) -> None:
        async with connected(url.replace("IDENTITY", identity), identity, secrets[identity]) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=identity, meter_start=0, timestamp=iso(start))
            )
            for n in range(1, READINGS + 1):
                await cp.call(
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=started.transaction_id,
                        meter_value=[energy_16(start + timedelta(minutes=n), 100 * n)],
                    )
                )
                await asyncio.sleep(READING_PAUSE)

    await asyncio.gather(*(one(identity) for identity in secrets))


def backlog_publish(queue: str, transaction_pks: list[int]) -> None:
    """BACKLOG re-pricing runs of the burst's transactions onto the worker's bulk (default) queue."""
    with app.producer_or_acquire() as producer:
        for n in range(BACKLOG):
            app.send_task(
                "billing.tasks.transaction_bill",
                args=[transaction_pks[n % len(transaction_pks)]],
                queue=queue,
                producer=producer,
            )


def test_a_meter_values_burst_neither_floods_the_queue_nor_delays_a_cdr(
    daphne, roaming, emsp, network, worker, station_factory
):
    secrets = {}
    for n in range(BURST_CHARGERS):
        identity = f"E2E-BURST-{n:02d}"
        secrets[identity] = station_factory(identity, evses=1)[1]
        Token.objects.create(uid=identity, contract_id=f"NL-CPO-C{n:08d}-X")
    url_16, secret_16 = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)

    async def driver_starts():
        async with connected(url_16, "E2E-1.6", secret_16) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            answer = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=0, timestamp=iso(start))
            )
            return answer.transaction_id

    transaction_id = asyncio.run(driver_starts())
    session = wait_until(lambda: Session.objects.filter(cdr_token__uid=TOKEN_16).first(), timeout=30)
    wait_until(lambda: emsp.session_calls(session.id), timeout=30)

    # The burst: BURST_CHARGERS x READINGS MeterValues within a few seconds.
    worker.drain(gateway_events=True)
    offset = len(worker.log())
    began = time.monotonic()
    asyncio.run(burst(daphne.ocpp_url("IDENTITY"), secrets))
    worker.drain(gateway_events=True, timeout=60)
    time.sleep(float(worker.env["OCPI_SESSION_SYNC_INTERVAL"]) + 0.5)  # the re-pricing queued for later has run
    worker.drain(timeout=60)
    received = [name for name in billing_tasks_received(worker, offset) if name in BILLING_RUNS]
    # At most one re-pricing task per gateway batch, and one task per batch that carried starts (at most one per
    # charger): per batch, not per transaction and second (a dozen a second) or per reading.
    batches = math.ceil((time.monotonic() - began) / GATEWAY_BATCH_SECONDS) + 1
    assert len(received) <= batches + BURST_CHARGERS, (len(received), batches, sorted(set(received)))
    burst_pks = list(Transaction.objects.filter(id_tag__startswith="E2E-BURST-").values_list("pk", flat=True))
    assert len(burst_pks) == BURST_CHARGERS
    assert Session.objects.filter(transaction__in=burst_pks, kwh=READINGS * 100 / 1000).count() == BURST_CHARGERS

    # A backlog of bulk work, then the driver stops: the CDR does not wait for the backlog.
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        backlog_publish(worker.queue, burst_pks)
        assert client.llen(worker.queue) > BACKLOG / 2

        async def driver_stops() -> float:
            async with connected(url_16, "E2E-1.6", secret_16) as cp:
                stop = call16.StopTransaction(
                    meter_stop=5000, transaction_id=transaction_id, timestamp=iso(start + timedelta(minutes=20))
                )
                await cp.call(stop)
                answered = time.monotonic()
                await cp.call(
                    call16.StatusNotification(
                        connector_id=1, error_code="NoError", status="Available", timestamp=now_iso()
                    )
                )
                return answered

        answered = asyncio.run(driver_stops())
        [cdr] = wait_until(lambda: cdr_of(emsp, session.id), timeout=60)
        delay = time.monotonic() - answered
        waiting = client.llen(worker.queue)
        assert delay < CDR_WITHIN, f"the CDR reached the EMSP {delay:.1f} s after the stop ({waiting} bulk tasks left)"
        assert waiting > 0, "the backlog was worked off before the CDR went: this run shows nothing"
        assert cdr["total_energy"] == 5.0
        assert emsp.sessions[f"NL/CPO/{session.id}"]["status"] == "COMPLETED"  # the session's end went first
    finally:
        client.delete(worker.queue)  # the rest of the backlog
        client.close()
    assert len(cdr_of(emsp, session.id)) == 1
