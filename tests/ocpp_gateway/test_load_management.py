"""Load management on a live daphne with simulated chargers: sessions under a site's limit get charging profiles,
reductions before increases, and a charger that refuses a reduction keeps the others from being raised."""

import asyncio
import time
from decimal import Decimal

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.dashboard.models import AuditLog
from cpo.models import LoadGroup, Token
from ocpp_gateway.models import ChargingProfile, Transaction
from tests.ocpp_gateway.chargers import ProfiledCharger16, ProfiledCharger201, connected, now_iso
from tests.support import start_daphne, stop

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def planner_daphne(django_db_setup, django_db_blocker):
    """A daphne running its tasks in-process and reading load groups on every event (no 30 s cache)."""
    server = start_daphne("load", CELERY_TASK_ALWAYS_EAGER="1", LOAD_MANAGEMENT_STATIONS_TTL_SECONDS="0")
    yield server
    stop(server)


async def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def boot16(cp):
    await cp.call(call16.BootNotification(charge_point_model="LM", charge_point_vendor="Test"))


async def boot201(cs):
    await cs.call(call201.BootNotification(charging_station={"model": "LM", "vendorName": "Test"}, reason="PowerUp"))


async def start16(cp, id_tag):
    answer = await cp.call(call16.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=0, timestamp=now_iso()))
    return answer.transaction_id


def started201(tx_id, evse_id, token):
    return call201.TransactionEvent(
        event_type="Started",
        timestamp=now_iso(),
        trigger_reason="Authorized",
        seq_no=0,
        transaction_info={"transactionId": tx_id},
        id_token={"idToken": token, "type": "ISO14443"},
        evse={"id": evse_id, "connectorId": 1},
    )


def tx_limits(cs) -> dict:
    """The latest TxProfile limit a 2.0.1 station got, by transaction."""
    limits = {}
    for _, p in cs.profiles:
        if p["charging_profile_purpose"] == "TxProfile":
            limits[p["transaction_id"]] = p["charging_schedule"][0]["charging_schedule_period"][0]["limit"]
    return limits


@pytest.fixture
def site(location, station_factory):
    one = station_factory("CP-LM-1", evses=1)
    two = station_factory("CP-LM-2", evses=1)
    group = LoadGroup.objects.create(name="grid", location=location, limit_amps=Decimal(32))
    Token.objects.create(uid="RFID-GUEST-1")
    Token.objects.create(uid="RFID-GUEST-2")
    return group, one, two


def test_second_car_arrives_first_car_is_reduced_before_the_second_is_raised(planner_daphne, site):
    group, (_, secret1), (_, secret2) = site

    async def scenario():
        async with (
            connected(planner_daphne.ocpp_url("CP-LM-1"), "CP-LM-1", secret1, cls=ProfiledCharger16) as one,
            connected(planner_daphne.ocpp_url("CP-LM-2"), "CP-LM-2", secret2, cls=ProfiledCharger16) as two,
        ):
            await boot16(one)
            await boot16(two)
            # Stations of a managed site start their sessions at the minimum current until the planner speaks.
            await wait_for(lambda: one.limits("TxDefaultProfile") == [6.0] and two.limits("TxDefaultProfile") == [6.0])

            tx1 = await start16(one, "RFID-GUEST-1")
            await wait_for(lambda: one.limits() == [32.0])
            await start16(two, "RFID-GUEST-2")
            await wait_for(lambda: one.limits() == [32.0, 16.0] and two.limits() == [16.0])
            reduced_at = [t for t, p in one.profiles if p["charging_profile_purpose"] == "TxProfile"][1]
            raised_at = [t for t, p in two.profiles if p["charging_profile_purpose"] == "TxProfile"][0]

            await one.call(call16.StopTransaction(meter_stop=5000, timestamp=now_iso(), transaction_id=tx1))
            await wait_for(lambda: two.limits() == [16.0, 32.0])
            return one, two, reduced_at, raised_at

    one, two, reduced_at, raised_at = asyncio.run(scenario())
    assert reduced_at < raised_at, "the first car must be reduced before the second is raised"
    profile = [p for _, p in one.profiles if p["charging_profile_purpose"] == "TxProfile"][0]
    assert profile["connector_id"] == 1 and profile["charging_schedule"]["charging_rate_unit"] == "A"
    assert "transaction_id" in profile
    # Staff can read every profile the planner sent and what the charger answered.
    sent = ChargingProfile.objects.filter(source="planner", purpose="TxProfile", station__identity="CP-LM-1")
    assert [(p.limit, p.status) for p in sent.order_by("created_at")] == [(32, "Accepted"), (16, "Accepted")]
    # And every profile the planner sent is in the audit log, with the charger's answer.
    audited = AuditLog.objects.filter(username="load planner", identity="CP-LM-1", action="SetChargingProfile")
    assert audited.count() >= 2 and all(entry.ok for entry in audited)
    assert {entry.answer["status"] for entry in audited} == {"Accepted"}


