"""End to end across broker faults: the Celery broker is a Redis of our own (CELERY_BROKER_URL) that we kill and
start again empty, while the channel layer stays on the shared Redis; and a worker SIGKILLed mid-work. Real
PostgreSQL, daphne, a Celery worker with beat, the loopback EMSP.

Beat's reconciliation of unbilled transactions is pushed out of reach (10 minutes), so a CDR that reaches the EMSP
in time was carried by the events daphne kept while the broker was down, not repaired afterwards."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from ocpp.v16 import call as call16

from billing.models import Cdr, Session
from ocpi_api.models import OutboxMessage
from ocpp_gateway.models import Transaction
from tests.e2e.scenario import TOKEN_16, cdr_of, iso
from tests.faults import RedisServer
from tests.ocpp_gateway.chargers import connected
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

OUTAGE_SECONDS = 6


@pytest.fixture(scope="module")
def broker_redis():
    if not RedisServer.available():
        pytest.skip("needs redis-server")
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def e2e(e2e, broker_redis):
    """The end-to-end environment with the broker on our own Redis and reconciliation out of the way."""
    return {**e2e, "CELERY_BROKER_URL": broker_redis.url, "OCPI_SESSION_RECONCILE_SECONDS": "600"}


async def start_16(url, secret, *, at: datetime) -> int:
    async with connected(url, "E2E-1.6", secret) as cp:
        answer = await cp.call(
            call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=0, timestamp=iso(at))
        )
        return answer.transaction_id


async def stop_16(url, secret, *, transaction_id: int, at: datetime, wh: int) -> float:
    """StopTransaction; returns how long the answer took."""
    async with connected(url, "E2E-1.6", secret) as cp:
        began = time.perf_counter()
        await cp.call(call16.StopTransaction(meter_stop=wh, transaction_id=transaction_id, timestamp=iso(at)))
        return time.perf_counter() - began


def test_sessions_started_and_stopped_around_a_broker_restart_each_reach_the_emsp_with_one_cdr(
    daphne, roaming, emsp, network, worker, broker_redis
):
    """Issue 11: events that could not be published while Redis was down were lost, and in 1 of 5 kills the worker
    and its beat exited for good. One session starts before the outage and stops during it, one starts and stops
    during it, one starts during it and stops after; the broker comes back empty."""
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]
    begin = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    before = asyncio.run(start_16(url, secret, at=begin))
    wait_until(lambda: Session.objects.filter(status="ACTIVE").exists(), timeout=20)

    broker_redis.kill()
    outage = time.monotonic()
    answers = [asyncio.run(stop_16(url, secret, transaction_id=before, at=begin + timedelta(minutes=10), wh=2000))]
    during = asyncio.run(start_16(url, secret, at=begin + timedelta(minutes=15)))
    answers.append(asyncio.run(stop_16(url, secret, transaction_id=during, at=begin + timedelta(minutes=25), wh=4000)))
    across = asyncio.run(start_16(url, secret, at=begin + timedelta(minutes=30)))
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage)))
    broker_redis.start()
    recovered = time.monotonic()
    answers.append(asyncio.run(stop_16(url, secret, transaction_id=across, at=begin + timedelta(minutes=40), wh=6000)))
    assert max(answers) < 1.0, f"a StopTransaction waited {max(answers):.2f} s for the broker"

    ids = [str(pk) for pk in (before, during, across)]
    wait_until(lambda: Session.objects.filter(transaction__transaction_id__in=ids).count() == 3, timeout=30)
    sessions = list(Session.objects.filter(transaction__transaction_id__in=ids))
    wait_until(lambda: all(cdr_of(emsp, s.id) for s in sessions), timeout=30)
    served_after = time.monotonic() - recovered
    worker.drain(gateway_events=True)
    assert served_after < 30, f"CDRs reached the EMSP {served_after:.1f} s after the broker came back"
    for session in sessions:
        assert Cdr.objects.filter(session=session).count() == 1
        assert len(cdr_of(emsp, session.id)) == 1
    assert OutboxMessage.objects.filter(module="cdrs").count() == 3
    assert Transaction.objects.count() == 3

    assert worker.proc.poll() is None, f"the worker exited:\n{worker.log()[-3000:]}"
    log_after = worker.log()
    assert "Unrecoverable error" not in log_after
    beat_lines = log_after.count("Scheduler: Sending due task")
    wait_until(lambda: worker.log().count("Scheduler: Sending due task") > beat_lines, timeout=10)  # beat goes on


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the same snapshot for the whole transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def test_a_worker_sigkilled_mid_task_leaves_the_task_in_redis_for_the_next_worker_one_cdr_each(
    daphne, roaming, emsp, network, worker
):
    """Two sessions end while their billing runs are held mid-transaction (we lock their Session rows); the worker is
    SIGKILLed there. With beat's reconciliation out of reach, only the broker brings the tasks back: they stayed in
    Redis unacknowledged and the next worker takes them once the visibility timeout (10 s in these tests, 5 minutes
    in production) has passed. Each session gets one CDR, one POST."""
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]
    begin = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    first = asyncio.run(start_16(url, secret, at=begin))
    asyncio.run(stop_16(url, secret, transaction_id=first, at=begin + timedelta(minutes=10), wh=1000))
    wait_until(lambda: Session.objects.filter(transaction__transaction_id=str(first)).exists(), timeout=20)
    second = asyncio.run(start_16(url, secret, at=begin + timedelta(minutes=20)))
    wait_until(lambda: Session.objects.filter(transaction__transaction_id=str(second)).exists(), timeout=20)
    wait_until(lambda: Cdr.objects.exists(), timeout=20)
    sessions = list(Session.objects.all())
    with transaction.atomic():
        for session in sessions:
            Session.objects.select_for_update().get(pk=session.pk)
        asyncio.run(stop_16(url, secret, transaction_id=second, at=begin + timedelta(minutes=30), wh=2000))
        wait_until(lambda: waiting_on_locks() >= 1, timeout=20)  # the worker's run is stuck inside its transaction
        worker.kill()
    restarted = time.monotonic()
    worker.start()
    wait_until(lambda: all(cdr_of(emsp, s.id) for s in sessions), timeout=40)
    worker.drain()
    assert time.monotonic() - restarted < 30 + 10, "the held task came back later than the visibility timeout allows"
    for session in sessions:
        assert Cdr.objects.filter(session=session).count() == 1
        assert len(cdr_of(emsp, session.id)) == 1
    assert OutboxMessage.objects.filter(module="cdrs").count() == 2
