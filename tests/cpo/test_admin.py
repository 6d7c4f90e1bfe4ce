"""Staff find stations, their frames and their transactions in the admin; secrets never show."""

from ocpp_gateway.models import MessageLog


def test_station_admin_links_to_its_message_log_and_hides_the_secret(admin_client, station_factory):
    station, secret = station_factory("CP-ADMIN")
    MessageLog.objects.create(
        station=station,
        identity="CP-ADMIN",
        direction="IN",
        message_type=2,
        unique_id="u1",
        action="Heartbeat",
        payload='[2,"u1","Heartbeat",{}]',
        created_at="2026-11-20T10:00Z",
    )
    page = admin_client.get(f"/admin/cpo/chargingstation/{station.pk}/change/").content.decode()
    assert "/admin/ocpp_gateway/messagelog/?identity=CP-ADMIN" in page
    assert secret not in page and station.secret_hash not in page
    log = admin_client.get("/admin/ocpp_gateway/messagelog/?identity=CP-ADMIN").content.decode()
    assert "Heartbeat" in log


def test_admin_lists_answer(admin_client, station_factory):
    station_factory("CP-LISTS")
    for url in (
        "/admin/cpo/location/",
        "/admin/cpo/evse/",
        "/admin/cpo/connector/",
        "/admin/cpo/chargingstation/",
        "/admin/cpo/token/",
        "/admin/ocpp_gateway/transaction/",
        "/admin/ocpp_gateway/metervalue/",
        "/admin/ocpp_gateway/messagelog/",
    ):
        assert admin_client.get(url).status_code == 200, url


# --- Load groups: a limit per phase, entered by staff in the admin ---------------------------------------------------

import json  # noqa: E402
from decimal import Decimal  # noqa: E402

from cpo.models import LoadGroup  # noqa: E402


def load_group_form(location, **fields) -> dict:
    form = {
        "name": "garage grid",
        "location": location.pk,
        "limit_amps": "40",
        "limit_amps_l1": "",
        "limit_amps_l2": "",
        "limit_amps_l3": "",
        "phases": "3",
        "voltage": "230",
        "min_charging_amps": "6",
        "schedule": "[]",
        "enabled": "on",
    }
    return form | fields


def test_staff_give_l1_its_own_limit_and_a_per_phase_evening_limit(admin_client, location):
    add = admin_client.get("/admin/cpo/loadgroup/add/").content.decode()
    assert 'name="limit_amps_l1"' in add and 'name="limit_amps_l3"' in add
    evening = [{"start": "17:00", "end": "21:00", "limit_amps": 32, "limit_amps_l1": 16}]
    answer = admin_client.post(
        "/admin/cpo/loadgroup/add/",
        load_group_form(location, limit_amps_l1="32", schedule=json.dumps(evening)),
    )
    assert answer.status_code == 302, answer.content.decode()
    group = LoadGroup.objects.get()
    assert (group.limit_amps, group.limit_amps_l1, group.limit_amps_l2, group.limit_amps_l3) == (40, 32, None, None)
    assert group.schedule == evening
    listing = admin_client.get("/admin/cpo/loadgroup/").content.decode()
    assert "L1 32.0 · L2 40.0 · L3 40.0" in listing


def test_a_negative_phase_limit_is_refused(admin_client, location):
    answer = admin_client.post("/admin/cpo/loadgroup/add/", load_group_form(location, limit_amps_l2="-5"))
    assert answer.status_code == 200 and "A limit is 0 A or more." in answer.content.decode()
    assert not LoadGroup.objects.exists()


def test_a_single_phase_group_has_only_l1(admin_client, location):
    answer = admin_client.post("/admin/cpo/loadgroup/add/", load_group_form(location, phases="1", limit_amps_l3="20"))
    assert "A single-phase group has only L1." in answer.content.decode()
    evening = [{"start": "17:00", "end": "21:00", "limit_amps_l2": 10}]
    answer = admin_client.post(
        "/admin/cpo/loadgroup/add/", load_group_form(location, phases="1", schedule=json.dumps(evening))
    )
    assert "Entry 1: a single-phase group has only L1." in answer.content.decode()
    assert not LoadGroup.objects.exists()
    ok = admin_client.post("/admin/cpo/loadgroup/add/", load_group_form(location, phases="1", limit_amps_l1="25"))
    assert ok.status_code == 302 and LoadGroup.objects.get().limit_amps_l1 == Decimal(25)


def test_a_schedule_entry_without_a_limit_or_with_a_bad_time_is_refused(admin_client, location):
    for schedule, error in (
        ([{"start": "17:00", "end": "21:00"}], "Entry 1 gives no limit"),
        ([{"start": "5pm", "end": "21:00", "limit_amps": 10}], "Entry 1: start is a time of day"),
        ([{"start": "17:00", "end": "21:00", "limit_amps_l1": -1}], "Entry 1: limit_amps_l1 is a number of amperes"),
        ({"start": "17:00"}, "A list of entries"),
    ):
        answer = admin_client.post(
            "/admin/cpo/loadgroup/add/", load_group_form(location, schedule=json.dumps(schedule))
        ).content.decode()
        assert error in answer.replace("&quot;", '"'), schedule
    assert not LoadGroup.objects.exists()
