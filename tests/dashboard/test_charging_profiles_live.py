"""Operators set and clear charging profiles from the station page. The SetChargingProfile reaches the live charger in
the words of its version (1.6 ChargePointMaxProfile on connectorId 0, 2.0.1 ChargingStationMaxProfile on evseId 0
with the ids 2.0.1 requires), is audited, and is kept with the other profiles, source staff, whatever the charger
answers (Accepted, Rejected, no answer, offline); the station-wide maximum on a single connector is refused before
anything is sent. Clearing sends ClearChargingProfile with the profile's id and marks its row Cleared. Viewers do
neither."""

import asyncio
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from cpo.dashboard.models import AuditLog
from cpo.dashboard.services import STAFF_CHARGING_PROFILE_ID_BASE, STAFF_CHARGING_PROFILE_STACK_LEVEL
from ocpi_api.commands.send import CHARGING_PROFILE_STACK_LEVEL
from ocpp_gateway.models import ChargingProfile
from ocpp_gateway.services.load_management import PLANNER_DEFAULT_PROFILE_ID, PLANNER_TX_PROFILE_ID_BASE
from tests.dashboard.chargers import boot
from tests.ocpp_gateway.chargers import ProfiledCharger16, ProfiledCharger201, connected
from tests.support import StaffBrowser, start_daphne, stop

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def profiles_daphne(django_db_setup, django_db_blocker):
    """Tasks in-process and a short call timeout (the silent charger's request gives up after 2 s)."""
    server = start_daphne("profiles", CELERY_TASK_ALWAYS_EAGER="1", OCPP_CALL_TIMEOUT="2")
    yield server
    stop(server)


