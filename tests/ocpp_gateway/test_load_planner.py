"""The sharing rules of a site's limit, as staff would check them by hand."""

from decimal import Decimal as D

from ocpp_gateway.load_planner import (
    ALL_PHASES,
    STEP,
    Demand,
    load_plan,
    load_raises,
    load_steps,
    phase_limits,
    phase_totals,
)


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


# --- A limit per phase: every phase holds what the sessions on it are given ------------------------------------------

L1, L2, L3 = frozenset({1}), frozenset({2}), frozenset({3})


def test_single_phase_chargers_on_each_phase_and_a_three_phase_one_under_a_lower_l1():
    """Other loads sit on L1, so it has 20 A and L2, L3 have 40 A. The three-phase car and the L1 car share L1 (10 A
    each); on L2 and L3 the single-phase cars take what the three-phase car leaves (30 A)."""
    demands = [
        Demand("on-L1", D(32), phases=L1),
        Demand("on-L2", D(32), phases=L2),
        Demand("on-L3", D(32), phases=L3),
        Demand("three-phase", D(32)),
    ]
    plan = load_plan(limit_amps={1: D(20), 2: D(40), 3: D(40)}, demands=demands)
    assert plan == {"on-L1": D(10), "on-L2": D(30), "on-L3": D(30), "three-phase": D(10)}


def test_single_phase_cars_on_different_phases_do_not_share():
    """Three 32 A single-phase cars on a 32 A connection: one on each phase, each gets all 32 A."""
    plan = load_plan(
        limit_amps=D(32), demands=[Demand(k, D(32), phases=p) for k, p in zip("abc", (L1, L2, L3), strict=True)]
    )
    assert plan == {"a": D(32), "b": D(32), "c": D(32)}


def test_a_full_phase_pauses_only_the_sessions_that_need_it():
    """L1 has room for one minimum: the second L1 car and the three-phase car wait; the L2 car still charges."""
    demands = [
        Demand("a", D(32), phases=L1),
        Demand("b", D(32), phases=L1),
        Demand("c", D(32)),
        Demand("d", D(16), phases=L2),
    ]
    plan = load_plan(limit_amps={1: D(10), 2: D(40), 3: D(40)}, demands=demands)
    assert plan == {"a": D(10), "b": D(0), "c": D(0), "d": D(16)}


def test_a_single_phase_site_lists_only_l1():
    assert phase_limits({1: D(25)}) == {1: D(25)}
    plan = load_plan(limit_amps={1: D(25)}, demands=[Demand("a", D(32), phases=L1), Demand("b", D(32), phases=L1)])
    assert plan == {"a": D("12.5"), "b": D("12.5")}


def test_raises_wait_for_room_on_every_phase_of_the_session():
    """The L1 car's charger refused its reduction (still holds 20 A): the three-phase car may not rise on L1, but
    the L2 car, on a phase with room, may."""
    phases = {"on-L1": L1, "three-phase": ALL_PHASES, "on-L2": L2}
    held = {"on-L1": D(20), "three-phase": D(6), "on-L2": D(6)}
    plan = {"on-L1": D(10), "three-phase": D(10), "on-L2": D(30)}
    granted = load_raises(
        limit_amps={1: D(20), 2: D(40), 3: D(40)}, phases=phases, held=held, plan=plan, up=["three-phase", "on-L2"]
    )
    assert granted == ["on-L2"]


# Property-style: many random sites (seeded, so a failure repeats), every rule checked on each.

import random  # noqa: E402

PHASE_SETS = [ALL_PHASES, L1, L2, L3, frozenset({1, 2}), frozenset({2, 3})]


