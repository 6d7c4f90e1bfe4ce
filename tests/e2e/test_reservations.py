"""End to end: reservations are sessions (mod_sessions "Reservation", mod_commands ReserveNow, mod_tariffs example
17 "Tariff example with reservation price and expire fee"). The EMSP reserves an EVSE with RESERVE_NOW; when the
charger accepts, the EMSP receives a Session with status RESERVATION priced with the tariff's RESERVATION elements.
It ends COMPLETED with a CDR for the reservation when it expires or is removed, or becomes the charging session
(same session id, ACTIVE, then COMPLETED with one CDR that carries the reservation's cost) when the driver starts
charging with it. A charger that refuses the reservation gives no session. Real PostgreSQL, Redis, daphne, a Celery
worker with beat and the EMSP on loopback."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from billing.models import Session
from billing.services import tariff_upsert_from_ocpi
from cpo.models import Connector
from ocpp_gateway.models import Reservation
from tests.e2e.scenario import TOKEN_16, TOKEN_201, cdr_of, emsp_call, energy_16, iso
from tests.ocpp_gateway.chargers import Charger16, Charger201, connected, now_iso
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi-2.2.1-examples"


class ReservingCharger16(Charger16):
    answer = "Accepted"

    @on(Action16.reserve_now)
    def on_reserve_now(self, connector_id, expiry_date, id_tag, reservation_id, **kwargs):
        self.received.append(("ReserveNow", {"reservation_id": reservation_id, "id_tag": id_tag}))
        return result16.ReserveNow(status=self.answer)


class ReservingCharger201(Charger201):
    answer = "Accepted"

    @on(Action201.reserve_now)
    def on_reserve_now(self, id, expiry_date_time, id_token, **kwargs):
        self.received.append(("ReserveNow", {"id": id, "id_token": id_token}))
        return result201.ReserveNow(status=self.answer)


class OccupiedCharger201(ReservingCharger201):
    answer = "Occupied"


@pytest.fixture
def reservation_tariff(network):
    """The spec's tariff example 17 on every connector: reservation € 2.00/h per 10 min and € 4.00 when it expires
    unused (20% VAT); € 0.50 per session (20%) and € 0.25/kWh (10%)."""
    data = json.loads((EXAMPLES / "tariff_17_reservation_with_expire_fee.json").read_text())
    tariff = tariff_upsert_from_ocpi(data={**data, "country_code": "NL", "party_id": "CPO", "id": "E2E-RES"})
    Connector.objects.update(tariff_ids=[tariff.id])
    return tariff


def reserve(daphne, emsp, *, name: str, uid: str, evse_uid: str, expiry: datetime) -> dict:
    """The EMSP's RESERVE_NOW for its driver `uid` (answered at once: the charger's answer comes at response_url)."""
    answer = emsp_call(
        emsp,
        "POST",
        f"{daphne.http_url}/ocpi/2.2.1/commands/RESERVE_NOW",
        json={
            "response_url": f"{emsp.base_url}/emsp/2.2.1/results/{name}",
            "token": {
                "country_code": "NL",
                "party_id": "EXM",
                "uid": uid,
                "type": "RFID",
                "contract_id": f"NL-EXM-{uid}",
                "issuer": "Example EMSP",
                "valid": True,
                "whitelist": "ALLOWED",
                "last_updated": now_iso()[:19] + "Z",
            },
            "expiry_date": iso(expiry),
            "reservation_id": f"EMSP-{name}",
            "location_id": "LOC-T1",
            "evse_uid": evse_uid,
            "authorization_reference": f"AUTH-{name}",
        },
    )
    assert answer.status_code == 200 and answer.json()["data"]["result"] == "ACCEPTED", answer.text
    return answer.json()


async def result_at(emsp, name: str, timeout: float = 30.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while name not in emsp.results:
        assert asyncio.get_running_loop().time() < deadline, f"no command result at {name}"
        await asyncio.sleep(0.1)
    return emsp.results[name][0]


async def session_status_told(emsp, status: str, timeout: float = 30.0) -> dict:
    """The EMSP's copy of the (only) session once it has `status`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [s for s in emsp.sessions.values() if s.get("status") == status]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"the EMSP never got a {status} session: {emsp.sessions}"
        await asyncio.sleep(0.1)


