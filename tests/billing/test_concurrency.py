"""Two workers at once (threads with their own database connections): one Session, one CDR, one credit.
PostgreSQL: row locks. SQLite (the embedded default): no row locks, but every transaction takes the database's
write lock when it begins (transaction_mode IMMEDIATE in settings), so the workers run one after the other."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from billing.models import Cdr, Session
from billing.services import cdr_create, cdr_credit, reservation_bill, session_sync, transaction_bill
from ocpp_gateway.services.transactions import transaction_start_16
from tests.billing.factories import HOUR, T0, reading, reservation_made, start, stop

pytestmark = pytest.mark.django_db(transaction=True)


def together(func, workers: int = 2) -> list:
    """Run `func` in `workers` threads released at the same instant, each inside its own database transaction
    (as the Celery tasks do, with their outbox write); returns the results or raises the first error."""
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            with transaction.atomic():
                results.append(func())
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return results


def test_two_workers_syncing_a_new_transaction_create_one_session(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    reading(station, tx, T0 + HOUR / 2, "3000")
    sessions = together(lambda: session_sync(transaction_pk=tx.pk, now=T0 + HOUR), workers=4)
    assert len({s.id for s in sessions}) == 1 and Session.objects.count() == 1


def test_two_workers_completing_a_session_write_one_cdr(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    stop(station, tx, T0 + HOUR, 10000)
    cdrs = together(lambda: cdr_create(session=session_sync(transaction_pk=tx.pk)), workers=4)
    assert len({c.id for c in cdrs}) == 1 and Cdr.objects.count() == 1
    credits = together(lambda: cdr_credit(cdr=cdrs[0]), workers=3)
    assert len({c.id for c in credits}) == 1 and Cdr.objects.filter(credit=True).count() == 1


def test_billing_a_reservation_while_its_token_starts_charging_leaves_one_session_that_charges(
    station, tariff_17, emsp_token
):
    """The reservation's task runs while the charger's StartTransaction (which marks the reservation USED) has not
    committed: it must wait for it and bill the charge, not complete the session as a reservation "used by another
    token" with a CDR for the reserved time alone."""
    reservation = reservation_made(station, made_ago=timedelta(minutes=22))
    reserved = reservation_bill(reservation_pk=reservation.pk)
    started, errors = threading.Event(), []

    def charger_starts():
        try:
            with transaction.atomic():
                transaction_start_16(
                    station_pk=station.pk,
                    connector_id=1,
                    id_tag=emsp_token,
                    meter_start=0,
                    timestamp=timezone.now().replace(microsecond=0),
                    reservation_id=reservation.pk,
                )
                started.set()
                time.sleep(0.5)  # billing's task starts meanwhile
        except Exception as exc:
            errors.append(exc)
            started.set()
        finally:
            connections.close_all()

    gateway = threading.Thread(target=charger_starts)
    gateway.start()
    started.wait(10)
    session = reservation_bill(reservation_pk=reservation.pk)
    gateway.join(10)
    assert not errors
    assert not Cdr.objects.exists(), "the reservation got a CDR of its own although its token is charging"
    reservation.refresh_from_db()
    tx = reservation.transaction
    assert session.pk == reserved.pk and transaction_bill(transaction_pk=tx.pk).pk == reserved.pk
    assert Session.objects.get().status == "ACTIVE"