def random_site(rng: random.Random):
    limits = {phase: D(rng.randrange(0, 1200)) / 10 for phase in (1, 2, 3)}
    if rng.random() < 0.3:
        limits = dict.fromkeys((1, 2, 3), limits[1])
    demands = []
    for n in range(rng.randrange(0, 9)):
        max_amps = D(rng.choice([6, 10, 16, 20, 32, 63]))
        allocated = D(rng.randrange(0, 320)) / 10 if rng.random() < 0.4 else None
        drawn = D(rng.randrange(0, 320)) / 10 if allocated is not None else None
        demands.append(
            Demand(
                n,
                max_amps,
                min_amps=D(rng.choice([6, 6, 8])),
                priority=rng.choice([0, 0, 0, 1, 10]),
                drawn_amps=drawn,
                allocated_amps=allocated,
                phases=rng.choice(PHASE_SETS),
            )
        )
    return limits, demands


def test_property_every_phase_stays_under_its_limit_and_every_share_is_usable():
    rng = random.Random(12)
    for _ in range(2000):
        limits, demands = random_site(rng)
        plan = load_plan(limit_amps=limits, demands=demands)
        totals = phase_totals(amps=plan, phases={d.key: d.phases for d in demands})
        assert all(totals[phase] <= limits[phase] for phase in limits), (limits, demands, plan)
        for d in demands:
            # Paused, or at least its minimum (what it can charge with), never above what it can use.
            assert plan[d.key] == 0 or plan[d.key] >= min(d.min_amps, d.cap), (d, plan)
            assert plan[d.key] <= d.cap
            assert plan[d.key] % STEP == 0


def test_property_no_session_is_left_below_what_its_phases_could_give_it():
    """Max-min fair: a session below its cap has a phase without room for another step for each session rising on
    it; a paused one has a phase without room for its minimum."""
    rng = random.Random(7)
    for _ in range(2000):
        limits, demands = random_site(rng)
        plan = load_plan(limit_amps=limits, demands=demands)
        totals = phase_totals(amps=plan, phases={d.key: d.phases for d in demands})
        left = {phase: limits[phase] - totals[phase] for phase in limits}
        charging = {phase: sum(1 for d in demands if phase in d.phases and plan[d.key] > 0) for phase in limits}
        for d in demands:
            if plan[d.key] == 0:
                assert any(left[p] < min(d.min_amps, d.cap) for p in d.phases), (limits, demands, plan)
            elif plan[d.key] < d.cap:
                assert any(left[p] < STEP * (charging[p] + 1) for p in d.phases), (limits, demands, plan)


def single_limit_plan(limit: D, demands: list[Demand]) -> dict:
    """The planner as it was before limits per phase (one limit, every session on every phase), kept as the
    reference a site without single-phase sessions must still be planned by."""
    ordered = sorted(enumerate(demands), key=lambda pair: (-pair[1].priority, pair[0]))
    given, capacity, admitted = {}, max(limit, D(0)), []
    for _, d in ordered:
        floor = min(d.min_amps, d.cap)
        given[d.key] = floor if capacity >= floor else D(0)
        if capacity >= floor:
            capacity -= floor
            admitted.append(d)
    for priority in sorted({d.priority for d in admitted}, reverse=True):
        open_ = sorted(
            (d for d in admitted if d.priority == priority and given[d.key] < d.cap), key=lambda d: d.cap - given[d.key]
        )
        while open_ and capacity >= STEP * len(open_):
            raise_by = min(
                (capacity / len(open_)).quantize(STEP, rounding="ROUND_DOWN"), open_[0].cap - given[open_[0].key]
            )
            for d in open_:
                given[d.key] += raise_by
            capacity -= raise_by * len(open_)
            open_ = [d for d in open_ if given[d.key] < d.cap]
    return {key: amps.quantize(STEP, rounding="ROUND_DOWN") for key, amps in given.items()}


