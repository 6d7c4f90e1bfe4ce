"""Staff ask a station for its composite schedule from the station page (issue 12, item 7): GetCompositeSchedule
reaches the live charger in the words of its version (1.6 connectorId, 2.0.1 evseId, the unit when asked for), the
answer is kept and drawn per EVSE, and a station that rejects, never answers or is offline gets a clear state on the
page. Every request is in the audit log under the staff member's name. The page also lists the charging profiles the
station was sent, with their source."""

import asyncio
import re
from decimal import Decimal

import pytest
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16

from cpo.dashboard.models import AuditLog
from ocpp_gateway.models import ChargingProfile, CompositeSchedule
from tests.dashboard.chargers import Scheduling16, Scheduling201, boot
from tests.ocpp_gateway.chargers import Charger16, Charger201, connected
from tests.support import StaffBrowser, start_daphne, stop

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def schedule_daphne(django_db_setup, django_db_blocker):
    """Tasks in-process and a short call timeout (the silent charger's request gives up after 2 s)."""
    server = start_daphne("schedules", CELERY_TASK_ALWAYS_EAGER="1", OCPP_CALL_TIMEOUT="2")
    yield server
    stop(server)


class Rejecting16(Charger16):
    @on(Action16.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id, duration, **kwargs):
        return result16.GetCompositeSchedule(status="Rejected")


class Silent201(Charger201):
    async def route_message(self, raw_msg):
        if '"GetCompositeSchedule"' in raw_msg:
            return None  # never answered
        return await super().route_message(raw_msg)


def block(page: str, evse: int) -> tuple[str, str]:
    """(data-state, visible text) of one EVSE's composite-schedule block on the station page."""
    found = re.search(
        rf'<div class="schedule" id="composite-schedule-{evse}" data-evse="{evse}" data-state="(\w+)">'
        r"(.*?)</form>",
        page,
        re.S,
    )
    assert found, f"no composite schedule block for EVSE {evse}"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(2))).strip()
    return found.group(1), text


def ask(staff: StaffBrowser, identity: str, evse: int, minutes: int, unit: str = "") -> str:
    return staff.post(f"/stations/{identity}/composite-schedule/", {"evse": evse, "minutes": minutes, "unit": unit})


