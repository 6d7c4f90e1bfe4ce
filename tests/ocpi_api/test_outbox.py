"""The outbox: pushes written with the change they announce, delivered in order per object, retried with backoff,
coalesced when superseded, never sent twice, every attempt recorded."""

import base64
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cpo.worker_threads import worker_pool_close
from ocpi_api import outbox, tasks
from ocpi_api.delivery import Outcome, _partner_heads, outbox_deliver, outbox_partner_deliver
from ocpi_api.models import OutboxAttempt, OutboxMessage, OutboxStatus
from ocpi_api.outbox import body_merge, outbox_enqueue
from tests.e2e.emsp import partner_for

SESSION_PATH = "NL/CPO/S-1"


@pytest.fixture
def emsp(receiving_emsp):
    return receiving_emsp


@pytest.fixture
def fast_retries(settings):
    settings.OCPI_OUTBOX_RETRY_BASE = 0.2
    settings.OCPI_OUTBOX_RETRY_MAX = 1.0
    return settings


def enqueue(partner, *, method="PUT", body=None, path=SESSION_PATH, key="sessions:S-1", **kwargs):
    with transaction.atomic():
        return outbox_enqueue(
            partner=partner,
            module="sessions",
            method=method,
            path=path,
            object_key=key,
            body=body if body is not None else {"id": "S-1", "kwh": 1},
            **kwargs,
        )


def evse_status_patch(partner, n: int, status: str):
    """EVSE-n of LOC-1's status PATCH, as a reconnect wave queues them (inside the caller's transaction)."""
    return outbox_enqueue(
        partner=partner,
        module="locations",
        method="PATCH",
        path=f"NL/CPO/LOC-1/EVSE-{n}",
        object_key=f"locations:EVSE-{n}",
        body={"status": status},
    )


def make_due(message):
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_enqueue_outside_a_transaction_is_refused(emsp):
    partner = partner_for(emsp)
    with pytest.raises(outbox.OutboxError):
        outbox_enqueue(partner=partner, module="sessions", method="PUT", path="x", object_key="k", body={})


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_message_and_queues_no_task(emsp, eager, django_capture_on_commit_callbacks):
    partner = partner_for(emsp)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                enqueue(partner)
                raise RuntimeError("the change fails")
        except RuntimeError:
            pass
    assert OutboxMessage.objects.count() == 0 and callbacks == [] and emsp.pushes == []


@pytest.mark.django_db
def test_delivery_after_commit_carries_token_routing_and_request_headers(
    emsp, eager, django_capture_on_commit_callbacks
):
    partner = partner_for(emsp)
    with django_capture_on_commit_callbacks(execute=True):
        message = enqueue(partner, to_party=("NL", "EXM"))
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT and message.attempts == 1 and message.sent_at is not None
    [push] = emsp.pushes
    assert (push["method"], push["path"], push["body"]) == ("PUT", SESSION_PATH, {"id": "S-1", "kwh": 1})
    headers = push["headers"]
    assert headers["Authorization"] == "Token " + base64.b64encode(b"our-token-at-the-emsp").decode()
    assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == ("NL", "CPO")
    assert (headers["OCPI-to-country-code"], headers["OCPI-to-party-id"]) == ("NL", "EXM")
    assert headers["X-Correlation-ID"] == message.correlation_id and headers["X-Request-ID"]
    [attempt] = OutboxAttempt.objects.filter(message=message)
    assert (attempt.ok, attempt.http_status, attempt.status_code, attempt.error) == (True, 200, 1000, "")
    assert attempt.url == f"{emsp.base_url}/emsp/2.2.1/sessions/{SESSION_PATH}"