def test_partner_reserves_charger_accepts_emsp_gets_a_reservation_session_and_on_expiry_a_cdr_with_its_price(
    daphne, roaming, emsp, network, worker, reservation_tariff
):
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]

    async def reserve_and_wait():
        async with connected(url, "E2E-1.6", secret, cls=ReservingCharger16) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            reserve(
                daphne,
                emsp,
                name="r1",
                uid=TOKEN_16,
                evse_uid="E2E-1.6-1",
                expiry=datetime.now(UTC) + timedelta(seconds=4),
            )
            assert (await result_at(emsp, "r1"))["result"] == "ACCEPTED"
            reserved = await session_status_told(emsp, "RESERVATION")
            completed = await session_status_told(emsp, "COMPLETED")  # expired: beat, every second here
            return cp.received, reserved, completed

    received, reserved, completed = asyncio.run(reserve_and_wait())
    reservation = Reservation.objects.get()
    assert received == [("ReserveNow", {"reservation_id": reservation.pk, "id_tag": TOKEN_16})]
    assert (reservation.status, reservation.answer_status, reservation.source) == ("EXPIRED", "Accepted", "partner")
    assert reservation.ended_at == reservation.expiry_date
    assert reserved["evse_uid"] == "E2E-1.6-1" and reserved["auth_method"] == "COMMAND"
    assert reserved["cdr_token"]["uid"] == TOKEN_16 and reserved["authorization_reference"] == "AUTH-r1"
    assert reserved["kwh"] == 0 and reserved["currency"] == "EUR"
    [cdr] = wait_until(lambda: cdr_of(emsp, completed["id"]) or None, timeout=30)
    # Expired unused: the expire fee € 4.00 plus the reserved time, 4 s billed per 10 min at € 2.00/h.
    assert cdr["total_reservation_cost"] == {"excl_vat": 4.33, "incl_vat": 5.2}
    assert cdr["total_cost"] == {"excl_vat": 4.33, "incl_vat": 5.2}
    assert cdr["total_energy"] == 0 and cdr["remark"] == "Reservation expired"
    assert [d["type"] for p in cdr["charging_periods"] for d in p["dimensions"]] == ["RESERVATION_TIME"] * len(
        cdr["charging_periods"]
    )
    session = Session.objects.get()
    assert (session.reservation_id, session.transaction_id, session.status) == (reservation.pk, None, "COMPLETED")
    worker.drain()
    assert len(cdr_of(emsp, session.id)) == 1 and emsp.session_calls(session.id)[0]["method"] == "PUT"


def test_a_reservation_used_by_the_drivers_start_transaction_becomes_the_charging_session_with_its_cost(
    daphne, roaming, emsp, network, worker, reservation_tariff
):
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]

    async def reserve_and_charge():
        async with connected(url, "E2E-1.6", secret, cls=ReservingCharger16) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            reserve(
                daphne,
                emsp,
                name="r2",
                uid=TOKEN_16,
                evse_uid="E2E-1.6-1",
                expiry=datetime.now(UTC) + timedelta(hours=1),
            )
            await result_at(emsp, "r2")
            reserved = await session_status_told(emsp, "RESERVATION")
            [(_, asked)] = cp.received
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
            started = await cp.call(
                call16.StartTransaction(
                    connector_id=1,
                    id_tag=TOKEN_16,
                    meter_start=1000,
                    timestamp=iso(start),
                    reservation_id=asked["reservation_id"],
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            active = await session_status_told(emsp, "ACTIVE")
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[energy_16(start + timedelta(minutes=30), 11000)],
                )
            )
            await cp.call(
                call16.StopTransaction(
                    meter_stop=21000,
                    timestamp=iso(start + timedelta(hours=1)),
                    transaction_id=started.transaction_id,
                    id_tag=TOKEN_16,
                )
            )
            completed = await session_status_told(emsp, "COMPLETED")
            return reserved, active, completed

    reserved, active, completed = asyncio.run(reserve_and_charge())
    assert reserved["id"] == active["id"] == completed["id"]  # one session: the reservation became the charge
    reservation = Reservation.objects.get()
    assert reservation.status == "USED" and reservation.transaction is not None
    session = Session.objects.get()
    assert (session.reservation_id, session.transaction_id) == (reservation.pk, reservation.transaction_id)
    [cdr] = wait_until(lambda: cdr_of(emsp, session.id) or None, timeout=30)
    # € 0.50 + 20 kWh x € 0.25 + the reserved seconds billed as 10 min at € 2.00/h (no expire fee: it was used).
    assert cdr["total_reservation_cost"] == {"excl_vat": 0.33, "incl_vat": 0.4}
    assert cdr["total_cost"] == {"excl_vat": 5.83, "incl_vat": 6.5}
    assert cdr["total_energy"] == 20 and cdr["start_date_time"] == completed["start_date_time"]
    assert cdr["authorization_reference"] == "AUTH-r2"
    worker.drain()
    assert len(cdr_of(emsp, session.id)) == 1 and Session.objects.count() == 1


