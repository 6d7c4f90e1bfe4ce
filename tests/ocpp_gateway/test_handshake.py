"""The handshake before a charger's socket opens: identity syntax, and throttling of failed authentications."""

import asyncio
import base64
import os
import socket
import time
import uuid

import pytest
import websockets
from django.urls import reverse
from django.utils import timezone

from cpo.models import ChargingStation
from ocpp_gateway.models import StationAuthFailure
from tests.ocpp_gateway.chargers import basic_auth
from tests.support import start_daphne, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def raw_handshake_status(server, raw_identity: str, headers: dict | None = None) -> int:
    """The HTTP status of a websocket handshake to /ocpp/<raw_identity>, the path sent byte for byte as given
    (clients normalise `../` and quote; a hostile charger does not)."""
    key = base64.b64encode(b"0123456789abcdef").decode()
    lines = [
        f"GET /ocpp/{raw_identity} HTTP/1.1",
        f"Host: {server.host}:{server.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: ocpp1.6",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def handshake_status(url, headers) -> int | str:
    async def run():
        try:
            async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers) as ws:
                return f"101 {ws.subprotocol}"
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(run())


HOSTILE_IDENTITIES = {
    "encoded slash": "CP%2FX",
    "dot segments": "../CP-1",
    "encoded dot segments": "%2e%2e%2fCP-1",
    "only dots": "..",
    "nul": "CP%00X",
    "newline": "CP%0AX",
    "control character": "CP%07X",
    "non-ascii": "CP%C3%A9",
    "space": "CP%20X",
    "colon (the Basic-auth separator)": "CP%3AX",
    "49 characters": "C" * 49,
    "empty": "",
}


@pytest.fixture(scope="module")
def admitting_daphne(django_db_setup, django_db_blocker):
    """A daphne that admits unknown stations as Pending: the widest door an identity could come through."""
    server = start_daphne("admitting", OCPP_ADMIT_UNKNOWN_STATIONS="1")
    yield server
    stop(server)


def log_lines_after(server, mark: int) -> list[str]:
    return server.log()[mark:].splitlines()


@pytest.mark.parametrize("case", list(HOSTILE_IDENTITIES))
def test_an_identity_that_breaks_the_syntax_is_refused_with_a_4xx_and_one_log_line(admitting_daphne, case):
    """OCPP-J / security whitepaper: the identity is at most 48 printable characters; anything else is refused at
    the handshake with a 4xx (never a 500), even while unknown stations are admitted, and nothing is created."""
    mark = len(admitting_daphne.log())
    status = raw_handshake_status(admitting_daphne, HOSTILE_IDENTITIES[case])
    assert 400 <= status < 500, f"{case}: HTTP {status}"
    assert not ChargingStation.objects.exists()
    # the refusal is logged as it goes out: its line is there once the client has its answer, or a moment later
    wait_until(lambda: any("refused" in line for line in log_lines_after(admitting_daphne, mark)))
    lines = log_lines_after(admitting_daphne, mark)
    assert not any("Traceback" in line for line in lines), lines
    assert sum("refused" in line for line in lines) == 1, lines


def test_the_identity_is_url_decoded_exactly_once(live_daphne, station_factory):
    """`S4-CP%2531%2536` is the identity `S4-CP%31%36`, not `S4-CP16`."""
    _, secret = station_factory("S4-CP16")
    assert raw_handshake_status(live_daphne, "S4-CP16", basic_auth("S4-CP16", secret)) == 101
    assert raw_handshake_status(live_daphne, "S4-CP%2531%2536", basic_auth("S4-CP16", secret)) == 403
    assert raw_handshake_status(live_daphne, "S4-CP%2531%2536", basic_auth("S4-CP%31%36", secret)) == 403


def test_an_identity_of_48_printable_characters_with_escapes_gets_in(live_daphne, station_factory):
    identity = "CP_*=+|@.-%" + "x" * 37
    assert len(identity) == 48
    # No EVSEs: their OCPI uid (at most 36 characters) is derived from the identity.
    _, secret = station_factory(identity, evses=0)
    assert handshake_status(live_daphne.ocpp_url(identity), basic_auth(identity, secret)) == "101 ocpp1.6"
    assert raw_handshake_status(live_daphne, identity.replace("%", "%25") + "/", basic_auth(identity, secret)) == 101


def wrong_passwords(server, identity: str, count: int) -> list:
    return [handshake_status(server.ocpp_url(identity), basic_auth(identity, f"wrong-{n}")) for n in range(count)]


