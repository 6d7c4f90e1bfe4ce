"""The outbox: every OCPI call we owe a partner is a row written in the same database transaction as the change it
announces (DESIGN.md, "The flow of one charge", step 6), then delivered by a Celery worker (`ocpi_api.delivery`).

- `outbox_enqueue` writes the row; it must run inside the caller's `transaction.atomic()`. Once that commits it
  sends `message_due`, which ocpi_api.receivers turns into a delivery task, so nothing is announced for a change
  that rolls back.
- Coalescing: a push of an object that may be replaced (session PUT/PATCH, location PUT/PATCH) supersedes the
  undelivered pushes of the same object and path that no worker is sending; PATCH bodies are merged into the newer
  one (a session PATCH's `charging_periods` are added to, as mod_sessions says, so they are concatenated).
- Order: a message is sent only when no older message of its `order_key` is still pending (waiting, retrying or in
  flight). An object's messages share its key; a CDR POST takes its session's key, so the EMSP gets the session's
  PUT, PATCHes and final state before the CDR. Coalescing never moves a message's content past another object's
  message of the same key. Producers of one key must be serialised (billing holds the transaction's row lock), so
  ids follow the order of the changes.
- Failures are retried with exponential backoff until `give_up_at` (days for CDRs); beat finds messages whose time
  has come (`outbox_due_claim`).
"""

import logging
import random
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Min, OuterRef, Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from ocpi_api.models import OutboxMessage, OutboxStatus, Partner
from ocpi_api.modules import ModuleID

logger = logging.getLogger(__name__)

# Fields a PATCH adds to instead of replacing (mod_sessions: "processed as a request to add all the ChargingPeriod
# objects to the existing Session").
ADDITIVE_FIELDS = ("charging_periods",)


# kwargs: message_id, partner_id, countdown (seconds from now). Sent after the commit that made a message due soon.
message_due = Signal()


class OutboxError(RuntimeError):
    pass


def outbox_object_key(module: str, *ids: str) -> str:
    """The key of an object whose messages go out in order: the module and the object's ids, e.g.
    `cdrs:NL:CPO:<cdr id>` or `locations:<location id>` (a Location with its EVSEs and connectors)."""
    return ":".join((module, *ids))


def check_in_transaction() -> None:
    """The outbox row must share the transaction of the change it announces."""
    if not connection.in_atomic_block:
        raise OutboxError("outbox_enqueue must be called inside the caller's transaction.atomic() block")


def give_up_after(*, module: str) -> timedelta:
    cdr = module == ModuleID.CDRS
    hours = settings.OCPI_OUTBOX_CDR_GIVE_UP_HOURS if cdr else settings.OCPI_OUTBOX_GIVE_UP_HOURS
    return timedelta(hours=hours)


