"""Billing a gateway transaction as billing's task does (`billing.services.transaction_bill`): one step from the
transaction to its Session and, once it ended, its CDR, priced once, announced inside the database transaction,
and nothing new when it runs again."""

import pytest
from django.utils import timezone

from billing import events
from billing.models import Cdr, Session
from billing.services import sessions, transaction_bill
from tests.billing.factories import HOUR, T0, reading, start, stop

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced():
    """What billing announced, in order: ("session", status, final) and ("cdr", id)."""
    heard = []

    def on_session(sender, *, session, final, **kwargs):
        heard.append(("session", session.status, final))

    def on_cdr(sender, *, cdr, **kwargs):
        heard.append(("cdr", cdr.id))

    events.session_changed.connect(on_session, dispatch_uid="test.session")
    events.cdr_issued.connect(on_cdr, dispatch_uid="test.cdr")
    yield heard
    events.session_changed.disconnect(dispatch_uid="test.session")
    events.cdr_issued.disconnect(dispatch_uid="test.cdr")


def test_an_ended_transaction_is_priced_once_for_its_session_and_cdr(station, energy_tariff, emsp_token, monkeypatch):
    tx = start(station, emsp_token, meter_start=0)
    reading(station, tx, T0 + HOUR / 2, "5000")
    stop(station, tx, T0 + HOUR, 10000)
    pricings = []
    price = sessions.price_session
    monkeypatch.setattr(sessions, "price_session", lambda **kwargs: pricings.append(1) or price(**kwargs))
    session = transaction_bill(transaction_pk=tx.pk)
    cdr = Cdr.objects.get(session=session)
    assert len(pricings) == 1
    assert session.status == "COMPLETED" and cdr.total_cost == session.total_cost
    assert cdr.total_energy == session.kwh == 10


def test_each_change_is_announced_once_and_a_second_run_announces_nothing(
    station, energy_tariff, emsp_token, announced, monkeypatch
):
    # A running session is priced up to now; with the clock standing still, a second run has nothing new to say.
    still = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: still)
    tx = start(station, emsp_token, meter_start=0)
    session = transaction_bill(transaction_pk=tx.pk)
    transaction_bill(transaction_pk=tx.pk)
    assert announced == [("session", "ACTIVE", False)]
    stop(station, tx, T0 + HOUR, 10000)
    for _ in range(3):  # a retransmitted stop, a redelivered task, the reconciling beat
        transaction_bill(transaction_pk=tx.pk)
    assert announced == [("session", "ACTIVE", False), ("session", "COMPLETED", True), ("cdr", session.id)]
    assert Cdr.objects.count() == 1


def test_a_failing_receiver_undoes_the_change_it_was_told_about(station, energy_tariff, emsp_token):
    """The events are sent inside the database transaction: what a receiver writes commits with the session, and
    an error of the receiver rolls both back (the task then runs again)."""
    tx = start(station, emsp_token, meter_start=0)

    def refuse(sender, **kwargs):
        raise RuntimeError("the outbox is full")

    events.session_changed.connect(refuse, dispatch_uid="test.refuse")
    try:
        with pytest.raises(RuntimeError):
            transaction_bill(transaction_pk=tx.pk)
    finally:
        events.session_changed.disconnect(dispatch_uid="test.refuse")
    assert not Session.objects.exists()
    assert transaction_bill(transaction_pk=tx.pk) is not None and Session.objects.count() == 1


def test_a_transaction_without_an_evse_is_not_billed(station, emsp_token, announced):
    tx = start(station, emsp_token)
    type(tx).objects.filter(pk=tx.pk).update(evse=None)
    assert transaction_bill(transaction_pk=tx.pk) is None
    assert not Session.objects.exists() and announced == []
