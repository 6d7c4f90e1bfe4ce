"""Fixtures shared by every suite: a live daphne serving the test database, and objects to charge with.

Helpers that are not fixtures (starting servers, waiting for conditions) are in tests/support.py."""

import gc
import threading
import time
import warnings
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management.base import CommandError
from django.db import OperationalError, connections
from django.test import TransactionTestCase

from ocpp_gateway.batching import PeriodicBatch
from tests.support import LiveServer, live_server_drain, loopback_partners_allow, start_daphne, stop, worker_isolate

STATIONS_REGISTERED = datetime(2026, 1, 1, tzinfo=UTC)


def pytest_configure(config):
    worker_isolate()
    loopback_partners_allow()
    _flush_retried_on_deadlock()


def _flush_retried_on_deadlock() -> None:
    """A transactional test's tables are emptied with one TRUNCATE of them all. A live daphne may still be finishing
    work a test set off (a load-group rebalance after the last charger left, in CI) and PostgreSQL can pick the
    TRUNCATE as a deadlock's victim; the next test then finds the last one's rows. Try again, as an application
    would: the deadlock is between the test harness and the server, never a product's own."""
    original = TransactionTestCase._fixture_teardown
    if getattr(original, "retried", False):
        return

    def fixture_teardown(self):
        for attempt in range(1, 6):
            try:
                return original(self)
            except CommandError as error:
                if attempt == 5 or not isinstance(error.__cause__, OperationalError):
                    raise
                warnings.warn(f"emptying the test database failed (attempt {attempt}): {error.__cause__}", stacklevel=1)
                time.sleep(0.2 * attempt)

    fixture_teardown.retried = True  # type: ignore[attr-defined]
    TransactionTestCase._fixture_teardown = fixture_teardown  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def live_daphne(django_db_setup, django_db_blocker):
    """One daphne for the session. Tests that use it need `transactional_db` so the server sees their rows."""
    server = start_daphne("main")
    yield server
    stop(server)


@pytest.fixture(scope="module")
def uploads_dir(tmp_path_factory):
    """Where one module's daphne (`start_daphne_with_uploads`) keeps the files chargers download and upload; tests
    that store or read those files themselves point settings.OCPP_UPLOADS_DIR here too."""
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture
def location(db):
    from cpo.models import Location

    return Location.objects.create(
        id="LOC-T1",
        name="Test Plaza",
        address="Teststraat 1",
        city="Utrecht",
        postal_code="3511AA",
        country="NLD",
        latitude=Decimal("52.090737"),
        longitude=Decimal("5.121420"),
        time_zone="Europe/Amsterdam",
    )


@pytest.fixture
def station_factory(location):
    """make(identity, evses=2) -> (station, secret). The station counts as registered on STATIONS_REGISTERED (not
    today): tests replay charger times from November 2026, and the gateway believes a charger's time only from a
    while before its station was registered (OCPP_CLOCK_MAX_DAYS_BEFORE_REGISTRATION), so those times must not
    drift out of that window as the calendar moves on."""
    from cpo.models import ChargingStation
    from cpo.services import station_create

    def make(identity: str, evses: int = 2, **kwargs):
        station, secret = station_create(identity=identity, location=location, evses=evses, **kwargs)
        ChargingStation.objects.filter(pk=station.pk).update(created_at=STATIONS_REGISTERED)
        station.created_at = STATIONS_REGISTERED
        return station, secret

    return make


@pytest.fixture
def local_token(db):
    from cpo.models import Token

    return Token.objects.create(uid="RFID-OK-1", contract_id="NL-CPO-C00000001-X")


@pytest.fixture(autouse=True)
def _live_servers_drained(request):
    """After a test that talked to live daphnes (`live_daphne` or any other fixture that is a LiveServer), wait
    until each is done with it before pytest-django empties the tables: a write of the server's crossing the
    TRUNCATE can deadlock it on PostgreSQL (a message-log INSERT locks the log, then its station for the foreign
    key; TRUNCATE takes them the other way round) and leave the test's rows to the next test. See
    `live_server_drain`."""
    yield
    for server in [value for value in request.node.funcargs.values() if isinstance(value, LiveServer)]:
        if server.process.poll() is None:
            live_server_drain(server)


class _FlushTracker:
    """Wraps a PeriodicBatch's flush so that a test's teardown can wait for a flush under way to end, and closes the
    database connection the flush opened in the batch's thread (which lives on: an open connection would keep
    PostgreSQL from dropping the test database at the end)."""

    def __init__(self, flush):
        self.flush = flush
        self.running = threading.Lock()

    def __call__(self, keys):
        with self.running:
            try:
                self.flush(keys)
            finally:
                connections.close_all()


@pytest.fixture(scope="session")
def _periodic_batches():
    """This process's PeriodicBatch objects (module-level, made when the apps' receivers are imported), their
    flushes tracked."""
    # type(), not isinstance(): the heap may hold dead weak proxies (hypothesis, schemathesis), which isinstance()
    # dereferences and raises ReferenceError on.
    batches = [obj for obj in gc.get_objects() if type(obj) is PeriodicBatch]
    for batch in batches:
        if not isinstance(batch.flush, _FlushTracker):
            batch.flush = _FlushTracker(batch.flush)
    return batches


@pytest.fixture(autouse=True)
def _periodic_batches_emptied(_periodic_batches):
    """Events a test announced in this process that its batches (OCPI gateway events, dashboard events) have not
    handed on yet are dropped when the test ends, and a hand-on under way is waited for, so that none happens
    during a later test or while the test database is closed to access."""
    yield
    for batch in _periodic_batches:
        with batch.lock:
            batch.pending.clear()
        with batch.flush.running:
            pass


@pytest.fixture
def eager():
    """Run queued tasks in-process (as the embedded default does) so dispatch after commit is observable."""
    from cpo.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