@pytest.mark.django_db
def test_a_failed_push_is_retried_with_backoff_and_each_attempt_is_recorded(emsp, settings):
    settings.OCPI_OUTBOX_RETRY_BASE = 5
    partner = partner_for(emsp)
    message = enqueue(partner)
    emsp.answer = lambda method, path, body: (503, {"status_code": 3000, "status_message": "busy"})
    assert outbox_deliver(message_id=message.pk) == Outcome.RETRY
    emsp.go_down()
    make_due(message)
    assert outbox_deliver(message_id=message.pk) == Outcome.RETRY
    message.refresh_from_db()
    assert message.status == OutboxStatus.PENDING and message.attempts == 2
    assert message.next_attempt_at > timezone.now()
    assert outbox_deliver(message_id=message.pk) == Outcome.NOT_DUE
    emsp.come_back()
    emsp.answer = None
    make_due(message)
    assert outbox_deliver(message_id=message.pk) == Outcome.SENT
    assert outbox_deliver(message_id=message.pk) == Outcome.DONE  # idempotent: nothing sent twice
    attempts = list(OutboxAttempt.objects.filter(message=message))
    assert [(a.ok, a.http_status, a.status_code) for a in attempts] == [
        (False, 503, 3000),
        (False, None, None),
        (True, 200, 1000),
    ]
    assert "busy" in attempts[0].error and "ConnectError" in attempts[1].error
    correlation = {r["headers"]["X-Correlation-ID"] for r in emsp.requests}
    requests = {r["headers"]["X-Request-ID"] for r in emsp.requests}
    assert correlation == {message.correlation_id} and len(requests) == 2  # the refused try never arrived


def test_backoff_doubles_up_to_the_cap(settings):
    settings.OCPI_OUTBOX_RETRY_BASE, settings.OCPI_OUTBOX_RETRY_MAX = 10, 100
    delays = [outbox.retry_delay(attempts=n) for n in range(1, 7)]
    for got, expected in zip(delays, [10, 20, 40, 80, 100, 100], strict=True):
        assert expected * 0.9 <= got <= expected * 1.1


@pytest.mark.django_db
def test_a_message_past_its_give_up_time_fails_and_lets_the_next_one_go(emsp, fast_retries):
    partner = partner_for(emsp)
    first = enqueue(partner, method="PUT")
    second = enqueue(partner, method="PUT", body={"id": "S-1", "kwh": 2}, coalesce=False)
    OutboxMessage.objects.filter(pk=first.pk).update(give_up_at=timezone.now())
    emsp.answer = lambda method, path, body: (500, {"status_code": 3000, "status_message": "broken"})
    assert outbox_deliver(message_id=first.pk) == Outcome.FAILED
    first.refresh_from_db()
    assert first.status == OutboxStatus.FAILED and "gave up after 1 attempts" in first.last_error
    emsp.answer = None
    assert outbox_deliver(message_id=second.pk) == Outcome.SENT


@pytest.mark.django_db
def test_a_newer_message_of_the_same_object_waits_for_the_older_one(emsp):
    partner = partner_for(emsp)
    first = enqueue(partner, method="PUT")
    second = enqueue(partner, method="PATCH", body={"kwh": 2, "last_updated": "x"})
    other = enqueue(partner, method="PUT", path="NL/CPO/S-2", key="sessions:S-2")
    assert outbox_deliver(message_id=second.pk) == Outcome.WAITING
    assert outbox_deliver(message_id=other.pk) == Outcome.SENT  # another object is not held up
    assert outbox_deliver(message_id=first.pk) == Outcome.SENT
    assert outbox_deliver(message_id=second.pk) == Outcome.SENT
    assert [(p["method"], p["path"]) for p in emsp.pushes] == [
        ("PUT", "NL/CPO/S-2"),
        ("PUT", SESSION_PATH),
        ("PATCH", SESSION_PATH),
    ]


@pytest.mark.django_db
def test_sending_one_message_queues_the_next_of_its_object(emsp, eager, django_capture_on_commit_callbacks):
    partner = partner_for(emsp)
    first = enqueue(partner, method="PUT")
    second = enqueue(partner, method="PATCH", body={"kwh": 2, "last_updated": "x"})
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_deliver(message_id=first.pk) == Outcome.SENT
    second.refresh_from_db()
    assert second.status == OutboxStatus.SENT
    assert [p["method"] for p in emsp.pushes] == ["PUT", "PATCH"]


def test_patches_merge_into_the_put_or_patch_they_follow_and_periods_add_up():
    method, body = body_merge(
        old_method="PUT",
        old_body={"id": "S", "kwh": 1, "charging_periods": [1]},
        new_method="PATCH",
        new_body={"kwh": 2, "charging_periods": [2]},
    )
    assert (method, body) == ("PUT", {"id": "S", "kwh": 2, "charging_periods": [1, 2]})
    method, body = body_merge(
        old_method="PATCH", old_body={"kwh": 1, "status": "ACTIVE"}, new_method="PATCH", new_body={"kwh": 3}
    )
    assert (method, body) == ("PATCH", {"kwh": 3, "status": "ACTIVE"})
    assert body_merge(old_method="PATCH", old_body={"kwh": 1}, new_method="PUT", new_body={"id": "S"}) == (
        "PUT",
        {"id": "S"},
    )
    assert body_merge(old_method="PUT", old_body={"id": "T"}, new_method="DELETE", new_body=None) == ("DELETE", None)


