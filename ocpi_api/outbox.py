"""The outbox: every OCPI call we owe a partner is a row written in the same database transaction as the change it
announces (DESIGN.md, "The flow of one charge", step 6), then delivered by a Celery worker.

- `outbox_enqueue` writes the row; it must run inside the caller's `transaction.atomic()` and queues the delivery
  task with `transaction.on_commit`, so nothing is announced for a change that rolls back.
- Coalescing: a push of an object that may be replaced (session PUT/PATCH, location PUT/PATCH) supersedes the
  undelivered pushes of the same object and path that no worker holds; PATCH bodies are merged into the newer one
  (a session PATCH's `charging_periods` are added to, as mod_sessions says, so they are concatenated).
- Order: a message is sent only when no older message of the same object is still pending (`object_key`).
- `outbox_deliver` holds the row with `SELECT ... FOR UPDATE SKIP LOCKED` while it calls the partner, so two
  workers never send the same message; each try is an `OutboxAttempt`; failures are retried with exponential
  backoff until `give_up_at` (days for CDRs).
"""

import logging
import random
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from ocpi_api.models import OutboxAttempt, OutboxMessage, OutboxStatus, Partner, PartnerStatus

logger = logging.getLogger(__name__)

# Fields a PATCH adds to instead of replacing (mod_sessions: "processed as a request to add all the ChargingPeriod
# objects to the existing Session").
ADDITIVE_FIELDS = ("charging_periods",)


class OutboxError(RuntimeError):
    pass


def check_in_transaction() -> None:
    """The outbox row must share the transaction of the change it announces."""
    if not connection.in_atomic_block:
        raise OutboxError("outbox_enqueue must be called inside the caller's transaction.atomic() block")


def give_up_after(*, module: str) -> timedelta:
    hours = settings.OCPI_OUTBOX_CDR_GIVE_UP_HOURS if module == "cdrs" else settings.OCPI_OUTBOX_GIVE_UP_HOURS
    return timedelta(hours=hours)