class Profiles16(ProfiledCharger16):
    """Keeps the profiles it is sent (or refuses them) and clears them by id."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cleared: list[dict] = []

    @on(Action16.clear_charging_profile)
    def on_clear_charging_profile(self, **kwargs):
        self.cleared.append(kwargs)
        return result16.ClearChargingProfile(status="Accepted")


class Refusing16(Profiles16):
    refuse = True


class Profiles201(ProfiledCharger201):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cleared: list[dict] = []

    @on(Action201.clear_charging_profile)
    def on_clear_charging_profile(self, **kwargs):
        self.cleared.append(kwargs)
        return result201.ClearChargingProfile(status="Accepted")


class Silent201(Profiles201):
    async def route_message(self, raw_msg):
        if '"SetChargingProfile"' in raw_msg:
            return None  # never answered
        return await super().route_message(raw_msg)


def command_url(identity: str, command: str) -> str:
    return reverse("dashboard:station-command", args=[identity, command])


def set_profile(staff: StaffBrowser, identity: str, **fields) -> str:
    data = {"minutes": "", "number_phases": "", **fields}
    return staff.post(
        command_url(identity, "set-charging-profile"),
        {f"set-charging-profile-{name}": value for name, value in data.items()},
    )


def clear_profile(staff: StaffBrowser, identity: str, profile: ChargingProfile) -> str:
    return staff.post(command_url(identity, "clear-charging-profile"), {"clear-charging-profile-profile": profile.pk})


def profile_rows(page: str) -> list[str]:
    """The station page's charging profiles, newest first, each as its visible text after the time it was sent."""
    table = re.search(r'<table data-testid="charging-profiles">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r'<tr data-profile="\d+">(.*?)</tr>', table, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip().split(" ", 2)[2] for row in rows]


def command_form(page: str, command: str) -> str:
    found = re.search(rf'<form [^>]*id="command-{command}".*?</form>', page, re.S)
    assert found, f"no {command} form on the page"
    return found.group(0)


def test_an_operator_sets_and_clears_profiles_on_a_1_6_station_in_1_6_words(profiles_daphne, station_factory):
    _, secret = station_factory("CP16-PROF", evses=2)
    staff = StaffBrowser(profiles_daphne)

    async def scenario():
        async with connected(profiles_daphne.ocpp_url("CP16-PROF"), "CP16-PROF", secret, cls=Profiles16) as cp:
            await boot(cp, "1.6")
            pages = [
                await asyncio.to_thread(
                    set_profile,
                    staff,
                    "CP16-PROF",
                    evse=0,
                    purpose="ChargePointMaxProfile",
                    limit="32",
                    unit="A",
                    minutes="90",
                ),
                await asyncio.to_thread(
                    set_profile, staff, "CP16-PROF", evse=2, purpose="TxDefaultProfile", limit="7.4", unit="W"
                ),
            ]
            station_max = await asyncio.to_thread(
                ChargingProfile.objects.get, station__identity="CP16-PROF", purpose="ChargePointMaxProfile"
            )
            pages.append(await asyncio.to_thread(clear_profile, staff, "CP16-PROF", station_max))
            return pages, [p for _, p in cp.profiles], cp.cleared

    (set_max, set_default, cleared_page), received, cleared = asyncio.run(scenario())
    max_id, default_id = STAFF_CHARGING_PROFILE_ID_BASE, STAFF_CHARGING_PROFILE_ID_BASE + 21
    assert [
        (p["connector_id"], p["charging_profile_purpose"], p["charging_profile_id"], p["stack_level"]) for p in received
    ] == [(0, "ChargePointMaxProfile", max_id, 2), (2, "TxDefaultProfile", default_id, 2)]
    assert "transaction_id" not in received[0] and received[0]["charging_profile_kind"] == "Absolute"
    schedule = received[0]["charging_schedule"]
    assert (schedule["charging_rate_unit"], schedule["duration"]) == ("A", 90 * 60)
    assert schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 32.0}]
    assert received[1]["charging_schedule"]["charging_rate_unit"] == "W"
    # (The `ocpp` package reads 1.6 limits as Decimal, for the schema's multipleOf 0.1.)
    assert received[1]["charging_schedule"]["charging_schedule_period"] == [
        {"start_period": 0, "limit": Decimal("7.4")}
    ]
    assert "duration" not in received[1]["charging_schedule"]  # until cleared
    assert "SetChargingProfile: Accepted" in set_max and "SetChargingProfile: Accepted" in set_default
    assert profile_rows(set_default) == [
        "Staff 2 TxDefaultProfile 2 7.4 W Accepted —",
        "Staff whole station ChargePointMaxProfile 2 32.0 A Accepted —",
    ]
    # Both are offered for clearing; clearing the maximum sends its id and its row says so.
    assert f"{max_id} · whole station · ChargePointMaxProfile · 32.0 A · Staff" in command_form(
        set_default, "clear-charging-profile"
    )
    assert cleared == [{"id": max_id}]
    assert "ClearChargingProfile: Accepted" in cleared_page
    assert profile_rows(cleared_page)[1] == "Staff whole station ChargePointMaxProfile 2 32.0 A Cleared —"
    clear_form = command_form(cleared_page, "clear-charging-profile")
    assert f"{default_id} · connector 2" in clear_form and f"{max_id} ·" not in clear_form
    rows = ChargingProfile.objects.filter(station__identity="CP16-PROF").order_by("id")
    assert [(r.source, r.ocpp_evse_id, r.limit, r.charging_rate_unit, r.status) for r in rows] == [
        ("staff", 0, Decimal("32.0"), "A", "Cleared"),
        ("staff", 2, Decimal("7.4"), "W", "Accepted"),
    ]
    audit = list(
        AuditLog.objects.filter(identity="CP16-PROF", username="staff-operator")
        .order_by("id")
        .values_list("action", "ok", "answer")
    )
    assert audit == [
        ("SetChargingProfile", True, {"status": "Accepted"}),
        ("SetChargingProfile", True, {"status": "Accepted"}),
        ("ClearChargingProfile", True, {"status": "Accepted"}),
    ]
    assert AuditLog.objects.filter(action="SetChargingProfile").order_by("id").first().payload == rows[0].profile


