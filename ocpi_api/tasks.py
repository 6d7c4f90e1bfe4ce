"""Celery tasks of the roaming side. Each takes ids, re-reads the database and calls one service; all are
idempotent, so they are acknowledged late (a worker that dies mid-task leaves it to another), time-limited, and
retried by Celery when the database lets them down (a deadlock, a lost connection)."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError

from cpo.models import EVSE
from cpo.task_dispatch import in_process, task_dispatch
from cpo.worker_threads import each_in_worker_threads
from ocpi_api import announce, delivery, outbox, selectors
from ocpi_api.models import OutboxMessage
from ocpi_api.modules import ModuleID

logger = logging.getLogger(__name__)


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


def _partner_key(partner_id: int) -> str:
    return f"ocpi-outbox-partner-deliver:{partner_id}"


def partner_delivery_queue(partner_id: int) -> bool:
    """Queue `outbox_partner_deliver` for the partner unless one is queued already and has not started: any number of
    messages falling due meanwhile cost one task (the flag is a cache key the task deletes as it starts, before it
    looks for messages, so a message committed later always finds a task still to come). The flag expires after
    OCPI_OUTBOX_DISPATCH_LEASE seconds, so a task lost with its broker holds nothing up for longer (beat finds its
    messages meanwhile). Returns whether a task was queued."""
    key = _partner_key(partner_id)
    if not cache.add(key, 1, timeout=settings.OCPI_OUTBOX_DISPATCH_LEASE):
        return False
    try:
        task_dispatch(outbox_partner_deliver, partner_id)
    except Exception:
        cache.delete(key)
        raise
    return True


# Longer than the delivery budget (OCPI_OUTBOX_PARTNER_BUDGET, 10 s) plus the longest push timeout and the records:
# the run stops taking messages after the budget and waits for the calls it made.
@shared_task(
    acks_late=True,
    soft_time_limit=270,
    time_limit=300,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=8,
)
def outbox_partner_deliver(partner_id: int) -> dict[str, int]:
    """Deliver a partner's due messages, several at once (urgent queue). One run per partner at a time: a second one
    leaves at once (the running one keeps looking until nothing is due, and looks once more after it let go), so two
    runs never hold both worker processes for one partner. Queues itself again when its time ran out."""
    cache.delete(_partner_key(partner_id))
    running = f"{_partner_key(partner_id)}:running"
    # Held a little past the budget: a worker killed mid-run holds up the partner's next run that long at most (a run
    # outliving it only means two runs for a while; their claims keep each call single).
    if not cache.add(running, 1, timeout=settings.OCPI_OUTBOX_PARTNER_BUDGET + 20):
        return {}
    try:
        outcomes, more = delivery.outbox_partner_deliver(partner_id=partner_id)
    finally:
        cache.delete(running)
    if more or delivery.outbox_partner_due(partner_id=partner_id):
        partner_delivery_queue(partner_id)
    return outcomes


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def outbox_deliver_due() -> int:
    """Beat: queue the messages whose time has come (retries, throttled PATCHes, tasks lost with their broker): with
    a worker, one delivery run per partner that has any; in-process, one task per message."""
    ids = outbox.outbox_due_claim()
    if in_process(outbox_deliver):
        for message_id in ids:
            task_dispatch(outbox_deliver, message_id)
        return len(ids)
    for partner_id in OutboxMessage.objects.filter(pk__in=ids).values_list("partner_id", flat=True).distinct():
        partner_delivery_queue(partner_id)
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


@shared_task(acks_late=True, soft_time_limit=100, time_limit=120, ignore_result=True)
def evse_status_push_batch(evse_pks: list[int], station_pks: list[int] | None = None) -> int:
    """One task per batch of status changes from a daphne process (see ocpi_api/receivers.py), on the urgent queue:
    the PATCHes of every EVSE in it, and of every EVSE of `station_pks` (stations gone offline or back), are written
    here, WORKER_THREADS at a time (a task per EVSE cost more than the EVSE's work); one that fails is handed to its
    own `evse_status_push` task, which retries it. Returns the EVSEs done. The partners with a locations Receiver are
    looked up once for the batch (none: nothing to do)."""
    partners = selectors.partners_with_receiver(module=ModuleID.LOCATIONS)
    if not partners:
        return len(set(evse_pks))
    if station_pks:
        evse_pks = [*evse_pks, *EVSE.objects.filter(station_id__in=station_pks).values_list("pk", flat=True)]
    results = each_in_worker_threads(
        lambda pk: len(announce.evse_status_push(evse_pk=pk, partners=partners)), dict.fromkeys(evse_pks)
    )
    for pk, error in results:
        if error is not None:
            logger.error("status push of EVSE %s failed; queued on its own", pk, exc_info=error)
            task_dispatch(evse_status_push, pk)
    return sum(1 for _, error in results if error is None)
