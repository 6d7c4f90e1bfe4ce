"""Correcting an issued CDR (`billing.services.cdr_correct`): a charger's StopTransaction that comes after we ended
the transaction ourselves (reboot, new transaction, status, housekeeping) and issued its CDR. The partner gets a
credit CDR for the original and a re-issued CDR with the charger's final values (mod_cdrs "Credit CDRs"), never a
second plain CDR, and a replayed stop or a re-run task changes nothing."""

from decimal import Decimal

import pytest

from billing import events
from billing.models import Cdr, Session
from billing.selectors import transactions_uncorrected
from billing.services import cdr_correct, transaction_bill
from cpo.celery import app as celery_app
from ocpp_gateway.models import Transaction
from ocpp_gateway.services.transactions import transactions_end_unstopped
from tests.billing.factories import HOUR, T0, reading, start, stop

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced():
    """The CDRs billing announced (`cdr_issued`), in order."""
    heard: list[Cdr] = []

    def on_cdr(sender, *, cdr, **kwargs):
        heard.append(cdr)

    events.cdr_issued.connect(on_cdr, dispatch_uid="test.cdr_correct")
    yield heard
    events.cdr_issued.disconnect(dispatch_uid="test.cdr_correct")


@pytest.fixture
def eager():
    """Tasks run in-process (the embedded default), also on a suite run with a broker."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def _rebooted_mid_transaction(station, emsp_token):
    """5 kWh read at T0 + 30 min, then the station boots again: we end it there and issue its CDR."""
    tx = start(station, emsp_token, meter_start=0)
    reading(station, tx, T0 + HOUR / 2, "5000")
    ended = transactions_end_unstopped(
        station_pk=station.pk, ended_by=Transaction.EndedBy.REBOOT, reason="Reboot", before=T0 + HOUR
    )
    assert ended == [tx.pk]
    session = transaction_bill(transaction_pk=tx.pk)
    return tx, session, Cdr.objects.get(session=session)


def test_a_late_stop_with_more_energy_credits_the_cdr_and_reissues_it_with_the_final_values(
    station, energy_tariff, emsp_token, announced
):
    tx, session, original = _rebooted_mid_transaction(station, emsp_token)
    assert original.total_energy == 5 and original.total_cost_excl_vat == Decimal("2.75")  # 1.00 + 5 x 0.35

    stop(station, tx, T0 + HOUR, 10000)  # the charger's own stop, queued over the reboot
    announced.clear()
    issued = cdr_correct(transaction_pk=tx.pk)

    credit, reissued = issued
    assert [c.id for c in announced] == [f"{session.id}-C", f"{session.id}-R1"]
    assert credit.credit and credit.credit_reference_id == original.id
    assert (credit.total_cost_excl_vat, credit.total_cost_incl_vat) == (
        -original.total_cost_excl_vat,
        -original.total_cost_incl_vat,
    )
    assert credit.total_energy == 5
    assert not reissued.credit and reissued.reissue_of_id == original.id and reissued.session_id == session.id
    assert reissued.total_energy == 10 and reissued.total_cost_excl_vat == Decimal("4.50")  # 1.00 + 10 x 0.35
    assert reissued.end_date_time == T0 + HOUR and reissued.total_time == 1
    session = Session.objects.get(pk=session.pk)
    assert (session.kwh, session.end_date_time, session.total_cost_excl_vat) == (10, T0 + HOUR, Decimal("4.50"))
    assert Cdr.objects.get(pk=original.pk).total_energy == 5  # the original stays as it was issued

    announced.clear()
    stop(station, tx, T0 + HOUR, 10000)  # the same stop again (a retransmission)
    assert cdr_correct(transaction_pk=tx.pk) == []  # and the task run again
    transaction_bill(transaction_pk=tx.pk)
    assert announced == [] and Cdr.objects.filter(session=session).count() == 3


def test_a_late_stop_that_changes_nothing_billed_issues_nothing(station, energy_tariff, emsp_token, announced):
    tx, session, original = _rebooted_mid_transaction(station, emsp_token)
    stop(station, tx, T0 + HOUR / 4, 4000)  # older and lower than what we ended at: the gateway keeps ours
    announced.clear()
    assert cdr_correct(transaction_pk=tx.pk) == []
    assert announced == [] and list(Cdr.objects.filter(session=session)) == [original]


def test_the_late_stop_reaches_billing_through_the_gateway_event(
    station, energy_tariff, emsp_token, announced, django_capture_on_commit_callbacks, eager
):
    tx, session, original = _rebooted_mid_transaction(station, emsp_token)
    announced.clear()
    with django_capture_on_commit_callbacks(execute=True):
        stop(station, tx, T0 + HOUR, 8000)
    assert [c.id for c in announced] == [f"{session.id}-C", f"{session.id}-R1"]
    assert Cdr.objects.get(pk=f"{session.id}-R1").total_energy == 8


def test_a_second_correction_credits_the_reissued_cdr(station, energy_tariff, emsp_token):
    tx, session, original = _rebooted_mid_transaction(station, emsp_token)
    stop(station, tx, T0 + HOUR, 8000)
    cdr_correct(transaction_pk=tx.pk)
    Transaction.objects.filter(pk=tx.pk).update(meter_stop=9000)  # e.g. a 2.0.1 Ended after an Updated
    credit, reissued = cdr_correct(transaction_pk=tx.pk)
    assert (credit.id, credit.credit_reference_id) == (f"{session.id}-C1", f"{session.id}-R1")
    assert (reissued.id, reissued.reissue_of_id, reissued.total_energy) == (f"{session.id}-R2", f"{session.id}-R1", 9)
    assert len(credit.id) <= 39 and len(reissued.id) <= 39  # OCPI CDR id: string(39)


def test_a_correction_whose_task_was_lost_is_found_by_the_reconciling_beat(station, energy_tariff, emsp_token):
    tx, session, original = _rebooted_mid_transaction(station, emsp_token)  # started at T0, within 30 days
    assert transactions_uncorrected(quiet_seconds=0, days=30) == []
    stop(station, tx, T0 + HOUR, 8000)  # its event went nowhere (e.g. the broker was down)
    assert transactions_uncorrected(quiet_seconds=0, days=30) == [tx.pk]
    assert transactions_uncorrected(quiet_seconds=300, days=30) == []  # the normal task still has its chance
    cdr_correct(transaction_pk=tx.pk)
    assert transactions_uncorrected(quiet_seconds=0, days=30) == []
