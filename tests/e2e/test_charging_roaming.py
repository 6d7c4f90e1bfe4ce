"""End to end: an EMSP registers with us over OCPI, pushes its drivers' tokens, and the drivers charge at a 1.6 and a
2.0.1 charger. Real PostgreSQL, Redis, daphne, a Celery worker process and the EMSP on loopback; nothing mocked.

The EMSP receives the Session PUT, PATCHes with rising kWh, the COMPLETED session and one CDR whose energy, times,
location and cost follow the meter values and the tariff; it can also GET both from our Sender interfaces. An EMSP
that is down during the stop gets the CDR once it is back; a worker killed mid-task leaves one CDR; a retransmitted
StopTransaction changes nothing."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from billing.models import Cdr, Session
from ocpi_api.models import OutboxAttempt, OutboxMessage
from tests.e2e.scenario import TOKEN_16, TOKEN_201, cdr_of, emsp_call, emsp_told, energy_16, iso
from tests.ocpp_gateway.chargers import connected, now_iso
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

# 1 EUR per session + 0.35 EUR/kWh, 21% VAT (the demo AC tariff)
FLAT, PER_KWH, VAT = Decimal("1.00"), Decimal("0.35"), Decimal("1.21")


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def energy_201(at: datetime, wh: int, context="Sample.Periodic") -> list[dict]:
    return [
        {
            "timestamp": iso(at),
            "sampledValue": [
                {
                    "value": wh,
                    "measurand": "Energy.Active.Import.Register",
                    "context": context,
                    "unitOfMeasure": {"unit": "Wh"},
                }
            ],
        }
    ]


async def charge_16(url, secret, *, start: datetime, readings: list[int], pause: float, stop_hook=None, emsp=None):
    """Boot, Available, Charging, StartTransaction, MeterValues every `pause` seconds, StopTransaction. Times follow
    `start` (10 minutes per reading). With `emsp`, waits after the first reading until the EMSP was told its kWh (a
    loaded machine may be slower than the charger). Returns the transactionId and the StopTransaction."""
    identity = "E2E-1.6"
    async with connected(url, identity, secret) as cp:
        await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
        await cp.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now_iso())
        )
        started = await cp.call(
            call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=readings[0], timestamp=iso(start))
        )
        assert started.id_tag_info["status"] == "Accepted"
        await cp.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=now_iso())
        )
        for n, wh in enumerate(readings[1:-1], start=1):
            await asyncio.sleep(pause)
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[energy_16(start + timedelta(minutes=10 * n), wh)],
                )
            )
            if emsp is not None and n == 1:
                await emsp_told(emsp, kwh=(wh - readings[0]) / 1000)
        await asyncio.sleep(pause)
        if stop_hook is not None:
            await stop_hook()
        stop = call16.StopTransaction(
            meter_stop=readings[-1],
            transaction_id=started.transaction_id,
            timestamp=iso(start + timedelta(minutes=10 * (len(readings) - 1))),
            reason="EVDisconnected",
        )
        answer = await cp.call(stop)
        assert answer.id_tag_info is None or answer.id_tag_info["status"] == "Accepted"
        await cp.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now_iso())
        )
    return started.transaction_id, stop


async def charge_201(url, secret, *, start: datetime, readings: list[int], pause: float, emsp=None):
    identity = "E2E-2.0.1"
    token = {"idToken": TOKEN_201, "type": "ISO14443"}

    def event(event_type, seq_no, at, trigger, meter, **info):
        return call201.TransactionEvent(
            event_type=event_type,
            timestamp=iso(at),
            trigger_reason=trigger,
            seq_no=seq_no,
            transaction_info={"transactionId": "E2E-TX-201", **info},
            evse={"id": 1, "connectorId": 1},
            id_token=token if event_type == "Started" else None,
            meter_value=meter,
        )

    async with connected(url, identity, secret, version="2.0.1") as cp:
        await cp.call(
            call201.BootNotification(charging_station={"model": "DC-50", "vendorName": "VoltCo"}, reason="PowerUp")
        )
        await cp.call(
            call201.StatusNotification(timestamp=now_iso(), connector_status="Occupied", evse_id=1, connector_id=1)
        )
        first = await cp.call(
            event(
                "Started",
                0,
                start,
                "Authorized",
                energy_201(start, readings[0], "Transaction.Begin"),
                chargingState="Charging",
            )
        )
        assert first.id_token_info["status"] == "Accepted"
        for n, wh in enumerate(readings[1:-1], start=1):
            await asyncio.sleep(pause)
            at = start + timedelta(minutes=10 * n)
            await cp.call(event("Updated", n, at, "MeterValuePeriodic", energy_201(at, wh)))
            if emsp is not None and n == 1:
                await emsp_told(emsp, kwh=(wh - readings[0]) / 1000)
        await asyncio.sleep(pause)
        end = start + timedelta(minutes=10 * (len(readings) - 1))
        await cp.call(
            event(
                "Ended",
                len(readings) - 1,
                end,
                "EVCommunicationLost",
                energy_201(end, readings[-1], "Transaction.End"),
                stoppedReason="EVDisconnected",
            )
        )
        await cp.call(
            call201.StatusNotification(timestamp=now_iso(), connector_status="Available", evse_id=1, connector_id=1)
        )
    return "E2E-TX-201"


def expected_cost(kwh: Decimal) -> dict:
    return {
        "excl_vat": float(money(FLAT + PER_KWH * kwh)),
        "incl_vat": float(money(FLAT * VAT) + money(PER_KWH * kwh * VAT)),
    }


def test_two_drivers_charge_and_their_emsp_gets_sessions_and_priced_cdrs(daphne, roaming, emsp, network, worker):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    readings_16 = [1000, 3000, 5500, 8000, 11000]  # 10 kWh
    readings_201 = [200, 1700, 3700, 6700, 12700]  # 12.5 kWh, other steps than the 1.6 charger's

    async def both():
        return await asyncio.gather(
            charge_16(
                daphne.ocpp_url("E2E-1.6"), network["1.6"][1], start=start, readings=readings_16, pause=1.3, emsp=emsp
            ),
            charge_201(
                daphne.ocpp_url("E2E-2.0.1"),
                network["2.0.1"][1],
                start=start,
                readings=readings_201,
                pause=1.3,
                emsp=emsp,
            ),
        )

    asyncio.run(both())
    sessions = wait_until(
        lambda: (
            list(Session.objects.filter(status="COMPLETED"))
            if Session.objects.filter(status="COMPLETED").count() == 2
            else None
        ),
        timeout=40,
    )
    wait_until(lambda: len(emsp.cdr_posts) == 2, timeout=40)
    worker.drain()  # the final PATCHes too: pushes of different objects may arrive in any order
    for session, readings, evse_uid in (
        (s, r, u)
        for s in sessions
        for r, u in ((readings_16, "E2E-1.6-1"), (readings_201, "E2E-2.0.1-1"))
        if s.evse_uid == u
    ):
        kwh = Decimal(readings[-1] - readings[0]) / 1000
        calls = emsp.session_calls(session.id)
        assert calls[0]["method"] == "PUT" and calls[0]["body"]["status"] == "ACTIVE"
        kwhs = [c["body"]["kwh"] for c in calls if "kwh" in c["body"]]
        assert kwhs == sorted(kwhs) and kwhs[-1] == float(kwh)
        assert any(0 < k < float(kwh) for k in kwhs), f"no PATCH while charging: {kwhs}"  # rising kWh on the way
        stored = emsp.sessions[f"NL/CPO/{session.id}"]
        assert stored["status"] == "COMPLETED" and stored["kwh"] == float(kwh)
        assert stored["total_cost"] == expected_cost(kwh)
        [cdr] = cdr_of(emsp, session.id)
        assert cdr["total_energy"] == float(kwh) and cdr["total_cost"] == expected_cost(kwh)
        assert cdr["start_date_time"] == iso(start) and cdr["end_date_time"] == iso(start + timedelta(minutes=40))
        assert cdr["total_time"] == pytest.approx(40 / 60, abs=1e-4)
        location = cdr["cdr_location"]
        assert (location["id"], location["evse_uid"], location["connector_id"]) == ("LOC-T1", evse_uid, "1")
        assert cdr["cdr_token"]["uid"] in (TOKEN_16, TOKEN_201) and cdr["cdr_token"]["party_id"] == "EXM"
        assert [t["id"] for t in cdr["tariffs"]] == ["E2E-AC"]
    # Every push went to this EMSP's receivers with its token and our routing headers.
    for request in (r for r in emsp.requests if "/emsp/2.2.1/" in r["path"]):
        assert request["headers"]["OCPI-from-party-id"] == "CPO" and request["headers"]["OCPI-to-party-id"] == "EXM"
    assert {m[0] for m in emsp.locations} == {"PATCH"}  # EVSE status changes on the way
    # The EMSP can also pull both from our Sender interfaces.
    date_from = iso(datetime.now(UTC) - timedelta(hours=1))
    pulled = emsp_call(emsp, "GET", f"{daphne.http_url}/ocpi/2.2.1/sessions", params={"date_from": date_from})
    assert pulled.status_code == 200 and sorted(s["id"] for s in pulled.json()["data"]) == sorted(
        s.id for s in sessions
    )
    assert all(s["status"] == "COMPLETED" for s in pulled.json()["data"])
    pulled = emsp_call(emsp, "GET", f"{daphne.http_url}/ocpi/2.2.1/cdrs")
    assert sorted(json.dumps(c, sort_keys=True) for c in pulled.json()["data"]) == sorted(
        json.dumps(c, sort_keys=True) for c in emsp.cdr_posts
    )


def test_an_emsp_down_during_the_stop_gets_the_cdr_once_and_a_retransmitted_stop_changes_nothing(
    daphne, roaming, emsp, network, worker
):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]

    async def go_down():
        wait_until(lambda: emsp.session_calls(), timeout=20)  # the PUT arrived
        emsp.go_down()

    _, stop = asyncio.run(charge_16(url, secret, start=start, readings=[0, 2000, 4000], pause=0.5, stop_hook=go_down))
    session = wait_until(lambda: Session.objects.filter(status="COMPLETED").first(), timeout=30)
    wait_until(lambda: OutboxMessage.objects.filter(module="sessions", attempts__gte=2).exists(), timeout=30)
    post = wait_until(lambda: OutboxMessage.objects.filter(module="cdrs").first(), timeout=30)
    assert post.status == "PENDING" and emsp.cdr_posts == []  # behind the COMPLETED session, which is retried
    emsp.come_back()  # back "a minute later" (seconds, here)
    wait_until(lambda: cdr_of(emsp, session.id), timeout=30)

    async def retransmit():  # the charger reconnects and sends its queued StopTransaction again
        async with connected(url, "E2E-1.6", secret) as cp:
            await cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
            await cp.call(stop)

    asyncio.run(retransmit())
    worker.drain(gateway_events=True)  # whatever the stop announced, and every push that queued, has been done
    assert Cdr.objects.filter(session=session).count() == 1
    assert len(cdr_of(emsp, session.id)) == 1
    assert [a.ok for a in OutboxAttempt.objects.filter(message__module="cdrs")] == [True]  # once, after the session
    assert any("ConnectError" in a.error for a in OutboxAttempt.objects.filter(message__module="sessions"))
    post.refresh_from_db()
    assert post.status == "SENT" and post.response_location.endswith(f"/cdrs/{session.id}")
    assert emsp.sessions[f"NL/CPO/{session.id}"]["status"] == "COMPLETED"


def test_a_worker_killed_while_ending_a_session_leaves_one_cdr(daphne, roaming, emsp, network, worker):
    """The stop's pipeline run is held mid-transaction (we lock its Session row), the worker is SIGKILLed there and
    started again: the task comes back (acks_late, visibility timeout) and beat reconciles; one CDR, one POST."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]

    async def begin():
        async with connected(url, "E2E-1.6", secret) as cp:
            answer = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=0, timestamp=iso(start))
            )
            return answer.transaction_id

    async def send(message):
        async with connected(url, "E2E-1.6", secret) as cp:
            return await cp.call(message)

    transaction_id = asyncio.run(begin())
    session = wait_until(lambda: Session.objects.first(), timeout=20)
    wait_until(lambda: emsp.session_calls(session.id), timeout=20)
    with transaction.atomic():
        Session.objects.select_for_update().get(pk=session.pk)
        asyncio.run(
            send(
                call16.StopTransaction(
                    meter_stop=3000, transaction_id=transaction_id, timestamp=iso(start + timedelta(minutes=20))
                )
            )
        )
        wait_until(lambda: waiting_on_locks() >= 1, timeout=20)  # the worker's run is stuck inside its transaction
        worker.kill()
    assert not Cdr.objects.filter(session=session).exists()
    worker.start()
    wait_until(lambda: cdr_of(emsp, session.id), timeout=40)
    worker.drain()  # the task the killed worker held came back and ran again, as did every reconciling run
    assert Cdr.objects.filter(session=session).count() == 1
    assert len(cdr_of(emsp, session.id)) == 1
    assert OutboxMessage.objects.filter(module="cdrs").count() == 1
    assert emsp.sessions[f"NL/CPO/{session.id}"]["status"] == "COMPLETED"


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the same snapshot for the whole transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]
