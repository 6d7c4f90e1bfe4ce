"""Celery tasks of the roaming side. Each takes ids, re-reads the database and calls one service; all are
idempotent, so they are acknowledged late (a worker that dies mid-task leaves it to another), time-limited, and
retried by Celery when the database lets them down (a deadlock, a lost connection)."""

from celery import shared_task
from django.db import OperationalError

from cpo.task_dispatch import task_dispatch
from ocpi_api import announce, delivery, outbox


# Longer than a call with the longest push timeout can take (connect, send, answer). The worker renews its sending
# lease meanwhile; the hard limit kills a stuck one, whose lease then runs out (ocpi_api.delivery).
@shared_task(
    acks_late=True,
    soft_time_limit=150,
    time_limit=180,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=8,
)
def outbox_deliver(message_id: int) -> str:
    """Deliver one outbox message (or find it sent, superseded, not due, or held by another worker)."""
    return delivery.outbox_deliver(message_id=message_id)


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def outbox_deliver_due() -> int:
    """Beat: queue the messages whose time has come (retries, throttled PATCHes, tasks lost with their broker)."""
    ids = outbox.outbox_due_claim()
    for message_id in ids:
        task_dispatch(outbox_deliver, message_id)
    return len(ids)


@shared_task(acks_late=True, time_limit=600, ignore_result=True)
def outbox_prune() -> int:
    """Beat, daily: retention of delivered, superseded and failed messages."""
    return outbox.outbox_prune()


@shared_task(
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=8,
)
def evse_status_push(evse_pk: int) -> int:
    """An EVSE changed status: PATCH it to partners with a locations Receiver."""
    return len(announce.evse_status_push(evse_pk=evse_pk))


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def evse_status_push_fan_out(evse_pks: list[int]) -> int:
    """One task per batch of status changes from a daphne process (see ocpi_api/receivers.py): the worker, not the
    process answering chargers, queues one `evse_status_push` per EVSE."""
    for pk in evse_pks:
        task_dispatch(evse_status_push, pk)
    return len(evse_pks)
