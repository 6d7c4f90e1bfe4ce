"""Delivering one outbox message: the HTTP call a worker makes for it, recorded as an `OutboxAttempt`.

No row lock and no database transaction is held while the partner answers. A worker claims the message in one short
transaction (a sending lease, `sending_until`, OCPI_OUTBOX_SENDING_LEASE long), calls the partner outside any
transaction while a `LeaseKeeper` thread renews the lease, and records the result in another; a second worker given
the same message meanwhile finds it leased and leaves it, and `outbox_enqueue` does not supersede a leased message
(the newer one goes after it). A worker killed mid-call stops renewing: its lease runs out within seconds and beat
queues the message again (`outbox_due_claim`). So a call is never repeated while an earlier one may still be in
flight from our side, and one the partner did not answer in time (per kind: OCPI_PUSH_TIMEOUTS) is repeated no
sooner than that timeout again, as it may still be running at the partner. Messages of one order key go out in
order: one is claimed only when no older one of its key is pending, and sending it queues the next.

A message given up, or failed ALERT_PARTNER_DELIVERY_ATTEMPTS times in a row, raises the partner's
partner_delivery_failing alert (cpo.alerts); the next push the partner takes resolves it."""

import logging
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from cpo.alerts import alert_raise, alert_resolve
from cpo.models import AlertKind
from cpo.worker_threads import in_worker_thread
from ocpi_api.client import OcpiExchange, ocpi_call
from ocpi_api.models import OutboxAttempt, OutboxMessage, OutboxStatus, PartnerStatus
from ocpi_api.modules import InterfaceRole
from ocpi_api.outbox import first_pending_ids, message_schedule, retry_delay

logger = logging.getLogger(__name__)


class Outcome:
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    LOCKED = "locked"  # another worker holds it
    DONE = "done"  # not pending any more (sent, superseded, failed)
    NOT_DUE = "not-due"
    WAITING = "waiting"  # an older message of the same object goes first
    HELD = "held"  # the partner is suspended: the message waits, pending, until it is resumed


def message_url(message: OutboxMessage) -> str | None:
    """Where the message goes: the partner's Receiver endpoint of its module, then its path; None without one."""
    base = message.partner.endpoint_url(identifier=message.module, role=InterfaceRole.RECEIVER)
    if not base:
        return None
    return f"{base.rstrip('/')}/{message.path}" if message.path else base


def push_timeout(*, module: str) -> float:
    """Seconds to wait for the partner's answer to a push of `module` (settings.OCPI_PUSH_TIMEOUTS)."""
    return float(settings.OCPI_PUSH_TIMEOUTS.get(module, settings.OCPI_HTTP_TIMEOUT))


def sending_lease() -> timedelta:
    return timedelta(seconds=settings.OCPI_OUTBOX_SENDING_LEASE)


class LeaseKeeper:
    """While the worker waits for the partner, a thread renews the message's sending lease every third of its length,
    on its own database connection. `until` is the lease as last written: the worker's proof, when it records the
    attempt, that no other worker took the message over. Renewal stops when the lease is found taken over."""

    def __init__(self, message: OutboxMessage):
        self.message_id = message.pk
        self.until: datetime | None = message.sending_until
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"outbox-lease-{message.pk}", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        period = sending_lease().total_seconds() / 3
        try:
            while not self.stopped.wait(period):
                renewed = timezone.now() + sending_lease()
                if not OutboxMessage.objects.filter(pk=self.message_id, sending_until=self.until).update(
                    sending_until=renewed
                ):
                    logger.warning("sending lease of outbox message %s was taken over", self.message_id)
                    return
                self.until = renewed
        except Exception:  # the database let us down: the lease runs out and another worker takes the message
            logger.exception("could not renew the sending lease of outbox message %s", self.message_id)
        finally:
            connections.close_all()  # this thread's connections only