def test_a_1_6_station_answers_its_composite_schedule_and_staff_see_it_drawn(schedule_daphne, station_factory):
    _, secret = station_factory("CS16-SCHED", evses=2)
    staff = StaffBrowser(schedule_daphne)

    async def scenario():
        url = schedule_daphne.ocpp_url("CS16-SCHED")
        async with connected(url, "CS16-SCHED", secret, cls=Scheduling16) as cp:
            await boot(cp, "1.6")
            page = await asyncio.to_thread(ask, staff, "CS16-SCHED", 1, 30)
            return page, cp.asked

    page, asked = asyncio.run(scenario())
    assert asked == [{"connector_id": 1, "duration": 1800}]  # no unit asked for: the charger's choice
    stored = CompositeSchedule.objects.get(station__identity="CS16-SCHED")
    assert (stored.ocpp_evse_id, stored.status, stored.charging_rate_unit) == (1, "Accepted", "A")
    assert stored.schedule_start.isoformat() == "2026-11-20T10:00:00+00:00"
    assert stored.periods == [{"start_period": 0, "limit": 16.0}, {"start_period": 600, "limit": 8.0}]
    assert "Composite schedule of connector 1: 2 period(s) in A" in page
    state, text = block(page, 1)
    assert state == "ok" and "Accepted" in text and "by staff-operator for 1800 s" in text
    assert 'id="schedule-chart-1"' in page
    # The chart's data: 16 A from 10:00, 8 A from 10:10, held until the end of the 30 minutes asked for.
    data = re.search(r'<script id="schedule-data-1" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert '"points": [[1795168800000, 16.0], [1795169400000, 8.0], [1795170600000, 8.0]]' in data
    assert block(page, 2)[0] == "empty" and block(page, 0)[0] == "empty"
    [audit] = AuditLog.objects.filter(identity="CS16-SCHED", action="GetCompositeSchedule")
    assert (audit.username, audit.ok, audit.payload) == ("staff-operator", True, {"connectorId": 1, "duration": 1800})


def test_a_2_0_1_station_is_asked_by_evse_id_in_the_unit_staff_chose(schedule_daphne, station_factory):
    _, secret = station_factory("CS201-SCHED", evses=2)
    staff = StaffBrowser(schedule_daphne)

    async def scenario():
        url = schedule_daphne.ocpp_url("CS201-SCHED")
        async with connected(url, "CS201-SCHED", secret, version="2.0.1", cls=Scheduling201) as cs:
            await boot(cs, "2.0.1")
            page = await asyncio.to_thread(ask, staff, "CS201-SCHED", 2, 60, "W")
            return page, cs.asked

    page, asked = asyncio.run(scenario())
    assert asked == [{"evse_id": 2, "duration": 3600, "charging_rate_unit": "W"}]
    stored = CompositeSchedule.objects.get(station__identity="CS201-SCHED")
    assert (stored.ocpp_evse_id, stored.status, stored.requested_unit, stored.charging_rate_unit) == (
        2,
        "Accepted",
        "W",
        "W",
    )
    assert stored.schedule_start.isoformat() == "2026-11-20T12:00:00+00:00"
    assert stored.periods == [{"start_period": 0, "limit": 11000.0}, {"start_period": 1800, "limit": 7400.0}]
    state, text = block(page, 2)
    assert state == "ok" and "in W" in text
    assert "11000.0" in text and "7400.0" in text  # the periods' table
    audit = AuditLog.objects.get(identity="CS201-SCHED", action="GetCompositeSchedule")
    assert audit.payload == {"evseId": 2, "duration": 3600, "chargingRateUnit": "W"}
    assert audit.answer["status"] == "Accepted"


@pytest.mark.parametrize(
    ("identity", "cls", "version", "status", "shown"),
    [
        ("CS-SCHED-REJ", Rejecting16, "1.6", "Rejected", "Rejected by the station"),
        ("CS-SCHED-MUTE", Silent201, "2.0.1", "timeout", "No answer from the station in time"),
    ],
)
def test_a_station_that_rejects_or_never_answers_gets_a_clear_state(
    schedule_daphne, station_factory, identity, cls, version, status, shown
):
    _, secret = station_factory(identity, evses=1)
    staff = StaffBrowser(schedule_daphne)

    async def scenario():
        async with connected(schedule_daphne.ocpp_url(identity), identity, secret, version=version, cls=cls) as cp:
            await boot(cp, version)
            return await asyncio.to_thread(ask, staff, identity, 1, 15)

    page = asyncio.run(scenario())
    stored = CompositeSchedule.objects.get(station__identity=identity)
    assert stored.status == status and stored.periods == [] and stored.schedule_start is None
    state, text = block(page, 1)
    assert state == "refused" and shown in text
    assert f"Composite schedule of connector 1: {status}" in page
    assert 'id="schedule-chart-1"' not in page
    audit = AuditLog.objects.get(identity=identity, action="GetCompositeSchedule")
    assert audit.ok == (status == "Rejected")


def test_an_offline_station_is_not_asked_and_the_page_says_so(schedule_daphne, station_factory):
    station_factory("CS-SCHED-OFF", evses=1)
    staff = StaffBrowser(schedule_daphne)
    page = ask(staff, "CS-SCHED-OFF", 1, 15)
    assert CompositeSchedule.objects.get(station__identity="CS-SCHED-OFF").status == "offline"
    state, text = block(page, 1)
    assert state == "refused" and "Not asked: the station is offline" in text
    assert 'data-testid="ask-schedule" disabled' in page  # and the button waits for the station


def test_a_request_that_makes_no_sense_is_not_sent(schedule_daphne, station_factory):
    station_factory("CS-SCHED-BAD", evses=1)
    staff = StaffBrowser(schedule_daphne)
    for evse, minutes, unit in ((1, 0, ""), (1, 24 * 60 + 1, ""), (7, 10, ""), (1, 10, "kW")):
        page = ask(staff, "CS-SCHED-BAD", evse, minutes, unit)
        assert "Composite schedule: not asked." in page
    assert not CompositeSchedule.objects.filter(station__identity="CS-SCHED-BAD").exists()
    assert not AuditLog.objects.filter(identity="CS-SCHED-BAD").exists()


def test_viewers_see_schedules_but_only_operators_ask(schedule_daphne, station_factory):
    station_factory("CS-SCHED-VIEW", evses=1)
    viewer = StaffBrowser(schedule_daphne, role="viewer")
    assert 'id="composite-schedule-1"' in viewer.page("/stations/CS-SCHED-VIEW/")
    answer = viewer.http.post(
        "/stations/CS-SCHED-VIEW/composite-schedule/",
        data={"evse": 1, "minutes": 10, "csrfmiddlewaretoken": viewer.csrf},
    )
    assert answer.status_code == 403
    assert not CompositeSchedule.objects.filter(station__identity="CS-SCHED-VIEW").exists()


def test_the_station_page_lists_the_profiles_it_was_sent_with_their_source(schedule_daphne, station_factory):
    station, _ = station_factory("CS-SCHED-PROF", evses=2)
    for source, evse, purpose, level, limit, unit, status in (
        ("planner", 1, "TxProfile", 1, "16.0", "A", "Accepted"),
        ("partner", 2, "TxProfile", 2, "7400.0", "W", "Rejected"),
        ("staff", 0, "TxDefaultProfile", 0, "10.0", "A", "timeout"),
    ):
        ChargingProfile.objects.create(
            station=station,
            ocpp_evse_id=evse,
            profile_id=1,
            purpose=purpose,
            stack_level=level,
            charging_rate_unit=unit,
            limit=Decimal(limit),
            profile={},
            source=source,
            status=status,
        )
    page = StaffBrowser(schedule_daphne, role="viewer").page("/stations/CS-SCHED-PROF/")
    table = re.search(r'<table data-testid="charging-profiles">(.*?)</table>', page, re.S).group(1)
    rows = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for row in re.findall(r"<tr data-profile=\"\d+\">(.*?)</tr>", table, re.S)
    ]
    # Newest first: the clock is in each row, so compare what follows it.
    assert [row.split(" ", 2)[2] for row in rows] == [
        "Staff whole station TxDefaultProfile 0 10.0 A timeout —",
        "Partner 2 TxProfile 2 7400.0 W Rejected —",
        "Planner 1 TxProfile 1 16.0 A Accepted —",
    ]