@pytest.mark.django_db
def test_an_undelivered_update_is_superseded_by_a_newer_one(emsp):
    partner = partner_for(emsp)
    first = enqueue(partner, method="PUT", body={"id": "S-1", "kwh": 1, "charging_periods": ["p1"]}, coalesce=True)
    later = timezone.now() + timedelta(seconds=60)
    second = enqueue(
        partner, method="PATCH", body={"kwh": 2, "charging_periods": ["p2"]}, coalesce=True, not_before=later
    )
    first.refresh_from_db()
    assert first.status == OutboxStatus.SUPERSEDED and first.superseded_by_id == second.pk
    assert second.method == "PUT" and second.body == {"id": "S-1", "kwh": 2, "charging_periods": ["p1", "p2"]}
    assert second.due_at == first.due_at  # keeps the earlier time: coalescing never delays
    # the task queued for the first delivers what replaced it (no task is queued per replacement); once
    assert outbox_deliver(message_id=first.pk) == Outcome.SENT
    assert outbox_deliver(message_id=second.pk) == Outcome.DONE
    assert len(emsp.pushes) == 1 and emsp.pushes[0]["body"]["kwh"] == 2


@pytest.mark.django_db
def test_non_coalescing_messages_and_other_paths_are_never_superseded(emsp):
    partner = partner_for(emsp)
    cdr = enqueue(partner, method="PUT", path="NL/CPO/S-1", key="locations:L", coalesce=True)
    sibling = enqueue(partner, method="PUT", path="NL/CPO/S-1/E2", key="locations:L", coalesce=True)
    plain = enqueue(partner, method="PUT", path="x", key="k")
    enqueue(partner, method="PUT", path="x", key="k", coalesce=True)
    assert OutboxMessage.objects.filter(status=OutboxStatus.SUPERSEDED).count() == 0
    assert {m.pk for m in (cdr, sibling, plain)} <= set(OutboxMessage.objects.values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_message_being_sent_is_not_superseded_and_the_newer_one_follows_it(emsp, queued):
    """While a worker holds a message (HTTP call in flight), a newer update is a new message after it."""
    partner = partner_for(emsp)
    first = enqueue(partner, method="PUT", coalesce=True)
    emsp.delay = 1.0
    worker = threading.Thread(target=lambda: (outbox_deliver(message_id=first.pk), connections.close_all()))
    worker.start()
    deadline = timezone.now() + timedelta(seconds=5)
    while not emsp.requests and timezone.now() < deadline:
        threading.Event().wait(0.02)
    second = enqueue(partner, method="PATCH", body={"kwh": 5}, coalesce=True)
    worker.join()
    first.refresh_from_db()
    assert first.status == OutboxStatus.SENT and second.method == "PATCH"
    emsp.delay = 0
    assert outbox_deliver(message_id=second.pk) == Outcome.SENT
    assert [p["method"] for p in emsp.pushes] == ["PUT", "PATCH"]


@pytest.mark.django_db(transaction=True)
def test_no_row_lock_and_no_transaction_is_held_while_the_partner_answers(emsp):
    """The worker holds a sending lease, not a row lock: while the partner takes its time, the row can be locked by
    anyone (PostgreSQL) and another worker given the message leaves it alone."""
    partner = partner_for(emsp)
    message = enqueue(partner, not_before=timezone.now() + timedelta(hours=1))  # no delivery after this commit
    make_due(message)
    emsp.delay = 1.0
    worker = threading.Thread(target=lambda: (outbox_deliver(message_id=message.pk), connections.close_all()))
    worker.start()
    deadline = timezone.now() + timedelta(seconds=5)
    while not emsp.requests and timezone.now() < deadline:
        threading.Event().wait(0.02)
    assert emsp.requests, "the partner was never called"
    assert OutboxMessage.objects.get(pk=message.pk).sending_until > timezone.now()
    if connection.vendor == "postgresql":
        with transaction.atomic():
            OutboxMessage.objects.select_for_update(nowait=True).get(pk=message.pk)  # DatabaseError if held
    assert outbox_deliver(message_id=message.pk) == Outcome.LOCKED
    worker.join()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT and message.sending_until is None and len(emsp.pushes) == 1


@pytest.mark.django_db
def test_a_message_whose_sending_lease_ran_out_is_sent_by_the_next_worker(emsp):
    """A worker killed during the call leaves its lease behind; once it has run out the message goes again."""
    partner = partner_for(emsp)
    message = enqueue(partner)
    OutboxMessage.objects.filter(pk=message.pk).update(
        sending_until=timezone.now() + timedelta(seconds=60), dispatched_at=None
    )
    assert outbox_deliver(message_id=message.pk) == Outcome.LOCKED
    assert outbox.outbox_due_claim() == []  # beat leaves a leased message alone too
    OutboxMessage.objects.filter(pk=message.pk).update(sending_until=timezone.now() - timedelta(seconds=1))
    assert outbox.outbox_due_claim() == [message.pk]
    assert outbox_deliver(message_id=message.pk) == Outcome.SENT
    assert len(emsp.pushes) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_message_send_it_once(emsp, queued):
    partner = partner_for(emsp)
    message = enqueue(partner)
    emsp.delay = 0.5
    outcomes = []

    def work():
        try:
            outcomes.append(outbox_deliver(message_id=message.pk))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(outcomes) == sorted([Outcome.SENT, Outcome.LOCKED, Outcome.LOCKED]) or (
        outcomes.count(Outcome.SENT) == 1 and set(outcomes) <= {Outcome.SENT, Outcome.LOCKED, Outcome.DONE}
    )
    assert len(emsp.pushes) == 1 and OutboxAttempt.objects.count() == 1


@pytest.mark.django_db
def test_a_cdr_post_keeps_the_location_the_partner_answered(emsp):
    partner = partner_for(emsp)
    with transaction.atomic():
        message, created = outbox.outbox_enqueue_once(
            partner=partner, module="cdrs", path="", object_key="cdrs:C-1", body={"id": "C-1"}
        )
    with transaction.atomic():
        again, created_again = outbox.outbox_enqueue_once(
            partner=partner, module="cdrs", path="", object_key="cdrs:C-1", body={"id": "C-1"}
        )
    assert created and not created_again and again.pk == message.pk
    assert outbox_deliver(message_id=message.pk) == Outcome.SENT
    message.refresh_from_db()
    assert message.response_location == f"{emsp.base_url}/emsp/2.2.1/cdrs/C-1"
    assert message.last_http_status == 201


@pytest.mark.django_db
def test_a_partner_without_the_receiver_endpoint_or_no_longer_registered_gets_nothing(emsp):
    partner = partner_for(emsp, endpoints=[e for e in emsp.endpoints() if e["identifier"] != "sessions"])
    message = enqueue(partner)
    assert outbox_deliver(message_id=message.pk) == Outcome.FAILED
    partner = partner_for(emsp, token="another", country_code="DE", party_id="XYZ")
    partner.status = "UNREGISTERED"
    partner.save()
    message = enqueue(partner)
    assert outbox_deliver(message_id=message.pk) == Outcome.FAILED
    assert emsp.pushes == []


@pytest.mark.django_db
def test_beat_claims_due_heads_of_objects_once_per_lease(emsp):
    partner = partner_for(emsp)
    now = timezone.now()
    head = enqueue(partner)
    behind = enqueue(partner, method="PATCH", body={"kwh": 2})
    later = enqueue(partner, path="p2", key="sessions:S-2", not_before=now + timedelta(hours=1))
    OutboxMessage.objects.update(dispatched_at=None)
    assert outbox.outbox_due_claim() == [head.pk]
    assert outbox.outbox_due_claim() == []  # queued just now: not again within the lease
    OutboxMessage.objects.filter(pk=later.pk).update(next_attempt_at=now)
    assert outbox.outbox_due_claim() == [later.pk]
    assert behind.pk not in outbox.outbox_due_claim()


@pytest.mark.django_db
def test_prune_forgets_old_finished_messages_but_keeps_cdr_posts_and_pending_ones(emsp, settings):
    partner = partner_for(emsp)
    sent = enqueue(partner)
    pending = enqueue(partner, path="p2", key="sessions:S-2")
    with transaction.atomic():
        cdr, _ = outbox.outbox_enqueue_once(partner=partner, module="cdrs", path="", object_key="cdrs:C", body={})
    outbox_deliver(message_id=sent.pk)
    outbox_deliver(message_id=cdr.pk)
    old = timezone.now() - timedelta(days=settings.OCPI_OUTBOX_RETENTION_DAYS + 1)
    OutboxMessage.objects.update(created_at=old)
    assert outbox.outbox_prune() >= 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {pending.pk, cdr.pk}


@pytest.mark.django_db
def test_staff_retry_puts_a_given_up_message_back_in_line(emsp):
    partner = partner_for(emsp)
    message = enqueue(partner)
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxStatus.FAILED, give_up_at=timezone.now())
    retried = outbox.outbox_retry(message_id=message.pk)
    assert retried.status == OutboxStatus.PENDING and retried.give_up_at > timezone.now() + timedelta(hours=1)
    assert outbox_deliver(message_id=message.pk) == Outcome.SENT
    assert outbox.outbox_retry(message_id=message.pk).status == OutboxStatus.SENT  # nothing to do


