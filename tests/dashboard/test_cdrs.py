"""The CDRs page: list with filters (partner, location, issue period, push state), detail with the cost breakdown
and the push to the EMSP, CSV export for a period and partner; operators retry a failed push, viewers only see."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from cpo.models import Location
from ocpi_api import outbox
from ocpi_api.models import OutboxMessage, OutboxStatus
from ocpp_gateway.models import Transaction
from tests.dashboard.factories import T0, make_cdr, make_session, push, registered_partner

pytestmark = pytest.mark.django_db


@pytest.fixture
def cdrs(station_factory, location):
    """Three CDRs: two of NL*EXM (delivered; given up after 5 tries), one of DE*OTH at another location, issued
    in April (not pushed: DE*OTH is not a partner). And a credit of the first one."""
    exm = registered_partner()
    station, _ = station_factory("CP-C1", evses=1)
    other_location = Location.objects.create(
        id="LOC-T2", name="Other Square", address="x", city="Delft", country="NLD", latitude=52, longitude=4.3
    )
    far, _ = station_factory("CP-C2", evses=1)
    far.location = other_location
    far.save()
    first = make_cdr(
        make_session(station=station, number=1, start=T0, kwh=Decimal("20")), issued=T0 + timedelta(hours=1)
    )
    second = make_cdr(
        make_session(station=station, number=2, start=T0 + timedelta(days=1), kwh=Decimal("10.5")),
        issued=T0 + timedelta(days=1, hours=1),
        energy=(Decimal("3.68"), Decimal("4.45")),
    )
    third = make_cdr(
        make_session(
            station=far,
            number=3,
            start=T0 + timedelta(days=30),
            kwh=Decimal("5"),
            emsp=("DE", "OTH"),
            location_id="LOC-T2",
        ),
        issued=T0 + timedelta(days=30, hours=1),
    )
    credit = make_cdr(first.session, issued=T0 + timedelta(days=2), credit_of=first)
    push(exm, OutboxStatus.SENT, sent_at=T0 + timedelta(hours=1), key=f"cdrs:NL:CPO:{first.id}")
    push(
        exm,
        OutboxStatus.FAILED,
        attempts=5,
        error="ReadTimeout: partner did not answer",
        key=f"cdrs:NL:CPO:{second.id}",
    )
    push(exm, OutboxStatus.PENDING, key=f"cdrs:NL:CPO:{credit.id}")
    return {"exm": exm, "first": first, "second": second, "third": third, "credit": credit}


def listed(client, **query) -> list[str]:
    return [cdr.id for cdr, _ in client.get(reverse("dashboard:cdrs"), query).context["rows"]]


# --- Access --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dashboard:cdrs", "dashboard:cdr-export", "dashboard:cdr"])
def test_anonymous_users_log_in_first_and_users_without_a_role_are_refused(client, client_as, cdrs, name):
    url = reverse(name, args=["CDR-S1"] if name == "dashboard:cdr" else [])
    assert client.get(url)["Location"].startswith(reverse("dashboard:login"))
    assert client_as("none").get(url).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_lists_cdrs_with_their_push_state(client_as, cdrs, role):
    response = client_as(role).get(reverse("dashboard:cdrs"))
    states = {cdr.id: push.state for cdr, push in response.context["rows"]}
    assert states == {"S1-C": "pending", "CDR-S3": "not sent", "CDR-S2": "failed", "CDR-S1": "delivered"}
    assert list(states) == ["CDR-S3", "S1-C", "CDR-S2", "CDR-S1"]  # newest issued first
    html = response.content.decode()
    assert "ReadTimeout: partner did not answer" in html and "credit" in html


def test_cdrs_are_filtered_by_partner_location_period_and_push_state(client_as, cdrs):
    viewer = client_as("viewer")
    assert listed(viewer, partner=cdrs["exm"].pk) == ["S1-C", "CDR-S2", "CDR-S1"]
    assert listed(viewer, location="LOC-T2") == ["CDR-S3"]
    assert listed(viewer, issued_from="2026-03-11", issued_to="2026-03-12") == ["S1-C", "CDR-S2"]
    assert listed(viewer, issued_to="2026-03-10") == ["CDR-S1"]
    assert listed(viewer, push_state="failed") == ["CDR-S2"]
    assert listed(viewer, push_state="delivered") == ["CDR-S1"]
    assert listed(viewer, push_state="pending") == ["S1-C"]
    assert listed(viewer, push_state="not sent") == ["CDR-S3"]
    bad = viewer.get(reverse("dashboard:cdrs"), {"issued_from": "2026-03-12", "issued_to": "2026-03-11"})
    assert "The period ends before it starts" in bad.content.decode()


def test_the_list_takes_a_fixed_number_of_queries(client_as, cdrs, django_assert_max_num_queries):
    viewer = client_as("viewer")
    viewer.get(reverse("dashboard:cdrs"))
    with django_assert_max_num_queries(8):
        viewer.get(reverse("dashboard:cdrs"))


# --- Detail --------------------------------------------------------------------------------------------------


def test_the_detail_shows_the_cost_breakdown_and_the_push_with_its_error(client_as, cdrs):
    response = client_as("viewer").get(reverse("dashboard:cdr", args=["CDR-S2"]))
    costs = {line.label: (line.quantity, line.excl_vat, line.incl_vat) for line in response.context["costs"]}
    assert costs["Fixed"] == ("", Decimal("1.00"), Decimal("1.21"))
    assert costs["Energy"] == ("10.5 kWh", Decimal("3.68"), Decimal("4.45"))
    html = response.content.decode()
    assert 'data-testid="total-excl">4.68<' in html and 'data-testid="total-incl">5.66<' in html
    assert "ReadTimeout: partner did not answer" in html and ">Failed<" in html
    assert "&quot;total_cost&quot;" in html  # the OCPI CDR as the partner gets it
    assert b'data-testid="retry"' not in response.content  # viewers only see


def test_a_credited_cdr_links_to_its_credit_and_back(client_as, cdrs):
    viewer = client_as("viewer")
    assert "S1-C" in viewer.get(reverse("dashboard:cdr", args=["CDR-S1"])).content.decode()
    credit = viewer.get(reverse("dashboard:cdr", args=["S1-C"]))
    assert credit.context["cdr"].credit_reference_id == "CDR-S1"
    assert 'data-testid="total-excl">-8.00<' in credit.content.decode()


def test_a_missing_cdr_is_404(client_as):
    assert client_as("viewer").get(reverse("dashboard:cdr", args=["NOPE"])).status_code == 404


# --- CSV -----------------------------------------------------------------------------------------------------


def export(client, **query) -> tuple[list[dict], object]:
    response = client.get(reverse("dashboard:cdr-export"), query)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text))), response


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_the_csv_of_a_partner_and_period_holds_exactly_those_cdrs(client_as, cdrs, role):
    rows, response = export(client_as(role), partner=cdrs["exm"].pk, issued_from="2026-03-10", issued_to="2026-03-11")
    assert response["Content-Disposition"] == 'attachment; filename="cdrs_nl-exm_2026-03-10_2026-03-11.csv"'
    assert [row["id"] for row in rows] == ["CDR-S2", "CDR-S1"]
    second = rows[0]
    assert second == {
        "id": "CDR-S2",
        "session_id": "S2",
        "credit": "false",
        "credit_reference_id": "",
        "issued": "2026-03-11T09:00:00Z",
        "start_date_time": "2026-03-11T08:00:00Z",
        "end_date_time": "2026-03-11T09:00:00Z",
        "emsp_country_code": "NL",
        "emsp_party_id": "EXM",
        "token_uid": "TOKEN-1",
        "contract_id": "NL-EXM-C00000002",
        "location_id": "LOC-T1",
        "evse_uid": cdrs["second"].cdr_location["evse_uid"],
        "connector_id": "1",
        "currency": "EUR",
        "total_energy_kwh": "10.5000",
        "total_time_h": "1.0000",
        "total_parking_time_h": "0.0000",
        "fixed_cost_excl_vat": "1.0000",
        "energy_cost_excl_vat": "3.6800",
        "time_cost_excl_vat": "",
        "parking_cost_excl_vat": "",
        "reservation_cost_excl_vat": "",
        "total_cost_excl_vat": "4.6800",
        "total_cost_incl_vat": "5.6600",
        "push_state": "failed",
        "push_error": "ReadTimeout: partner did not answer",
    }
    assert rows[1]["push_state"] == "delivered" and rows[1]["push_error"] == ""


def test_the_csv_with_a_credit_sums_to_the_net_amount(client_as, cdrs):
    rows, response = export(client_as("viewer"), partner=cdrs["exm"].pk)
    assert response["Content-Disposition"] == 'attachment; filename="cdrs_nl-exm.csv"'
    assert sum(Decimal(row["total_cost_excl_vat"]) for row in rows) == Decimal("4.68")  # 8.00 - 8.00 + 4.68
    assert {row["id"]: row["credit_reference_id"] for row in rows}["S1-C"] == "CDR-S1"


def test_an_export_with_a_backwards_period_is_refused(client_as, cdrs):
    response = client_as("viewer").get(
        reverse("dashboard:cdr-export"), {"issued_from": "2026-03-12", "issued_to": "2026-03-11"}
    )
    assert response.status_code == 400


# --- Retry ---------------------------------------------------------------------------------------------------


@pytest.fixture
def outbox_retry(monkeypatch):
    """ocpi_api's requeue service, recorded: the dashboard only has to call it with the right message."""
    calls = []

    def retry(*, message_id):
        calls.append(message_id)
        return OutboxMessage.objects.select_related("partner").get(pk=message_id)

    monkeypatch.setattr(outbox, "outbox_retry", retry)
    return calls


