"""A partner calling while our database is unreachable (down, or out of connections: "sorry, too many clients
already" was seen in the benchmark) gets HTTP 503 with Retry-After and OCPI status 3000 in the envelope, which tells
it to try again later, never a 500; once the database is back the same request succeeds."""

import base64

import httpx
import pytest

from tests.faults import DatabaseOutage
from tests.ocpi_api.factories import make_partner
from tests.support import live_server_drain, start_daphne, stop

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

TOKEN = {
    "country_code": "NL",
    "party_id": "EXM",
    "uid": "DB-OUT-1",
    "type": "RFID",
    "contract_id": "NL-EXM-C00000001-X",
    "issuer": "Example EMSP",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2026-12-03T08:00:00Z",
}


def test_a_token_pushed_while_the_database_is_away_gets_503_retry_after_then_succeeds(tmp_path):
    make_partner(token="token-of-partner-one")
    headers = {"Authorization": "Token " + base64.b64encode(b"token-of-partner-one").decode()}
    outage = DatabaseOutage(tmp_path)
    server = start_daphne("ocpi-db-outage", DATABASE_URL=outage.server_url)
    url = f"{server.http_url}/ocpi/2.2.1/tokens/NL/EXM/DB-OUT-1"
    try:
        outage.cut()
        try:
            away = httpx.put(url, json=TOKEN, headers=headers, timeout=30)
        finally:
            outage.restore()
        assert away.status_code == 503, away.text
        assert int(away.headers["Retry-After"]) > 0
        assert away.json()["status_code"] == 3000 and away.json()["data"] is None
        assert "database" in away.json()["status_message"]

        back = httpx.put(url, json=TOKEN, headers=headers, timeout=30)
        assert back.status_code in (200, 201) and back.json()["status_code"] == 1000, back.text
        assert "Traceback" not in server.log()
    finally:
        if outage.shared and server.process.poll() is None:
            live_server_drain(server)
        stop(server)
        outage.close()