# --- Issue 9: order and duplicates at the partner -------------------------------------------------------------


def enqueue_cdr(partner, *, session_key="sessions:S-1"):
    with transaction.atomic():
        return outbox.outbox_enqueue_once(
            partner=partner,
            module="cdrs",
            path="",
            object_key="cdrs:C-1",
            order_key=session_key,
            body={"id": "C-1", "session_id": "S-1"},
        )[0]


@pytest.mark.django_db
def test_a_cdr_waits_for_every_pending_push_of_its_session(emsp):
    partner = partner_for(emsp)
    put = enqueue(partner, method="PUT", coalesce=True)
    cdr = enqueue_cdr(partner)
    assert outbox_deliver(message_id=cdr.pk) == Outcome.WAITING
    OutboxMessage.objects.update(dispatched_at=None)  # their delivery tasks were lost
    assert outbox.outbox_due_claim() == [put.pk]  # beat queues the session's PUT, not the CDR
    assert outbox_deliver(message_id=put.pk) == Outcome.SENT
    assert outbox_deliver(message_id=cdr.pk) == Outcome.SENT
    assert [(p["module"], p["method"]) for p in emsp.pushes] == [("sessions", "PUT"), ("cdrs", "POST")]


@pytest.mark.django_db
def test_a_session_update_after_its_cdr_does_not_coalesce_the_earlier_put_past_the_cdr(emsp):
    """Coalescing moves content to the newest message: never past a CDR that waits for it."""
    partner = partner_for(emsp)
    put = enqueue(partner, method="PUT", coalesce=True)
    cdr = enqueue_cdr(partner)
    later = enqueue(partner, method="PATCH", body={"kwh": 9, "last_updated": "x"}, coalesce=True)
    put.refresh_from_db()
    assert put.status == OutboxStatus.PENDING and later.method == "PATCH"
    for message in (later, cdr, put, cdr, later):
        outbox_deliver(message_id=message.pk)
    assert [(p["module"], p["method"]) for p in emsp.pushes] == [
        ("sessions", "PUT"),
        ("cdrs", "POST"),
        ("sessions", "PATCH"),
    ]


