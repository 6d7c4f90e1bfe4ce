"""The station page shows the station's local authorization list (version, state, what the station last said) and
lets an operator send it whole again; the resync and every SendLocalList it causes are audited under their name."""

import html
import os
import time

import pytest
from django.urls import reverse
from django.utils import timezone
from ocpp.v16 import call as call16

from cpo.dashboard.models import AuditLog
from cpo.models import Token
from ocpp_gateway.models import LocalAuthList
from tests.dashboard.chargers import ChargerThread
from tests.ocpp_gateway.local_list_chargers import ListCharger16
from tests.support import start_daphne, stop


def text(response) -> str:
    return html.unescape(response.content.decode())


def wait(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.django_db
def test_the_station_page_shows_a_list_in_sync_and_one_the_station_did_not_answer_about(station_factory, client_as):
    synced, _ = station_factory("LL-PAGE-1", evses=1)
    silent, _ = station_factory("LL-PAGE-2", evses=1)
    LocalAuthList.objects.create(
        station=synced,
        version=4,
        station_version=4,
        state="in_sync",
        entries_count=12,
        wanted_count=12,
        last_status="Accepted",
        last_sync_at=timezone.now(),
        dirty=False,
    )
    LocalAuthList.objects.create(
        station=silent,
        version=2,
        station_version=2,
        state="no_answer",
        entries_count=3,
        wanted_count=5,
        max_entries=None,
        last_status="timeout",
        last_sync_at=timezone.now(),
    )
    viewer = client_as("viewer")
    page = text(viewer.get(reverse("dashboard:station", args=["LL-PAGE-1"])))
    assert "Local authorization list" in page
    assert "in sync</strong>" in page and "version 4" in page and "12 entries" in page
    assert "Resync" not in page  # viewers do not send commands
    page = text(viewer.get(reverse("dashboard:station", args=["LL-PAGE-2"])))
    assert "the station did not answer</strong>" in page and "3 entries of 5 tokens" in page
    assert "last answer: <code>timeout</code>" in page


@pytest.fixture(scope="module")
def list_daphne(django_db_setup, django_db_blocker):
    server = start_daphne("local-list-dash", CELERY_TASK_ALWAYS_EAGER="1")
    yield server
    stop(server)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL")
def test_an_operator_resyncs_a_station_and_the_full_list_it_gets_is_audited_under_their_name(
    list_daphne, station_factory, client_as
):
    station, secret = station_factory("LL-DASH", evses=1)
    Token.objects.create(uid="CARD-1")
    charger = ChargerThread(list_daphne.ocpp_url("LL-DASH"), "LL-DASH", secret, cls=ListCharger16)
    try:
        charger.send(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
        wait(lambda: LocalAuthList.objects.filter(station=station, state="in_sync").exists(), "not synced on boot")
        operator = client_as("operator")
        page = text(operator.post(reverse("dashboard:station-local-list-resync", args=["LL-DASH"]), follow=True))
        assert "Local list sent: version 2, in sync" in page
        assert [(kind, version) for kind, version, _ in charger.cp.local_list.updates] == [("Full", 1), ("Full", 2)]
        assert charger.cp.local_list.entries == {"CARD-1": "Accepted"}
        charger.cp.local_list.answer = "Failed"
        page = text(operator.post(reverse("dashboard:station-local-list-resync", args=["LL-DASH"]), follow=True))
        assert "Local list not in sync: the station refused it (Failed)" in page
    finally:
        charger.close()
    entries = list(
        AuditLog.objects.filter(identity="LL-DASH", action__in=["SendLocalList", "LocalListResync"])
        .order_by("id")
        .values_list("username", "action", "ok")
    )
    assert entries == [
        ("platform: local list", "SendLocalList", True),
        ("user-operator", "SendLocalList", True),
        ("user-operator", "LocalListResync", True),
        ("user-operator", "SendLocalList", True),  # the charger answered: Failed
        ("user-operator", "LocalListResync", False),
    ]
