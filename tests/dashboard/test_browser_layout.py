"""The dashboard on a desk and on a phone (real Chromium at 1400 px and 390 px): every main page fits the screen
width (tables scroll inside their cards), the navigation folds behind a menu button on a phone, and controls are big
enough to touch. Screenshots of each page at both widths go to test-output/."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.services import tariff_seed_demo
from tests.dashboard.browser import expect, log_in, overflow, shot
from tests.dashboard.factories import T0, make_cdr, make_session, registered_partner

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}


@pytest.fixture
def network(make_user, station_factory):
    make_user("ada", "admin")
    partner = registered_partner()
    station, _ = station_factory("CP-A-VERY-LONG-STATION-IDENTITY-0001", evses=3)
    session = make_session(station=station, number=1, start=T0, kwh=Decimal("20"))
    make_cdr(session, issued=T0 + timedelta(hours=2))
    tariff_seed_demo(tariff_id="AC-1")
    return {"station": station, "partner": partner, "cdr": session.id}


def main_pages(network) -> list[str]:
    station = network["station"]
    return [
        "/",
        "/stations/",
        f"/stations/{station.identity}/",
        "/sessions/",
        "/cdrs/",
        "/partners/",
        f"/partners/{network['partner'].pk}/",
        "/tariffs/",
        "/tariffs/AC-1/",
        "/tariffs/AC-1/edit/",
        "/onboarding/",
        "/analytics/",
        "/audit/",
        "/tokens/",
        "/users/",
        "/alerts/",
        "/load/",
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_main_page_fits_the_screen_width(live_daphne, network, browser, viewport):
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport=viewport)
    too_wide, failed = {}, {}
    for path in main_pages(network):
        response = page.goto(f"{live_daphne.http_url}{path}")
        if response.status != 200:
            failed[path] = response.status
        if wider := overflow(page):
            too_wide[path] = wider
        name = path.strip("/").replace("/", "-") or "overview"
        shot(page, f"layout-{viewport['width']}-{name}")
    assert (too_wide, failed) == ({}, {})
    context.close()


def test_on_a_phone_the_navigation_folds_behind_a_menu_button_with_readable_links(live_daphne, network, browser):
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport=PHONE)
    nav = page.locator("#main-nav")
    toggle = page.locator("[data-testid=nav-toggle]")
    expect(toggle).to_be_visible()
    expect(nav).to_be_hidden()
    toggle.click()
    expect(nav).to_be_visible()
    shot(page, "layout-390-nav-open")
    partners = nav.get_by_role("link", name="Partners")
    expect(partners).to_be_visible()
    # Light text on the dark header, not on the light page: the link's box lies inside the header's.
    inside = page.evaluate("""() => {
        const link = [...document.querySelectorAll('#main-nav a')].find(a => a.textContent.trim() === 'Partners');
        const bar = document.querySelector('header.topbar').getBoundingClientRect();
        const box = link.getBoundingClientRect();
        return box.bottom <= bar.bottom && box.right <= bar.right;
    }""")
    assert inside
    # Touch-size: every link of the menu and every button of the station's command forms is at least 40 px high.
    heights = page.evaluate(
        "() => [...document.querySelectorAll('#main-nav a')].map(a => a.getBoundingClientRect().height)"
    )
    assert min(heights) >= 40
    partners.click()
    expect(page).to_have_url(f"{live_daphne.http_url}/partners/")
    expect(page.locator("#main-nav")).to_be_hidden()
    page.goto(f"{live_daphne.http_url}/stations/{network['station'].identity}/")
    heights = page.evaluate(
        "() => [...document.querySelectorAll('#commands button, #commands select')]"
        ".map(b => b.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 40
    context.close()


def test_on_a_desktop_the_navigation_is_always_shown(live_daphne, network, browser):
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport=DESKTOP)
    expect(page.locator("#main-nav")).to_be_visible()
    expect(page.locator("[data-testid=nav-toggle]")).to_be_hidden()
    context.close()