def test_property_three_phase_sessions_under_one_limit_are_planned_as_before():
    """A site whose sessions all draw on three phases, under one limit, gets the plan the single-limit planner gave."""
    rng = random.Random(3)
    for _ in range(1000):
        limits, demands = random_site(rng)
        demands = [Demand(d.key, d.max_amps, d.min_amps, d.priority, d.drawn_amps, d.allocated_amps) for d in demands]
        expected = single_limit_plan(limits[1], demands)
        assert load_plan(limit_amps=limits[1], demands=demands) == expected, (limits[1], demands)
        assert load_plan(limit_amps=dict.fromkeys((1, 2, 3), limits[1]), demands=demands) == expected


def test_property_reductions_then_raises_keep_every_phase_under_its_limit_at_every_step():
    """From whatever the chargers hold (even over the limit, after the limit dropped), the reductions go first; each
    may be refused. Then each granted raise, one after the other, leaves every phase under its limit; and when
    every reduction was accepted, every raise is granted (nobody waits for nothing)."""
    rng = random.Random(5)
    for _ in range(2000):
        limits, demands = random_site(rng)
        plan = load_plan(limit_amps=limits, demands=demands)
        phases = {d.key: d.phases for d in demands}
        held = {d.key: D(rng.randrange(0, 330)) / 10 for d in demands}
        down, up = load_steps(before=held, after=plan)
        all_accepted = rng.random() < 0.5
        for key in down:
            if all_accepted or rng.random() < 0.7:
                held[key] = plan[key]
        granted = load_raises(limit_amps=limits, phases=phases, held=held, plan=plan, up=up)
        for key in granted:
            before = phase_totals(amps=held, phases=phases)
            held[key] = plan[key]
            after = phase_totals(amps=held, phases=phases)
            for phase in phases[key]:
                assert after[phase] <= limits[phase] or after[phase] <= before[phase], (limits, held, plan, key)
        if all_accepted:
            assert granted == up
            totals = phase_totals(amps=held, phases=phases)
            assert all(totals[phase] <= limits[phase] for phase in limits)


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


# --- Which phases a stored session draws on: the station's reported wiring, the car, the meter -----------------------

from ocpp_gateway.models import StationVariable  # noqa: E402


@pytest.mark.django_db
def test_a_201_station_rotated_onto_l2_with_a_single_phase_evse_puts_its_session_on_l2(site):
    """The device model says: the station is wired STR to the grid (its L1 is the grid's L2), EVSE 1 supplies one
    phase. With 20 A on L1 and 32 A on L2, L3, that session shares L2 with the three-phase one: 16 A each (counted
    on L1, as without the device model, they would have had 10 A each)."""
    group, station, (tx1, tx2) = site
    station.ocpp_version = "2.0.1"
    station.save()
    group.limit_amps, group.limit_amps_l1 = D(32), D(20)
    group.save()
    StationVariable.objects.create(station=station, component="ChargingStation", variable="PhaseRotation", value="STR")
    StationVariable.objects.create(station=station, component="EVSE", evse_id=1, variable="SupplyPhases", value="1")
    limits, sessions, plan = load_group_plan(group=group)
    assert [s.demand.phases for s in sessions] == [frozenset({2}), frozenset({1, 2, 3})]
    assert plan == {tx1.pk: D(16), tx2.pk: D(16)}


@pytest.mark.django_db
def test_a_car_measured_on_one_phase_and_a_car_that_asked_for_one(site):
    group, station, (tx1, tx2) = site
    Transaction.objects.filter(pk=tx1.pk).update(
        current_l1_last=D("15.9"), current_l2_last=D("0.3"), current_l3_last=D(0)
    )
    Transaction.objects.filter(pk=tx2.pk).update(ev_phases=1)
    StationVariable.objects.create(station=station, variable="ConnectorPhaseRotation", value="0.RST,1.TRS,2.STR")
    _, sessions, _ = load_group_plan(group=group)
    # Connector 1 is wired TRS: its phase 1 is the grid's L3; connector 2's (STR) is L2.
    assert [s.demand.phases for s in sessions] == [frozenset({3}), frozenset({2})]
    assert sessions[0].demand.drawn_amps == D("15.9")  # the measured current, not the power over three phases