def message_send(*, message: OutboxMessage, url: str) -> OcpiExchange:
    """One HTTP call for `message`, with the partner's token, `X-Correlation-ID` (one per message, the same on every
    retry), the routing headers to the party the message is for, and the timeout of its kind."""
    partner = message.partner
    return ocpi_call(
        message.method,
        url,
        token=partner.outgoing_token,
        encode_token=partner.encode_outgoing_token,
        body=message.body,
        to_party=(message.to_country_code, message.to_party_id),
        correlation_id=message.correlation_id,
        timeout=push_timeout(module=message.module),
        partner_networks=partner.allowed_networks,
    )


def _older_pending(message: OutboxMessage):
    return OutboxMessage.objects.filter(
        partner_id=message.partner_id, order_key=message.order_key, status=OutboxStatus.PENDING, id__lt=message.id
    )


def _next_in_order(message: OutboxMessage) -> OutboxMessage | None:
    return (
        OutboxMessage.objects.filter(
            partner_id=message.partner_id,
            order_key=message.order_key,
            status=OutboxStatus.PENDING,
            id__gt=message.id,
        )
        .order_by("id")
        .first()
    )


_SUPERSEDED = "superseded"  # the claim's word for "deliver what replaced it" (`_latest`), never an outcome


def _message_claim(*, message_id: int) -> tuple[OutboxMessage | None, str]:
    """In one short transaction: the message with a sending lease taken for this worker, or None and the outcome
    that says why not."""
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("partner")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return None, Outcome.LOCKED if OutboxMessage.objects.filter(pk=message_id).exists() else Outcome.DONE
        if message.status == OutboxStatus.SUPERSEDED:
            return None, _SUPERSEDED
        if message.status != OutboxStatus.PENDING:
            return None, Outcome.DONE
        now = timezone.now()
        if message.sending_until is not None and message.sending_until > now:
            return None, Outcome.LOCKED
        if message.next_attempt_at > now + timedelta(seconds=0.5):
            return None, Outcome.NOT_DUE
        if _older_pending(message).exists():
            return None, Outcome.WAITING
        if message.partner.status != PartnerStatus.REGISTERED:
            _message_fail(message, error=f"partner {message.partner} is {message.partner.status}")
            return None, Outcome.FAILED
        if message.partner.is_suspended:
            return None, Outcome.HELD
        message.sending_until = now + sending_lease()
        message.save(update_fields=["sending_until"])
    return message, ""


# What recording an attempt never reads (the body was sent; it is a CDR's or a location's whole JSON) and what it
# writes: a save of the whole row would encode and send the body again.
_NOT_RECORDED = ("body", "meta")
_ATTEMPT_FIELDS = ("sending_until", "attempts", "last_http_status", "last_status_code", "last_error")


def _message_record(*, claimed: OutboxMessage, exchange: OcpiExchange, permanent: bool) -> str:
    """In one short transaction: the attempt, and the message sent, retried later or given up. `claimed.sending_until`
    is the lease this worker holds (as last renewed)."""
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(of=("self",))
            .select_related("partner")
            .defer(*_NOT_RECORDED)
            .get(pk=claimed.pk)
        )
        OutboxAttempt.objects.create(
            message=message,
            started_at=exchange.started_at,
            duration_ms=exchange.duration_ms,
            url=exchange.url[:512],
            request_id=exchange.request_id,
            ok=exchange.ok,
            http_status=exchange.http_status,
            status_code=exchange.status_code,
            status_message=exchange.status_message[:255],
            error=exchange.problem(),
        )
        if message.status != OutboxStatus.PENDING or message.sending_until != claimed.sending_until:
            return Outcome.DONE  # our lease ran out and another worker took the message over
        message.sending_until = None
        message.attempts += 1
        message.last_http_status = exchange.http_status
        message.last_status_code = exchange.status_code
        message.last_error = exchange.problem()
        if exchange.ok:
            message.status = OutboxStatus.SENT
            message.sent_at = timezone.now()
            location = exchange.headers.get("Location", "") if exchange.headers is not None else ""
            message.response_location = location[:512]
            message.save(update_fields=[*_ATTEMPT_FIELDS, "status", "sent_at", "response_location"])
            alert_resolve(kind=AlertKind.PARTNER_DELIVERY_FAILING, subject=partner_alert_subject(message))
            following = _next_in_order(message)
            if following is not None:
                message_schedule(following.pk, partner_id=following.partner_id, at=following.next_attempt_at)
            return Outcome.SENT
        if permanent:
            _message_fail(message, error=exchange.problem())
            return Outcome.FAILED
        delay = retry_delay(attempts=message.attempts)
        timeout = push_timeout(module=message.module)
        if exchange.http_status is None and exchange.duration_ms >= timeout * 900:
            delay = max(delay, timeout)  # we stopped waiting for an answer: the call may still run at the partner
        next_attempt = timezone.now() + timedelta(seconds=delay)
        if next_attempt > message.give_up_at:
            _message_fail(message, error=f"gave up after {message.attempts} attempts: {exchange.problem()}")
            return Outcome.FAILED
        message.next_attempt_at = next_attempt
        message.dispatched_at = timezone.now()
        message.save(update_fields=[*_ATTEMPT_FIELDS, "next_attempt_at", "dispatched_at"])
        logger.info("OCPI push %s failed (%s), retry at %s", message, exchange.problem(), next_attempt)
        if message.attempts >= settings.ALERT_PARTNER_DELIVERY_ATTEMPTS:
            _delivery_alert(message, problem=f"failed {message.attempts} times, retried at {next_attempt.isoformat()}")
        message_schedule(message.pk, partner_id=message.partner_id, at=next_attempt)
        return Outcome.RETRY