def test_an_identity_is_locked_out_after_repeated_failures_even_with_the_right_password(
    transactional_db, station_factory
):
    """Brute force: after OCPP_AUTH_FAILURE_LIMIT failures the identity's handshakes are refused unchecked until
    the lockout ends; the lockout raises one WARNING alert and staff find every failure in the audit trail."""
    _, secret = station_factory("CP-BRUTE", evses=0)
    _, other_secret = station_factory("CP-NEIGHBOUR", evses=0)
    server = start_daphne("brute", OCPP_AUTH_FAILURE_LIMIT="3", OCPP_AUTH_LOCKOUT_SECONDS="3")
    try:
        assert wrong_passwords(server, "CP-BRUTE", 3) == [403, 403, 403]
        started = time.monotonic()  # the lockout began before the third refusal came back
        right = basic_auth("CP-BRUTE", secret)
        assert handshake_status(server.ocpp_url("CP-BRUTE"), right) == 403  # locked: the password is not checked
        assert (
            handshake_status(server.ocpp_url("CP-NEIGHBOUR"), basic_auth("CP-NEIGHBOUR", other_secret)) == "101 ocpp1.6"
        )  # another identity from the same address is not locked (address limit not reached)
        locked_for = time.monotonic() - started
        assert locked_for < 3
        time.sleep(3.3 - locked_for)
        assert handshake_status(server.ocpp_url("CP-BRUTE"), right) == "101 ocpp1.6"
    finally:
        stop(server)
    log = server.log()
    assert sum("ALERT" in line and "CP-BRUTE" in line for line in log.splitlines()) == 1, log
    assert "identity locked out" in log
    trail = list(StationAuthFailure.objects.filter(identity="CP-BRUTE").order_by("id").values_list("reason", "address"))
    assert trail == [("bad_secret", "127.0.0.1")] * 3 + [("locked_out", "127.0.0.1")]


def test_while_the_cache_is_unreachable_chargers_get_in_and_lockouts_come_from_the_database(
    transactional_db, station_factory
):
    """Redis (the cache of failed-login counts) is down: handshakes are answered, never with a 500; the right
    password gets in, and brute force is still locked out, counted from the audit rows."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_redis = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    _, secret = station_factory("CP-NOCACHE", evses=0)
    server = start_daphne("no-cache", REDIS_URL=dead_redis, OCPP_AUTH_FAILURE_LIMIT="3", OCPP_AUTH_LOCKOUT_SECONDS="60")
    try:
        right = basic_auth("CP-NOCACHE", secret)
        assert handshake_status(server.ocpp_url("CP-NOCACHE"), right) == "101 ocpp1.6"
        assert wrong_passwords(server, "CP-NOCACHE", 3) == [403, 403, 403]
        assert handshake_status(server.ocpp_url("CP-NOCACHE"), right) == 403
    finally:
        stop(server)
    assert "Exception inside application" not in server.log()
    assert "the database decides lockouts meanwhile" in server.log()
    assert StationAuthFailure.objects.filter(identity="CP-NOCACHE", reason="bad_secret").count() == 3


def test_an_address_is_locked_out_after_failures_across_identities(transactional_db, station_factory):
    """An address trying many identities (unknown ones too) is locked out for all of them."""
    _, secret = station_factory("CP-ADDR", evses=0)
    server = start_daphne("brute-address", OCPP_AUTH_ADDRESS_FAILURE_LIMIT="4", OCPP_AUTH_LOCKOUT_SECONDS="60")
    try:
        statuses = [
            handshake_status(server.ocpp_url(f"CP-GUESS-{n}"), basic_auth(f"CP-GUESS-{n}", "x")) for n in range(4)
        ]
        assert statuses == [403] * 4
        assert handshake_status(server.ocpp_url("CP-ADDR"), basic_auth("CP-ADDR", secret)) == 403
    finally:
        stop(server)
    assert "address 127.0.0.1 locked out" in server.log()
    assert StationAuthFailure.objects.filter(reason="unknown_identity").count() == 4
    assert StationAuthFailure.objects.filter(reason="locked_out", address="127.0.0.1").count() == 1


def test_two_daphne_processes_share_the_failure_counts_on_redis(transactional_db, station_factory):
    """With REDIS_URL the counts live in Redis: failures spread over two processes lock the identity in both."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL (the embedded default counts per process)")
    _, secret = station_factory("CP-SPREAD", evses=0)
    shared = {
        "CACHE_KEY_PREFIX": f"i10-spread-{uuid.uuid4().hex[:8]}",
        "OCPP_AUTH_FAILURE_LIMIT": "4",
        "OCPP_AUTH_LOCKOUT_SECONDS": "60",
    }
    first, second = start_daphne("spread-1", **shared), start_daphne("spread-2", **shared)
    try:
        assert wrong_passwords(first, "CP-SPREAD", 2) + wrong_passwords(second, "CP-SPREAD", 2) == [403] * 4
        right = basic_auth("CP-SPREAD", secret)
        assert handshake_status(first.ocpp_url("CP-SPREAD"), right) == 403
        assert handshake_status(second.ocpp_url("CP-SPREAD"), right) == 403
    finally:
        stop(first)
        stop(second)


def test_staff_find_a_stations_refused_handshakes_in_the_admin(admin_client, station_factory):
    station, _ = station_factory("CP-AUDIT", evses=0)
    StationAuthFailure.objects.create(
        station=station, identity="CP-AUDIT", address="192.0.2.7", reason="bad_secret", created_at=timezone.now()
    )
    page = admin_client.get(reverse("admin:cpo_chargingstation_change", args=[station.pk])).content.decode()
    link = reverse("admin:ocpp_gateway_stationauthfailure_changelist") + "?identity=CP-AUDIT"
    assert link in page
    trail = admin_client.get(link).content.decode()
    assert "192.0.2.7" in trail and "bad secret" in trail
