"""Commands and charging profiles end to end: a real EMSP on loopback POSTs to a live daphne that holds simulated
1.6 and 2.0.1 chargers; the charger gets the OCPP call and the EMSP gets the result at its response_url.

The embedded mode (no REDIS_URL: in-memory channel layer, Celery tasks in-process) is tested on its own daphne; the
production shape (Redis channel layer, a real Celery worker process) when REDIS_URL is set."""

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from billing.models import Session
from cpo.dashboard.models import AuditLog
from ocpi_api.models import Command, PartnerToken
from ocpp_gateway.models import ChargingProfile, Transaction
from tests.ocpi_api.emsp_commands import CommandsEmsp
from tests.ocpi_api.factories import make_partner
from tests.ocpp_gateway.chargers import Charger16, Charger201, connected, now_iso
from tests.support import OUTPUT, ROOT, in_thread, server_env, start_daphne, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
PARTNER_TOKEN = "emsp-commands-token"


class CommandCharger16(Charger16):
    @on(Action16.reserve_now)
    def on_reserve_now(self, connector_id, expiry_date, id_tag, reservation_id, **kwargs):
        self.received.append(
            ("ReserveNow", {"connector_id": connector_id, "id_tag": id_tag, "reservation_id": reservation_id})
        )
        return result16.ReserveNow(status="Accepted")

    @on(Action16.cancel_reservation)
    def on_cancel_reservation(self, reservation_id, **kwargs):
        self.received.append(("CancelReservation", {"reservation_id": reservation_id}))
        return result16.CancelReservation(status="Accepted")

    @on(Action16.set_charging_profile)
    def on_set_charging_profile(self, connector_id, cs_charging_profiles, **kwargs):
        self.received.append(("SetChargingProfile", {"connector_id": connector_id, **cs_charging_profiles}))
        return result16.SetChargingProfile(status="Accepted")

    @on(Action16.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id, duration, **kwargs):
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start="2026-11-20T10:00:00Z",
            charging_schedule={
                "duration": duration,
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 16.0}, {"start_period": 600, "limit": 8.0}],
            },
        )

    @on(Action16.clear_charging_profile)
    def on_clear_charging_profile(self, **kwargs):
        self.received.append(("ClearChargingProfile", kwargs))
        return result16.ClearChargingProfile(status="Accepted")


class CommandCharger201(Charger201):
    @on(Action201.reserve_now)
    def on_reserve_now(self, id, expiry_date_time, id_token, **kwargs):
        self.received.append(("ReserveNow", {"id": id, "id_token": id_token, **kwargs}))
        return result201.ReserveNow(status="Occupied")

    @on(Action201.request_stop_transaction)
    async def on_request_stop(self, transaction_id, **kwargs):
        await asyncio.sleep(6)  # longer than the CSMS waits
        return result201.RequestStopTransaction(status="Accepted")


def headers(token=PARTNER_TOKEN):
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def post_command(server, command, body):
    return httpx.post(f"{server.http_url}/ocpi/2.2.1/commands/{command}", json=body, headers=headers(), timeout=10)


def token_object(uid="APP-USER-0001", **changes):
    return {
        "country_code": "NL",
        "party_id": "EXM",
        "uid": uid,
        "type": "APP_USER",
        "contract_id": "NL-EXM-C0001",
        "issuer": "Example EMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T00:00:00Z",
        **changes,
    }


def session_for(tx: Transaction) -> Session:
    """The OCPI Session of a transaction: billing's pipeline writes it; if it is not there (yet), a minimal one."""
    try:
        return wait_until(lambda: Session.objects.filter(transaction=tx).first(), timeout=3)
    except AssertionError:
        return Session.objects.create(
            country_code="NL",
            party_id="CPO",
            id=f"S-{tx.pk}",
            transaction=tx,
            emsp_country_code="NL",
            emsp_party_id="EXM",
            start_date_time=tx.started_at,
            cdr_token={},
            auth_method="COMMAND",
            location_id="LOC-T1",
            evse_uid=tx.evse.uid if tx.evse else "",
            connector_id="1",
            currency="EUR",
            status="ACTIVE",
        )


