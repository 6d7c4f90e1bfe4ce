"""A PostgreSQL outage seen by a charger (issue 11): a TCP proxy between daphne and PostgreSQL resets every
connection and refuses new ones, then lets them through again. What cannot be stored is answered with CALLERROR
InternalError at once, so the charger keeps it and sends it again (OCPP 1.6 §4.7: transaction-related messages are
retried, TransactionMessageAttempts / TransactionMessageRetryInterval; 2.0.1 the same for TransactionEvent); the
socket stays open; once the database is back the retried frames are stored, once, and service resumes at once.

Why not answer CALLRESULT and store later: the charger's queue is the only durable copy of a reading during the
outage (a daphne process may die before the database returns), and a StartTransaction answer needs the row's id."""

import asyncio
import json
import time
import uuid

import pytest
import websockets
from django.db import connection

from ocpp_gateway.models import MessageLog, MeterValue, Transaction
from tests.faults import TcpProxy
from tests.ocpp_gateway.chargers import basic_auth
from tests.support import database_url_for_tests, start_daphne, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

RETRY_INTERVAL = 0.3  # the charger's TransactionMessageRetryInterval, shortened


@pytest.fixture
def pg_proxy(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL outage needs PostgreSQL (DATABASE_URL)")
    proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432), connection.settings_dict["HOST"] or "127.0.0.1")
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_daphne(pg_proxy):
    """A daphne whose database connections go through the proxy and live on between frames, as in production."""
    url = database_url_for_tests().replace(f":{connection.settings_dict['PORT'] or 5432}/", f":{pg_proxy.port}/")
    server = start_daphne("pg-outage", DATABASE_URL=url, DB_CONN_MAX_AGE="60", CELERY_TASK_ALWAYS_EAGER="1")
    yield server
    stop(server)
    wait_until(lambda: not sessions_through(pg_proxy), timeout=10)  # else the test database cannot be dropped


def sessions_through(proxy: TcpProxy) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(%s)", [list(proxy.upstream_ports)]
        )
        return cursor.fetchone()[0]


class Charger:
    """A 1.6 charger on a raw socket that retries a transaction-related message answered with a CALLERROR."""

    def __init__(self, ws):
        self.ws = ws
        self.errors: list[str] = []
        self.sent: list[str] = []  # the unique ids of our CALLs

    async def call(self, action: str, payload: dict) -> tuple[str, dict, float]:
        """One attempt: ("result", payload) or ("error", {"code": ...}), and how long the answer took."""
        unique_id = uuid.uuid4().hex[:16]
        self.sent.append(unique_id)
        began = time.perf_counter()
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if frame[0] != 2:
                break
            await self.ws.send(json.dumps([4, frame[1], "NotSupported", "", {}]))  # the CSMS asking us: not here
        took = time.perf_counter() - began
        assert frame[1] == unique_id
        if frame[0] == 3:
            return "result", frame[2], took
        return "error", {"code": frame[2]}, took

    async def call_until_stored(self, action: str, payload: dict, *, attempts: int = 60) -> dict:
        for _ in range(attempts):
            kind, body, took = await self.call(action, payload)
            if kind == "result":
                return body
            assert body["code"] == "InternalError", body
            assert took < 1.0, f"a CALLERROR took {took:.2f} s"
            self.errors.append(action)
            await asyncio.sleep(RETRY_INTERVAL)
        raise AssertionError(f"{action} never stored")


def meter_values(transaction_id: int, n: int) -> dict:
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [
            {
                "timestamp": f"2026-11-20T10:{n:02d}:00Z",
                "sampledValue": [{"value": str(1000 + 100 * n), "measurand": "Energy.Active.Import.Register"}],
            }
        ],
    }


