"""Staff reserve a connector from the station page (issue 12, item 5): the ReserveNow reaches the live charger with
our reservation id, is audited like every dashboard command, and the station page lists the reservation through its
lifecycle (accepted with an OCPI session in RESERVATION, then cancelled and the session COMPLETED; a refused one is
REJECTED with the charger's answer)."""

import html
import os
import re
import time

import pytest
from django.urls import reverse
from ocpp.routing import on
from ocpp.v16 import call
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16

from billing.models import Session
from cpo.dashboard.models import AuditLog
from cpo.models import ChargingStation
from ocpp_gateway.models import Reservation
from tests.dashboard.chargers import ChargerThread
from tests.ocpp_gateway.chargers import Charger16

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL"),
]


class ReservingCharger16(Charger16):
    answers = ["Accepted", "Occupied"]

    @on(Action16.reserve_now)
    def on_reserve_now(self, connector_id, expiry_date, id_tag, reservation_id, **kwargs):
        self.received.append(("ReserveNow", {"connector_id": connector_id, "reservation_id": reservation_id}))
        return result16.ReserveNow(status=self.answers[len(self.received) - 1])

    @on(Action16.cancel_reservation)
    def on_cancel_reservation(self, reservation_id, **kwargs):
        self.received.append(("CancelReservation", {"reservation_id": reservation_id}))
        return result16.CancelReservation(status="Accepted")


@pytest.fixture
def billing_here():
    """Billing's tasks run in this process (no Celery worker in these tests), as in the embedded default."""
    from cpo.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def reservation_row(page: str, pk: int) -> str:
    found = re.search(rf'<tr data-reservation="{pk}">(.*?)</tr>', page, re.S)
    assert found, f"reservation {pk} is not on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_staff_reserve_from_the_station_page_and_see_the_reservation_accepted_then_cancelled(
    live_daphne, station_factory, client_as, local_token, billing_here
):
    _, secret = station_factory("CP16-RES", evses=2)
    charger = ChargerThread(live_daphne.ocpp_url("CP16-RES"), "CP16-RES", secret, cls=ReservingCharger16)
    try:
        charger.send(call.BootNotification(charge_point_model="Wallbox X", charge_point_vendor="ACME"))
        deadline = time.monotonic() + 5
        while not ChargingStation.objects.get(identity="CP16-RES").online:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        operator = client_as("operator")
        url = reverse("dashboard:station-command", args=["CP16-RES", "reserve-now"])
        form = {"reserve-now-evse": "2", "reserve-now-token": local_token.pk, "reserve-now-minutes": "30"}
        page = html.unescape(operator.post(url, form, follow=True).content.decode())
        accepted = Reservation.objects.get()
        assert "ReserveNow: Accepted" in page
        row = reservation_row(page, accepted.pk)
        assert "ACCEPTED" in row and "RFID-OK-1" in row and "RESERVATION" in row, row  # the session RESERVATION
        refused_page = html.unescape(operator.post(url, form, follow=True).content.decode())
        refused = Reservation.objects.exclude(pk=accepted.pk).get()
        assert "REJECTED" in reservation_row(refused_page, refused.pk)
        assert "Occupied" in reservation_row(refused_page, refused.pk)

        cancel = reverse("dashboard:station-command", args=["CP16-RES", "cancel-reservation"])
        page = html.unescape(
            operator.post(cancel, {"cancel-reservation-reservation": accepted.pk}, follow=True).content.decode()
        )
        row = reservation_row(page, accepted.pk)
        assert "CANCELLED" in row and "COMPLETED" in row, row
    finally:
        charger.close()
    assert charger.cp.received == [
        ("ReserveNow", {"connector_id": 2, "reservation_id": accepted.pk}),
        ("ReserveNow", {"connector_id": 2, "reservation_id": refused.pk}),
        ("CancelReservation", {"reservation_id": accepted.pk}),
    ]
    staff = AuditLog.objects.exclude(username__startswith="platform:")  # not what the platform asks after a boot
    assert list(staff.order_by("id").values_list("action", "ok")) == [
        ("ReserveNow", True),
        ("ReserveNow", True),
        ("CancelReservation", True),
    ]
    assert staff.first().username == "user-operator"
    session = Session.objects.get()
    assert (session.reservation_id, session.status, session.emsp_party_id) == (accepted.pk, "COMPLETED", "")
