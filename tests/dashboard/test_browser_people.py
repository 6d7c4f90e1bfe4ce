"""Tokens and users in a real browser (Chromium) at desktop and phone width, screenshots in test-output/: an operator
adds an RFID card and blocks it after confirming; an admin makes a viewer an operator."""

import pytest

from cpo.models import Token
from tests.dashboard.browser import db, expect, log_in, overflow, shot

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

WIDTHS = pytest.mark.parametrize("width", [1400, 390], ids=["desktop", "phone"])


@pytest.fixture
def staff(make_user):
    make_user("olga", "operator")
    make_user("ada", "admin")
    make_user("ivan", "viewer")


@WIDTHS
def test_an_operator_adds_a_card_and_blocks_it(live_daphne, staff, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "olga", viewport={"width": width, "height": 900})
    page.goto(f"{live_daphne.http_url}/tokens/")
    form = page.locator("[data-testid=token-add]")
    form.locator("input[name=uid]").fill("04A1B2C3")
    form.locator("input[name=contract_id]").fill("NL-CPO-C00000001")
    form.locator("button[type=submit]").click()
    row = page.locator("tr[data-token='04A1B2C3']")
    expect(row.locator("[data-testid=token-status]")).to_have_text("Valid")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    row.locator("[data-testid=token-block]").click()
    expect(page.locator("tr[data-token='04A1B2C3'] [data-testid=token-status]")).to_have_text("Blocked")
    assert dialogs and "Block token 04A1B2C3?" in dialogs[0]
    assert overflow(page) == 0
    shot(page, f"tokens-blocked-{width}")
    assert db(lambda: Token.objects.get(uid="04A1B2C3").valid) is False
    context.close()


@WIDTHS
def test_an_admin_makes_a_viewer_an_operator(live_daphne, staff, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport={"width": width, "height": 900})
    page.goto(f"{live_daphne.http_url}/users/")
    row = page.locator("tr[data-user=ivan]")
    row.locator("[data-testid=user-role]").select_option("operator")
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("[data-testid=user-role-save]").click()
    expect(page.locator(".msg")).to_contain_text("ivan is operator now")
    expect(page.locator("tr[data-user=ivan] [data-testid=user-role]")).to_have_value("operator")
    shot(page, f"users-role-{width}")
    context.close()