def _latest(message_id: int) -> int:
    """The message that replaced `message_id` (following `superseded_by`), or `message_id` itself: a delivery queued
    for a message delivers what replaced it (`outbox_enqueue` queues no task of its own for a replacement due at the
    same time)."""
    for _ in range(100):
        successor = (
            OutboxMessage.objects.filter(pk=message_id, status=OutboxStatus.SUPERSEDED)
            .values_list("superseded_by_id", flat=True)
            .first()
        )
        if successor is None:
            return message_id
        message_id = successor
    return message_id


def _send_leased(message: OutboxMessage, url: str) -> tuple[OcpiExchange, datetime | None]:
    """The call for a claimed message while its lease is renewed; the exchange and the lease as last written."""
    with LeaseKeeper(message) as lease:
        exchange = message_send(message=message, url=url)
    return exchange, lease.until


def _no_endpoint(message: OutboxMessage) -> str:
    """The partner dropped the message's endpoint since it was written: retrying cannot help."""
    exchange = OcpiExchange(
        method=message.method,
        url="",
        request_id="",
        started_at=timezone.now(),
        error=f"partner has no {message.module} Receiver endpoint",
    )
    return _message_record(claimed=message, exchange=exchange, permanent=True)


def outbox_deliver(*, message_id: int) -> str:
    """Try to deliver one message (or the one that replaced it); idempotent (a sent, superseded or failed message is
    left alone). Not before `next_attempt_at`, not while another worker sends it (its lease is live), and not while an
    older message of the same order key is pending (that one queues this one when it is done). Returns the
    `Outcome`."""
    message, outcome = _message_claim(message_id=message_id)
    if outcome == _SUPERSEDED:
        message, outcome = _message_claim(message_id=_latest(message_id))
    if message is None:
        return Outcome.DONE if outcome == _SUPERSEDED else outcome
    url = message_url(message)
    if url is None:
        return _no_endpoint(message)
    exchange, message.sending_until = _send_leased(message, url)
    return _message_record(claimed=message, exchange=exchange, permanent=False)


# Which of a partner's due messages go first when more are due than a run sends at once: CDRs (money, and the
# EMSP's invoices wait for them), then sessions, then the rest (EVSE status PATCHes: a reconnect wave queues
# thousands, and in id order the CDRs of the minutes after it waited behind all of them, bench/RESULTS.md). Order
# within an object (its order key) is kept whatever the module: only the first pending message of a key is a head.
_MODULE_PRIORITY = Case(When(module="cdrs", then=Value(0)), When(module="sessions", then=Value(1)), default=Value(2))