def retry_delay(*, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: base * 2^(attempts-1), capped, +-10% jitter so a
    partner coming back is not hit by every message at once."""
    base = settings.OCPI_OUTBOX_RETRY_BASE
    delay = min(base * (2 ** max(attempts - 1, 0)), settings.OCPI_OUTBOX_RETRY_MAX)
    return delay * random.uniform(0.9, 1.1)


def body_merge(
    *, old_method: str, old_body: dict | None, new_method: str, new_body: dict | None
) -> tuple[str, dict | None]:
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


def message_schedule(message_id: int, *, partner_id: int, at: datetime) -> None:
    """Have the message delivered at `at` once the current transaction commits (`message_due`); one due later than
    OCPI_OUTBOX_COUNTDOWN_MAX is left to beat (`outbox_due_claim`)."""
    countdown = (at - timezone.now()).total_seconds()
    if countdown > settings.OCPI_OUTBOX_COUNTDOWN_MAX:
        return
    transaction.on_commit(
        lambda: message_due.send(
            sender=None, message_id=message_id, partner_id=partner_id, countdown=max(countdown, 0.0)
        )
    )


def _scheduled_for(message: OutboxMessage, at: datetime) -> bool:
    """Whether a delivery of `message` was queued to run at `at` (the last time it was scheduled, `dispatched_at`,
    `at` was within the countdown that queues a task)."""
    if message.dispatched_at is None or message.next_attempt_at != at:
        return False
    return (at - message.dispatched_at).total_seconds() <= settings.OCPI_OUTBOX_COUNTDOWN_MAX


def outbox_enqueue(
    *,
    partner: Partner,
    module: str,
    method: str,
    path: str,
    object_key: str,
    body: dict | None,
    order_key: str | None = None,
    to_party: tuple[str, str] | None = None,
    coalesce: bool = False,
    not_before: datetime | None = None,
    meta: dict | None = None,
) -> OutboxMessage:
    """Write a push for `partner` and queue its delivery after commit. Precondition: called inside the
    transaction.atomic() block that makes the change it announces (OutboxError otherwise).

    `order_key` (default: `object_key`) is the key of the messages this one goes after (see the module docstring).
    With `coalesce`, undelivered coalescing messages of the same object and path that no worker is sending (none
    holds its row or its sending lease) and that no other object's message of the same order key follows are
    superseded: their content is merged into the new message, which keeps the earliest due time (throttling) and
    their backoff. `not_before` delays the first try (session PATCH throttling)."""
    check_in_transaction()
    order_key = order_key or object_key
    to_country, to_party_id = to_party or (partner.country_code, partner.party_id)
    now = timezone.now()
    due = max(not_before or now, now)
    attempts, next_attempt, give_up = 0, due, now + give_up_after(module=module)
    older = []
    if coalesce:
        overtaken = OutboxMessage.objects.filter(
            partner_id=partner.pk, order_key=order_key, status=OutboxStatus.PENDING, id__gt=OuterRef("id")
        ).exclude(object_key=object_key)
        older = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(partner=partner, object_key=object_key, path=path, status=OutboxStatus.PENDING, coalesce=True)
            .exclude(sending_until__gt=now)
            .exclude(Exists(overtaken))
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
        order_key=order_key,
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
    # A throttled PATCH replaced every few seconds (meter values) would queue one more delayed task each time, all
    # for the same moment: the task already queued for the message it replaces delivers this one (delivery follows
    # `superseded_by`), so none is added. Messages due now always announce themselves (that costs no task per
    # message: `ocpi_api.receivers`).
    if not (older and next_attempt > now and _scheduled_for(older[-1], next_attempt)):
        message_schedule(message.pk, partner_id=partner.pk, at=next_attempt)
    return message


def outbox_enqueue_once(**kwargs) -> tuple[OutboxMessage, bool]:
    """`outbox_enqueue` for a POST that must be made once per partner and object (a CDR): the existing message when
    there is one. The unique constraint (outbox_one_post_per_object) decides, so the usual first call costs no
    lookup. Returns (message, created)."""
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
        message_schedule(message.pk, partner_id=message.partner_id, at=now)
    return message


def first_pending_ids(**scope) -> QuerySet:
    """The first pending message of each order key within `scope` (e.g. partner_id=...): the only ones that may go.
    One grouped scan of the pending messages; the "no older pending message of my key" anti-join it replaces
    compared every pending message with every older one of its key (12 ms at 3,200 pending, paid per delivery)."""
    return (
        OutboxMessage.objects.filter(status=OutboxStatus.PENDING, **scope)
        .values("partner_id", "order_key")
        .annotate(first=Min("id"))
        .values("first")
    )


def outbox_due_claim(*, limit: int = 500) -> list[int]:
    """Ids of pending messages that may go now: due, first of their order key, not being sent (a live sending lease),
    and not queued recently (a queued task may still be on its way). Marks them queued. For the beat task that
    catches retries, lost tasks and the messages of dead workers (their lease ran out)."""
    now = timezone.now()
    lease = now - timedelta(seconds=settings.OCPI_OUTBOX_DISPATCH_LEASE)
    with transaction.atomic():
        ids = list(
            OutboxMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(id__in=first_pending_ids(), next_attempt_at__lte=now, partner__suspended_at__isnull=True)
            # never queued, queued long ago (the task may be lost), its retry time came after it was queued, or the
            # worker that took it died (its sending lease ran out)
            .filter(
                Q(dispatched_at__isnull=True)
                | Q(dispatched_at__lte=lease)
                | Q(dispatched_at__lt=F("next_attempt_at"))
                | Q(sending_until__isnull=False)
            )
            .exclude(sending_until__gt=now)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        OutboxMessage.objects.filter(pk__in=ids).update(dispatched_at=now)
    return ids


def outbox_partner_release(*, partner: Partner, suspended_at: datetime) -> None:
    """A suspended partner is back: its held messages go now, the oldest of each order key first, and the time
    they waited does not count towards giving up on them. Precondition: inside the transaction that resumes it."""
    now = timezone.now()
    pending = OutboxMessage.objects.filter(partner=partner, status=OutboxStatus.PENDING)
    pending.update(dispatched_at=None, next_attempt_at=now, give_up_at=F("give_up_at") + (now - suspended_at))
    for message_id in first_pending_ids(partner_id=partner.pk).values_list("first", flat=True):
        message_schedule(message_id, partner_id=partner.pk, at=now)


def outbox_prune(*, now: datetime | None = None) -> int:
    """Housekeeping: forget delivered, superseded and failed messages (with their attempts) older than
    OCPI_OUTBOX_RETENTION_DAYS. CDR POSTs are kept: they record where each CDR went (and the partner's URL of it)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.OCPI_OUTBOX_RETENTION_DAYS)
    deleted, _ = (
        OutboxMessage.objects.filter(created_at__lt=cutoff)
        .exclude(status=OutboxStatus.PENDING)
        .exclude(module=ModuleID.CDRS, method="POST")
        .delete()
    )
    return deleted