def test_a_viewer_cannot_retry(client_as, cdrs, outbox_retry):
    response = client_as("viewer").post(reverse("dashboard:cdr-retry", args=["CDR-S2"]))
    assert response.status_code == 403 and outbox_retry == [] and not AuditLog.objects.exists()


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_an_operator_retries_a_failed_push_through_the_outbox(client_as, cdrs, outbox_retry, role):
    user = client_as(role)
    page = user.get(reverse("dashboard:cdr", args=["CDR-S2"]))
    assert b'data-testid="retry"' in page.content
    response = user.post(reverse("dashboard:cdr-retry", args=["CDR-S2"]), follow=True)
    failed = OutboxMessage.objects.get(object_key="cdrs:NL:CPO:CDR-S2")
    assert outbox_retry == [failed.pk]
    assert f"push #{failed.pk} to NL/EXM Example EMSP queued again" in response.content.decode()
    audit = AuditLog.objects.get()
    assert audit.action == "CdrPushRetry" and audit.payload["cdr"] == "CDR-S2" and audit.username == f"user-{role}"


def test_the_retry_puts_the_given_up_push_back_in_the_queue(
    client_as, cdrs, django_capture_on_commit_callbacks, monkeypatch
):
    """Through the real outbox service: the message is due again now, with a fresh give-up time."""
    from ocpi_api import tasks

    queued, runs = [], []
    monkeypatch.setattr(tasks.outbox_deliver, "delay", lambda message_id: queued.append(message_id))
    monkeypatch.setattr(tasks, "partner_delivery_queue", lambda partner_id: runs.append(partner_id))
    failed = OutboxMessage.objects.get(object_key="cdrs:NL:CPO:CDR-S2")
    with django_capture_on_commit_callbacks(execute=True):
        client_as("operator").post(reverse("dashboard:cdr-retry", args=["CDR-S2"]))
    failed.refresh_from_db()
    assert failed.status == OutboxStatus.PENDING and failed.give_up_at > failed.due_at + timedelta(days=3)
    # Queued for delivery: by a task of its own in-process, by its partner's delivery run with a broker.
    assert (queued, runs) in [([failed.pk], []), ([], [failed.partner_id])]
    assert failed.attempts == 5  # the history of tries stays


