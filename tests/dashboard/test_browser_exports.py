"""In a real browser (Chromium), at desktop and phone width, screenshots in test-output/: an operator exports last
month's CDRs by charging date (the CDR of charging that ended last month but was issued this month included) and
this month's sessions; an admin suspends a partner after a confirmation naming it, and resumes it."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ocpi_api.models import Partner
from tests.dashboard.browser import db, expect, log_in, overflow, shot
from tests.dashboard.factories import make_cdr, make_session, registered_partner
from tests.support import OUTPUT

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

WIDTHS = pytest.mark.parametrize("width", [1400, 390], ids=["desktop", "phone"])


def viewport(width: int) -> dict:
    return {"width": width, "height": 900}


def downloaded(page, testid: str) -> tuple[str, list[dict]]:
    with page.expect_download() as download_info:
        page.click(f"[data-testid={testid}]")
    download = download_info.value
    text = open(download.path(), encoding="utf-8").read()
    return download.suggested_filename, list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def month_turn(make_user, station_factory):
    """S1 charged in the last hour of last month, its CDR issued 30 minutes into this month; S2 charged and issued
    in the middle of last month; S3 charged two days before last month, issued on its first day (UTC)."""
    make_user("olga", "operator")
    station, _ = station_factory("CP-MONTH", evses=1)
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    charged = {
        1: this_month - timedelta(hours=1),
        2: last_month + timedelta(days=14),
        3: last_month - timedelta(days=2),
    }
    issued = {1: this_month + timedelta(minutes=30), 2: charged[2] + timedelta(hours=2), 3: last_month}
    for number, start in charged.items():
        make_cdr(make_session(station=station, number=number, start=start, kwh=Decimal("12")), issued=issued[number])
    return last_month


@WIDTHS
def test_staff_export_last_months_cdrs_by_charging_date(live_daphne, month_turn, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "olga", viewport=viewport(width))
    page.goto(f"{live_daphne.http_url}/cdrs/")
    page.select_option("select[name=by]", "charging")
    page.select_option("select[name=preset]", "last_month")
    page.click("[data-testid=cdr-filters] button")
    expect(page.locator("[data-testid=cdrs] tbody tr")).to_have_count(2)
    shot(page, f"cdrs-by-charging-date-{width}")
    name, rows = downloaded(page, "cdr-export")
    assert name.startswith("cdrs_charged_" + month_turn.strftime("%Y-%m-01"))
    assert sorted(row["id"] for row in rows) == ["CDR-S1", "CDR-S2"]  # S1 issued this month, charged last month
    (OUTPUT / f"dashboard-cdrs-by-charging-date-{width}.csv").write_text("\n".join(str(r) for r in rows))

    page.goto(f"{live_daphne.http_url}/sessions/")
    page.select_option("select[name=preset]", "last_month")
    page.click("[data-testid=session-filters] button")
    expect(page.locator("[data-testid=sessions] tbody tr")).to_have_count(2)
    name, rows = downloaded(page, "session-export")
    assert sorted(row["ocpi_session_id"] for row in rows) == ["S1", "S2"]
    assert overflow(page) == 0
    context.close()


@pytest.fixture
def partner(make_user):
    make_user("ada", "admin")
    return registered_partner()


@WIDTHS
def test_an_admin_suspends_a_partner_after_confirming_and_resumes_it(live_daphne, partner, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport=viewport(width))
    page.goto(f"{live_daphne.http_url}/partners/{partner.pk}/")
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("[data-testid=partner-suspend]")
    assert questions and questions[0].startswith(f"Suspend {partner}?")
    assert db(lambda: Partner.objects.get(pk=partner.pk).suspended_at) is None  # dismissed: nothing happened

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click("[data-testid=partner-suspend]")
    expect(page.locator("[data-testid=partner-suspended]")).to_have_text("Suspended")
    expect(page.locator(".messages")).to_contain_text("its token is refused")
    assert db(lambda: Partner.objects.get(pk=partner.pk).suspended_at) is not None
    shot(page, f"partner-suspended-{width}")

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click("[data-testid=partner-resume]")
    expect(page.locator("[data-testid=partner-suspend]")).to_be_visible()
    assert db(lambda: Partner.objects.get(pk=partner.pk).suspended_at) is None
    context.close()