def test_a_charger_that_refuses_the_reservation_gives_the_emsp_no_session(daphne, roaming, emsp, network, worker):
    url, secret = daphne.ocpp_url("E2E-2.0.1"), network["2.0.1"][1]

    async def reserve_refused():
        async with connected(url, "E2E-2.0.1", secret, version="2.0.1", cls=OccupiedCharger201) as cp:
            await cp.call(
                call201.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp")
            )
            reserve(
                daphne,
                emsp,
                name="r3",
                uid=TOKEN_201,
                evse_uid="E2E-2.0.1-1",
                expiry=datetime.now(UTC) + timedelta(hours=1),
            )
            return await result_at(emsp, "r3")

    assert asyncio.run(reserve_refused())["result"] == "EVSE_OCCUPIED"
    worker.drain(gateway_events=True)
    reservation = Reservation.objects.get()
    assert (reservation.status, reservation.answer_status) == ("REJECTED", "Occupied")
    assert not Session.objects.exists() and emsp.session_calls() == []


def test_a_2_0_1_charger_removing_the_reservation_completes_the_session_with_the_reserved_time_only(
    daphne, roaming, emsp, network, worker, reservation_tariff
):
    url, secret = daphne.ocpp_url("E2E-2.0.1"), network["2.0.1"][1]

    async def reserve_and_remove():
        async with connected(url, "E2E-2.0.1", secret, version="2.0.1", cls=ReservingCharger201) as cp:
            await cp.call(
                call201.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp")
            )
            reserve(
                daphne,
                emsp,
                name="r4",
                uid=TOKEN_201,
                evse_uid="E2E-2.0.1-1",
                expiry=datetime.now(UTC) + timedelta(hours=1),
            )
            await session_status_told(emsp, "RESERVATION")
            [(_, asked)] = cp.received
            await cp.call(
                call201.ReservationStatusUpdate(reservation_id=asked["id"], reservation_update_status="Removed")
            )
            await cp.call(
                call201.ReservationStatusUpdate(reservation_id=asked["id"], reservation_update_status="Removed")
            )
            return await session_status_told(emsp, "COMPLETED")

    completed = asyncio.run(reserve_and_remove())
    assert Reservation.objects.get().status == "CANCELLED"
    # mod_commands "Reservation canceled by the CPO": the EMSP hears it at the RESERVE_NOW's response_url, once.
    wait_until(lambda: len(emsp.results["r4"]) == 2, timeout=30)
    assert emsp.results["r4"] == [{"result": "ACCEPTED"}, {"result": "CANCELED_RESERVATION"}]
    [cdr] = wait_until(lambda: cdr_of(emsp, completed["id"]) or None, timeout=30)
    assert cdr["total_cost"] == {"excl_vat": 0.33, "incl_vat": 0.4}  # reserved time only: no expire fee, no start fee
    assert cdr["remark"] == "Reservation cancelled" and cdr["cdr_token"]["uid"] == TOKEN_201
    worker.drain()
    assert len(cdr_of(emsp, completed["id"])) == 1
