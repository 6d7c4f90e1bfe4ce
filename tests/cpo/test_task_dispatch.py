"""Queueing tasks: published for a worker with a broker (in a server process by its publisher thread, which keeps
what it cannot publish while the broker is down); in-process tasks at once in the caller's thread, or, in a server
process, on its background thread, in the order they fall due."""

import json
import threading
import time
from types import SimpleNamespace

import pytest
import redis
from celery import Celery
from django.conf import settings

from cpo import task_dispatch
from tests.faults import RedisServer


class RecordingTask:
    """Stands in for a Celery task: records which thread ran it, and how it was queued."""

    name = "recording"

    def __init__(self, *, eager: bool):
        self.app = SimpleNamespace(conf=SimpleNamespace(task_always_eager=eager))
        self.calls: list[tuple[str, tuple, str]] = []

    def _record(self, how: str, args: tuple) -> SimpleNamespace:
        self.calls.append((how, tuple(args), threading.current_thread().name))
        return SimpleNamespace(failed=lambda: False)

    def delay(self, *args):
        return self._record("delay", args)

    def apply_async(self, args=(), countdown=None, eta=None, **options):
        return self._record(f"apply_async countdown={countdown} eta={eta is not None}", args)

    def apply(self, args=()):
        return self._record("apply", args)


@pytest.fixture
def background():
    yield task_dispatch.background_start()
    task_dispatch.background_stop()


def test_without_a_background_thread_in_process_tasks_run_in_the_callers_thread():
    task = RecordingTask(eager=True)
    task_dispatch.task_dispatch(task, 1)
    assert task.calls == [("delay", (1,), threading.current_thread().name)]


def test_in_a_server_in_process_tasks_run_on_the_background_thread_in_order(background):
    task = RecordingTask(eager=True)
    task_dispatch.task_dispatch(task, "later", countdown=60)
    for n in range(3):
        task_dispatch.task_dispatch(task, n)
    assert background.drain(timeout=5)
    assert task.calls == [("apply", (n,), "in-process-tasks") for n in range(3)]  # "later" is not due yet


def test_with_a_broker_a_server_publishes_from_its_publisher_thread_in_order(background):
    task = RecordingTask(eager=False)
    task_dispatch.task_dispatch(task, 1)
    task_dispatch.task_dispatch(task, 2, countdown=5)
    assert task_dispatch.publisher().drain(timeout=5)
    assert task.calls == [
        ("apply_async countdown=None eta=False", (1,), "task-publisher"),
        ("apply_async countdown=None eta=True", (2,), "task-publisher"),
    ]


def test_with_a_broker_a_worker_publishes_in_its_own_thread():
    task = RecordingTask(eager=False)
    task_dispatch.task_dispatch(task, 1)
    task_dispatch.task_dispatch(task, 2, countdown=5)
    me = threading.current_thread().name
    assert task.calls == [
        ("apply_async countdown=None eta=False", (1,), me),
        ("apply_async countdown=5 eta=False", (2,), me),
    ]


@pytest.fixture
def broker():
    if not RedisServer.available():
        pytest.skip("needs redis-server")
    server = RedisServer().start()
    yield server
    server.stop()


def test_tasks_queued_while_the_broker_is_down_are_published_in_order_once_it_is_back_and_the_caller_never_waits(
    broker,
):
    """Issue 11: events published while Redis was down were lost, and a publish to a dead broker can hold its caller
    (a charger's answer) for seconds. A real Redis is killed and started again on its port; a real Celery app
    publishes to it with the project's broker settings."""
    app = Celery("publish-test", broker=broker.url)
    app.conf.update(
        task_always_eager=False,
        broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        broker_connection_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
        task_default_queue="publish-test",
    )

    @app.task(name="publish_test.noted", ignore_result=True)
    def task(n: int) -> int:
        return n

    publisher = task_dispatch.Publisher(max_items=1000)
    publisher.put(task, (0,))
    assert publisher.drain(timeout=10)  # the producer's connection is open and pooled, as in a running server
    client = redis.Redis(port=broker.port)
    assert client.llen("publish-test") == 1
    broker.kill()

    waits = []
    for n in range(1, 51):
        began = time.perf_counter()
        publisher.put(task, (n,), countdown=60 if n == 50 else 0)
        waits.append(time.perf_counter() - began)
        time.sleep(0.01)
    time.sleep(1.0)  # the publisher tries and fails meanwhile
    assert publisher.backlog() == 50
    broker.start()  # an empty Redis: what the old one held is gone, what we kept is not
    assert publisher.drain(timeout=15), f"{publisher.backlog()} tasks still unpublished after the broker came back"

    messages = [json.loads(raw) for raw in reversed(client.lrange("publish-test", 0, -1))]  # LPUSHed, BRPOPped
    args = [m["headers"]["argsrepr"] for m in messages]
    assert args == [f"({n},)" for n in range(1, 51)]
    assert messages[-1]["headers"]["eta"] is not None  # the countdown counts from the dispatch
    assert max(waits) < 0.1, f"a dispatch waited {max(waits) * 1000:.1f} ms while the broker was down"
    client.close()


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_server_runs_the_beat_schedule_itself(station_factory):
    """`make run` has no beat process on the embedded default: the server queues the periodic tasks itself, so an
    expired reservation ends without anyone running housekeeping by hand."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("with a broker, beat is a process of its own")
    from datetime import timedelta

    from django.utils import timezone

    from ocpp_gateway.models import Reservation
    from tests.support import start_daphne, stop, wait_until

    station, _ = station_factory("CP-BEAT", evses=1)
    now = timezone.now()
    reservation = Reservation.objects.create(
        station=station,
        source=Reservation.Source.STAFF,
        status=Reservation.Status.ACCEPTED,
        expiry_date=now - timedelta(minutes=1),
        id_tag="TAG-1",
        created_at=now - timedelta(minutes=10),
    )
    server = start_daphne("beat", EMBEDDED_BEAT="1", OCPP_RESERVATION_EXPIRY_POLL_SECONDS="0.5")
    try:
        wait_until(lambda: Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.EXPIRED, timeout=15)
    finally:
        stop(server)
