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


# --- Per phase: each phase's limit against what is planned and drawn on it ------------------------------------------

import re  # noqa: E402

from cpo.models import Connector, PowerType  # noqa: E402
from ocpp_gateway.models import StationVariable  # noqa: E402


def phase_row(page: str, name: str) -> list[str]:
    """The cells of a phase's row on the page, as text."""
    row = re.search(rf'<tr data-testid="phase-{name}">(.*?)</tr>', page, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]


@pytest.fixture
def phased_site(location, station_factory):
    """L1 has 25 A (other loads), L2 and L3 40 A. A three-phase car drawing 16 A on each phase, and a single-phase
    charger wired to L2 (ConnectorPhaseRotation 2.STR) whose car draws 10 A on it."""
    station, _ = station_factory("CP-PHASES", evses=2)
    group = LoadGroup.objects.create(
        name="depot grid", location=location, limit_amps=Decimal(40), limit_amps_l1=Decimal(25)
    )
    evse1, evse2 = station.evses.order_by("ocpp_evse_id")
    Connector.objects.filter(evse=evse2).update(power_type=PowerType.AC_1_PHASE)
    StationVariable.objects.create(station=station, variable="ConnectorPhaseRotation", value="0.RST,1.RST,2.STR")
    currents = {1: (Decimal(16), Decimal(16), Decimal("15.8")), 2: (Decimal(10), None, None)}
    for evse, amps in ((evse1, 16), (evse2, 10)):
        l1, l2, l3 = currents[evse.ocpp_evse_id]
        tx = Transaction.objects.create(
            station=station,
            evse=evse,
            ocpp_evse_id=evse.ocpp_evse_id,
            transaction_id=str(evse.ocpp_evse_id),
            ocpp_version="1.6",
            started_at=timezone.now(),
            meter_start=0,
            current_l1_last=l1,
            current_l2_last=l2,
            current_l3_last=l3,
        )
        ChargingProfile.objects.create(
            station=station,
            ocpp_evse_id=evse.ocpp_evse_id,
            transaction=tx,
            profile_id=1,
            limit=Decimal(amps),
            profile={},
            source="planner",
            status="Accepted",
        )
    return group


def test_each_phase_shows_its_limit_what_is_planned_and_what_the_meters_measured(client_as, phased_site):
    client = client_as("viewer")
    assert "L1 25.0 A · L2 40.0 A · L3 40.0 A" in client.get("/load/").content.decode()
    page = client.get(f"/load/{phased_site.pk}/").content.decode()
    assert "L1 25.0 A · L2 40.0 A · L3 40.0 A" in page
    # Phase, limit, planned, (meter), drawn, (meter), sessions.
    assert phase_row(page, "L1") == ["L1", "25.0", "16.0", "", "16.0", "", "1"]
    assert phase_row(page, "L2") == ["L2", "40.0", "26.0", "", "26.0", "", "2"]  # the single-phase charger is on L2
    assert phase_row(page, "L3") == ["L3", "40.0", "16.0", "", "15.8", "", "1"]
    assert "<td>L1 L2 L3</td>" in page and "<td>L2</td>" in page  # each session's phases


def test_a_site_with_one_limit_still_reads_as_before(client_as, site):
    page = client_as("viewer").get(f"/load/{site.pk}/").content.decode()
    assert "40.0 A per phase" in page
    assert [phase_row(page, name)[1] for name in ("L1", "L2", "L3")] == ["40.0", "40.0", "40.0"]
    # 11,040 W on 3 x 230 V: 16 A drawn on each phase (no per-phase meter values: the power spread over them).
    assert phase_row(page, "L1")[4] == "16.0"


def test_a_single_phase_group_shows_no_phase_table(client_as, site):
    site.phases = 1
    site.save()
    page = client_as("viewer").get(f"/load/{site.pk}/").content.decode()
    assert "40.0 A (single phase)" in page and 'data-testid="load-phases"' not in page
