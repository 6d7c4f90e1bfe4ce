"""Exports staff take to a spreadsheet: CDRs by the day the charging started or the day they were issued, sessions
by the day the charging started; a named period (today, this month, last month, in UTC) or from/to dates."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.dashboard.factories import clock, make_cdr, make_session

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 2, 10, 0, tzinfo=UTC)


def at(day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


@pytest.fixture
def month_end(station_factory):
    """Charging around the turn of March to April 2026, seen on 2 April: S1 charged on 31 March late evening and
    its CDR was issued after midnight, on 1 April; S2 charged and was issued mid-March; S3 charged and was issued
    today; S4 charged on 28 February and was issued on 1 March."""
    station, _ = station_factory("CP-X1", evses=1)
    starts = {1: at("2026-03-31", 22, 30), 2: at("2026-03-15", 9), 3: at("2026-04-02", 8), 4: at("2026-02-28", 22)}
    issued = {1: at("2026-04-01", 0, 30), 2: at("2026-03-15", 10), 3: at("2026-04-02", 9), 4: at("2026-03-01", 0, 5)}
    for number, start in starts.items():
        make_cdr(make_session(station=station, number=number, start=start, kwh=Decimal("10")), issued=issued[number])
    return station


def exported(client, name: str, **query) -> tuple[list[dict], object]:
    with clock(NOW):
        response = client.get(reverse(name), query)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text))), response


def cdr_ids(client, **query) -> list[str]:
    rows, _ = exported(client, "dashboard:cdr-export", **query)
    return sorted(row["id"] for row in rows)


# --- CDRs ------------------------------------------------------------------------------------------------------


def test_export_last_months_cdrs_by_charging_date_includes_the_one_issued_this_month(client_as, month_end):
    viewer = client_as("viewer")
    rows, response = exported(viewer, "dashboard:cdr-export", by="charging", preset="last_month")
    assert sorted(row["id"] for row in rows) == ["CDR-S1", "CDR-S2"]  # S1 charged on 31 March, issued on 1 April
    assert response["Content-Disposition"] == 'attachment; filename="cdrs_charged_2026-03-01_2026-03-31.csv"'
    assert {row["id"]: row["issued"] for row in rows}["CDR-S1"] == "2026-04-01T00:30:00Z"
    # By issue date, last month is what billing settled in March: February's charging issued on 1 March too.
    assert cdr_ids(viewer, by="issued", preset="last_month") == ["CDR-S2", "CDR-S4"]
    assert cdr_ids(viewer, preset="last_month") == ["CDR-S2", "CDR-S4"]  # issue date unless told otherwise


@pytest.mark.parametrize(
    ("by", "preset", "expected"),
    [
        ("charging", "today", ["CDR-S3"]),
        ("issued", "today", ["CDR-S3"]),
        ("charging", "this_month", ["CDR-S3"]),
        ("issued", "this_month", ["CDR-S1", "CDR-S3"]),
        ("charging", "last_month", ["CDR-S1", "CDR-S2"]),
        ("issued", "last_month", ["CDR-S2", "CDR-S4"]),
    ],
)
def test_cdr_presets_select_whole_utc_days(client_as, month_end, by, preset, expected):
    assert cdr_ids(client_as("viewer"), by=by, preset=preset) == expected


def test_a_custom_charging_period_includes_its_last_day(client_as, month_end):
    viewer = client_as("viewer")
    assert cdr_ids(viewer, by="charging", issued_from="2026-02-28", issued_to="2026-03-31") == [
        "CDR-S1",
        "CDR-S2",
        "CDR-S4",
    ]
    assert cdr_ids(viewer, by="charging", issued_from="2026-04-01") == ["CDR-S3"]


def test_the_cdr_list_filters_like_its_export(client_as, month_end):
    with clock(NOW):
        response = client_as("viewer").get(reverse("dashboard:cdrs"), {"by": "charging", "preset": "last_month"})
    assert sorted(cdr.id for cdr, _ in response.context["rows"]) == ["CDR-S1", "CDR-S2"]
    html = response.content.decode()
    assert reverse("dashboard:cdr-export") + "?by=charging&amp;preset=last_month" in html


@pytest.mark.parametrize(
    "query", [{"preset": "next_year"}, {"by": "paid"}, {"issued_from": "2026-03-12", "issued_to": "2026-03-11"}]
)
def test_a_bad_period_is_a_clear_400_not_an_empty_file(client_as, month_end, query):
    response = client_as("viewer").get(reverse("dashboard:cdr-export"), query)
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert response.content


# --- Sessions --------------------------------------------------------------------------------------------------


@pytest.fixture
def sessions(station_factory):
    """Two sessions charged in March (one by a token whose uid is a spreadsheet formula), one today still running."""
    station, _ = station_factory("CP-X2", evses=1)
    first = make_session(station=station, number=11, start=at("2026-03-31", 22, 30), kwh=Decimal("20"))
    evil = make_session(
        station=station,
        number=12,
        start=at("2026-03-10", 8),
        kwh=Decimal("5"),
        uid='=HYPERLINK("http://ev.il","x")',  # 30 characters: an idTag holds 36
        emsp=("DE", "OTH"),
    )
    running = make_session(station=station, number=13, start=at("2026-04-02", 9), kwh=Decimal("1.5"))
    tx = running.transaction
    tx.status, tx.ended_at, tx.meter_last, tx.meter_stop = "ACTIVE", None, Decimal("1500"), None
    tx.save()
    running.total_cost_excl_vat, running.total_cost_incl_vat = Decimal("0.60"), Decimal("0.73")
    running.save()
    return {"first": first, "evil": evil, "running": running}


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_the_session_export_of_last_month_has_one_row_per_session_charged_then(client_as, sessions, role):
    rows, response = exported(client_as(role), "dashboard:session-export", preset="last_month")
    assert response["Content-Disposition"] == 'attachment; filename="sessions_2026-03-01_2026-03-31.csv"'
    assert [row["ocpi_session_id"] for row in rows] == ["S11", "S12"]  # newest first
    first = rows[0]
    assert first == {
        "id": str(sessions["first"].transaction.pk),
        "ocpi_session_id": "S11",
        "transaction_id": "11",
        "station": "CP-X2",
        "evse_id": "1",
        "connector_id": "1",
        "location": "Test Plaza",
        "id_tag": "TOKEN-1",
        "token_uid": "",
        "contract_id": "",
        "emsp_country_code": "NL",
        "emsp_party_id": "EXM",
        "status": "ENDED",
        "started_at": "2026-03-31T22:30:00Z",
        "ended_at": "2026-03-31T23:30:00Z",
        "energy_kwh": first["energy_kwh"],
        "currency": "EUR",
        "cost_excl_vat": "8.0000",
        "cost_incl_vat": "9.6800",
        "stop_reason": "",
        "ended_by": "",
    }
    assert Decimal(first["energy_kwh"]) == Decimal("20")


def test_the_session_export_of_today_has_the_running_session_with_its_cost_so_far(client_as, sessions):
    rows, _ = exported(client_as("viewer"), "dashboard:session-export", preset="today")
    assert len(rows) == 1
    row = rows[0]
    assert (row["ocpi_session_id"], row["status"], row["ended_at"]) == ("S13", "ACTIVE", "")
    assert Decimal(row["energy_kwh"]) == Decimal("1.5") and row["cost_excl_vat"] == "0.6000"


def test_a_token_uid_that_is_a_formula_stays_text_in_the_session_export(client_as, sessions):
    rows, _ = exported(
        client_as("viewer"), "dashboard:session-export", started_from="2026-03-10", started_to="2026-03-10"
    )
    assert [row["id_tag"] for row in rows] == ['\'=HYPERLINK("http://ev.il","x")']
    assert rows[0]["emsp_party_id"] == "OTH"


def test_the_session_export_takes_the_list_filters_and_refuses_a_bad_period(client_as, sessions):
    viewer = client_as("viewer")
    rows, _ = exported(viewer, "dashboard:session-export", status="ACTIVE")
    assert [row["ocpi_session_id"] for row in rows] == ["S13"]
    bad = viewer.get(reverse("dashboard:session-export"), {"started_from": "2026-03-12", "started_to": "2026-03-11"})
    assert bad.status_code == 400 and b"The period ends before it starts" in bad.content


def test_the_session_list_links_to_the_export_of_what_it_shows(client_as, sessions):
    with clock(NOW):
        response = client_as("viewer").get(reverse("dashboard:sessions"), {"preset": "last_month"})
    html = response.content.decode()
    assert 'data-testid="session-export"' in html
    assert reverse("dashboard:session-export") + "?preset=last_month" in html
    assert {tx.pk for tx in response.context["page"]} == {
        sessions["first"].transaction.pk,
        sessions["evil"].transaction.pk,
    }


def test_anonymous_users_cannot_export_sessions(client, client_as, sessions):
    url = reverse("dashboard:session-export")
    assert client.get(url)["Location"].startswith(reverse("dashboard:login"))
    assert client_as("none").get(url).status_code == 403
