"""A day's tasks in a real browser (Chromium), each at desktop and phone width with screenshots in test-output/:
see today's revenue on the overview, find a faulted charger from the stations list, read the audit log, and be told
why an admin page is closed to an operator."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Session
from cpo.dashboard.models import AuditLog
from cpo.models import EVSE, ChargingStation
from ocpp_gateway.models import Transaction
from tests.dashboard.browser import expect, live_settled, log_in, overflow, shot
from tests.dashboard.factories import make_cdr, make_session

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

WIDTHS = pytest.mark.parametrize("width", [1400, 390], ids=["desktop", "phone"])


def viewport(width: int) -> dict:
    return {"width": width, "height": 900}


@pytest.fixture
def earning(make_user, station_factory):
    """One session ended a minute ago and billed (8.00 EUR), one charging now at 1.50 EUR so far."""
    make_user("olga", "operator")
    station, _ = station_factory("CP-EARN", evses=2)
    now = timezone.now().replace(second=0, microsecond=0)
    start = max(now - timedelta(minutes=2), now.replace(hour=0, minute=0))
    billed = make_session(station=station, number=1, start=start, kwh=Decimal("20"))
    Transaction.objects.filter(pk=billed.transaction_id).update(ended_at=start + timedelta(seconds=30))
    make_cdr(billed, issued=now)
    running = make_session(
        station=station,
        number=2,
        start=start + timedelta(seconds=1),
        kwh=Decimal("2"),
        cost=(Decimal("1.50"), Decimal("1.82")),
    )
    Transaction.objects.filter(pk=running.transaction_id).update(
        status="ACTIVE", ended_at=None, meter_stop=None, meter_last=Decimal(2500)
    )
    Session.objects.filter(pk=running.pk).update(status="ACTIVE", end_date_time=None)
    return station


@WIDTHS
def test_staff_see_todays_revenue_with_the_running_session_on_the_overview(live_daphne, earning, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "olga", viewport=viewport(width))
    expect(page.locator("[data-testid=revenue-today]")).to_have_text("9.50 EUR")
    expect(page.locator("[data-testid=energy-today]")).to_have_text("22.5 kWh")
    expect(page.locator("[data-testid=sessions-today]")).to_have_text("2")
    expect(page.locator("[data-testid=revenue-month]")).to_contain_text("EUR")
    assert overflow(page) == 0
    shot(page, f"overview-revenue-{width}")
    context.close()


@pytest.fixture
def fleet(make_user, station_factory):
    make_user("olga", "operator")
    for number in range(1, 4):
        station_factory(f"CP-F{number}", evses=2)
    ChargingStation.objects.update(last_seen=timezone.now())  # offline: no charger holds a socket in this test
    EVSE.objects.filter(station__identity="CP-F2", ocpp_evse_id=2).update(
        status="OUTOFORDER", ocpp_status="Faulted", ocpp_error_code="GroundFailure"
    )


@WIDTHS
def test_staff_find_a_faulted_charger_from_the_stations_list(live_daphne, fleet, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "olga", viewport=viewport(width))
    page.goto(f"{live_daphne.http_url}/stations/")
    expect(page.locator("[data-testid=stations] tbody tr")).to_have_count(3)
    page.select_option("[data-testid=status-filter]", "faulted")
    page.click("[data-testid=station-filters] button")
    rows = page.locator("[data-testid=stations] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-testid=faulted]")).to_have_text("1")
    expect(rows.first.locator("[data-testid=last-seen]")).to_contain_text("ago")
    assert overflow(page) == 0
    shot(page, f"stations-faulted-{width}")
    live_settled(page)
    page.click("[data-sort=last_seen]")
    expect(page).to_have_url(re.compile(r"status=faulted&sort=last_seen$"))
    page.get_by_role("link", name="CP-F2").click()
    expect(page.locator("#station-live tr[data-evse='2'] [data-testid=status]")).to_have_text("Out of order")
    expect(page.locator("#station-live")).to_contain_text("GroundFailure")
    shot(page, f"station-faulted-{width}")
    context.close()


@pytest.fixture
def audited(make_user, station_factory):
    make_user("ada", "admin")
    make_user("olga", "operator")
    station, _ = station_factory("CP-AUD", evses=1)
    AuditLog.objects.create(
        username="olga",
        station=station,
        identity="CP-AUD",
        action="Reset",
        payload={"type": "Hard"},
        ok=True,
        answer={"status": "Accepted"},
    )
    AuditLog.objects.create(username="ada", action="PartnerInvite", payload={"name": "Abc"}, ok=True)


@WIDTHS
def test_an_admin_reads_the_audit_log_and_an_operator_is_told_why_not(live_daphne, audited, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport=viewport(width))
    page.goto(f"{live_daphne.http_url}/audit/")
    expect(page.locator("[data-testid=audit-log] tbody tr")).to_have_count(2)
    page.fill("[data-testid=audit-filters] input[name=username]", "olga")
    page.click("[data-testid=audit-filters] button")
    rows = page.locator("[data-testid=audit-log] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-testid=result]")).to_have_text("Accepted")
    assert overflow(page) == 0
    shot(page, f"audit-log-{width}")
    with page.expect_download() as download_info:
        page.click("[data-testid=audit-export]")
    exported = open(download_info.value.path(), encoding="utf-8").read()
    assert "olga,Reset,CP-AUD,ok,Accepted" in exported and "PartnerInvite" not in exported
    context.close()

    context, page = log_in(browser, live_daphne.http_url, "olga", viewport=viewport(width))
    response = page.goto(f"{live_daphne.http_url}/audit/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("You may not open this page")
    expect(page.locator("[data-testid=reason]")).to_have_text("This needs the admin role.")
    expect(page.locator("header.topbar")).to_be_visible()
    assert overflow(page) == 0
    shot(page, f"forbidden-{width}")
    context.close()