@pytest.fixture
def emsp():
    server = CommandsEmsp().start()
    yield server
    server.stop()


@pytest.fixture
def partner(emsp):
    return make_partner(
        token=PARTNER_TOKEN, versions_url=emsp.versions_url, endpoints=emsp.endpoints(), outgoing_token=emsp.token_b
    )


@pytest.fixture(scope="module")
def embedded_daphne(django_db_setup, django_db_blocker):
    """One daphne as `make run` starts it on a bare machine: in-memory channel layer, Celery tasks in-process."""
    server = start_daphne("ocpi-commands-embedded", REDIS_URL="", CELERY_TASK_ALWAYS_EAGER="1", OCPP_CALL_TIMEOUT="3")
    yield server
    stop(server)


def test_each_command_reaches_a_16_charger_and_its_result_reaches_the_emsp(
    embedded_daphne, emsp, partner, station_factory
):
    _, secret = station_factory("CP-OCPI-16")
    expiry = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def scenario():
        async with connected(embedded_daphne.ocpp_url("CP-OCPI-16"), "CP-OCPI-16", secret, cls=CommandCharger16) as cp:
            await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            start = await in_thread(
                post_command,
                server=embedded_daphne,
                command="START_SESSION",
                body={
                    "response_url": emsp.response_url("start"),
                    "token": token_object(),
                    "location_id": "LOC-T1",
                    "evse_uid": "CP-OCPI-16-1",
                    "connector_id": "1",
                    "authorization_reference": "EMSP-REF-1",
                },
            )
            started = await in_thread(emsp.result_for, name="start")
            # the driver plugs in: the charger starts with the command's idTag, which the command authorised
            auth = await cp.call(call16.Authorize(id_tag="APP-USER-0001"))
            tx = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag="APP-USER-0001", meter_start=0, timestamp=now_iso())
            )
            transaction = await in_thread(Transaction.objects.get, transaction_id=str(tx.transaction_id))
            session = await in_thread(session_for, tx=transaction)
            stop_answer = await in_thread(
                post_command,
                server=embedded_daphne,
                command="STOP_SESSION",
                body={"response_url": emsp.response_url("stop"), "session_id": session.id},
            )
            stopped = await in_thread(emsp.result_for, name="stop")
            unlock = await in_thread(
                post_command,
                server=embedded_daphne,
                command="UNLOCK_CONNECTOR",
                body={
                    "response_url": emsp.response_url("unlock"),
                    "location_id": "LOC-T1",
                    "evse_uid": "CP-OCPI-16-2",
                    "connector_id": "1",
                },
            )
            unlocked = await in_thread(emsp.result_for, name="unlock")
            reserve = await in_thread(
                post_command,
                server=embedded_daphne,
                command="RESERVE_NOW",
                body={
                    "response_url": emsp.response_url("reserve"),
                    "token": token_object(uid="RFID-RES-1", type="RFID"),
                    "expiry_date": expiry,
                    "reservation_id": "R-1",
                    "location_id": "LOC-T1",
                    "evse_uid": "CP-OCPI-16-2",
                },
            )
            reserved = await in_thread(emsp.result_for, name="reserve")
            cancel = await in_thread(
                post_command,
                server=embedded_daphne,
                command="CANCEL_RESERVATION",
                body={"response_url": emsp.response_url("cancel"), "reservation_id": "R-1"},
            )
            canceled = await in_thread(emsp.result_for, name="cancel")
            return (
                start,
                started,
                auth,
                tx,
                transaction,
                stop_answer,
                stopped,
                unlock,
                unlocked,
                reserve,
                reserved,
                cancel,
                canceled,
                cp.received,
            )

    (
        start,
        started,
        auth,
        tx,
        transaction,
        stop_answer,
        stopped,
        unlock,
        unlocked,
        reserve,
        reserved,
        cancel,
        canceled,
        received,
    ) = asyncio.run(scenario())
    for answer in (start, stop_answer, unlock, reserve, cancel):
        assert answer.status_code == 200 and answer.json()["status_code"] == 1000
        assert answer.json()["data"]["result"] == "ACCEPTED" and answer.json()["data"]["timeout"] > 3
    for result in (started, stopped, unlocked, reserved, canceled):
        assert result["body"] == {"result": "ACCEPTED"}
        assert base64.b64decode(result["headers"]["Authorization"].split()[1]).decode() == emsp.token_b
    assert ("RemoteStartTransaction", {"id_tag": "APP-USER-0001", "connector_id": 1}) in received
    assert ("RemoteStopTransaction", {"transaction_id": tx.transaction_id}) in received
    reservation = Command.objects.get(command="RESERVE_NOW")
    assert (
        "ReserveNow",
        {"connector_id": 2, "id_tag": "RFID-RES-1", "reservation_id": reservation.ocpp_reservation_id},
    ) in received
    assert ("CancelReservation", {"reservation_id": reservation.ocpp_reservation_id}) in received
    # the session started by the command is authorised by it
    assert auth.id_tag_info["status"] == "Accepted" and tx.id_tag_info["status"] == "Accepted"
    assert (transaction.auth_source, transaction.authorization_reference) == (f"partner:{partner.pk}", "EMSP-REF-1")
    assert (transaction.auth_method, transaction.contract_id, transaction.token_party_id) == (
        "COMMAND",
        "NL-EXM-C0001",
        "EXM",
    )
    wait_until(lambda: set(Command.objects.values_list("state", flat=True)) == {"DELIVERED"})
    # Each command that went to the charger is in the audit log, saying which partner asked.
    audited = {
        (entry.action, entry.ok)
        for entry in AuditLog.objects.filter(username__startswith="OCPI ", identity="CP-OCPI-16")
    }
    assert {
        ("RemoteStartTransaction", True),
        ("RemoteStopTransaction", True),
        ("UnlockConnector", True),
        ("ReserveNow", True),
        ("CancelReservation", True),
    } <= audited
    assert AuditLog.objects.filter(username__contains="START_SESSION from NL*EXM").exists()