def test_an_operator_sets_and_clears_profiles_on_a_2_0_1_station_in_2_0_1_words(profiles_daphne, station_factory):
    _, secret = station_factory("CS201-PROF", evses=2)
    staff = StaffBrowser(profiles_daphne)

    async def scenario():
        url = profiles_daphne.ocpp_url("CS201-PROF")
        async with connected(url, "CS201-PROF", secret, version="2.0.1", cls=Profiles201) as cs:
            await boot(cs, "2.0.1")
            page = await asyncio.to_thread(
                set_profile,
                staff,
                "CS201-PROF",
                evse=0,
                purpose="ChargingStationMaxProfile",
                limit="22000",
                unit="W",
                minutes="15",
            )
            page = await asyncio.to_thread(
                set_profile,
                staff,
                "CS201-PROF",
                evse=1,
                purpose="TxDefaultProfile",
                limit="16.5",
                unit="A",
                number_phases="1",
            )
            default = await asyncio.to_thread(
                ChargingProfile.objects.get, station__identity="CS201-PROF", purpose="TxDefaultProfile"
            )
            cleared_page = await asyncio.to_thread(clear_profile, staff, "CS201-PROF", default)
            return page, cleared_page, [p for _, p in cs.profiles], cs.cleared

    page, cleared_page, received, cleared = asyncio.run(scenario())
    max_id, default_id = STAFF_CHARGING_PROFILE_ID_BASE, STAFF_CHARGING_PROFILE_ID_BASE + 11
    assert [(p["evse_id"], p["charging_profile_purpose"], p["id"], p["stack_level"]) for p in received] == [
        (0, "ChargingStationMaxProfile", max_id, 2),
        (1, "TxDefaultProfile", default_id, 2),
    ]
    [schedule] = received[0]["charging_schedule"]
    assert received[0]["charging_profile_kind"] == "Absolute" and schedule["id"] == max_id
    assert (schedule["charging_rate_unit"], schedule["duration"]) == ("W", 15 * 60)
    assert schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 22000.0}]
    [schedule] = received[1]["charging_schedule"]
    assert schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 16.5, "number_phases": 1}]
    assert "SetChargingProfile: Accepted" in page
    assert profile_rows(page) == [
        "Staff 1 TxDefaultProfile 2 16.5 A Accepted —",
        "Staff whole station ChargingStationMaxProfile 2 22000.0 W Accepted —",
    ]
    assert cleared == [{"charging_profile_id": default_id}]
    assert "ClearChargingProfile: Accepted" in cleared_page
    assert profile_rows(cleared_page)[0] == "Staff 1 TxDefaultProfile 2 16.5 A Cleared —"
    statuses = dict(ChargingProfile.objects.filter(station__identity="CS201-PROF").values_list("purpose", "status"))
    assert statuses == {"ChargingStationMaxProfile": "Accepted", "TxDefaultProfile": "Cleared"}
    audit = list(AuditLog.objects.filter(identity="CS201-PROF").order_by("id").values_list("action", "payload"))
    assert [action for action, _ in audit if action.endswith("ChargingProfile")] == [
        "SetChargingProfile",
        "SetChargingProfile",
        "ClearChargingProfile",
    ]
    assert audit[-1][1] == {"chargingProfileId": default_id}