@pytest.mark.django_db
def test_a_slow_emsp_gets_the_cdr_within_the_longer_cdr_timeout_and_only_once(emsp, settings):
    """Issue 9: answers that came after our 10 s timeout made the EMSP receive the CDR three times. A CDR POST waits
    longer for its answer than a session push (timeouts per kind, in settings)."""
    settings.OCPI_HTTP_TIMEOUT = 0.5
    settings.OCPI_PUSH_TIMEOUTS = {"cdrs": 3.0, "sessions": 0.5}
    partner = partner_for(emsp)
    cdr = enqueue_cdr(partner, session_key="sessions:none-pending")
    emsp.delay = 1.0
    assert outbox_deliver(message_id=cdr.pk) == Outcome.SENT
    assert len(emsp.cdr_posts) == 1
    put = enqueue(partner, method="PUT")
    assert outbox_deliver(message_id=put.pk) == Outcome.RETRY  # a session push does not wait as long
    [attempt] = OutboxAttempt.objects.filter(message=put)
    assert "Timeout" in attempt.error


@pytest.mark.django_db
def test_a_push_that_timed_out_is_not_retried_before_the_partner_had_the_timeout_again(emsp, settings):
    """A request we stopped waiting for may still be running at the partner: the retry comes no sooner than one more
    timeout later, however short the backoff."""
    settings.OCPI_OUTBOX_RETRY_BASE = 0.01
    settings.OCPI_PUSH_TIMEOUTS = {"cdrs": 0.5}
    partner = partner_for(emsp)
    cdr = enqueue_cdr(partner, session_key="sessions:none-pending")
    emsp.delay = 1.0
    assert outbox_deliver(message_id=cdr.pk) == Outcome.RETRY
    cdr.refresh_from_db()
    [attempt] = OutboxAttempt.objects.filter(message=cdr)
    ended = attempt.started_at + timedelta(milliseconds=attempt.duration_ms)
    assert cdr.next_attempt_at >= ended + timedelta(seconds=0.5)


