"""Celery tasks of the roaming side. Each takes ids, re-reads the database and calls one service; all are
idempotent, so they are acknowledged late (a worker that dies mid-task leaves it to another) and time-limited."""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from ocpi_api import outbox, push


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def outbox_deliver(message_id: int) -> str:
    """Deliver one outbox message (or find it sent, superseded, not due, or held by another worker)."""
    return outbox.outbox_deliver(message_id=message_id)


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def outbox_deliver_due() -> int:
    """Beat: queue the messages whose time has come (retries, throttled PATCHes, tasks lost with their broker)."""
    ids = outbox.outbox_due_claim()
    for message_id in ids:
        outbox_deliver.delay(message_id)
    return len(ids)


@shared_task(acks_late=True, time_limit=600, ignore_result=True)
def outbox_prune() -> int:
    """Beat, daily: retention of delivered, superseded and failed messages."""
    return outbox.outbox_prune()


@shared_task(
    acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True,
    autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8,
)
def transaction_push(transaction_pk: int) -> str | None:
    """A gateway transaction started, got meter values or ended: sync its OCPI Session (and CDR) and queue the
    pushes to its EMSP."""
    session = push.transaction_push(transaction_pk=transaction_pk)
    return session.pk if session is not None else None


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def transactions_reconcile() -> int:
    """Beat: run the session pipeline again for transactions it did not finish (lost task, killed worker)."""
    from django.conf import settings

    ids = push.transactions_unsettled(quiet_seconds=settings.OCPI_SESSION_RECONCILE_SECONDS)
    for transaction_pk in ids:
        transaction_push.delay(transaction_pk)
    return len(ids)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def evse_status_push(evse_pk: int) -> int:
    """An EVSE changed status: PATCH it to partners with a locations Receiver."""
    from django.db import transaction

    from cpo.models import EVSE

    with transaction.atomic():
        evse = EVSE.objects.select_for_update(of=("self",)).select_related("location").filter(pk=evse_pk).first()
        if evse is None:
            return 0
        return len(push.evse_status_announce(evse=evse))


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def gateway_events_fan_out(
    transaction_pks: list[int], evse_pks: list[int], later_transaction_pks: list[int] | None = None
) -> int:
    """One task per batch of gateway events from a daphne process (see ocpi_api/receivers.py): the worker, not the
    process answering chargers, publishes the per-object tasks."""
    for pk in transaction_pks:
        transaction_push.delay(pk)
    for pk in later_transaction_pks or []:
        transaction_push.apply_async((pk,), countdown=settings.OCPI_SESSION_SYNC_INTERVAL)
    for pk in evse_pks:
        evse_status_push.delay(pk)
    return len(transaction_pks) + len(evse_pks) + len(later_transaction_pks or [])
