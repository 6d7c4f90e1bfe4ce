"""What the browser tests share: Debian's Chromium, logging a staff member in, ORM calls beside Playwright's event
loop, and screenshots (the `browser` fixture is in conftest.py). Importing this skips the importing test module when
Playwright is not installed."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.dashboard.factories import PASSWORD
from tests.support import OUTPUT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
expect = pytest.importorskip("playwright.sync_api").expect


def log_in(browser, base_url: str, username: str, viewport: dict | None = None):
    context = browser.new_context(viewport=viewport or {"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Network overview")
    expect(page.locator("#live-state")).to_have_text("● live")
    return context, page


def live_settled(page) -> None:
    """Wait until the page's live socket is open and its catch-up re-fetch is over (live.js re-fetches every live
    part when it connects), so a click does not race that refresh on a loaded machine."""
    expect(page.locator("#live-state")).to_have_text("● live")
    page.wait_for_load_state("networkidle")


def db(func, *args, **kwargs):
    """Run ORM code in another thread: Playwright's sync API keeps an event loop running in this one."""

    def run():
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def shot(page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"dashboard-{name}.png"), full_page=True)


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits), measured once the page and its
    stylesheet have loaded: read while the stylesheet of a page just navigated to is still on its way (a loaded
    machine), the layout is unstyled and its tables stick out (CI saw that once)."""
    page.wait_for_load_state("load")
    return page.evaluate("() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")