@pytest.mark.django_db
def test_a_push_refused_at_once_is_retried_after_the_backoff_only(emsp, settings):
    """A refused connection never reached the partner: nothing to wait for but the backoff."""
    settings.OCPI_OUTBOX_RETRY_BASE = 0.01
    settings.OCPI_PUSH_TIMEOUTS = {"cdrs": 30.0}
    partner = partner_for(emsp)
    cdr = enqueue_cdr(partner, session_key="sessions:none-pending")
    emsp.go_down()
    assert outbox_deliver(message_id=cdr.pk) == Outcome.RETRY
    cdr.refresh_from_db()
    assert cdr.next_attempt_at < timezone.now() + timedelta(seconds=1)
    emsp.come_back()


@pytest.mark.django_db(transaction=True)
def test_a_live_worker_renews_its_sending_lease_while_the_partner_takes_its_time(emsp, settings):
    """The sending lease is short (a dead worker's message goes again soon) and a live worker renews it, so no other
    worker retries a call still in flight, however long the partner takes."""
    settings.OCPI_OUTBOX_SENDING_LEASE = 0.6
    settings.OCPI_PUSH_TIMEOUTS = {"sessions": 5.0}
    partner = partner_for(emsp)
    message = enqueue(partner, not_before=timezone.now() + timedelta(hours=1))
    make_due(message)
    emsp.delay = 2.0
    worker = threading.Thread(target=lambda: (outbox_deliver(message_id=message.pk), connections.close_all()))
    worker.start()
    threading.Event().wait(1.5)  # well past the first lease
    assert OutboxMessage.objects.get(pk=message.pk).sending_until > timezone.now()
    assert outbox_deliver(message_id=message.pk) == Outcome.LOCKED
    assert outbox.outbox_due_claim() == []
    worker.join()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT and len(emsp.requests) == 1


