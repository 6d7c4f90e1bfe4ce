"""Celery tasks of billing. Each takes ids, re-reads the database and calls one service; all are idempotent, so they
are acknowledged late (a worker that dies mid-task leaves it to another), time-limited, and retried by Celery when the
database lets them down (a deadlock, a lost connection)."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from billing.selectors import reservations_unbilled, transactions_unbilled, transactions_uncorrected
from billing.services import cdr_correct as cdr_correct_service
from billing.services import reservation_bill as reservation_bill_service
from billing.services import transaction_bill as transaction_bill_service
from cpo.task_dispatch import task_dispatch
from cpo.worker_threads import each_in_worker_threads

logger = logging.getLogger(__name__)

# How every billing task runs: late acknowledgement (idempotent), time-limited, retried on database trouble.
BILLING_TASK: dict = dict(
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=8,
)


@shared_task(**BILLING_TASK)
def transaction_bill(transaction_pk: int) -> str | None:
    """A gateway transaction started, got meter values or ended: bring its Session (and, once it ended, its CDR) up
    to date; billing announces what changed."""
    session = transaction_bill_service(transaction_pk=transaction_pk)
    return session.pk if session is not None else None


@shared_task(**BILLING_TASK)
def reservation_bill(reservation_pk: int) -> str | None:
    """A reservation was answered, ended or used: bring its Session (RESERVATION, then COMPLETED with a CDR for the
    reservation's cost, or the charging session it became) up to date; billing announces what changed."""
    session = reservation_bill_service(reservation_pk=reservation_pk)
    return session.pk if session is not None else None


@shared_task(**BILLING_TASK)
def cdr_correct(transaction_pk: int) -> list[str]:
    """The charger's late stop corrected a transaction we had ended ourselves: credit and re-issue its CDR when the
    corrected values price differently."""
    return [cdr.pk for cdr in cdr_correct_service(transaction_pk=transaction_pk)]


def _bill_each(transaction_pks: list[int]) -> int:
    """Bill the transactions, WORKER_THREADS at a time, each in its own database transaction (the service's): one
    that fails does not hold up the others; it is handed to its own `transaction_bill` task, which retries it."""
    results = each_in_worker_threads(
        lambda pk: transaction_bill_service(transaction_pk=pk), dict.fromkeys(transaction_pks)
    )
    for pk, error in results:
        if error is not None:
            logger.error("billing transaction %s failed; queued on its own", pk, exc_info=error)
            task_dispatch(transaction_bill, pk)
    return sum(1 for _, error in results if error is None)


# Gateway events arrive in batches (see billing/receivers.py): one task per batch, not one per transaction, because a
# task costs the worker more than billing a transaction does, and at 50 stops a second the tasks were what the queue
# filled with (bench/RESULTS.md). Transactions that started or ended are billed by a batch task on the urgent queue
# (settings.CELERY_TASK_ROUTES); those that only got meter values by one on the bulk queue, OCPI_SESSION_SYNC_INTERVAL
# later, so it carries every value that came meanwhile.
@shared_task(acks_late=True, soft_time_limit=100, time_limit=120, ignore_result=True)
def transactions_bill_batch(transaction_pks: list[int]) -> int:
    """Bill the transactions that started or ended (urgent queue)."""
    return _bill_each(transaction_pks)


@shared_task(acks_late=True, soft_time_limit=100, time_limit=120, ignore_result=True)
def transactions_bill_later(transaction_pks: list[int]) -> int:
    """Re-price running transactions from their meter values (bulk queue)."""
    return _bill_each(transaction_pks)


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def transactions_reconcile() -> int:
    """Beat: bill again the transactions and reservations whose billing did not finish (lost task, killed worker),
    and correct the CDRs of transactions a late stop changed whose correction did not run."""
    ids = transactions_unbilled(quiet_seconds=settings.OCPI_SESSION_RECONCILE_SECONDS)
    for transaction_pk in ids:
        task_dispatch(transaction_bill, transaction_pk)
    reservations = reservations_unbilled(quiet_seconds=settings.OCPI_SESSION_RECONCILE_SECONDS)
    for reservation_pk in reservations:
        task_dispatch(reservation_bill, reservation_pk)
    corrections = transactions_uncorrected(quiet_seconds=settings.OCPI_SESSION_RECONCILE_SECONDS)
    for transaction_pk in corrections:
        task_dispatch(cdr_correct, transaction_pk)
    return len(ids) + len(reservations) + len(corrections)
