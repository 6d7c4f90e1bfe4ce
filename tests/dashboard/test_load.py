"""The load-management page: staff see the site's limit and, per session, the planned share against the draw."""

from decimal import Decimal

import pytest
from django.utils import timezone

from cpo.models import LoadGroup
from ocpp_gateway.models import ChargingProfile, Transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(location, station_factory):
    station, _ = station_factory("CP-LOAD-1", evses=2)
    group = LoadGroup.objects.create(name="garage grid", location=location, limit_amps=Decimal(40))
    evse1, evse2 = station.evses.order_by("ocpp_evse_id")
    charging = Transaction.objects.create(
        station=station,
        evse=evse1,
        ocpp_evse_id=1,
        transaction_id="1",
        ocpp_version="1.6",
        started_at=timezone.now(),
        meter_start=0,
        power_last=Decimal(11040),
        id_tag="FLEET-7",
    )
    waiting = Transaction.objects.create(
        station=station,
        evse=evse2,
        ocpp_evse_id=2,
        transaction_id="2",
        ocpp_version="1.6",
        started_at=timezone.now(),
        meter_start=0,
    )
    for tx, amps, status in ((charging, 20, "Accepted"), (waiting, 20, "timeout")):
        ChargingProfile.objects.create(
            station=station,
            ocpp_evse_id=tx.ocpp_evse_id,
            transaction=tx,
            profile_id=1,
            limit=Decimal(amps),
            profile={},
            source="planner",
            status=status,
        )
    return group


def test_a_viewer_sees_the_limit_the_planned_shares_and_what_each_car_draws(client_as, site):
    client = client_as("viewer")
    listing = client.get("/load/").content.decode()
    assert "garage grid" in listing and "40.0" in listing

    page = client.get(f"/load/{site.pk}/").content.decode()
    assert "40.0 A per phase" in page
    # 11,040 W on 3 x 230 V is 16 A drawn of the 20 A planned; the other charger never confirmed its share.
    assert "16.0" in page and "FLEET-7" in page
    assert "timeout" in page
    assert 'data-testid="planned-total">20' in page.replace("\n", "")


def test_the_live_part_is_what_the_page_refetches(client_as, site):
    live = client_as("viewer").get(f"/load/{site.pk}/live/")
    assert live.status_code == 200 and b"<html" not in live.content and b"FLEET-7" in live.content