@pytest.mark.django_db
def test_beat_queues_a_dead_workers_message_again_within_a_minute(emsp, settings):
    """Issue 9: a worker killed during a CDR POST re-sent it 4 min 47 s later. With the default settings a message
    whose worker died is queued again by beat within a minute of the worker's last sign of life."""
    partner = partner_for(emsp)
    cdr = enqueue_cdr(partner, session_key="sessions:none-pending")
    now = timezone.now()
    lease = timedelta(seconds=settings.OCPI_OUTBOX_SENDING_LEASE)
    poll = timedelta(seconds=settings.OCPI_OUTBOX_POLL_SECONDS)
    assert lease + poll <= timedelta(seconds=60)
    # queued and taken by a worker that died at once: its lease runs out `lease` later, beat looks within `poll`
    OutboxMessage.objects.filter(pk=cdr.pk).update(dispatched_at=now - lease, sending_until=now + timedelta(seconds=1))
    assert outbox.outbox_due_claim() == []
    OutboxMessage.objects.filter(pk=cdr.pk).update(sending_until=now - timedelta(seconds=0.1))
    assert outbox.outbox_due_claim() == [cdr.pk]
    assert outbox_deliver(message_id=cdr.pk) == Outcome.SENT and len(emsp.cdr_posts) == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_run_sends_a_partners_due_messages_several_at_once_each_object_in_order(emsp, settings, monkeypatch):
    """What a worker's `outbox_partner_deliver` does: every due message of the partner in one run, calls to different
    objects at the same time (on its threads), each object's messages in order and a CDR after its session's last
    PATCH; a message due later is left for its time."""
    settings.WORKER_THREADS = 3
    monkeypatch.setattr(tasks.outbox_deliver, "delay", lambda *args: None)  # in-process: nothing sent at commit
    monkeypatch.setattr(tasks.outbox_deliver, "apply_async", lambda *args, **kwargs: None)
    partner = partner_for(emsp)
    lock, calls = threading.Lock(), {"now": 0, "most": 0}

    def slow(method, path, body):
        with lock:
            calls["now"] += 1
            calls["most"] = max(calls["most"], calls["now"])
        time.sleep(0.2)
        with lock:
            calls["now"] -= 1

    emsp.answer = slow
    for n in range(3):
        enqueue(partner, method="PUT", path=f"NL/CPO/S-{n}", key=f"sessions:S-{n}", body={"id": f"S-{n}", "kwh": 0})
        enqueue(partner, method="PATCH", path=f"NL/CPO/S-{n}", key=f"sessions:S-{n}", body={"kwh": 5})
    with transaction.atomic():
        outbox_enqueue(
            partner=partner,
            module="cdrs",
            method="POST",
            path="",
            object_key="cdrs:C-0",
            order_key="sessions:S-0",
            body={"id": "C-0"},
        )
    later = enqueue(partner, path="NL/CPO/S-9", key="sessions:S-9", not_before=timezone.now() + timedelta(minutes=1))
    try:
        outcomes, more = outbox_partner_deliver(partner_id=partner.pk)
    finally:
        worker_pool_close()
    assert outcomes == {Outcome.SENT: 7} and not more
    assert calls["most"] > 1  # several calls at a time
    for n in range(3):
        of_session = [
            p["method"] for p in emsp.pushes if p["path"] == f"NL/CPO/S-{n}" or (n == 0 and p["module"] == "cdrs")
        ]
        assert of_session == (["PUT", "PATCH", "POST"] if n == 0 else ["PUT", "PATCH"])
    later.refresh_from_db()
    assert later.status == OutboxStatus.PENDING and not later.attempts


@pytest.mark.django_db
def test_a_partners_cdrs_and_sessions_go_before_a_backlog_of_evse_status_patches(emsp):
    """A reconnect wave queued many EVSE status PATCHes; a CDR and a session update that came after them are the
    first a delivery run takes, and a CDR still waits for its own session's pending PUT."""
    partner = partner_for(emsp)
    patches = []
    for n in range(20):
        with transaction.atomic():
            patches.append(evse_status_patch(partner, n, "AVAILABLE"))
    session = enqueue(partner, method="PUT", path="NL/CPO/S-7", key="sessions:S-7", body={"id": "S-7"})
    with transaction.atomic():
        cdr, waiting_cdr = (
            outbox_enqueue(
                partner=partner,
                module="cdrs",
                method="POST",
                path="",
                object_key=f"cdrs:C-{session_id}",
                order_key=f"sessions:{session_id}",
                body={"id": f"C-{session_id}"},
            )
            for session_id in ("S-2", "S-7")
        )
    assert _partner_heads(partner_id=partner.pk, limit=3) == [cdr.pk, session.pk, patches[0].pk]
    assert waiting_cdr.pk not in _partner_heads(partner_id=partner.pk, limit=30)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_run_through_a_backlog_looks_up_due_messages_a_few_at_a_time(emsp, queued, settings):
    """Behind a reconnect wave a partner has thousands of pending messages and finding the due ones scans them all:
    a run looks them up for several messages at once, not once per message sent, and still sends every one of them
    once, in order per object."""
    settings.WORKER_THREADS = 4
    partner = partner_for(emsp)
    with transaction.atomic():
        for n in range(60):
            for status in ("OCCUPIED", "AVAILABLE"):
                evse_status_patch(partner, n, status)
    with CaptureQueriesContext(connection) as lookups:  # the run's own thread only looks up; worker threads send
        outcomes, more = outbox_partner_deliver(partner_id=partner.pk)
    assert outcomes == {Outcome.SENT: 120} and not more
    assert len(lookups) <= 120 / settings.WORKER_THREADS
    received = [(r["path"].rsplit("/", 1)[-1], r["body"]["status"]) for r in emsp.requests if r["method"] == "PATCH"]
    assert len(received) == 120
    for n in range(60):
        assert [status for evse, status in received if evse == f"EVSE-{n}"] == ["OCCUPIED", "AVAILABLE"]