def test_a_charger_that_refuses_its_reduction_keeps_the_other_car_from_being_raised(planner_daphne, site):
    group, (_, secret1), (_, secret2) = site

    async def scenario():
        async with (
            connected(planner_daphne.ocpp_url("CP-LM-1"), "CP-LM-1", secret1, cls=ProfiledCharger16) as one,
            connected(planner_daphne.ocpp_url("CP-LM-2"), "CP-LM-2", secret2, cls=ProfiledCharger16) as two,
        ):
            await boot16(one)
            await boot16(two)
            await wait_for(lambda: two.limits("TxDefaultProfile") == [6.0])
            await start16(one, "RFID-GUEST-1")
            await wait_for(lambda: one.limits() == [32.0])
            one.refuse = True
            await start16(two, "RFID-GUEST-2")
            await wait_for(lambda: one.limits() == [32.0, 16.0])
            await asyncio.sleep(1.0)  # time enough for a wrongly granted increase to arrive
            return two.limits()

    assert asyncio.run(scenario()) == []
    assert ChargingProfile.objects.filter(station__identity="CP-LM-1", status="Rejected").count() == 1


def test_fleet_token_gets_current_first_on_a_201_station(planner_daphne, location, station_factory):
    _, secret = station_factory("CS-LM-201", evses=2)
    LoadGroup.objects.create(name="depot", location=location, limit_amps=Decimal(40))
    Token.objects.create(uid="FLEET-1", charging_priority=10)
    Token.objects.create(uid="GUEST-9")

    async def scenario():
        async with connected(
            planner_daphne.ocpp_url("CS-LM-201"), "CS-LM-201", secret, version="2.0.1", cls=ProfiledCharger201
        ) as cs:
            await boot201(cs)
            await cs.call(started201("TX-GUEST", 1, "GUEST-9"))
            await cs.call(started201("TX-FLEET", 2, "FLEET-1"))

            await wait_for(lambda: tx_limits(cs) == {"TX-GUEST": 8.0, "TX-FLEET": 32.0})
            return cs.profiles

    profiles = asyncio.run(scenario())
    evse_ids = {p["transaction_id"]: p["evse_id"] for _, p in profiles if p.get("transaction_id")}
    assert evse_ids == {"TX-GUEST": 1, "TX-FLEET": 2}


def test_a_201_car_that_takes_only_10_a_leaves_the_rest_to_the_other(planner_daphne, location, station_factory):
    """NotifyEVChargingNeeds (K17) feeds the planner: the car's evMaxCurrent caps its share at once (without waiting
    to measure its draw), and the other session gets what it leaves."""
    _, secret = station_factory("CS-LM-NEEDS", evses=2)
    LoadGroup.objects.create(name="depot", location=location, limit_amps=Decimal(40))
    Token.objects.create(uid="GUEST-A")
    Token.objects.create(uid="GUEST-B")

    async def scenario():
        async with connected(
            planner_daphne.ocpp_url("CS-LM-NEEDS"), "CS-LM-NEEDS", secret, version="2.0.1", cls=ProfiledCharger201
        ) as cs:
            await boot201(cs)
            await cs.call(started201("TX-A", 1, "GUEST-A"))
            await cs.call(started201("TX-B", 2, "GUEST-B"))

            await wait_for(lambda: tx_limits(cs) == {"TX-A": 20.0, "TX-B": 20.0})
            needs = await cs.call(
                call201.NotifyEVChargingNeeds(
                    evse_id=1,
                    charging_needs={
                        "requestedEnergyTransfer": "AC_three_phase",
                        "acChargingParameters": {
                            "energyAmount": 20000,
                            "evMinCurrent": 6,
                            "evMaxCurrent": 10,
                            "evMaxVoltage": 400,
                        },
                    },
                )
            )
            await wait_for(lambda: tx_limits(cs) == {"TX-A": 10.0, "TX-B": 30.0})
            return needs

    needs = asyncio.run(scenario())
    assert needs.status == "Accepted"
    assert Transaction.objects.get(transaction_id="TX-A").ev_max_amps == Decimal(10)