def test_a_database_outage_answers_internal_error_keeps_the_socket_and_stores_every_retried_frame_once(
    proxied_daphne, pg_proxy, station_factory, local_token
):
    station, secret = station_factory("PG-OUT-1", evses=2)

    async def scenario():
        async with websockets.connect(
            proxied_daphne.ocpp_url("PG-OUT-1"),
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("PG-OUT-1", secret),
        ) as ws:
            cp = Charger(ws)
            boot = await cp.call_until_stored(
                "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"}
            )
            assert boot["status"] == "Accepted"
            start = {
                "connectorId": 1,
                "idTag": local_token.uid,
                "meterStart": 1000,
                "timestamp": "2026-11-20T10:00:00Z",
            }
            first = (await cp.call_until_stored("StartTransaction", start))["transactionId"]
            await cp.call_until_stored("MeterValues", meter_values(first, 1))

            pg_proxy.cut()
            cut = time.monotonic()
            second_start = {
                "connectorId": 2,
                "idTag": local_token.uid,
                "meterStart": 0,
                "timestamp": "2026-11-20T10:05:00Z",
            }
            pending = [("MeterValues", meter_values(first, n)) for n in range(2, 6)]
            pending.insert(2, ("StartTransaction", second_start))
            kind, body, took = await cp.call(*pending[0])
            assert kind == "error" and body["code"] == "InternalError" and took < 1.0, (kind, body, took)
            restore_at = cut + 3.0
            answered_after_restore = None
            answers = {}
            for action, payload in pending:  # in order, each until stored (the charger's transaction queue)
                for _ in range(100):
                    if pg_proxy.up is False and time.monotonic() >= restore_at:
                        pg_proxy.restore()
                        restored = time.monotonic()
                    kind, body, took = await cp.call(action, payload)
                    if kind == "result":
                        answers.setdefault(action, []).append(body)
                        if answered_after_restore is None:
                            answered_after_restore = time.monotonic() - restored
                        break
                    assert body["code"] == "InternalError" and took < 1.0, (body, took)
                    await asyncio.sleep(RETRY_INTERVAL)
            second = answers["StartTransaction"][0]["transactionId"]
            again = await cp.call_until_stored("StartTransaction", second_start)  # a retransmission
            assert again["transactionId"] == second
            stop_tx = {"transactionId": first, "meterStop": 1600, "timestamp": "2026-11-20T10:06:00Z"}
            await cp.call_until_stored("StopTransaction", stop_tx)
            return first, second, answered_after_restore, cp.sent

    first, second, answered_after_restore, sent = asyncio.run(scenario())
    assert answered_after_restore is not None and answered_after_restore < RETRY_INTERVAL * 3 + 1.0, (
        f"the first retry after the database came back was stored {answered_after_restore:.2f} s later"
    )
    assert Transaction.objects.filter(station=station).count() == 2
    tx = Transaction.objects.get(station=station, transaction_id=str(first))
    readings = sorted(MeterValue.objects.filter(transaction=tx).values_list("value", flat=True))
    assert [int(v) for v in readings] == [1000 + 100 * n for n in range(1, 6)], readings
    assert tx.ended_at is not None

    def logged() -> set[str]:
        return set(MessageLog.objects.filter(identity="PG-OUT-1", direction="IN").values_list("unique_id", flat=True))

    # the message log kept the frames it could not write during the outage, the refused attempts included
    try:
        wait_until(lambda: set(sent) <= logged(), timeout=10)
    except AssertionError:
        missing = set(sent) - logged()
        raise AssertionError(f"{len(missing)} of {len(sent)} frames missing from the message log") from None


def test_after_a_database_restart_the_first_frames_on_every_pooled_connection_are_stored(
    proxied_daphne, pg_proxy, station_factory
):
    """Issue 11 (PostgreSQL outage): the gateway keeps a database connection per database thread between frames. A
    restart of PostgreSQL while they sat idle leaves them dead without anyone knowing; the first frame each carried
    afterwards failed with CALLERROR InternalError, and a StatusNotification is not retried by the charger. Four
    chargers send at once so that every database thread holds a connection; the database restarts (the proxy cuts
    every connection) while nobody sends; then all four send again."""
    stations = [station_factory(f"PG-POOL-{n}", evses=1) for n in range(4)]

    def status(state: str) -> dict:
        return {"connectorId": 1, "errorCode": "NoError", "status": state, "timestamp": "2026-11-20T10:00:00Z"}

    async def scenario():
        sockets = [
            await websockets.connect(
                proxied_daphne.ocpp_url(station.identity),
                subprotocols=["ocpp1.6"],
                additional_headers=basic_auth(station.identity, secret),
            )
            for station, secret in stations
        ]
        chargers = [Charger(ws) for ws in sockets]
        boot = {"chargePointVendor": "ACME", "chargePointModel": "X"}
        await asyncio.gather(*(cp.call_until_stored("BootNotification", boot) for cp in chargers))
        for _ in range(3):
            await asyncio.gather(*(cp.call_until_stored("StatusNotification", status("Available")) for cp in chargers))
        await asyncio.sleep(1.0)  # the batched writes (message log, last seen) are done: nothing uses the database
        pg_proxy.cut()
        await asyncio.sleep(0.2)
        pg_proxy.restore()
        await asyncio.sleep(0.2)
        answers = await asyncio.gather(*(cp.call("StatusNotification", status("Preparing")) for cp in chargers))
        for ws in sockets:
            await ws.close()
        return answers

    answers = asyncio.run(scenario())
    assert [kind for kind, _, _ in answers] == ["result"] * 4, answers
