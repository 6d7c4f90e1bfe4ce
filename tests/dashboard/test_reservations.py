"""A reservation that never became a charge on the staff pages: the station page lists it with its lifecycle and
session, and its CDR (the reservation's cost alone) opens like any other."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from billing.models import Cdr
from billing.services import reservation_bill, tariff_upsert_from_ocpi
from cpo.models import Connector
from ocpp_gateway.models import Reservation
from ocpp_gateway.services.reservations import (
    ReservationToken,
    reservation_answer_record,
    reservation_create,
    reservations_expire,
)
from tests.billing.examples import example

pytestmark = pytest.mark.django_db


@pytest.fixture
def expired_reservation(station_factory):
    station, _ = station_factory("CP-RES-PAGE", evses=1)
    tariff = tariff_upsert_from_ocpi(data=example("tariff_17_reservation_with_expire_fee.json"))
    Connector.objects.update(tariff_ids=[tariff.id])
    reservation = reservation_create(
        station=station,
        evse=station.evses.get(),
        token=ReservationToken(id_tag="EMSP-TOKEN-9", token_country_code="NL", token_party_id="EXM"),
        expiry_date=timezone.now() + timedelta(hours=1),
        source=Reservation.Source.PARTNER,
    )
    # Made an hour before it expired (the update reads the old created_at on both sides).
    Reservation.objects.filter(pk=reservation.pk).update(
        created_at=F("created_at") - timedelta(hours=1), expiry_date=F("created_at")
    )
    reservation_answer_record(reservation_pk=reservation.pk, status="Accepted")
    reservations_expire(now=timezone.now() + timedelta(hours=2))
    reservation_bill(reservation_pk=reservation.pk)
    return Reservation.objects.get(pk=reservation.pk)


def test_the_station_page_lists_the_expired_reservation_and_its_completed_session(client_as, expired_reservation):
    page = client_as("viewer").get(reverse("dashboard:station", args=["CP-RES-PAGE"])).content.decode()
    row = page.split(f'<tr data-reservation="{expired_reservation.pk}">')[1].split("</tr>")[0]
    assert "EXPIRED" in row and "NL*EXM" in row and "EMSP-TOKEN-9" in row and "COMPLETED" in row


def test_the_cdr_of_an_unused_reservation_opens_and_is_listed(client_as, expired_reservation):
    cdr = Cdr.objects.get()
    viewer = client_as("viewer")
    detail = viewer.get(reverse("dashboard:cdr", args=[cdr.id]))
    assert detail.status_code == 200 and "not used to charge" in detail.content.decode()
    listing = viewer.get(reverse("dashboard:cdrs"))
    assert listing.status_code == 200 and cdr.id in listing.content.decode()
    assert cdr.total_reservation_cost_excl_vat == Decimal("6.00")  # the spec's example 17, expired after 1 hour
