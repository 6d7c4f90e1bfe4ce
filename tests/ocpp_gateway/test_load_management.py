"""Load management on a live daphne with simulated chargers: sessions under a site's limit get charging profiles,
reductions before increases, and a charger that refuses a reduction keeps the others from being raised."""

import asyncio
import contextlib
from decimal import Decimal

import pytest
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201

from cpo.dashboard.models import AuditLog
from cpo.models import Connector, LoadGroup, PowerType, Token
from ocpp_gateway.models import ChargingProfile, StationVariable, Transaction
from tests.ocpp_gateway.chargers import ProfiledCharger16, ProfiledCharger201, connected, now_iso
from tests.support import await_until, start_daphne, stop

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def planner_daphne(django_db_setup, django_db_blocker):
    """A daphne running its tasks in-process and reading load groups on every event (no 30 s cache)."""
    server = start_daphne("load", CELERY_TASK_ALWAYS_EAGER="1", LOAD_MANAGEMENT_STATIONS_TTL_SECONDS="0")
    yield server
    stop(server)


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
            await await_until(
                lambda: one.limits("TxDefaultProfile") == [6.0] and two.limits("TxDefaultProfile") == [6.0], timeout=10
            )

            tx1 = await start16(one, "RFID-GUEST-1")
            await await_until(lambda: one.limits() == [32.0], timeout=10)
            await start16(two, "RFID-GUEST-2")
            await await_until(lambda: one.limits() == [32.0, 16.0] and two.limits() == [16.0], timeout=10)
            reduced_at = [t for t, p in one.profiles if p["charging_profile_purpose"] == "TxProfile"][1]
            raised_at = [t for t, p in two.profiles if p["charging_profile_purpose"] == "TxProfile"][0]

            await one.call(call16.StopTransaction(meter_stop=5000, timestamp=now_iso(), transaction_id=tx1))
            await await_until(lambda: two.limits() == [16.0, 32.0], timeout=10)
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
            await await_until(lambda: two.limits("TxDefaultProfile") == [6.0], timeout=10)
            await start16(one, "RFID-GUEST-1")
            await await_until(lambda: one.limits() == [32.0], timeout=10)
            one.refuse = True
            await start16(two, "RFID-GUEST-2")
            await await_until(lambda: one.limits() == [32.0, 16.0], timeout=10)
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

            await await_until(lambda: tx_limits(cs) == {"TX-GUEST": 8.0, "TX-FLEET": 32.0}, timeout=10)
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

            await await_until(lambda: tx_limits(cs) == {"TX-A": 20.0, "TX-B": 20.0}, timeout=10)
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
            await await_until(lambda: tx_limits(cs) == {"TX-A": 10.0, "TX-B": 30.0}, timeout=10)
            return needs

    needs = asyncio.run(scenario())
    assert needs.status == "Accepted"
    assert Transaction.objects.get(transaction_id="TX-A").ev_max_amps == Decimal(10)


# --- A limit per phase: single-phase chargers wired to L1, L2, L3 and a three-phase one, L1 limited lower ------------


class WiredCharger16(ProfiledCharger16):
    """Reports its connector's phase rotation (ConnectorPhaseRotation) when the CSMS reads its configuration."""

    rotation = "0.RST,1.RST"

    @on(Action16.get_configuration)
    def on_get_configuration(self, **kwargs):
        return result16.GetConfiguration(
            configuration_key=[{"key": "ConnectorPhaseRotation", "readonly": True, "value": self.rotation}]
        )

    def tx_profiles(self) -> list[tuple[float, dict]]:
        return [(t, p) for t, p in self.profiles if p["charging_profile_purpose"] == "TxProfile"]

    def period(self) -> dict:
        """The first period of the latest TxProfile."""
        return self.tx_profiles()[-1][1]["charging_schedule"]["charging_schedule_period"][0]


async def wait_for_rows(queryset, count, timeout=10.0):
    """Until the database has `count` rows of `queryset` (the server writes them; the test reads them in a thread)."""
    await await_until(
        lambda: queryset.count() >= count,
        timeout=timeout,
        what=f"{queryset.model.__name__}: fewer than {count} rows in time",
    )


def single_phase(station):
    Connector.objects.filter(evse__station=station).update(power_type=PowerType.AC_1_PHASE)


