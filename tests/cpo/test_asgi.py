"""What the ASGI entry point does with websockets nobody serves, and how refusals are logged."""

import asyncio

import pytest
import websockets

from tests.ocpp_gateway.chargers import basic_auth
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def refused_status(url: str, **kwargs) -> int:
    async def attempt():
        try:
            async with websockets.connect(url, subprotocols=["ocpp1.6"], **kwargs):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


def test_a_refused_handshake_is_one_log_line_and_no_traceback(live_daphne, station_factory):
    """A charger configured without /ocpp/ in its URL, or with a wrong secret, is refused with HTTP 403 and one
    line in the server's log."""
    station_factory("CP-ASGI-1")
    start = len(live_daphne.log())
    assert refused_status(f"{live_daphne.http_url.replace('http', 'ws')}/CP-ASGI-1") == 403
    assert (
        refused_status(
            live_daphne.ocpp_url("CP-ASGI-1"), additional_headers=basic_auth("CP-ASGI-1", "not-the-secret-of-it")
        )
        == 403
    )

    def lines():
        """What the server logged about it (daphne's access log, which tests keep, aside)."""
        return [
            line.split(" WARNING ", 1)[1]
            for line in live_daphne.log()[start:].splitlines()
            if "CP-ASGI-1" in line and " WARNING " in line
        ]

    wait_until(lambda: len(lines()) >= 2)
    assert lines() == [
        "cpo.asgi websocket to /CP-ASGI-1 refused: no such endpoint (chargers connect at /ocpp/<identity>)",
        "ocpp_gateway.consumers CP-ASGI-1: handshake from 127.0.0.1 refused: bad secret",
    ]
    assert "Traceback" not in live_daphne.log()[start:]
