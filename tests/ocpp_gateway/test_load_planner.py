"""The sharing rules of a site's limit, as staff would check them by hand."""

from decimal import Decimal as D

from ocpp_gateway.load_planner import Demand, load_plan, load_steps


def test_equal_share_when_everyone_can_use_it():
    plan = load_plan(limit_amps=D(48), demands=[Demand("a", D(32)), Demand("b", D(32)), Demand("c", D(32))])
    assert plan == {"a": D(16), "b": D(16), "c": D(16)}


def test_one_car_alone_gets_its_connector_maximum_not_the_whole_site():
    assert load_plan(limit_amps=D(100), demands=[Demand("a", D(32))]) == {"a": D(32)}


def test_share_never_exceeds_the_limit_after_rounding():
    plan = load_plan(limit_amps=D(50), demands=[Demand(k, D(32)) for k in "abc"])
    assert sum(plan.values()) <= 50
    assert plan == {"a": D("16.6"), "b": D("16.6"), "c": D("16.6")}


def test_the_minimum_current_is_respected_late_arrivals_are_paused():
    """Four cars on 20 A with a 6 A minimum: three charge at 6.6 A, the fourth (last to start) waits at 0."""
    plan = load_plan(limit_amps=D(20), demands=[Demand(k, D(32)) for k in "abcd"])
    assert plan["d"] == 0
    assert all(plan[k] >= 6 for k in "abc")
    assert sum(plan.values()) <= 20


def test_fleet_tokens_first():
    plan = load_plan(limit_amps=D(40), demands=[Demand("guest", D(32)), Demand("fleet", D(32), priority=10)])
    assert plan == {"guest": D(8), "fleet": D(32)}


def test_priority_also_wins_admission_when_there_is_room_for_one():
    plan = load_plan(limit_amps=D(10), demands=[Demand("guest", D(32)), Demand("fleet", D(32), priority=1)])
    assert plan == {"guest": D(0), "fleet": D(10)}


def test_a_slow_car_gives_its_unused_share_to_the_others():
    """A car given 16 A that draws 7 A keeps 8 A; the other gets the rest up to its connector's 32 A."""
    plan = load_plan(
        limit_amps=D(32),
        demands=[
            Demand("slow", D(32), drawn_amps=D(7), allocated_amps=D(16)),
            Demand("fast", D(32), drawn_amps=D(16), allocated_amps=D(16)),
        ],
    )
    assert plan == {"slow": D(8), "fast": D(24)}


def test_a_car_drawing_what_it_was_given_is_not_slow():
    plan = load_plan(
        limit_amps=D(32),
        demands=[Demand("a", D(32), drawn_amps=D("15.5"), allocated_amps=D(16)), Demand("b", D(32))],
    )
    assert plan == {"a": D(16), "b": D(16)}


def test_no_limit_left_pauses_everyone():
    assert load_plan(limit_amps=D(0), demands=[Demand("a", D(32))]) == {"a": D(0)}


def test_reduce_first_then_raise():
    down, up = load_steps(before={"a": D(32), "b": D(0)}, after={"a": D(16), "b": D(16), "c": D(6)})
    assert down == ["a"]
    assert up == ["b", "c"]


# --- The plan of a site from what is stored: limits by time of day, caps set by partners ----------------------------

from datetime import UTC, datetime  # noqa: E402

import pytest  # noqa: E402
from django.utils import timezone  # noqa: E402

from cpo.models import LoadGroup  # noqa: E402
from ocpp_gateway.models import ChargingProfile, Transaction  # noqa: E402
from ocpp_gateway.services.load_management import load_group_limits, load_group_plan  # noqa: E402


@pytest.fixture
def site(location, station_factory):
    station, _ = station_factory("CP-PLAN-1", evses=2)
    station.online = True
    station.save()
    group = LoadGroup.objects.create(name="grid", location=location, limit_amps=D(64))
    txs = [
        Transaction.objects.create(
            station=station,
            evse=evse,
            ocpp_evse_id=evse.ocpp_evse_id,
            transaction_id=str(evse.ocpp_evse_id),
            ocpp_version="1.6",
            started_at=timezone.now(),
            meter_start=0,
        )
        for evse in station.evses.order_by("ocpp_evse_id")
    ]
    return group, station, txs


@pytest.mark.django_db
def test_the_evening_peak_lowers_the_limit_in_the_locations_time(site):
    group, _, _ = site
    group.schedule = [
        {"start": "17:00", "end": "21:00", "limit_amps": 40},
        {"start": "23:00", "end": "06:00", "limit_amps": 80},
    ]
    group.save()
    amsterdam_18h = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)  # 18:00 in Amsterdam
    assert load_group_limits(group=group, at=amsterdam_18h) == {1: 40, 2: 40, 3: 40}
    past_midnight = amsterdam_18h.replace(hour=23, minute=30)  # 00:30
    assert load_group_limits(group=group, at=past_midnight) == {1: 80, 2: 80, 3: 80}
    assert load_group_limits(group=group, at=amsterdam_18h.replace(hour=11)) == {1: 64, 2: 64, 3: 64}


@pytest.mark.django_db
def test_a_partners_accepted_profile_caps_its_session_under_the_site_limit(site):
    group, station, (tx1, tx2) = site
    ChargingProfile.objects.create(
        station=station,
        ocpp_evse_id=1,
        transaction=tx1,
        profile_id=tx1.pk,
        limit=D(4600),
        charging_rate_unit="W",
        profile={},
        source="partner",
        status="Accepted",
    )
    limits, _, plan = load_group_plan(group=group)
    assert limits == {1: 64, 2: 64, 3: 64}
    # 4,600 W on 3 x 230 V is 6.7 A: the partner's session keeps that, the other takes the rest up to its 32 A.
    assert plan == {tx1.pk: D("6.7"), tx2.pk: D(32)}