@pytest.fixture
def phased_site(location, station_factory):
    """Other loads sit on L1: 20 A there, 40 A on L2 and L3. Three single-phase chargers, their connectors wired to
    L1, L2 and L3 (they say so in ConnectorPhaseRotation), and a three-phase one."""
    chargers = {}
    for identity, rotation, phases in (
        ("CP-PH-L1", "0.RST,1.RST", 1),
        ("CP-PH-L2", "1.STR", 1),
        ("CP-PH-L3", "0.RST,1.TRS", 1),
        ("CP-PH-3P", "0.RST,1.RST", 3),
    ):
        station, secret = station_factory(identity, evses=1)
        if phases == 1:
            single_phase(station)
        chargers[identity] = (secret, rotation)
        Token.objects.create(uid=f"RFID-{identity}")
    group = LoadGroup.objects.create(name="grid", location=location, limit_amps=Decimal(40), limit_amps_l1=Decimal(20))
    return group, chargers


PHASES_OF = {"CP-PH-L1": {1}, "CP-PH-L2": {2}, "CP-PH-L3": {3}, "CP-PH-3P": {1, 2, 3}}
LIMITS = {1: 20.0, 2: 40.0, 3: 40.0}


def phase_sums(limits_by_charger: dict) -> dict:
    sums = dict.fromkeys(LIMITS, 0)
    for identity, amps in limits_by_charger.items():
        for phase in PHASES_OF[identity]:
            sums[phase] += amps
    return sums


def test_single_phase_chargers_on_each_phase_and_a_three_phase_one_stay_under_each_phases_limit(
    planner_daphne, phased_site
):
    group, chargers = phased_site

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            cps = {}
            for identity, (secret, rotation) in chargers.items():
                cp = await stack.enter_async_context(
                    connected(planner_daphne.ocpp_url(identity), identity, secret, cls=WiredCharger16)
                )
                cp.rotation = rotation
                await boot16(cp)
                cps[identity] = cp
            # The gateway reads each new station's configuration after its boot: the rotations are known.
            await wait_for_rows(StationVariable.objects.filter(variable="ConnectorPhaseRotation"), 4)
            await await_until(lambda: all(cp.limits("TxDefaultProfile") == [6.0] for cp in cps.values()), timeout=10)
            for identity in ("CP-PH-L1", "CP-PH-L2", "CP-PH-L3", "CP-PH-3P"):
                await start16(cps[identity], f"RFID-{identity}")
                await asyncio.sleep(0.3)
            await await_until(
                lambda: (
                    {i: cp.limits()[-1] if cp.limits() else None for i, cp in cps.items()}
                    == {"CP-PH-L1": 10.0, "CP-PH-L2": 30.0, "CP-PH-L3": 30.0, "CP-PH-3P": 10.0}
                ),
                timeout=10,
            )
            return cps

    cps = asyncio.run(scenario())
    # The three-phase car and the L1 car share L1's 20 A; on L2 and L3 the single-phase cars take the rest of 40 A.
    final = {identity: cp.limits()[-1] for identity, cp in cps.items()}
    assert phase_sums(final) == {1: 20.0, 2: 40.0, 3: 40.0}
    # A single-phase session's profile says so (numberPhases 1); the three-phase one's leaves it out (3).
    for identity in ("CP-PH-L1", "CP-PH-L2", "CP-PH-L3"):
        assert cps[identity].period()["number_phases"] == 1
    assert "number_phases" not in cps["CP-PH-3P"].period()
    # At every profile a charger received, what the chargers held on each phase stayed under that phase's limit.
    arrivals = sorted((t, identity, p) for identity, cp in cps.items() for t, p in cp.tx_profiles())
    holding: dict = {}
    for _, identity, profile in arrivals:
        holding[identity] = profile["charging_schedule"]["charging_schedule_period"][0]["limit"]
        assert all(phase_sums(holding)[phase] <= LIMITS[phase] for phase in LIMITS), holding
    # The L1 car was reduced before the three-phase car was raised on L1.
    reduced_l1 = next(
        t
        for t, p in cps["CP-PH-L1"].tx_profiles()
        if p["charging_schedule"]["charging_schedule_period"][0]["limit"] == 10.0
    )
    raised_3p = cps["CP-PH-3P"].tx_profiles()[0][0]
    assert reduced_l1 < raised_3p


