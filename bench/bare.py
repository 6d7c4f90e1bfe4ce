"""The yardstick: a bare central system built only on the `ocpp` library and `websockets`, no database.

It does what every OCPP 1.6 central system must do per frame and nothing else: checks HTTP Basic credentials in
the handshake (the bench stations' known secrets, compared in constant time), negotiates `ocpp1.6`, and answers
BootNotification, Heartbeat, StatusNotification, Authorize, Start/StopTransaction and MeterValues through
`ocpp.v16.ChargePoint` with the library's JSON-schema validation on (its default). The benchmark runs it in the
same run, on the same core and with the same load as the platform, so that the platform's figures can be given as
ratios to it: absolute numbers drift on a shared machine, ratios much less.

    python bench/bare.py --port 9000     # then point bench/loadgen.py at ws://127.0.0.1:9000/ocpp/
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hmac
import itertools
import logging
import signal
import sys
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import raise_fd_limit, secret_for

PATH_PREFIX = "/ocpp/"
HEARTBEAT_INTERVAL = 300
transaction_ids = itertools.count(1)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class CentralSystem(ChargePoint):
    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor, charge_point_model, **kwargs):
        return call_result.BootNotification(
            current_time=now(), interval=HEARTBEAT_INTERVAL, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs):
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    def on_status(self, connector_id, error_code, status, **kwargs):
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag, **kwargs):
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    def on_start(self, connector_id, id_tag, meter_start, timestamp, **kwargs):
        return call_result.StartTransaction(
            transaction_id=next(transaction_ids), id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.stop_transaction)
    def on_stop(self, transaction_id, meter_stop, timestamp, **kwargs):
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.meter_values)
    def on_meter_values(self, connector_id, meter_value, **kwargs):
        return call_result.MeterValues()


def identity_of(path: str) -> str | None:
    if not path.startswith(PATH_PREFIX):
        return None
    identity = path[len(PATH_PREFIX) :].split("?", 1)[0]
    return identity or None


def process_request(connection, request):
    """Refuse before the upgrade: unknown path or wrong HTTP Basic credentials (401), as a CSMS does."""
    identity = identity_of(request.path)
    if identity is None:
        return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
    header = request.headers.get("Authorization", "")
    try:
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    except ValueError:
        user, password = "", ""
    if not header.startswith("Basic ") or user != identity or not hmac.compare_digest(password, secret_for(identity)):
        return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
    return None


async def handler(websocket) -> None:
    if websocket.subprotocol != "ocpp1.6":
        await websocket.close(1002, "ocpp1.6 only")
        return
    charge_point = CentralSystem(identity_of(websocket.request.path), websocket)
    try:
        await charge_point.start()
    except ConnectionClosed:
        pass


class GcFreeze:
    """gc.freeze() after every N accepted connections, as the platform does (cpo/asgi.py), so that both hold their
    long-lived objects out of the collector's way."""

    def __init__(self, every: int):
        self.every = every
        self.count = 0

    def accepted(self) -> None:
        self.count += 1
        if self.every and self.count % self.every == 0:
            gc.freeze()


async def main_async(args) -> None:
    freezer = GcFreeze(args.gc_freeze)

    async def counted(websocket) -> None:
        freezer.accepted()
        await handler(websocket)

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        counted,
        args.host,
        args.port,
        subprotocols=["ocpp1.6"],
        process_request=process_request,
        compression=None,
        max_size=65536,
        open_timeout=60,
        ping_interval=None,
        backlog=args.backlog,
    ):
        print(f"listening on {args.host}:{args.port}", flush=True)
        await stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--backlog", type=int, default=4096)
    parser.add_argument("--gc-freeze", type=int, default=500, help="gc.freeze() every N connections (0: off)")
    args = parser.parse_args()
    raise_fd_limit()
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.ERROR)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
