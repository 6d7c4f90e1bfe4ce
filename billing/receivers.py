"""Billing's receivers of the gateway's domain events (sent after commit), connected in BillingConfig.ready.

A transaction that started, got meter values or ended is billed by a task; one whose late stop corrected it gets its
CDR credited and re-issued (`billing.tasks.cdr_correct`). Events arrive on the daphne process answering chargers, so
they are collected per process and handed on once per OCPI_EVENTS_BATCH_SECONDS (`ocpp_gateway.batching.PeriodicBatch`)
in at most two Celery publishes: one batch task for the transactions that started or ended (urgent queue), one for
those that got meter values (bulk queue, later); with in-process tasks (the embedded default) each transaction is
dispatched at once as `billing.tasks.transaction_bill` (`cpo.task_dispatch`: on a background thread in a server)."""

import time

from django.conf import settings

from billing import tasks
from cpo.task_dispatch import in_process, task_dispatch
from ocpp_gateway import events
from ocpp_gateway.batching import PeriodicBatch

NOW, LATER = "now", "later"


def _hand_on(keys: list[tuple[str, int]]) -> None:
    """One task for the transactions that started or ended (urgent queue), one OCPI_SESSION_SYNC_INTERVAL later for
    those that got meter values (bulk queue)."""
    now = [pk for when, pk in keys if when == NOW]
    later = [pk for when, pk in keys if when == LATER]
    if now:
        task_dispatch(tasks.transactions_bill_batch, now)
    if later:
        task_dispatch(tasks.transactions_bill_later, later, countdown=settings.OCPI_SESSION_SYNC_INTERVAL)


gateway_events = PeriodicBatch("billing gateway events", _hand_on, interval=lambda: settings.OCPI_EVENTS_BATCH_SECONDS)


def on_transaction_started_or_ended(sender, *, transaction_pk: int, **kwargs) -> None:
    if in_process(tasks.transaction_bill):
        task_dispatch(tasks.transaction_bill, transaction_pk)
        return
    gateway_events.add((NOW, transaction_pk))


# A charging car sends meter values every few seconds; each would re-price the whole session. One run per
# OCPI_SESSION_SYNC_INTERVAL per transaction (scheduled that far ahead, so it carries every value that came
# meanwhile) keeps the session as fresh as the partner sees it anyway (PATCHes are throttled harder) at a fraction
# of the cost. Started and ended still run at once.
_scheduled: dict[int, float] = {}


def on_transaction_updated(sender, *, transaction_pk: int, **kwargs) -> None:
    if in_process(tasks.transaction_bill):  # no worker to wait for: bill at once
        task_dispatch(tasks.transaction_bill, transaction_pk)
        return
    now = time.monotonic()
    if _scheduled.get(transaction_pk, 0.0) > now:
        return
    if len(_scheduled) > 10_000:
        for pk in [pk for pk, due in _scheduled.items() if due <= now]:
            del _scheduled[pk]
    _scheduled[transaction_pk] = now + settings.OCPI_SESSION_SYNC_INTERVAL
    gateway_events.add((LATER, transaction_pk))


def on_reservation_changed(sender, *, reservation_pk: int, **kwargs) -> None:
    """Reservations change rarely (a command, an expiry): each is billed at once."""
    task_dispatch(tasks.reservation_bill, reservation_pk)


def on_transaction_stop_corrected(sender, *, transaction_pk: int, **kwargs) -> None:
    """A late stop is rare (a transaction we ended without one): its correction is queued at once."""
    task_dispatch(tasks.cdr_correct, transaction_pk)


def connect() -> None:
    events.transaction_started.connect(on_transaction_started_or_ended, dispatch_uid="billing.transaction_started")
    events.transaction_updated.connect(on_transaction_updated, dispatch_uid="billing.transaction_updated")
    events.transaction_ended.connect(on_transaction_started_or_ended, dispatch_uid="billing.transaction_ended")
    events.transaction_stop_corrected.connect(
        on_transaction_stop_corrected, dispatch_uid="billing.transaction_stop_corrected"
    )
    events.reservation_changed.connect(on_reservation_changed, dispatch_uid="billing.reservation_changed")
