"""What housekeeping makes of a charger's answer about a silent transaction (the live scenarios, a charger answering
over a real socket, are in tests/e2e/test_silent_transactions.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from ocpp_gateway.models import Transaction
from ocpp_gateway.services.housekeeping import Probe, transaction_status_answered, transactions_silent
from ocpp_gateway.services.transactions import transaction_start_16

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def silent(station_factory, local_token):
    """An ACTIVE transaction on an online station, its last news an hour ago."""
    station = station_factory("CP-HK")[0]
    station.online = True
    station.save()
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
    )
    Transaction.objects.filter(pk=tx.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    return Transaction.objects.get(pk=tx.pk)


def answered(tx, action: str, answer: dict, asked_at=None) -> str:
    return transaction_status_answered(
        transaction_pk=tx.pk, action=action, answer=answer, asked_at=asked_at or timezone.now()
    )


def test_only_transactions_of_online_stations_silent_long_enough_are_asked_about(silent):
    assert transactions_silent(minutes=30) == [silent.pk]
    assert transactions_silent(minutes=90) == []
    silent.station.online = False
    silent.station.save()
    assert transactions_silent(minutes=30) == []  # the offline closer's business


def test_a_201_charger_saying_it_is_over_with_nothing_queued_ends_it_by_housekeeping(silent):
    assert answered(silent, "GetTransactionStatus", {"ongoingIndicator": False, "messagesInQueue": False}) == Probe.OVER
    silent.refresh_from_db()
    assert (silent.status, silent.ended_by, silent.ended_at) == ("ENDED", "housekeeping", T0)


@pytest.mark.parametrize(
    "answer,outcome",
    [
        ({"ongoingIndicator": False, "messagesInQueue": True}, Probe.UNKNOWN),  # its queued messages will tell
        ({"ongoingIndicator": True, "messagesInQueue": False}, Probe.ONGOING),
        ({"messagesInQueue": False}, Probe.UNKNOWN),
    ],
)
def test_a_201_charger_not_saying_it_is_over_leaves_it_active(silent, answer, outcome):
    assert answered(silent, "GetTransactionStatus", answer) == outcome
    assert Transaction.objects.get(pk=silent.pk).status == "ACTIVE"


def test_news_that_came_while_we_asked_keeps_it_active(silent):
    asked_at = timezone.now() - timedelta(seconds=5)
    Transaction.objects.filter(pk=silent.pk).update(updated_at=timezone.now())  # a MeterValues meanwhile
    answer = {"ongoingIndicator": False, "messagesInQueue": False}
    assert answered(silent, "GetTransactionStatus", answer, asked_at=asked_at) == Probe.UNKNOWN
    assert Transaction.objects.get(pk=silent.pk).status == "ACTIVE"


@pytest.mark.parametrize("status,outcome", [("Accepted", Probe.ASKED), ("Rejected", Probe.UNKNOWN)])
def test_a_16_trigger_accepted_marks_it_asked_and_a_refused_one_tells_nothing(silent, status, outcome):
    assert answered(silent, "TriggerMessage", {"status": status}) == outcome
    silent.refresh_from_db()
    assert silent.status == "ACTIVE" and (silent.silence_probed_at is not None) == (status == "Accepted")