def test_a_car_measured_on_one_phase_counts_on_that_phase_only(planner_daphne, location, station_factory):
    """A three-phase charger whose phase 1 is wired to the grid's L2 ("1.STR"); its car draws on one phase (per-phase
    Current.Import). When the next car arrives, the first counts on L2 only: both get 16 A (L2's 32 A shared),
    where two three-phase cars would have shared L1's 20 A."""
    (_, secret_a), (_, secret_b) = station_factory("CP-PM-A", evses=1), station_factory("CP-PM-B", evses=1)
    LoadGroup.objects.create(name="grid", location=location, limit_amps=Decimal(32), limit_amps_l1=Decimal(20))
    Token.objects.create(uid="RFID-PM-A")
    Token.objects.create(uid="RFID-PM-B")

    async def scenario():
        async with (
            connected(planner_daphne.ocpp_url("CP-PM-A"), "CP-PM-A", secret_a, cls=WiredCharger16) as a,
            connected(planner_daphne.ocpp_url("CP-PM-B"), "CP-PM-B", secret_b, cls=WiredCharger16) as b,
        ):
            a.rotation = "1.STR"
            await boot16(a)
            await boot16(b)
            await wait_for_rows(StationVariable.objects.filter(variable="ConnectorPhaseRotation"), 2)
            tx = await start16(a, "RFID-PM-A")
            await await_until(lambda: a.limits() == [20.0], timeout=10)  # alone, as a three-phase car: L1's 20 A
            await a.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[
                        {
                            "timestamp": now_iso(),
                            "sampledValue": [
                                {"value": "20.1", "measurand": "Current.Import", "phase": phase, "unit": "A"}
                                if phase == "L1"
                                else {"value": "0.0", "measurand": "Current.Import", "phase": phase, "unit": "A"}
                                for phase in ("L1", "L2", "L3")
                            ],
                        }
                    ],
                )
            )
            await wait_for_rows(Transaction.objects.filter(current_l1_last__gt=20), 1)
            await start16(b, "RFID-PM-B")
            await await_until(lambda: a.limits()[-1:] == [16.0] and b.limits()[-1:] == [16.0], timeout=10)
            return a, b

    a, b = asyncio.run(scenario())
    assert a.period()["number_phases"] == 1 and "number_phases" not in b.period()
    tx = Transaction.objects.get(station__identity="CP-PM-A")
    assert (tx.current_l1_last, tx.current_l2_last, tx.current_l3_last) == (Decimal("20.1"), 0, 0)


def test_a_201_car_asking_for_one_phase_is_planned_on_one_phase(planner_daphne, location, station_factory):
    """NotifyEVChargingNeeds with requestedEnergyTransfer AC_single_phase: the car draws on the charger's phase 1
    (L1 here), so on a site where L1 has 20 A and L2, L3 32 A, it leaves L2 and L3 to the other car."""
    _, secret = station_factory("CS-PH-201", evses=2)
    LoadGroup.objects.create(name="depot", location=location, limit_amps=Decimal(32), limit_amps_l1=Decimal(20))
    Token.objects.create(uid="GUEST-P1")
    Token.objects.create(uid="GUEST-P2")

    async def scenario():
        async with connected(
            planner_daphne.ocpp_url("CS-PH-201"), "CS-PH-201", secret, version="2.0.1", cls=ProfiledCharger201
        ) as cs:
            await boot201(cs)
            await cs.call(started201("TX-P1", 1, "GUEST-P1"))
            await cs.call(started201("TX-P2", 2, "GUEST-P2"))
            await await_until(lambda: tx_limits(cs) == {"TX-P1": 10.0, "TX-P2": 10.0}, timeout=10)
            await cs.call(
                call201.NotifyEVChargingNeeds(
                    evse_id=1,
                    charging_needs={
                        "requestedEnergyTransfer": "AC_single_phase",
                        "acChargingParameters": {
                            "energyAmount": 20000,
                            "evMinCurrent": 6,
                            "evMaxCurrent": 16,
                            "evMaxVoltage": 230,
                        },
                    },
                )
            )
            # Still sharing L1 (10 A each: the car's 16 A are not to be had there), but both now know it.
            await await_until(
                lambda: len([p for _, p in cs.profiles if p.get("transaction_id") == "TX-P1"]) >= 2, timeout=10
            )
            return cs

    cs = asyncio.run(scenario())
    latest = [p for _, p in cs.profiles if p.get("transaction_id") == "TX-P1"][-1]
    assert latest["charging_schedule"][0]["charging_schedule_period"][0]["number_phases"] == 1
    assert Transaction.objects.get(transaction_id="TX-P1").ev_phases == 1