def test_delivered_or_unsent_cdrs_are_not_retried(client_as, cdrs, outbox_retry):
    operator = client_as("operator")
    assert b'data-testid="retry"' not in operator.get(reverse("dashboard:cdr", args=["CDR-S1"])).content
    delivered = operator.post(reverse("dashboard:cdr-retry", args=["CDR-S1"]), follow=True)
    assert "nothing to retry: the partner has it" in delivered.content.decode()
    unsent = operator.post(reverse("dashboard:cdr-retry", args=["CDR-S3"]), follow=True)
    assert "nothing to retry: the CDR was not queued" in unsent.content.decode()
    assert outbox_retry == [] and not AuditLog.objects.exists()


def test_retry_needs_csrf(make_user, cdrs, outbox_retry):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("op", "operator"))
    assert browser.post(reverse("dashboard:cdr-retry", args=["CDR-S2"])).status_code == 403
    assert outbox_retry == []


# --- Sessions with billing -----------------------------------------------------------------------------------


def test_sessions_are_filtered_by_partner_and_show_their_cost(client_as, cdrs):
    viewer = client_as("viewer")
    response = viewer.get(reverse("dashboard:sessions"), {"partner": cdrs["exm"].pk})
    assert [tx.transaction_id for tx in response.context["page"]] == ["2", "1"]
    html = response.content.decode()
    assert 'data-testid="cost">8.00<' in html
    everyone = viewer.get(reverse("dashboard:sessions")).context["page"]
    assert sorted(tx.transaction_id for tx in everyone) == ["1", "2", "3"]


