"""Settlement per partner and month: the sum of the CDRs, credits included, from the selector, the management
command and the admin; plus the admin's credit action."""

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Cdr
from billing.selectors import settlement_summary
from billing.services import cdr_create, cdr_credit, session_sync
from tests.billing.factories import HOUR, T0, start, stop


def charge(station, id_tag, *, at, wh, connector_id=1):
    tx = start(station, id_tag, meter_start=0, at=at, connector_id=connector_id)
    stop(station, tx, at + HOUR, wh)
    return cdr_create(session=session_sync(transaction_pk=tx.pk))


@pytest.fixture
def month_of_cdrs(station, energy_tariff, emsp_token, local_token):
    """Three CDRs of NL*EXM (one credited) and one of this CPO's own customers."""
    first = charge(station, emsp_token, at=T0, wh=10000)  # 4.50 / 5.45
    second = charge(station, emsp_token, at=T0 + 2 * HOUR, wh=2500)  # 1.875 -> 1.88 / 2.27
    third = charge(station, emsp_token, at=T0 + 4 * HOUR, wh=1000, connector_id=2)  # 1.35 / 1.63
    charge(station, local_token.uid, at=T0 + 6 * HOUR, wh=20000)
    credit = cdr_credit(cdr=second, reason="disputed")
    month = first.last_updated.strftime("%Y-%m")
    return [first, second, third, credit], month


def test_the_settlement_is_the_sum_of_the_partners_cdrs(month_of_cdrs):
    cdrs, month = month_of_cdrs
    [row] = settlement_summary(country_code="NL", party_id="EXM", month=month)
    assert (row.cdrs, row.credits, row.currency) == (3, 1, "EUR")
    assert row.amount_excl_vat == sum(c.total_cost_excl_vat for c in cdrs) == Decimal("5.85")
    assert row.amount_incl_vat == sum(c.total_cost_incl_vat for c in cdrs) == Decimal("7.08")
    assert row.kwh == Decimal(11)  # 10 + 2.5 + 1 - 2.5 (the credit cancels its original)
    assert row.hours == Decimal(2)
    assert settlement_summary(country_code="nl", party_id="exm", month=month) == [row]


def test_other_months_and_partners_are_not_counted(month_of_cdrs):
    assert settlement_summary(country_code="NL", party_id="EXM", month="1999-12") == []
    assert settlement_summary(country_code="DE", party_id="XYZ", month=month_of_cdrs[1]) == []
    with pytest.raises(ValueError, match="YYYY-MM"):
        settlement_summary(country_code="NL", party_id="EXM", month="2026-13")


def test_the_settlement_command_prints_csv_and_writes_a_file(month_of_cdrs, tmp_path):
    _, month = month_of_cdrs
    out = io.StringIO()
    call_command("settlement", "--partner", "NL-EXM", "--month", month, stdout=out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row == {
        "country_code": "NL",
        "party_id": "EXM",
        "month": month,
        "currency": "EUR",
        "cdrs": "3",
        "credits": "1",
        "kwh": "11.0000",
        "hours": "2.0000",
        "parking_hours": "0.0000",
        "amount_excl_vat": "5.85",
        "amount_incl_vat": "7.08",
    }
    target = tmp_path / "settlement.csv"
    call_command("settlement", "--partner", "NL-EXM", "--month", month, "--out", str(target), stderr=io.StringIO())
    assert target.read_bytes().decode() == out.getvalue()
    with pytest.raises(CommandError, match="NL-EXM"):
        call_command("settlement", "--partner", "EXM", "--month", month)


def test_the_admin_gives_the_same_csv_and_issues_credits(month_of_cdrs, admin_client):
    cdrs, month = month_of_cdrs
    first, third = cdrs[0], cdrs[2]
    response = admin_client.post("/admin/billing/cdr/", {"action": "settlement_csv", "_selected_action": [first.pk]})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    out = io.StringIO()
    call_command("settlement", "--partner", "NL-EXM", "--month", month, stdout=out)
    assert response.content.decode() == out.getvalue()

    response = admin_client.post(
        "/admin/billing/cdr/", {"action": "issue_credit", "_selected_action": [third.pk, cdrs[3].pk]}
    )
    assert response.status_code == 302
    credit = Cdr.objects.get(credit_reference=third)
    assert credit.total_cost_excl_vat == -third.total_cost_excl_vat and credit.id == f"{third.id}-C"
    assert admin_client.get(f"/admin/billing/cdr/{first.pk}/change/").status_code == 200
    assert admin_client.get(f"/admin/billing/session/{first.session_id}/change/").status_code == 200