def test_charging_profiles_on_a_16_charger(embedded_daphne, emsp, partner, station_factory):
    _, secret = station_factory("CP-OCPI-SC")
    PartnerToken.objects.create(
        partner=partner,
        country_code="NL",
        party_id="EXM",
        uid="SC-TOKEN",
        type="RFID",
        contract_id="NL-EXM-CSC",
        issuer="Example",
        valid=True,
        whitelist="ALWAYS",
        last_updated=datetime(2026, 1, 1, tzinfo=UTC),
    )

    async def scenario():
        async with connected(embedded_daphne.ocpp_url("CP-OCPI-SC"), "CP-OCPI-SC", secret, cls=CommandCharger16) as cp:
            await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            tx = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag="SC-TOKEN", meter_start=0, timestamp=now_iso())
            )
            transaction = await in_thread(Transaction.objects.get, transaction_id=str(tx.transaction_id))
            session = await in_thread(session_for, tx=transaction)
            url = f"{embedded_daphne.http_url}/ocpi/2.2.1/chargingprofiles/{session.id}"
            put = await in_thread(
                httpx.put,
                url=url,
                headers=headers(),
                timeout=10,
                json={
                    "response_url": emsp.response_url("set"),
                    "charging_profile": {
                        "charging_rate_unit": "W",
                        "min_charging_rate": 1400.0,
                        "charging_profile_period": [
                            {"start_period": 0, "limit": 11000.0},
                            {"start_period": 1800, "limit": 3700.5},
                        ],
                    },
                },
            )
            set_result = await in_thread(emsp.result_for, name="set")
            get = await in_thread(
                httpx.get,
                url=url,
                headers=headers(),
                timeout=10,
                params={"duration": 900, "response_url": emsp.response_url("get")},
            )
            get_result = await in_thread(emsp.result_for, name="get")
            delete = await in_thread(
                httpx.delete,
                url=url,
                headers=headers(),
                timeout=10,
                params={"response_url": emsp.response_url("clear")},
            )
            clear_result = await in_thread(emsp.result_for, name="clear")
            return transaction, put, get, delete, set_result, get_result, clear_result, cp.received

    transaction, put, get, delete, set_result, get_result, clear_result, received = asyncio.run(scenario())
    for answer in (put, get, delete):
        assert answer.json()["status_code"] == 1000, answer.json()
        assert answer.status_code == 200 and answer.json()["data"]["result"] == "ACCEPTED"
        assert set(answer.json()["data"]) == {"result", "timeout"}
    assert set_result["body"] == {"result": "ACCEPTED"} and clear_result["body"] == {"result": "ACCEPTED"}
    [(_, profile)] = [r for r in received if r[0] == "SetChargingProfile"]
    assert profile["connector_id"] == 1 and profile["transaction_id"] == int(transaction.transaction_id)
    assert (profile["charging_profile_purpose"], profile["charging_profile_kind"]) == ("TxProfile", "Relative")
    assert profile["charging_schedule"]["charging_schedule_period"] == [
        {"start_period": 0, "limit": 11000.0},
        {"start_period": 1800, "limit": 3700.5},
    ]
    assert get_result["body"] == {
        "result": "ACCEPTED",
        "profile": {
            "start_date_time": "2026-11-20T10:00:00Z",
            "charging_profile": {
                "start_date_time": "2026-11-20T10:00:00Z",
                "duration": 900,
                "charging_rate_unit": "A",
                "charging_profile_period": [{"start_period": 0, "limit": 16.0}, {"start_period": 600, "limit": 8.0}],
            },
        },
    }
    # partners' profile ids have a range of their own (the planner's are 899,999 and 900,000 + EVSE, staff's from
    # 2,000,000,000): the one DELETE clears is the one PUT set
    assert profile["charging_profile_id"] == 1_000_000_000 + transaction.pk
    assert ("ClearChargingProfile", {"id": 1_000_000_000 + transaction.pk}) in received
    # the cleared profile is no longer held: neither the station page nor the load planner's caps count it
    [kept] = ChargingProfile.objects.filter(transaction=transaction, source="partner")
    assert (kept.profile_id, kept.status) == (1_000_000_000 + transaction.pk, "Cleared")