def test_a_new_limit_replaces_staff_s_previous_one_for_the_same_connector_and_purpose(profiles_daphne, station_factory):
    _, secret = station_factory("CP16-AGAIN", evses=1)
    staff = StaffBrowser(profiles_daphne)

    async def scenario():
        async with connected(profiles_daphne.ocpp_url("CP16-AGAIN"), "CP16-AGAIN", secret, cls=Profiles16) as cp:
            await boot(cp, "1.6")
            for limit in ("16", "10"):
                page = await asyncio.to_thread(
                    set_profile, staff, "CP16-AGAIN", evse=1, purpose="TxDefaultProfile", limit=limit, unit="A"
                )
            return page, [p["charging_profile_id"] for _, p in cp.profiles]

    page, ids = asyncio.run(scenario())
    assert ids == [STAFF_CHARGING_PROFILE_ID_BASE + 11] * 2  # the same id: the charger replaces the first
    assert profile_rows(page) == [
        "Staff 1 TxDefaultProfile 2 10.0 A Accepted —",
        "Staff 1 TxDefaultProfile 2 16.0 A Replaced —",
    ]
    clear_form = command_form(page, "clear-charging-profile")
    assert "10.0 A" in clear_form and "16.0 A" not in clear_form


def test_a_rejected_profile_is_kept_as_rejected_and_shown(profiles_daphne, station_factory):
    _, secret = station_factory("CP16-PROF-REJ", evses=1)
    staff = StaffBrowser(profiles_daphne)

    async def scenario():
        url = profiles_daphne.ocpp_url("CP16-PROF-REJ")
        async with connected(url, "CP16-PROF-REJ", secret, cls=Refusing16) as cp:
            await boot(cp, "1.6")
            page = await asyncio.to_thread(
                set_profile, staff, "CP16-PROF-REJ", evse=1, purpose="TxDefaultProfile", limit="6", unit="A"
            )
            return page, cp.profiles

    page, received = asyncio.run(scenario())
    assert len(received) == 1
    row = ChargingProfile.objects.get(station__identity="CP16-PROF-REJ")
    assert (row.source, row.status, row.purpose, row.limit) == ("staff", "Rejected", "TxDefaultProfile", Decimal("6"))
    assert "SetChargingProfile: Rejected" in page
    assert profile_rows(page) == ["Staff 1 TxDefaultProfile 2 6.0 A Rejected —"]
    # Nothing the station holds: nothing to clear.
    assert "No charging profile the station accepted is on record." in command_form(page, "clear-charging-profile")
    audit = AuditLog.objects.get(identity="CP16-PROF-REJ", action="SetChargingProfile")
    assert (audit.ok, audit.answer) == (True, {"status": "Rejected"})


def test_a_station_that_does_not_answer_or_is_offline_gets_a_row_saying_so(profiles_daphne, station_factory):
    _, secret = station_factory("CS201-PROF-MUTE", evses=1)
    station_factory("CP16-PROF-OFF", evses=1)
    staff = StaffBrowser(profiles_daphne)

    async def scenario():
        url = profiles_daphne.ocpp_url("CS201-PROF-MUTE")
        async with connected(url, "CS201-PROF-MUTE", secret, version="2.0.1", cls=Silent201) as cs:
            await boot(cs, "2.0.1")
            return await asyncio.to_thread(
                set_profile, staff, "CS201-PROF-MUTE", evse=1, purpose="TxDefaultProfile", limit="8", unit="A"
            )

    silent_page = asyncio.run(scenario())
    offline_page = set_profile(staff, "CP16-PROF-OFF", evse=0, purpose="ChargePointMaxProfile", limit="20", unit="A")
    assert "SetChargingProfile failed: timeout" in silent_page
    assert profile_rows(silent_page) == ["Staff 1 TxDefaultProfile 2 8.0 A timeout —"]
    assert "SetChargingProfile failed: offline" in offline_page
    assert profile_rows(offline_page) == ["Staff whole station ChargePointMaxProfile 2 20.0 A offline —"]
    assert set(ChargingProfile.objects.values_list("station__identity", "source", "status")) == {
        ("CS201-PROF-MUTE", "staff", "timeout"),
        ("CP16-PROF-OFF", "staff", "offline"),
    }
    assert not AuditLog.objects.filter(action="SetChargingProfile", ok=True).exists()


