"""End to end: what partners see of our stations. A connector a charger reports that staff never registered stays
with staff until they register it; a station onboarded with `add_station --tariff` bills its sessions; a station
faulted as a whole is out of order on every EVSE at the partner until it recovers. Real PostgreSQL, Redis, daphne, a
Celery worker and the EMSP on loopback."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.models import EVSE
from cpo.services import station_evse_add
from tests.billing.factories import component, tariff_make
from tests.e2e.scenario import TOKEN_16, emsp_call, energy_16, iso
from tests.ocpp_gateway.chargers import connected, now_iso
from tests.support import await_until, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

BOOT_16 = call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME")
BOOT_201 = call201.BootNotification(charging_station={"model": "AC-22", "vendor_name": "ACME"}, reason="PowerUp")


def partner_evse_uids(emsp, daphne) -> list[str]:
    """The EVSE uids the partner gets from our Locations Sender interface."""
    response = emsp_call(emsp, "GET", f"{daphne.http_url}/ocpi/2.2.1/locations")
    assert response.status_code == 200, response.text
    return sorted(evse["uid"] for location in response.json()["data"] for evse in location.get("evses", []))


def pushed_evse_uids(emsp) -> set[str]:
    """EVSE uids the partner was told of by a push (PUT or PATCH of a Location, EVSE or connector)."""
    uids = set()
    for _, path, body in emsp.locations:
        segments = path.split("/")
        if len(segments) >= 4:
            uids.add(segments[3])
        for evse in (body or {}).get("evses", []):
            uids.add(evse["uid"])
    return uids


def test_a_connector_nobody_registered_is_published_only_once_staff_register_it(
    daphne, roaming, emsp, network, worker, client
):
    """charger reports connector 7 nobody registered -> partner sees 2 EVSEs; staff registers it -> partner sees 3."""
    secret_16, secret_201 = network["1.6"][1], network["2.0.1"][1]

    async def report_unknown_connectors():
        async with connected(daphne.ocpp_url("E2E-1.6"), "E2E-1.6", secret_16) as cp:
            await cp.call(BOOT_16)
            await cp.call(
                call16.StatusNotification(connector_id=7, error_code="NoError", status="Available", timestamp=now_iso())
            )
        async with connected(daphne.ocpp_url("E2E-2.0.1"), "E2E-2.0.1", secret_201, version="2.0.1") as cp:
            await cp.call(BOOT_201)
            await cp.call(
                call201.StatusNotification(timestamp=now_iso(), connector_status="Available", evse_id=5, connector_id=1)
            )

    asyncio.run(report_unknown_connectors())
    worker.drain(gateway_events=True)
    phantom = EVSE.objects.get(station__identity="E2E-1.6", ocpp_evse_id=7)
    assert not phantom.registered and EVSE.objects.filter(registered=False).count() == 2
    assert partner_evse_uids(emsp, daphne) == ["E2E-1.6-1", "E2E-2.0.1-1"]
    assert pushed_evse_uids(emsp) <= {"E2E-1.6-1", "E2E-2.0.1-1"}

    client.force_login(User.objects.create_user("staff-admin", is_superuser=True))
    staff = client
    station_page = staff.get("/stations/E2E-1.6/").content.decode()
    assert 'data-testid="unregistered"' in station_page
    assert "E2E-1.6</a> connector 7 reported by the charger" in staff.get("/").content.decode()
    response = staff.post("/stations/E2E-1.6/evses/7/register/")
    assert response.status_code == 302
    assert staff.post("/stations/E2E-1.6/evses/7/register/").status_code == 302  # a second click changes nothing

    worker.drain()
    assert partner_evse_uids(emsp, daphne) == ["E2E-1.6-1", "E2E-1.6-7", "E2E-2.0.1-1"]
    wait_until(lambda: "E2E-1.6-7" in pushed_evse_uids(emsp), timeout=30)
    assert "E2E-2.0.1-5" not in pushed_evse_uids(emsp)
    audit = staff.get("/stations/E2E-1.6/").content.decode()
    assert "EvseRegister" in audit and 'data-testid="unregistered"' not in audit


def test_a_station_added_with_a_tariff_gets_its_sessions_priced(daphne, roaming, emsp, worker, location):
    """add_station --tariff -> the partner's CDR is priced with that tariff (1.00 + 4 kWh x 0.50 = 3.00 excl. VAT)."""
    tariff_make("E2E-NEW", component("FLAT", "1.00"), component("ENERGY", "0.50"))
    secret = "a-secret-of-the-new-station"
    call_command("add_station", "E2E-NEW", "--location", location.id, "--tariff", "E2E-NEW", "--password", secret)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)

    async def charge():
        async with connected(daphne.ocpp_url("E2E-NEW"), "E2E-NEW", secret) as cp:
            await cp.call(BOOT_16)
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=1000, timestamp=iso(start))
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[energy_16(start + timedelta(minutes=10), 3000)],
                )
            )
            await cp.call(
                call16.StopTransaction(
                    meter_stop=5000,
                    transaction_id=started.transaction_id,
                    timestamp=iso(start + timedelta(minutes=20)),
                    id_tag=TOKEN_16,
                )
            )

    asyncio.run(charge())
    [cdr] = wait_until(lambda: emsp.cdr_posts or None, timeout=40)
    assert cdr["tariffs"][0]["id"] == "E2E-NEW"
    assert cdr["total_energy"] == 4.0 and cdr["total_cost"]["excl_vat"] == 3.0