def test_a_201_charger_start_reserve_unsupported_and_timeout(embedded_daphne, emsp, partner, station_factory):
    _, secret = station_factory("CS-OCPI-201")
    expiry = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def scenario():
        async with connected(
            embedded_daphne.ocpp_url("CS-OCPI-201"), "CS-OCPI-201", secret, version="2.0.1", cls=CommandCharger201
        ) as cp:
            from ocpp.v201 import call as call201

            await cp.call(
                call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
            )
            await in_thread(
                post_command,
                server=embedded_daphne,
                command="START_SESSION",
                body={
                    "response_url": emsp.response_url("start201"),
                    "token": token_object(uid="RFID-201", type="RFID"),
                    "location_id": "LOC-T1",
                    "evse_uid": "CS-OCPI-201-1",
                },
            )
            started = await in_thread(emsp.result_for, name="start201")
            await in_thread(
                post_command,
                server=embedded_daphne,
                command="RESERVE_NOW",
                body={
                    "response_url": emsp.response_url("reserve201"),
                    "token": token_object(),
                    "expiry_date": expiry,
                    "reservation_id": "R-201",
                    "location_id": "LOC-T1",
                    "evse_uid": "CS-OCPI-201-2",
                },
            )
            reserved = await in_thread(emsp.result_for, name="reserve201")
            await in_thread(
                post_command,
                server=embedded_daphne,
                command="UNLOCK_CONNECTOR",
                body={
                    "response_url": emsp.response_url("unlock201"),
                    "location_id": "LOC-T1",
                    "evse_uid": "CS-OCPI-201-1",
                    "connector_id": "1",
                },
            )
            unlocked = await in_thread(emsp.result_for, name="unlock201")
            event = await cp.call(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp=now_iso(),
                    trigger_reason="RemoteStart",
                    seq_no=0,
                    transaction_info={"transaction_id": "TX-201-CMD", "remote_start_id": 1},
                    evse={"id": 1, "connector_id": 1},
                    id_token={"id_token": "RFID-201", "type": "ISO14443"},
                )
            )
            transaction = await in_thread(Transaction.objects.get, transaction_id="TX-201-CMD")
            session = await in_thread(session_for, tx=transaction)
            await in_thread(
                post_command,
                server=embedded_daphne,
                command="STOP_SESSION",
                body={"response_url": emsp.response_url("stop201"), "session_id": session.id},
            )
            stopped = await in_thread(emsp.result_for, name="stop201", timeout=30)
            return started, reserved, unlocked, event, stopped, cp.received

    started, reserved, unlocked, event, stopped, received = asyncio.run(scenario())
    start_cmd = Command.objects.get(command="START_SESSION")
    assert started["body"] == {"result": "ACCEPTED"}
    assert (
        "RequestStartTransaction",
        {"id_token": {"id_token": "RFID-201", "type": "ISO14443"}, "remote_start_id": start_cmd.pk},
    ) in received
    assert event.id_token_info["status"] == "Accepted"
    assert reserved["body"]["result"] == "EVSE_OCCUPIED"
    assert unlocked["body"]["result"] == "NOT_SUPPORTED"  # the simulated 2.0.1 charger has no UnlockConnector
    assert stopped["body"]["result"] == "TIMEOUT"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL")
