"""The launcher (`python -m cpo.server`) under load and abuse: slow or silent clients are closed, handshakes beyond
those the gateway authenticates at once wait their turn (and meanwhile boots are answered Pending), and a handshake
the gateway cannot take is answered 503 with Retry-After (what chargers understand), never 500."""

import concurrent.futures
import json
import socket
import time

import pytest
import websockets.sync.client
from django.db import transaction

from cpo.models import ChargingStation
from tests.support import (
    basic_auth,
    handshake_failures,
    handshake_request,
    read_head,
    start_daphne,
    stop,
    wait_until,
)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

RETRY_AFTER_MIN, RETRY_AFTER_MAX = 3, 15


def assert_retry_later(status: int, headers: dict) -> None:
    assert status == 503, (status, headers)
    assert RETRY_AFTER_MIN <= int(headers["retry-after"]) <= RETRY_AFTER_MAX, headers


@pytest.fixture(scope="module")
def strict_daphne(django_db_setup, django_db_blocker):
    """Short header and handshake timeouts, room for only two handshakes at a time and eight waiting."""
    server = start_daphne(
        "strict",
        args=("--websocket_connect_timeout", "2"),
        HTTP_HEADER_TIMEOUT_SECONDS="1",
        WEBSOCKET_HANDSHAKES_MAX_IN_FLIGHT="2",
        WEBSOCKET_HANDSHAKES_MAX_WAITING="8",
        WEBSOCKET_RETRY_AFTER_MIN_SECONDS=str(RETRY_AFTER_MIN),
        WEBSOCKET_RETRY_AFTER_MAX_SECONDS=str(RETRY_AFTER_MAX),
    )
    yield server
    stop(server)


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (reading whatever it says first), None if still open after `seconds`."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_silent_and_slow_connections_are_closed_after_the_header_timeout(strict_daphne):
    """200 connections that never send a request, and one that sends its headers a line every half second: all
    closed about HTTP_HEADER_TIMEOUT_SECONDS after connecting, not held (1,500 such were held for over 75 s)."""
    address = (strict_daphne.host, strict_daphne.port)
    silent = [socket.create_connection(address, timeout=5) for _ in range(200)]
    slow = socket.create_connection(address, timeout=5)
    try:
        slow.sendall(b"GET /login/ HTTP/1.1\r\n")
        for line in (b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n", b"X-C: 3\r\n"):
            time.sleep(0.5)
            try:
                slow.sendall(line)
            except OSError:
                break
        assert closed_within(slow, 5) is not None
        assert all(closed_within(sock, 5) is not None for sock in silent)
    finally:
        for sock in [*silent, slow]:
            sock.close()


def test_a_client_that_sends_its_headers_in_time_is_served(strict_daphne):
    with socket.create_connection((strict_daphne.host, strict_daphne.port), timeout=10) as sock:
        time.sleep(0.5)
        sock.sendall(b"GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_head(sock)[0] == 200


def handshakes_at_once(server, stations) -> list[tuple[int, dict]]:
    """Send every station's handshake before reading any answer, as chargers do after a gateway restart."""
    sockets = [socket.create_connection((server.host, server.port), timeout=15) for _ in stations]
    try:
        for sock, (station, secret) in zip(sockets, stations, strict=True):
            sock.sendall(handshake_request(station.identity, secret))
        return [read_head(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_handshakes_beyond_those_in_flight_wait_their_turn_and_are_served(strict_daphne, station_factory):
    """Ten chargers at once where two are authenticated at a time: all ten get their socket (they used to get 503 and
    come back later, which made a storm of 10,000 last longer and answer 16,000 503s)."""
    stations = [station_factory(f"CP-TURN-{i}", evses=1) for i in range(10)]
    statuses = [status for status, _ in handshakes_at_once(strict_daphne, stations)]
    assert statuses == [101] * 10, statuses


def test_handshakes_beyond_those_waiting_get_503_with_retry_after_never_500(strict_daphne, station_factory):
    """...and operators see them on the gateway's metrics, by reason."""
    stations = [station_factory(f"CP-STORM-{i}", evses=1) for i in range(40)]
    before = handshake_failures(strict_daphne)
    answers = handshakes_at_once(strict_daphne, stations)
    after = handshake_failures(strict_daphne)
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {101, 503}, statuses
    assert statuses.count(503) >= 10 and statuses.count(101) >= 10, statuses
    for status, headers in answers:
        if status == 503:
            assert_retry_later(status, headers)
    counted = {reason: after.get(reason, 0) - before.get(reason, 0) for reason in ("overloaded", "handshake_timeout")}
    assert counted["overloaded"] >= 1 and sum(counted.values()) == statuses.count(503), (counted, statuses)


BOOT_PAYLOADS = {
    "ocpp1.6": {"chargePointVendor": "ACME", "chargePointModel": "X"},
    "ocpp2.0.1": {"chargingStation": {"vendorName": "ACME", "model": "X"}, "reason": "PowerUp"},
}


def ocpp_socket(server, identity: str, secret: str, subprotocol: str):
    return websockets.sync.client.connect(
        server.ocpp_url(identity), subprotocols=[subprotocol], additional_headers=basic_auth(identity, secret)
    )


def boot(ws, unique_id: str) -> dict:
    ws.send(json.dumps([2, unique_id, "BootNotification", BOOT_PAYLOADS[ws.subprotocol]]))
    answer = json.loads(ws.recv(timeout=10))
    assert answer[:2] == [3, unique_id], answer
    return answer[2]


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
def test_while_handshakes_wait_a_boot_is_answered_pending_and_accepted_once_they_are_served(
    strict_daphne, station_factory, subprotocol
):
    """A reconnect storm: two handshakes hold the places with the application (their stations' rows are locked) and a
    third waits. A charger that boots meanwhile is told Pending with an interval (its StatusNotifications wait too, so
    the handshakes, which have a deadline, go first); nothing is recorded for that boot. Once no handshake waits,
    the same charger's next boot is Accepted."""
    tag = subprotocol[4:]
    station, secret = station_factory(f"CP-BOOTS-LATER-{tag}", evses=1)
    stuck = [station_factory(f"CP-HELD-{tag}-{i}", evses=1) for i in range(2)]
    waiting_station = station_factory(f"CP-WAITING-{tag}", evses=1)
    address = (strict_daphne.host, strict_daphne.port)
    with ocpp_socket(strict_daphne, station.identity, secret, subprotocol) as ws:
        with transaction.atomic():
            ChargingStation.objects.filter(pk__in=[s.pk for s, _ in stuck]).update(vendor="locked")
            held = [socket.create_connection(address, timeout=15) for _ in stuck]
            for sock, (s, s_secret) in zip(held, stuck, strict=True):
                sock.sendall(handshake_request(s.identity, s_secret))
            time.sleep(0.3)  # both with the application, stuck on the lock
            waiting = socket.create_connection(address, timeout=15)
            waiting.sendall(handshake_request(waiting_station[0].identity, waiting_station[1]))
            time.sleep(0.3)
            pending = boot(ws, "boot-1")
        for sock in [*held, waiting]:
            read_head(sock)  # answered (503 after the connect timeout, or 101 once the lock is gone)
            sock.close()
        recorded_after_pending = ChargingStation.objects.get(pk=station.pk).vendor
        accepted = boot(ws, "boot-2")
    assert pending["status"] == "Pending", pending
    assert recorded_after_pending != "ACME"
    assert RETRY_AFTER_MIN <= pending["interval"] <= RETRY_AFTER_MAX, pending
    assert accepted["status"] == "Accepted", accepted
    assert ChargingStation.objects.filter(pk=station.pk, vendor="ACME").exists()


def test_a_handshake_whose_turn_does_not_come_in_time_gets_503_with_retry_after(strict_daphne, station_factory):
    """Both places with the application held by handshakes stuck on a lock: a third charger waits, and is told to come
    back when the connect timeout (2 s here) passes, not dropped (its own row is locked too: should its turn come
    first, it is stuck as well)."""
    stuck = [station_factory(f"CP-LOCKED-{i}", evses=1) for i in range(2)]
    station, secret = station_factory("CP-NO-TURN", evses=1)
    address = (strict_daphne.host, strict_daphne.port)
    with transaction.atomic():
        ChargingStation.objects.filter(identity__startswith="CP-LOCKED-").update(vendor="locked")
        ChargingStation.objects.filter(pk=station.pk).update(vendor="locked")
        held = [socket.create_connection(address, timeout=15) for _ in stuck]
        for sock, (s, s_secret) in zip(held, stuck, strict=True):
            sock.sendall(handshake_request(s.identity, s_secret))
        time.sleep(0.3)
        with socket.create_connection(address, timeout=15) as sock:
            started = time.monotonic()
            sock.sendall(handshake_request(station.identity, secret))
            status, headers = read_head(sock)
            waited = time.monotonic() - started
        for sock in held:
            read_head(sock)
            sock.close()
    assert_retry_later(status, headers)
    assert waited > 0.5, (waited, headers)  # it waited for a turn rather than being sent away at once


def test_a_handshake_the_gateway_cannot_finish_in_time_gets_503_with_retry_after(strict_daphne, station_factory):
    """The station's row is locked (a long transaction elsewhere): the handshake cannot finish within the connect
    timeout (2 s here), and the charger is told to come back, rather than dropped or refused 403."""
    station, secret = station_factory("CP-STUCK", evses=1)
    with transaction.atomic():
        ChargingStation.objects.filter(pk=station.pk).update(vendor="locked")
        with socket.create_connection((strict_daphne.host, strict_daphne.port), timeout=15) as sock:
            started = time.monotonic()
            sock.sendall(handshake_request("CP-STUCK", secret))
            status, headers = read_head(sock)
            waited = time.monotonic() - started
    assert_retry_later(status, headers)
    # autobahn rounds its handshake timer down to the second: it fires up to a second early
    assert "timeout" in headers["status-line"] and 0.9 < waited < 6, (waited, headers)


def one_handshake_at_a_time(name: str, **env: str):
    """A daphne of its own with one place for handshakes with the application and a long connect timeout."""
    return start_daphne(
        name,
        args=("--websocket_connect_timeout", "30"),
        WEBSOCKET_HANDSHAKES_MAX_IN_FLIGHT="1",
        WEBSOCKET_RETRY_AFTER_MIN_SECONDS=str(RETRY_AFTER_MIN),
        WEBSOCKET_RETRY_AFTER_MAX_SECONDS=str(RETRY_AFTER_MAX),
        **env,
    )


def test_a_handshake_whose_turn_comes_after_the_longest_wait_gets_503_with_retry_after(station_factory):
    """One place with the application, held for 1.5 s by a handshake stuck on a lock; the charger waiting behind it
    would wait longer than WEBSOCKET_HANDSHAKE_MAX_WAIT_SECONDS (0.5 s here): when its turn comes it is told to come
    back (its own connect timeout is near), while the one that held the place gets its socket."""
    stuck, stuck_secret = station_factory("CP-SLOW-TURN", evses=1)
    station, secret = station_factory("CP-TOO-LATE", evses=1)
    server = one_handshake_at_a_time("patient", WEBSOCKET_HANDSHAKE_MAX_WAIT_SECONDS="0.5")
    address = (server.host, server.port)
    try:
        with (
            socket.create_connection(address, timeout=15) as held,
            socket.create_connection(address, timeout=15) as sock,
        ):
            with transaction.atomic():
                ChargingStation.objects.filter(pk=stuck.pk).update(vendor="locked")
                held.sendall(handshake_request(stuck.identity, stuck_secret))
                time.sleep(0.3)
                sock.sendall(handshake_request(station.identity, secret))
                time.sleep(1.5)
            status, headers = read_head(sock)
            held_status, _ = read_head(held)
    finally:
        stop(server)
    assert held_status == 101
    assert_retry_later(status, headers)
    assert "overloaded" in headers["status-line"], headers


def test_on_sigterm_handshakes_waiting_for_their_turn_are_answered_503_at_once(station_factory):
    """A restart during a storm: a charger waiting for its turn is told to come back (to another process, behind the
    balancer) at once, not left waiting until the process is gone."""
    stuck, stuck_secret = station_factory("CP-STOP-HELD", evses=1)
    station, secret = station_factory("CP-STOP-WAITING", evses=1)
    server = one_handshake_at_a_time("stopping")
    address = (server.host, server.port)
    try:
        with transaction.atomic():
            ChargingStation.objects.filter(pk=stuck.pk).update(vendor="locked")
            with (
                socket.create_connection(address, timeout=15) as held,
                socket.create_connection(address, timeout=15) as sock,
            ):
                held.sendall(handshake_request(stuck.identity, stuck_secret))
                time.sleep(0.3)
                sock.sendall(handshake_request(station.identity, secret))
                time.sleep(0.3)
                server.process.terminate()  # SIGTERM
                started = time.monotonic()
                status, headers = read_head(sock)
                answered_after = time.monotonic() - started
    finally:
        stop(server)
    assert_retry_later(status, headers)
    assert "shutting down" in headers["status-line"] and answered_after < 3, (answered_after, headers)


@pytest.fixture(scope="module")
def daphne_without_database(django_db_setup, django_db_blocker, tmp_path_factory):
    """((host, port), its log) of a daphne whose database cannot be opened (not a LiveServer: nothing can drain it)."""
    missing = tmp_path_factory.mktemp("gone") / "no" / "such" / "dir" / "db.sqlite3"
    server = start_daphne("no-database", DATABASE_URL=f"sqlite:///{missing}")
    yield (server.host, server.port), server.log
    stop(server)


def test_a_handshake_that_fails_on_the_database_gets_503_with_retry_after(daphne_without_database):
    """An error of ours while authenticating (database, cache, channel layer down) is not the charger's fault: 503
    and Retry-After, never 500 (daphne's answer to an exception before the socket is accepted). Each is one line in
    the log, whether the charger waited for the answer or was gone by then: an outage during a reconnect storm
    wrote a traceback per charger."""
    address, server_log = daphne_without_database
    start = len(server_log())

    def one(_):
        with socket.create_connection(address, timeout=15) as s:
            s.sendall(handshake_request("CP-NODB", "secret"))
            return read_head(s)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    for status, headers in answers:
        assert_retry_later(status, headers)
    gone = socket.create_connection(address, timeout=15)
    gone.sendall(handshake_request("CP-NODB-GONE", "secret"))
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    gone.close()  # reset at once, as a charger whose link dropped

    def failures() -> list[str]:
        return [line for line in server_log()[start:].splitlines() if "failed on our side" in line]

    # Nine handshakes failed: the eight answered and the one whose charger was gone (noted as such when daphne saw
    # the reset before the application finished; on a busy machine it may finish first).
    wait_until(lambda: len(failures()) >= 9, timeout=20)
    time.sleep(1.5)  # daphne looks at finished applications once a second: a traceback would be written by now
    log = server_log()[start:]
    assert "Traceback" not in log, log
    # (a handshake may instead outlast the connect timeout, busy machine: answered 503 all the same, see above)
    assert all("OperationalError: unable to open database file" in line for line in failures()), log


def test_each_charger_connection_carries_the_servers_websocket_options():
    """Limits set on the server (frame size, handshake and ping timeouts) apply to every connection: the gateway
    copies them from the factory itself (autobahn's copy pretty-printed them for a debug line on every connection)."""
    from autobahn.twisted.websocket import WebSocketServerFactory
    from twisted.internet.testing import StringTransport

    from cpo.server import GatewayWebSocket

    factory = WebSocketServerFactory()
    factory.protocol = GatewayWebSocket
    factory.setProtocolOptions(maxMessagePayloadSize=12345, openHandshakeTimeout=7, autoPingInterval=11)
    protocol = factory.buildProtocol(("127.0.0.1", 0))
    protocol.makeConnection(StringTransport())

    assert (protocol.maxMessagePayloadSize, protocol.openHandshakeTimeout, protocol.autoPingInterval) == (12345, 7, 11)
    assert protocol.failByDrop == factory.failByDrop