@pytest.fixture
def two_evses(network):
    """The 1.6 charger of the network with a second EVSE, registered by staff (before the EMSP registers)."""
    station, secret = network["1.6"]
    station_evse_add(station=station, ocpp_evse_id=2)
    return station, secret


def test_a_station_faulted_on_connector_0_is_out_of_order_on_every_evse_at_the_partner_until_it_recovers(
    two_evses, daphne, roaming, emsp, worker
):
    """station Faulted on connector 0 -> the partner receives every EVSE's status change (OUTOFORDER); Available on
    connector 0 -> every EVSE's own status again."""
    station, secret = two_evses
    url = daphne.ocpp_url("E2E-1.6")

    def told() -> dict[str, list[str]]:
        """The statuses the partner was told per EVSE of the station, in arrival order (PUTs and PATCHes)."""
        statuses: dict[str, list[str]] = {}
        for _, path, body in emsp.locations:
            segments = path.split("/")
            evses = body.get("evses", []) if len(segments) == 3 else [{"uid": segments[3], **body}]
            for evse in evses if len(segments) <= 4 else []:
                if evse["uid"].startswith("E2E-1.6") and "status" in evse:
                    statuses.setdefault(evse["uid"], []).append(evse["status"])
        return statuses

    def now_all(status: str):
        current = told()
        return len(current) == 2 and all(history[-1] == status for history in current.values()) or None

    async def scenario() -> None:
        async with connected(url, "E2E-1.6", secret) as cp:

            async def report(*reports: tuple[int, str, str]):
                for connector_id, status, error_code in reports:
                    await cp.call(
                        call16.StatusNotification(
                            connector_id=connector_id, error_code=error_code, status=status, timestamp=now_iso()
                        )
                    )

            await report((1, "Available", "NoError"), (2, "Available", "NoError"))
            await await_until(lambda: now_all("AVAILABLE"), timeout=30)

            await report((0, "Faulted", "PowerMeterFailure"))
            await await_until(lambda: now_all("OUTOFORDER"), timeout=30)
            location_url = f"{daphne.http_url}/ocpi/2.2.1/locations/{station.location_id}"
            located = (await asyncio.to_thread(emsp_call, emsp, "GET", location_url)).json()["data"]
            assert {e["uid"]: e["status"] for e in located["evses"] if e["uid"].startswith("E2E-1.6")} == {
                "E2E-1.6-1": "OUTOFORDER",
                "E2E-1.6-2": "OUTOFORDER",
            }

            # A connector's own report changes nothing at the partner while the station is faulted; its recovery does.
            await report((1, "Unavailable", "NoError"), (0, "Available", "NoError"))
            await await_until(lambda: told().get("E2E-1.6-1", [""])[-1] == "INOPERATIVE" or None, timeout=30)
            await asyncio.to_thread(worker.drain, gateway_events=True)
            history = told()
            assert history["E2E-1.6-1"][-2:] == ["OUTOFORDER", "INOPERATIVE"]
            assert history["E2E-1.6-2"][-2:] == ["OUTOFORDER", "AVAILABLE"]

    asyncio.run(scenario())
    # The charger gone, the partner learns that nothing is known of its EVSEs (OCPI 2.2.1: UNKNOWN "also used when
    # offline"); the last statuses it reported stay for staff.
    wait_until(lambda: now_all("UNKNOWN"), timeout=30)
    assert dict(EVSE.objects.filter(station=station).values_list("uid", "status")) == {
        "E2E-1.6-1": "INOPERATIVE",
        "E2E-1.6-2": "AVAILABLE",
    }
