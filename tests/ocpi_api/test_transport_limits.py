"""Oversize requests to a real daphne (`python -m cpo.server`): answered in the OCPI envelope with the HTTP status
for the problem, before the body is read and before the token is checked, never a dropped connection or a 500."""

import http.client
import json
import socket
import time

import pytest

from ocpi_api.models import PartnerToken
from tests.ocpi_api.factories import auth, make_partner
from tests.ocpi_api.shapes import example

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN_PATH = "/ocpi/2.2.1/tokens/NL/EXM/012345678"


def request(server, method, path, *, body=b"", headers=None):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def envelope(status_line_body):
    status, headers, raw = status_line_body
    body = json.loads(raw)
    assert set(body) == {"data", "status_code", "status_message", "timestamp"}, body
    assert headers["Content-Type"] == "application/json"
    return status, body["status_code"], body["status_message"]


@pytest.fixture
def partner_headers(db):
    make_partner(token="token-of-partner-one")
    token = auth("token-of-partner-one")["HTTP_AUTHORIZATION"]
    return {"Authorization": token}


def test_a_3_mb_put_is_413_in_the_envelope_not_a_500(live_daphne, partner_headers):
    body = json.dumps({**example("token_put_example.json"), "party_id": "EXM", "contract_id": "X" * 3_000_000})
    answer = request(live_daphne, "PUT", TOKEN_PATH, body=body.encode(), headers=partner_headers)
    status, code, message = envelope(answer)
    assert (status, code) == (413, 2000) and "2621440" in message
    assert not PartnerToken.objects.exists()
    small = json.dumps({**example("token_put_example.json"), "party_id": "EXM"}).encode()
    assert envelope(request(live_daphne, "PUT", TOKEN_PATH, body=small, headers=partner_headers))[:2] == (201, 1000)


def test_an_unauthenticated_300_mb_body_is_answered_at_its_headers_and_never_read_in_full(live_daphne):
    with socket.create_connection((live_daphne.host, live_daphne.port), timeout=10) as sock:
        sock.sendall(
            f"PUT {TOKEN_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300_000_000}\r\n\r\n".encode()
        )
        answer = sock.recv(65536)  # not one byte of the body sent yet
        head, _, raw = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), answer
        assert json.loads(raw)["status_code"] == 2000
        # Whatever the client still sends is discarded, up to a bound, then the connection is closed.
        started = time.monotonic()
        sent = send_until_closed(sock, 300_000_000)
        assert sent < 50_000_000 and time.monotonic() - started < 15


def send_until_closed(sock: socket.socket, total: int) -> int:
    """Send up to `total` bytes of body; how many went out before the server closed the connection."""
    sent, chunk = 0, b"x" * 65536
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # reset or broken pipe: the server closed it
        return sent
    raise AssertionError(f"the server read all {total} bytes of an unauthenticated body")


def test_a_20_kb_authorization_header_is_answered_431_not_dropped(live_daphne):
    headers = {"Authorization": "Token " + "A" * 20_000}
    status, code, message = envelope(request(live_daphne, "GET", "/ocpi/2.2.1/locations", headers=headers))
    assert (status, code) == (431, 2000) and "header" in message.lower()
    # Many headers adding up beyond the limit: the same answer.
    many = {f"X-Filler-{i}": "y" * 1000 for i in range(20)}
    assert envelope(request(live_daphne, "GET", "/ocpi/versions", headers=many))[:2] == (431, 2000)
    # Outside /ocpi/ the answer is plain, but still an answer.
    status, headers, _ = request(live_daphne, "GET", "/login/", headers={"X-Big": "z" * 20_000})
    assert status == 431


def test_a_chunked_body_growing_beyond_the_limit_is_413_and_never_reaches_the_application(live_daphne, partner_headers):
    def chunks():
        for _ in range(50):
            yield b"x" * 65536  # 3.2 MB in all, no Content-Length

    connection = http.client.HTTPConnection(live_daphne.host, live_daphne.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked", **partner_headers}
        connection.request("PUT", TOKEN_PATH, body=chunks(), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert (status, body["status_code"]) == (413, 2000)
    assert not PartnerToken.objects.exists()