def retry_delay(*, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: base * 2^(attempts-1), capped, +-10% jitter so a
    partner coming back is not hit by every message at once."""
    base = settings.OCPI_OUTBOX_RETRY_BASE
    delay = min(base * (2 ** max(attempts - 1, 0)), settings.OCPI_OUTBOX_RETRY_MAX)
    return delay * random.uniform(0.9, 1.1)


def body_merge(*, old_method: str, old_body: dict | None, new_method: str, new_body: dict | None) -> tuple[str, dict]:
    """What one message must carry to replace `old` followed by `new` (same object, same path).

    A PUT or DELETE replaces whatever came before. A PATCH after a PUT or PATCH updates its fields; additive fields
    (charging_periods) are concatenated. The result keeps the older method when it was a PUT."""
    if new_method != "PATCH" or old_method not in ("PUT", "PATCH"):
        return new_method, new_body
    merged = dict(old_body or {})
    for key, value in (new_body or {}).items():
        if key in ADDITIVE_FIELDS:
            merged[key] = list(merged.get(key) or []) + list(value or [])
        else:
            merged[key] = value
    return old_method, merged


def _schedule(message_id: int, *, at: datetime) -> None:
    """Queue the delivery task after commit (at `at`, when that is soon; later ones are found by beat)."""
    from ocpi_api import tasks

    delay = (at - timezone.now()).total_seconds()
    if delay > settings.OCPI_OUTBOX_COUNTDOWN_MAX:
        return

    def send() -> None:
        try:
            if delay > 0:
                tasks.outbox_deliver.apply_async(args=[message_id], countdown=delay)
            else:
                tasks.outbox_deliver.delay(message_id)
        except Exception:  # the broker is down: beat finds the message once the dispatch lease runs out
            logger.exception("could not queue delivery of outbox message %s", message_id)

    transaction.on_commit(send)


def outbox_enqueue(
    *,
    partner: Partner,
    module: str,
    method: str,
    path: str,
    object_key: str,
    body: dict | None,
    to_party: tuple[str, str] | None = None,
    coalesce: bool = False,
    not_before: datetime | None = None,
    meta: dict | None = None,
) -> OutboxMessage:
    """Write a push for `partner` and queue its delivery after commit. Precondition: called inside the
    transaction.atomic() block that makes the change it announces (OutboxError otherwise).

    With `coalesce`, undelivered coalescing messages of the same object and path that no worker is sending are
    superseded: their content is merged into the new message, which keeps the earliest due time (throttling) and
    their backoff. `not_before` delays the first try (session PATCH throttling)."""
    check_in_transaction()
    to_country, to_party_id = to_party or (partner.country_code, partner.party_id)
    now = timezone.now()
    due = max(not_before or now, now)
    attempts, next_attempt, give_up = 0, due, now + give_up_after(module=module)
    older = []
    if coalesce:
        older = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(partner=partner, object_key=object_key, path=path, status=OutboxStatus.PENDING, coalesce=True)
            .order_by("id")
        )
    for old in older:
        method, body = body_merge(old_method=old.method, old_body=old.body, new_method=method, new_body=body)
        due = min(due, old.due_at)
        if old.attempts:
            attempts = max(attempts, old.attempts)
            next_attempt = max(next_attempt, old.next_attempt_at)
    if not older or not attempts:
        next_attempt = due
    message = OutboxMessage.objects.create(
        partner=partner,
        module=module,
        method=method,
        path=path,
        object_key=object_key,
        to_country_code=to_country[:2],
        to_party_id=to_party_id[:3],
        body=body,
        meta=meta or {},
        coalesce=coalesce,
        attempts=attempts,
        due_at=due,
        next_attempt_at=next_attempt,
        dispatched_at=now,
        give_up_at=give_up,
        correlation_id=str(uuid.uuid4()),
    )
    if older:
        OutboxMessage.objects.filter(pk__in=[m.pk for m in older]).update(
            status=OutboxStatus.SUPERSEDED, superseded_by=message
        )
    _schedule(message.pk, at=next_attempt)
    return message


def outbox_enqueue_once(**kwargs) -> tuple[OutboxMessage, bool]:
    """`outbox_enqueue` for a POST that must be made once per partner and object (a CDR): the existing message when
    there is one (the unique constraint decides between concurrent callers). Returns (message, created)."""
    existing = (
        OutboxMessage.objects.filter(
            partner=kwargs["partner"], object_key=kwargs["object_key"], method="POST"
        )
        .exclude(status=OutboxStatus.SUPERSEDED)
        .first()
    )
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return outbox_enqueue(method="POST", **kwargs), True
    except IntegrityError:
        existing = (
            OutboxMessage.objects.filter(partner=kwargs["partner"], object_key=kwargs["object_key"], method="POST")
            .exclude(status=OutboxStatus.SUPERSEDED)
            .get()
        )
        return existing, False


def outbox_last(*, partner: Partner, object_key: str, path: str | None = None) -> OutboxMessage | None:
    """The latest message of an object that was not replaced: what the partner has, or will have, last."""
    messages = OutboxMessage.objects.filter(partner=partner, object_key=object_key).exclude(
        status=OutboxStatus.SUPERSEDED
    )
    if path is not None:
        messages = messages.filter(path=path)
    return messages.order_by("-id").first()


# --- Delivery ---------------------------------------------------------------------------------------------------

class Outcome:
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    LOCKED = "locked"  # another worker holds it
    DONE = "done"  # not pending any more (sent, superseded, failed)
    NOT_DUE = "not-due"
    WAITING = "waiting"  # an older message of the same object goes first


def _older_pending(message: OutboxMessage):
    return OutboxMessage.objects.filter(
        partner_id=message.partner_id, object_key=message.object_key, status=OutboxStatus.PENDING, id__lt=message.id
    )


def _next_of_object(message: OutboxMessage) -> OutboxMessage | None:
    return (
        OutboxMessage.objects.filter(
            partner_id=message.partner_id, object_key=message.object_key, status=OutboxStatus.PENDING,
            id__gt=message.id,
        )
        .order_by("id")
        .first()
    )


def outbox_deliver(*, message_id: int) -> str:
    """Try to deliver one message; idempotent (a sent, superseded or failed message is left alone).

    The row stays locked (FOR UPDATE SKIP LOCKED) during the HTTP call: a second worker given the same id skips it,
    and a worker killed mid-call leaves it PENDING for the redelivered task. Not before `next_attempt_at`, and not
    while an older message of the same object is pending (that one schedules this one when it is done)."""
    from ocpi_api.push import message_send

    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("partner")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return Outcome.LOCKED if OutboxMessage.objects.filter(pk=message_id).exists() else Outcome.DONE
        if message.status != OutboxStatus.PENDING:
            return Outcome.DONE
        now = timezone.now()
        if message.next_attempt_at > now + timedelta(seconds=0.5):
            return Outcome.NOT_DUE
        if _older_pending(message).exists():
            return Outcome.WAITING
        if message.partner.status != PartnerStatus.REGISTERED:
            _message_fail(message, error=f"partner {message.partner} is {message.partner.status}")
            return Outcome.FAILED
        result = message_send(message=message)
        OutboxAttempt.objects.create(
            message=message,
            started_at=result.started_at,
            duration_ms=result.duration_ms,
            url=result.url[:512],
            request_id=result.request_id,
            ok=result.ok,
            http_status=result.http_status,
            status_code=result.status_code,
            status_message=result.status_message[:255],
            error=result.error,
        )
        message.attempts += 1
        message.last_http_status = result.http_status
        message.last_status_code = result.status_code
        message.last_error = result.error
        if result.ok:
            message.status = OutboxStatus.SENT
            message.sent_at = timezone.now()
            message.response_location = result.location[:512]
            message.save()
            following = _next_of_object(message)
            if following is not None:
                _schedule(following.pk, at=following.next_attempt_at)
            return Outcome.SENT
        if result.permanent:
            _message_fail(message, error=result.error)
            return Outcome.FAILED
        next_attempt = timezone.now() + timedelta(seconds=retry_delay(attempts=message.attempts))
        if next_attempt > message.give_up_at:
            _message_fail(message, error=f"gave up after {message.attempts} attempts: {result.error}")
            return Outcome.FAILED
        message.next_attempt_at = next_attempt
        message.dispatched_at = timezone.now()
        message.save()
        logger.info("OCPI push %s failed (%s), retry at %s", message, result.error, next_attempt)
        _schedule(message.pk, at=next_attempt)
        return Outcome.RETRY


def _message_fail(message: OutboxMessage, *, error: str) -> None:
    """Give up on a message; the next message of the object may go."""
    message.status = OutboxStatus.FAILED
    message.last_error = error
    message.save()
    logger.error("OCPI push %s given up: %s", message, error)
    following = _next_of_object(message)
    if following is not None:
        _schedule(following.pk, at=following.next_attempt_at)


def outbox_retry(*, message_id: int) -> OutboxMessage:
    """Staff asked to try a message again now: a given-up (FAILED) or waiting (PENDING) message goes back to PENDING,
    due now, with a fresh give-up time. A sent or superseded message is returned unchanged."""
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=message_id)
        if message.status not in (OutboxStatus.PENDING, OutboxStatus.FAILED):
            return message
        now = timezone.now()
        message.status = OutboxStatus.PENDING
        message.next_attempt_at = now
        message.dispatched_at = now
        message.give_up_at = max(message.give_up_at, now + give_up_after(module=message.module))
        message.save()
        _schedule(message.pk, at=now)
    return message


def outbox_due_claim(*, limit: int = 500) -> list[int]:
    """Ids of pending messages that may go now: due, first of their object, and not queued recently (a queued task
    may still be on its way). Marks them queued. For the beat task that catches retries and lost tasks."""
    now = timezone.now()
    lease = now - timedelta(seconds=settings.OCPI_OUTBOX_DISPATCH_LEASE)
    older = OutboxMessage.objects.filter(
        partner_id=OuterRef("partner_id"), object_key=OuterRef("object_key"), status=OutboxStatus.PENDING,
        id__lt=OuterRef("id"),
    )
    with transaction.atomic():
        ids = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            # never queued, queued long ago (the task may be lost), or its retry time came after it was queued
            .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=lease) | Q(dispatched_at__lt=F("next_attempt_at")))
            .exclude(Exists(older))
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        OutboxMessage.objects.filter(pk__in=ids).update(dispatched_at=now)
    return ids


def outbox_prune(*, now: datetime | None = None) -> int:
    """Housekeeping: forget delivered, superseded and failed messages (with their attempts) older than
    OCPI_OUTBOX_RETENTION_DAYS. CDR POSTs are kept: they record where each CDR went (and the partner's URL of it)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.OCPI_OUTBOX_RETENTION_DAYS)
    deleted, _ = (
        OutboxMessage.objects.filter(created_at__lt=cutoff)
        .exclude(status=OutboxStatus.PENDING)
        .exclude(module="cdrs", method="POST")
        .delete()
    )
    return deleted
