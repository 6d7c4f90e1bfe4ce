"""The overview's money tiles: energy and revenue today and this month count the charging that ended in the period
(CDRs, and priced sessions not billed yet) and the sessions running now at their current cost; a CDR issued today
for yesterday's charging counts for yesterday; a credit nets out; sessions today and the connectors' availability."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Session
from cpo.dashboard.selectors.money import connector_availability, today_and_month
from cpo.models import EVSE
from ocpp_gateway.models import Transaction
from tests.dashboard.factories import clock, make_cdr, make_session

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 18, tzinfo=UTC)


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def month_of_charging(station_factory):
    station, _ = station_factory("CP-M1", evses=2)
    today = make_session(station=station, number=1, start=at(10, 8), kwh=Decimal("20"))
    make_cdr(today, issued=at(10, 10))
    make_session(station=station, number=2, start=at(10, 12), kwh=Decimal("5"), cost=(Decimal("2"), Decimal("2.42")))
    yesterday = make_session(station=station, number=3, start=at(9, 22), kwh=Decimal("10"))
    credited = make_cdr(yesterday, issued=at(10, 1))
    make_cdr(yesterday, issued=at(10, 15), credit_of=credited)
    last_month = make_session(station=station, number=4, start=at(28, 22, month=2), kwh=Decimal("7"))
    make_cdr(last_month, issued=at(1, 1))
    running = make_session(
        station=station, number=5, start=at(10, 17), kwh=Decimal("2.5"), cost=(Decimal("1.50"), Decimal("1.82"))
    )
    Transaction.objects.filter(pk=running.transaction_id).update(
        status="ACTIVE", ended_at=None, meter_stop=None, meter_last=Decimal(3000)
    )
    Session.objects.filter(pk=running.pk).update(status="ACTIVE", end_date_time=None)
    return station


def test_today_and_this_month_count_cdrs_unbilled_and_running_sessions_by_charging_date(month_of_charging):
    today, month = today_and_month(now=NOW)
    assert (today.energy_kwh, today.sessions) == (Decimal("28.000"), 3)
    assert [(r.currency, r.excl_vat, r.incl_vat) for r in today.revenue] == [
        ("EUR", Decimal("11.50"), Decimal("13.92"))
    ]
    assert (month.energy_kwh, month.sessions) == (Decimal("38.000"), 4)
    assert [(r.currency, r.excl_vat, r.incl_vat) for r in month.revenue] == [
        ("EUR", Decimal("11.50"), Decimal("13.92"))
    ]


def test_an_empty_network_earns_nothing():
    today, month = today_and_month(now=NOW)
    assert (today.energy_kwh, today.sessions, today.revenue) == (Decimal("0.000"), 0, [])
    assert connector_availability().available_pct == 0


def test_availability_is_the_share_of_connectors_available_charging_and_faulted(station_factory):
    station, _ = station_factory("CP-A", evses=4)
    for number, status in [(1, "AVAILABLE"), (2, "AVAILABLE"), (3, "CHARGING"), (4, "OUTOFORDER")]:
        EVSE.objects.filter(station=station, ocpp_evse_id=number).update(status=status)
    availability = connector_availability()
    assert (availability.available_pct, availability.charging_pct, availability.faulted_pct) == (50, 25, 25)


def test_the_overview_shows_the_money_tiles(client_as, month_of_charging):
    viewer = client_as("viewer")
    with clock(NOW):
        html = viewer.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="revenue-today">11.50 EUR<' in html
    assert 'data-testid="revenue-month">11.50 EUR<' in html
    assert 'data-testid="energy-today">28.0 kWh<' in html
    assert 'data-testid="energy-month">38.0 kWh<' in html
    assert 'data-testid="sessions-today">3<' in html
    assert 'data-testid="availability">0 %<' in html  # connectors not reported yet: unknown