def test_the_station_wide_maximum_on_one_connector_is_refused_and_not_sent(profiles_daphne, station_factory):
    _, secret = station_factory("CP16-PROF-BAD", evses=2)
    staff = StaffBrowser(profiles_daphne)

    async def scenario():
        url = profiles_daphne.ocpp_url("CP16-PROF-BAD")
        async with connected(url, "CP16-PROF-BAD", secret, cls=Profiles16) as cp:
            await boot(cp, "1.6")
            pages = [
                await asyncio.to_thread(
                    set_profile, staff, "CP16-PROF-BAD", evse=1, purpose="ChargePointMaxProfile", limit="16", unit="A"
                )
            ]
            for bad in ({"limit": "0"}, {"limit": "-3"}, {"limit": "16.25"}, {"unit": "kW"}, {"number_phases": "2"}):
                fields = {"evse": 1, "purpose": "TxDefaultProfile", "limit": "16", "unit": "A", **bad}
                pages.append(await asyncio.to_thread(set_profile, staff, "CP16-PROF-BAD", **fields))
            return pages, cp.profiles

    (refused, *others), received = asyncio.run(scenario())
    assert "Set charging profile: not sent." in refused
    assert "ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile) is only valid on connector 0" in refused
    assert all("Set charging profile: not sent." in page for page in others)
    assert received == []
    assert not ChargingProfile.objects.filter(station__identity="CP16-PROF-BAD").exists()
    assert not AuditLog.objects.filter(identity="CP16-PROF-BAD", username="staff-operator").exists()


def test_viewers_see_the_profiles_but_cannot_set_or_clear_them(profiles_daphne, station_factory):
    station, _ = station_factory("CP16-PROF-VIEW", evses=1)
    held = ChargingProfile.objects.create(
        station=station,
        ocpp_evse_id=1,
        profile_id=STAFF_CHARGING_PROFILE_ID_BASE + 11,
        purpose="TxDefaultProfile",
        stack_level=STAFF_CHARGING_PROFILE_STACK_LEVEL,
        limit=Decimal("10"),
        profile={},
        source="staff",
        status="Accepted",
    )
    viewer = StaffBrowser(profiles_daphne, role="viewer")
    page = viewer.page("/stations/CP16-PROF-VIEW/")
    assert profile_rows(page) == ["Staff 1 TxDefaultProfile 2 10.0 A Accepted —"]
    assert 'id="command-set-charging-profile"' not in page and 'id="command-clear-charging-profile"' not in page
    for command, data in (
        ("set-charging-profile", {"evse": 1, "purpose": "TxDefaultProfile", "limit": "16", "unit": "A"}),
        ("clear-charging-profile", {"profile": held.pk}),
    ):
        answer = viewer.http.post(
            command_url("CP16-PROF-VIEW", command),
            data={**{f"{command}-{k}": v for k, v in data.items()}, "csrfmiddlewaretoken": viewer.csrf},
        )
        assert answer.status_code == 403
    assert list(ChargingProfile.objects.values_list("status", flat=True)) == ["Accepted"]
    assert not AuditLog.objects.filter(identity="CP16-PROF-VIEW").exists()


def test_staff_profiles_keep_out_of_the_planner_s_and_the_partners_ids_and_stack_level():
    planner_ids = {PLANNER_DEFAULT_PROFILE_ID, PLANNER_TX_PROFILE_ID_BASE}
    assert STAFF_CHARGING_PROFILE_ID_BASE > max(planner_ids) + 10_000  # and beyond any transaction pk for years
    assert STAFF_CHARGING_PROFILE_ID_BASE + 10 * 9_999 + 1 < 2**31  # a 32-bit integer on the charger
    assert STAFF_CHARGING_PROFILE_STACK_LEVEL > max(settings.LOAD_MANAGEMENT_STACK_LEVEL, CHARGING_PROFILE_STACK_LEVEL)
