"""The charger-side lifecycle of a reservation (ocpp_gateway.services.reservations): pending until the charger answers,
accepted or rejected, then expired, cancelled or used by a transaction; each change announced once, replays and
repeated housekeeping changing nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from ocpp_gateway import events
from ocpp_gateway.models import Reservation
from ocpp_gateway.services.reservations import (
    ReservationToken,
    reservation_answer_record,
    reservation_create,
    reservation_end,
    reservation_status_update,
    reservations_expire,
)
from ocpp_gateway.services.transactions import TransactionEventInput, transaction_event_201, transaction_start_16

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def announced():
    heard: list[tuple[int, str]] = []

    def on_change(sender, *, reservation_pk, **kwargs):
        heard.append((reservation_pk, Reservation.objects.get(pk=reservation_pk).status))

    events.reservation_changed.connect(on_change, dispatch_uid="test.reservation")
    yield heard
    events.reservation_changed.disconnect(dispatch_uid="test.reservation")


@pytest.fixture
def station(station_factory):
    station, _ = station_factory("CP-RES-1", evses=2)
    return station


def reserved(station, *, minutes=30, answer="Accepted", id_tag="RFID-OK-1") -> Reservation:
    reservation = reservation_create(
        station=station,
        evse=station.evses.get(ocpp_evse_id=1),
        token=ReservationToken(id_tag=id_tag),
        expiry_date=timezone.now() + timedelta(minutes=minutes),
        source=Reservation.Source.STAFF,
    )
    return reservation_answer_record(reservation_pk=reservation.pk, status=answer)


def test_an_accepted_reservation_expires_once_at_its_expiry_date_however_often_housekeeping_runs(station, announced):
    reservation = reserved(station, minutes=1)
    later = timezone.now() + timedelta(minutes=5)
    assert reservations_expire(now=later) == [reservation.pk]
    assert reservations_expire(now=later) == []
    reservation.refresh_from_db()
    assert (reservation.status, reservation.ended_at) == ("EXPIRED", reservation.expiry_date)
    assert announced == [(reservation.pk, "ACCEPTED"), (reservation.pk, "EXPIRED")]


def test_housekeeping_runs_on_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["ocpp-reservations-expire"]
    assert entry["task"] == "ocpp_gateway.tasks.reservations_expire_task"


def test_every_reservenow_refusal_is_rejected_and_a_late_answer_does_not_revive_an_ended_reservation(station):
    for answer in ("Faulted", "Occupied", "Rejected", "Unavailable", "timeout"):
        assert reserved(station, answer=answer).status == "REJECTED"
    accepted = reserved(station)
    reservation_end(reservation_pk=accepted.pk, status="CANCELLED")
    assert reservation_answer_record(reservation_pk=accepted.pk, status="Accepted").status == "CANCELLED"


def test_a_2_0_1_status_update_expires_or_removes_a_reservation_and_a_replay_or_unknown_id_changes_nothing(
    station, announced
):
    first, second = reserved(station), reserved(station)
    reservation_status_update(station_pk=station.pk, reservation_id=first.pk, update_status="Expired")
    reservation_status_update(station_pk=station.pk, reservation_id=first.pk, update_status="Expired")
    reservation_status_update(station_pk=station.pk, reservation_id=second.pk, update_status="Removed")
    reservation_status_update(station_pk=station.pk, reservation_id=99999, update_status="Removed")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("EXPIRED", "CANCELLED")
    assert [status for pk, status in announced if pk == first.pk] == ["ACCEPTED", "EXPIRED"]


def test_a_1_6_start_with_the_reservation_id_uses_it_once_and_a_retransmission_changes_nothing(station, announced):
    reservation = reserved(station)
    at = datetime.now(UTC).replace(microsecond=0)
    kwargs = dict(station_pk=station.pk, connector_id=1, id_tag="RFID-OK-1", meter_start=0, timestamp=at)
    tx, _ = transaction_start_16(**kwargs, reservation_id=reservation.pk)
    again, _ = transaction_start_16(**kwargs, reservation_id=reservation.pk)
    reservation.refresh_from_db()
    assert again.pk == tx.pk and (reservation.status, reservation.transaction_id) == ("USED", tx.pk)
    assert [status for _, status in announced] == ["ACCEPTED", "USED"]


def test_a_rejected_or_expired_reservation_is_not_used_by_a_start(station):
    rejected = reserved(station, answer="Occupied")
    expired = reserved(station, minutes=1)
    reservations_expire(now=timezone.now() + timedelta(minutes=5))
    at = datetime.now(UTC).replace(microsecond=0)
    for n, reservation in enumerate((rejected, expired)):
        transaction_start_16(
            station_pk=station.pk,
            connector_id=1,
            id_tag="RFID-OK-1",
            meter_start=0,
            timestamp=at + timedelta(seconds=n),
            reservation_id=reservation.pk,
        )
    assert list(Reservation.objects.order_by("pk").values_list("status", "transaction")) == [
        ("REJECTED", None),
        ("EXPIRED", None),
    ]


def test_a_2_0_1_transaction_event_with_the_reservation_id_uses_it(station):
    reservation = reserved(station)
    event = TransactionEventInput(
        event_type="Started",
        timestamp=datetime.now(UTC),
        trigger_reason="Authorized",
        seq_no=0,
        transaction_id="TX-RES-1",
        ocpp_evse_id=1,
        connector_id=1,
        id_token="RFID-OK-1",
        id_token_type="ISO14443",
        reservation_id=reservation.pk,
    )
    tx, _ = transaction_event_201(station_pk=station.pk, event=event)
    reservation.refresh_from_db()
    assert (reservation.status, reservation.transaction_id) == ("USED", tx.pk)