def test_a_session_shows_its_cdr_cost_breakdown(client_as, cdrs):
    tx = cdrs["second"].session.transaction
    response = client_as("viewer").get(reverse("dashboard:session", args=[tx.pk]))
    assert response.context["cdr"].id == "CDR-S2"
    html = response.content.decode()
    assert 'data-testid="total-excl">4.68<' in html and "10.5 kWh" in html and 'href="/cdrs/CDR-S2/"' in html


def test_a_running_session_shows_its_running_cost(client_as, station_factory):
    station, _ = station_factory("CP-R1", evses=1)
    session = make_session(
        station=station, number=77, start=T0, kwh=Decimal("3.2"), cost=(Decimal("2.12"), Decimal("2.57"))
    )
    response = client_as("viewer").get(reverse("dashboard:session", args=[session.transaction_id]))
    assert response.context["cdr"] is None
    assert 'data-testid="running-cost">2.12 EUR<' in response.content.decode()


def test_a_transaction_not_billed_yet_says_so(client_as, station_factory):
    station, _ = station_factory("CP-R2", evses=1)
    tx = Transaction.objects.create(
        station=station, transaction_id="9", ocpp_version="1.6", ocpp_evse_id=1, started_at=T0, meter_start=0
    )
    assert "Not billed yet" in client_as("viewer").get(reverse("dashboard:session", args=[tx.pk])).content.decode()


def test_a_partner_controlled_token_uid_cannot_become_a_formula_in_the_export(client_as, cdrs, station_factory):
    station, _ = station_factory("CP-CSV", evses=1)
    hostile = make_cdr(
        make_session(station=station, number=9, start=T0, kwh=Decimal("1"), uid="=2+5*HYPERLINK()"),
        issued=T0 + timedelta(hours=1),
    )
    rows, _ = export(client_as("viewer"), partner=cdrs["exm"].pk)
    row = next(row for row in rows if row["id"] == hostile.id)
    assert row["token_uid"] == "'=2+5*HYPERLINK()"
    assert row["total_cost_excl_vat"] == "8.0000"


def test_cdrs_of_transactions_we_ended_without_the_chargers_stop_are_marked_and_filtered(client_as, cdrs):
    """A CDR closed at a reboot (or a new transaction, a free connector, housekeeping) stands on the last reading we
    had: staff see it marked and can list just those."""
    Transaction.objects.filter(pk=cdrs["second"].session.transaction_id).update(ended_by="reboot")
    Transaction.objects.filter(pk=cdrs["first"].session.transaction_id).update(ended_by="charger")
    viewer = client_as("viewer")
    assert listed(viewer, ended_by="without_stop") == ["CDR-S2"]
    assert listed(viewer, ended_by="reboot") == ["CDR-S2"]
    assert listed(viewer, ended_by="charger") == ["S1-C", "CDR-S1"]
    html = viewer.get(reverse("dashboard:cdrs")).content.decode()
    assert html.count('data-testid="ended-by"') == 1 and "the station booted again" in html


def test_a_session_ended_without_the_chargers_stop_says_how(client_as, cdrs):
    tx = cdrs["second"].session.transaction
    Transaction.objects.filter(pk=tx.pk).update(ended_by="new_transaction")
    viewer = client_as("viewer")
    detail = viewer.get(reverse("dashboard:session", args=[tx.pk])).content.decode()
    assert "ended by a new transaction on the connector" in detail
    assert viewer.get(reverse("dashboard:sessions")).content.decode().count('data-testid="ended-by"') == 1