def _partner_heads(*, partner_id: int, limit: int) -> list[int]:
    """Ids of a partner's messages that may go now: due, the first pending one of their order key, not being sent;
    CDRs first, then sessions, then the rest (`_MODULE_PRIORITY`), oldest first within each."""
    now = timezone.now()
    return list(
        OutboxMessage.objects.filter(
            id__in=first_pending_ids(partner_id=partner_id),
            partner__suspended_at__isnull=True,
            next_attempt_at__lte=now + timedelta(seconds=0.5),
        )
        .exclude(sending_until__gt=now)
        .order_by(_MODULE_PRIORITY, "id")
        .values_list("id", flat=True)[:limit]
    )


def outbox_partner_due(*, partner_id: int) -> bool:
    """Whether the partner has a message that may go now."""
    return bool(_partner_heads(partner_id=partner_id, limit=1))


# How many of a partner's due messages one lookup finds, per delivery thread. A lookup scans the partner's pending
# messages; once per message it was most of a run's time behind a reconnect wave's backlog. A CDR that becomes due
# meanwhile waits for at most these to be taken (the lookup is repeated when fewer than a thread's worth are left).
HEADS_PER_LOOKUP = 4


def outbox_partner_deliver(*, partner_id: int) -> tuple[dict[str, int], bool]:
    """Deliver a partner's due messages, up to WORKER_THREADS at once, until none is due or OCPI_OUTBOX_PARTNER_BUDGET
    seconds have passed. Returns the outcomes counted, and whether due messages may be left.

    One call per message, as OCPI wants (a CDR POST each), each made by `outbox_deliver` on a worker thread (claim,
    call, record: its waits overlap the others'). Concurrency is across order keys only: a message is taken when it
    is the first pending one of its key, so the next of a key (a CDR after its session's last PATCH) is taken once the
    one before it was recorded, in this same run."""
    deadline = time.monotonic() + settings.OCPI_OUTBOX_PARTNER_BUDGET
    concurrency = max(1, settings.WORKER_THREADS)
    outcomes: Counter[str] = Counter()
    in_flight: dict[Future, int] = {}
    heads: list[int] = []  # found due, not yet taken: looked up HEADS_PER_LOOKUP at a time, not once per message
    more = False
    while True:
        if len(in_flight) < concurrency:
            if time.monotonic() < deadline:
                if len(heads) < concurrency:
                    busy = set(in_flight.values())
                    heads = [
                        message_id
                        for message_id in _partner_heads(partner_id=partner_id, limit=concurrency * HEADS_PER_LOOKUP)
                        if message_id not in busy
                    ]
                while heads and len(in_flight) < concurrency:
                    message_id = heads.pop(0)
                    in_flight[in_worker_thread(outbox_deliver, message_id=message_id)] = message_id
            else:
                more = True
        if not in_flight:
            break
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        progress = False
        for future in done:
            del in_flight[future]
            outcome = future.result()
            outcomes[outcome] += 1
            progress = progress or outcome in (Outcome.SENT, Outcome.RETRY, Outcome.FAILED)
        if not progress and not in_flight and not heads:
            break  # what was found could not be sent (another worker took it meanwhile): do not spin on it
    return dict(outcomes), more


def _message_fail(message: OutboxMessage, *, error: str) -> None:
    """Give up on a message; the next message of the object may go."""
    message.status = OutboxStatus.FAILED
    message.sending_until = None
    message.last_error = error
    message.save(update_fields=[*_ATTEMPT_FIELDS, "status"])
    logger.error("OCPI push %s given up: %s", message, error)
    _delivery_alert(message, problem=f"given up: {error}")
    following = _next_in_order(message)
    if following is not None:
        message_schedule(following.pk, partner_id=following.partner_id, at=following.next_attempt_at)


def partner_alert_subject(message: OutboxMessage) -> str:
    return f"partner {message.partner_id}"


def _delivery_alert(message: OutboxMessage, *, problem: str) -> None:
    alert_raise(
        kind=AlertKind.PARTNER_DELIVERY_FAILING,
        subject=partner_alert_subject(message),
        message=f"OCPI push to {message.partner} ({message.method} {message.module} {message.path}) {problem}",
    )
