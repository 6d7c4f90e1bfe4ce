"""The OCPI Session of a reservation (billing.services.reservation_bill; mod_sessions "Reservation"): RESERVATION while
it holds, priced with the tariff's RESERVATION elements; COMPLETED with a CDR for its cost when it expires or is
cancelled; none for a reservation the charger refused; the same session charging when its token uses it."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db.models import F
from django.utils import timezone

from billing.models import Cdr, Session
from billing.selectors import reservations_unbilled
from billing.services import reservation_bill, transaction_bill
from ocpp_gateway.models import Reservation
from ocpp_gateway.services.reservations import reservation_end
from tests.billing.factories import reservation_made, start, stop

pytestmark = pytest.mark.django_db


def test_an_accepted_reservation_is_a_reservation_session_for_the_token_owner_priced_so_far(station, tariff_17):
    reservation = reservation_made(station, made_ago=timedelta(minutes=25))
    session = reservation_bill(reservation_pk=reservation.pk)
    assert (session.status, session.emsp_country_code, session.emsp_party_id) == ("RESERVATION", "NL", "EXM")
    assert session.auth_method == "COMMAND" and session.authorization_reference == "RES-REF-1"
    assert session.cdr_token["uid"] == "EMSP-TOKEN-1" and session.evse_uid == "CP-BILL-1-1"
    assert session.total_cost == {
        "excl_vat": D("1.00"),
        "incl_vat": D("1.20"),
    }  # 25 min billed per 10 min: 30 min at € 2.00/h
    assert session.end_date_time is None and not Cdr.objects.exists()


def test_an_expired_reservation_is_completed_with_one_cdr_for_the_expire_fee_and_the_reserved_time(station, tariff_17):
    reservation = reservation_made(station, made_ago=timedelta(hours=1))
    reservation_bill(reservation_pk=reservation.pk)
    Reservation.objects.filter(pk=reservation.pk).update(expiry_date=F("created_at") + timedelta(hours=1))
    reservation_end(reservation_pk=reservation.pk, status="EXPIRED")
    session = reservation_bill(reservation_pk=reservation.pk)
    reservation_bill(reservation_pk=reservation.pk)
    cdr = Cdr.objects.get(session=session)
    # The spec's example: expired after the reserved hour, € 6.00 excl. VAT / € 7.20 incl. VAT.
    assert (cdr.total_reservation_cost_excl_vat, cdr.total_reservation_cost_incl_vat) == (D("6.00"), D("7.20"))
    assert (cdr.total_cost_excl_vat, cdr.total_energy, cdr.remark) == (D("6.00"), 0, "Reservation expired")
    reservation.refresh_from_db()
    assert session.status == "COMPLETED" and session.end_date_time == reservation.expiry_date == cdr.end_date_time


def test_a_reservation_the_charger_refused_has_no_session(station, tariff_17):
    reservation = reservation_made(station, made_ago=timedelta(minutes=1), answer="Occupied")
    assert reservation_bill(reservation_pk=reservation.pk) is None and not Session.objects.exists()


def test_a_cancelled_reservation_without_a_tariff_is_completed_without_a_cdr(station):
    reservation = reservation_made(station, made_ago=timedelta(minutes=5))
    reservation_bill(reservation_pk=reservation.pk)
    reservation_end(reservation_pk=reservation.pk, status="CANCELLED")
    session = reservation_bill(reservation_pk=reservation.pk)
    assert session.status == "COMPLETED" and session.total_cost is None and not Cdr.objects.exists()


def test_the_reservation_session_becomes_the_charging_session_of_its_token(station, tariff_17, emsp_token):
    reservation = reservation_made(station, made_ago=timedelta(minutes=22))
    reserved = reservation_bill(reservation_pk=reservation.pk)
    at = timezone.now().replace(microsecond=0)
    tx = start(station, emsp_token, meter_start=0, at=at, reservation_id=reservation.pk)
    assert reservation_bill(reservation_pk=reservation.pk).pk == reserved.pk
    stop(station, tx, at + timedelta(hours=1), 20000)
    session = transaction_bill(transaction_pk=tx.pk)
    assert session.pk == reserved.pk and Session.objects.count() == 1
    cdr = Cdr.objects.get(session=session)
    # The spec's example 17: 22 minutes reserved (billed as 30), 20 kWh: € 6.50 excl. VAT / € 7.30 incl. VAT.
    assert (cdr.total_cost_excl_vat, cdr.total_cost_incl_vat) == (D("6.50"), D("7.30"))
    reservation.refresh_from_db()
    assert cdr.start_date_time == reservation.created_at and cdr.total_energy == 20


def test_reconciling_finds_reservations_whose_session_did_not_follow(station, tariff_17):
    reservation = reservation_made(station, made_ago=timedelta(minutes=5))
    Reservation.objects.filter(pk=reservation.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    assert reservations_unbilled(quiet_seconds=300) == [reservation.pk]  # accepted, its task lost: no session
    reservation_bill(reservation_pk=reservation.pk)
    assert reservations_unbilled(quiet_seconds=300) == []
    reservation_end(reservation_pk=reservation.pk, status="CANCELLED")  # its task lost again: still RESERVATION
    Reservation.objects.filter(pk=reservation.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    assert reservations_unbilled(quiet_seconds=300) == [reservation.pk]
    reservation_bill(reservation_pk=reservation.pk)
    assert reservations_unbilled(quiet_seconds=300) == []
