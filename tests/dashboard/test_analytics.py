"""Analytics: energy and sessions per day or week, utilisation per location and per hour of the week (local time),
revenue per partner from CDRs; each table as CSV. Every role reads them."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from ocpp_gateway.models import Transaction
from tests.dashboard.factories import make_cdr, make_session, registered_partner

pytestmark = pytest.mark.django_db

WEEK = {"date_from": "2026-03-09", "date_to": "2026-03-15", "time_zone": "Europe/Amsterdam"}


def tx(station, number, start, hours, kwh, evse=1):
    return Transaction.objects.create(
        station=station,
        evse=station.evses.get(ocpp_evse_id=evse),
        transaction_id=str(number),
        ocpp_version="1.6",
        ocpp_evse_id=evse,
        connector_id=1,
        id_tag="T",
        started_at=start,
        ended_at=start + timedelta(hours=hours),
        meter_start=Decimal(1000),
        meter_stop=Decimal(1000) + kwh * 1000,
        status="ENDED",
    )


@pytest.fixture
def week(station_factory):
    """A station with 2 EVSEs at LOC-T1 (Amsterdam, UTC+1 in March): Monday 08:00-10:00 UTC 10 kWh and
    09:00-10:00 UTC 5 kWh, Tuesday 18:00-18:30 UTC 2 kWh; one session the week before."""
    station, _ = station_factory("CP-A1", evses=2)
    tx(station, 1, datetime(2026, 3, 9, 8, tzinfo=UTC), 2, Decimal(10), evse=1)
    tx(station, 2, datetime(2026, 3, 9, 9, tzinfo=UTC), 1, Decimal(5), evse=2)
    tx(station, 3, datetime(2026, 3, 10, 18, tzinfo=UTC), 0.5, Decimal(2), evse=1)
    tx(station, 4, datetime(2026, 3, 2, 12, tzinfo=UTC), 1, Decimal(50), evse=1)
    return station


def page(client, **query):
    response = client.get(reverse("dashboard:analytics"), {**WEEK, **query})
    assert response.status_code == 200
    return response.context


@pytest.mark.parametrize("name", ["dashboard:analytics", "dashboard:analytics-csv"])
def test_anonymous_users_log_in_first_and_users_without_a_role_are_refused(client, client_as, name):
    url = reverse(name, args=["energy"] if name.endswith("csv") else [])
    assert client.get(url)["Location"].startswith(reverse("dashboard:login"))
    assert client_as("none").get(url).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_energy_and_sessions_per_day_and_week(client_as, week, role):
    user = client_as(role)
    days = page(user)["tables"]["energy"]
    assert days[:3] == [
        {"bucket": datetime(2026, 3, 9).date(), "sessions": 2, "kwh": Decimal("15.000")},
        {"bucket": datetime(2026, 3, 10).date(), "sessions": 1, "kwh": Decimal("2.000")},
        {"bucket": datetime(2026, 3, 11).date(), "sessions": 0, "kwh": Decimal("0.000")},
    ]
    assert [row["bucket"].day for row in days] == [9, 10, 11, 12, 13, 14, 15], "days without sessions stay on the chart"
    weekly = page(user, bucket="week")
    assert weekly["tables"]["energy"] == [
        {"bucket": datetime(2026, 3, 9).date(), "sessions": 3, "kwh": Decimal("17.000")}
    ]
    assert weekly["charts"]["energy"] == {"labels": ["2026-03-09"], "kwh": [17.0], "sessions": [3]}


def test_utilisation_per_location_is_the_share_of_evse_hours_in_use(client_as, week, station_factory):
    context = page(client_as("viewer"))
    [row] = context["tables"]["locations"]
    # 2 + 1 + 0.5 hours in use of 2 EVSEs x 168 hours
    assert (row["location_id"], row["evses"], row["sessions"], row["kwh"]) == ("LOC-T1", 2, 3, Decimal("17.000"))
    assert (row["hours_in_use"], row["utilisation_pct"]) == (Decimal("3.5"), Decimal("1.0"))


def test_a_session_across_the_period_start_counts_only_its_part_inside(client_as, week):
    tx(week, 5, datetime(2026, 3, 8, 22, tzinfo=UTC), 4, Decimal(8), evse=2)  # 2 of its 4 hours in the period
    [row] = page(client_as("viewer"))["tables"]["locations"]
    assert row["hours_in_use"] == Decimal("5.5") and row["sessions"] == 3  # started before: not a session here


def test_peak_hours_are_read_in_local_time(client_as, week):
    hours = {(row["weekday"], row["hour"]): row for row in page(client_as("viewer"))["tables"]["hours"]}
    assert len(hours) == 168
    assert (hours[("Mon", 9)]["sessions_started"], hours[("Mon", 10)]["sessions_started"]) == (1, 1)
    assert hours[("Tue", 19)]["kwh"] == Decimal("2.000")
    # EVSEs in use: Monday 09-10 local one of two, 10-11 both, Tuesday 19:00-19:30 one of two for half an hour
    assert (hours[("Mon", 9)]["in_use_pct"], hours[("Mon", 10)]["in_use_pct"]) == (Decimal("50.0"), Decimal("100.0"))
    assert hours[("Tue", 19)]["in_use_pct"] == Decimal("25.0") and hours[("Mon", 8)]["in_use_pct"] == Decimal("0.0")


def test_peak_hours_in_utc_move_by_the_offset(client, make_user, week):
    client.force_login(make_user("vic", "viewer"))
    hours = {(r["weekday"], r["hour"]): r for r in page(client, time_zone="UTC")["tables"]["hours"]}
    assert hours[("Mon", 8)]["sessions_started"] == 1 and hours[("Mon", 9)]["in_use_pct"] == Decimal("100.0")


def test_revenue_per_partner_nets_credits(client_as, week):
    registered_partner()
    first = make_cdr(
        make_session(station=week, number=11, start=datetime(2026, 3, 9, 12, tzinfo=UTC), kwh=Decimal(20)),
        issued=datetime(2026, 3, 9, 13, tzinfo=UTC),
    )
    make_cdr(
        make_session(station=week, number=12, start=datetime(2026, 3, 10, 12, tzinfo=UTC), kwh=Decimal(20)),
        issued=datetime(2026, 3, 10, 13, tzinfo=UTC),
    )
    make_cdr(first.session, issued=datetime(2026, 3, 11, 9, tzinfo=UTC), credit_of=first)
    make_cdr(
        make_session(
            station=week,
            number=13,
            start=datetime(2026, 3, 10, 14, tzinfo=UTC),
            kwh=Decimal(10),
            emsp=("", ""),
            uid="OWN",
        ),
        issued=datetime(2026, 3, 10, 15, tzinfo=UTC),
        energy=(Decimal("3.50"), Decimal("4.24")),
    )
    make_cdr(
        make_session(station=week, number=14, start=datetime(2026, 3, 20, 14, tzinfo=UTC), kwh=Decimal(10)),
        issued=datetime(2026, 3, 20, 15, tzinfo=UTC),
    )  # after the period
    context = page(client_as("viewer"))
    assert context["tables"]["revenue"] == [
        {
            "country_code": "NL",
            "party_id": "EXM",
            "name": "Example EMSP",
            "currency": "EUR",
            "cdrs": 2,
            "credits": 1,
            "kwh": Decimal("40.000"),
            "revenue_excl_vat": Decimal("8.00"),
            "revenue_incl_vat": Decimal("9.68"),
        },
        {
            "country_code": "",
            "party_id": "",
            "name": "own tokens",
            "currency": "EUR",
            "cdrs": 1,
            "credits": 0,
            "kwh": Decimal("10.000"),
            "revenue_excl_vat": Decimal("4.50"),
            "revenue_incl_vat": Decimal("5.45"),
        },
    ]
    assert context["charts"]["revenue"]["labels"] == ["NL*EXM EUR", "own EUR"]


def test_a_reissued_cdr_counts_its_energy_once(client_as, week):
    # A late stop corrected a 20 kWh CDR to 25 kWh: credit of the original, then the re-issue (billing.cdr_correct).
    registered_partner()
    session = make_session(station=week, number=11, start=datetime(2026, 3, 9, 12, tzinfo=UTC), kwh=Decimal(20))
    original = make_cdr(session, issued=datetime(2026, 3, 9, 13, tzinfo=UTC))
    make_cdr(session, issued=datetime(2026, 3, 10, 9, tzinfo=UTC), credit_of=original)
    make_cdr(session, issued=datetime(2026, 3, 10, 9, tzinfo=UTC), reissue_of=original, kwh=Decimal(25))
    [row] = page(client_as("viewer"))["tables"]["revenue"]
    assert (row["cdrs"], row["credits"], row["kwh"]) == (2, 1, Decimal("25.000"))
    assert row["revenue_excl_vat"] == Decimal("8.00")  # the original and its credit cancel out


@pytest.mark.parametrize(
    "table,header,first",
    [
        ("energy", ["bucket", "sessions", "kwh"], ["2026-03-09", "2", "15.000"]),
        (
            "locations",
            ["location_id", "name", "city", "evses", "sessions", "kwh", "hours_in_use", "utilisation_pct"],
            ["LOC-T1", "Test Plaza", "Utrecht", "2", "3", "17.000", "3.5", "1.0"],
        ),
        ("hours", ["weekday", "hour", "sessions_started", "kwh", "in_use_pct"], ["Mon", "0", "0", "0.000", "0.0"]),
        (
            "revenue",
            [
                "country_code",
                "party_id",
                "name",
                "currency",
                "cdrs",
                "credits",
                "kwh",
                "revenue_excl_vat",
                "revenue_incl_vat",
            ],
            None,
        ),
    ],
)
def test_each_table_downloads_as_csv(client_as, week, table, header, first):
    response = client_as("viewer").get(reverse("dashboard:analytics-csv", args=[table]), WEEK)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{table}_2026-03-09_2026-03-15.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == header
    assert (rows[1] if len(rows) > 1 else None) == first
    if table == "hours":
        assert len(rows) == 1 + 168 and rows[1 + 24 + 10 - 24][:2] == ["Mon", "10"]


def test_a_bad_period_is_refused(client_as):
    viewer = client_as("viewer")
    context = viewer.get(reverse("dashboard:analytics"), {**WEEK, "date_to": "2026-03-01"}).context
    assert "tables" not in context and "The period ends before it starts" in str(context["form"].errors)
    assert (
        viewer.get(reverse("dashboard:analytics-csv", args=["energy"]), {**WEEK, "date_from": "2024-01-01"}).status_code
        == 400
    )
    assert viewer.get(reverse("dashboard:analytics-csv", args=["nope"]), WEEK).status_code == 404


def test_the_page_defaults_to_the_last_30_days_and_takes_few_queries(client_as, week, django_assert_max_num_queries):
    viewer = client_as("viewer")
    context = viewer.get(reverse("dashboard:analytics")).context
    assert (context["form"].cleaned_data["date_to"] - context["form"].cleaned_data["date_from"]).days == 29
    assert context["form"].cleaned_data["time_zone"] == "Europe/Amsterdam"
    with django_assert_max_num_queries(16):
        viewer.get(reverse("dashboard:analytics"), WEEK)


def test_empty_charts_say_no_data_instead_of_drawing_bare_axes(client_as):
    html = client_as("viewer").get(reverse("dashboard:analytics"), {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    html = html.content.decode()
    assert 'data-testid="energy-chart-empty">No data for this period.<' in html
    assert 'data-testid="revenue-chart-empty">No data for this period.<' in html
    assert 'id="energy-chart"' not in html and 'id="revenue-chart"' not in html