def test_a_real_celery_worker_carries_the_command_across_processes(emsp, partner, station_factory):
    queue = f"ocpi-test-{uuid.uuid4().hex[:8]}"
    env = {"CELERY_TASK_ALWAYS_EAGER": "0", "CELERY_QUEUE": queue, "OCPP_CALL_TIMEOUT": "5"}
    server = start_daphne("ocpi-commands-redis", **env)
    OUTPUT.mkdir(exist_ok=True)
    log = open(OUTPUT / f"celery-{queue}.log", "w")
    queues = f"{queue},{queue}-urgent"  # settings.CELERY_TASK_QUEUES
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cpo", "worker", "-Q", queues, "--pool", "solo", "-l", "info"],
        cwd=ROOT,
        env=server_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    _, secret = station_factory("CP-OCPI-WORKER")
    try:

        async def scenario():
            async with connected(
                server.ocpp_url("CP-OCPI-WORKER"), "CP-OCPI-WORKER", secret, cls=CommandCharger16
            ) as cp:
                answer = await in_thread(
                    post_command,
                    server=server,
                    command="START_SESSION",
                    body={
                        "response_url": emsp.response_url("worker"),
                        "token": token_object(),
                        "location_id": "LOC-T1",
                        "evse_uid": "CP-OCPI-WORKER-2",
                    },
                )
                result = await in_thread(emsp.result_for, name="worker", timeout=40)
                return answer, result, cp.received

        answer, result, received = asyncio.run(scenario())
    finally:
        worker.terminate()
        worker.wait(20)
        stop(server)
    assert answer.json()["data"]["result"] == "ACCEPTED"
    assert result["body"] == {"result": "ACCEPTED"}
    assert ("RemoteStartTransaction", {"id_tag": "APP-USER-0001", "connector_id": 2}) in received
