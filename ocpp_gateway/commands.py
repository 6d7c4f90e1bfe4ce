"""The command service: CSMS -> charger calls from any process (web request, Celery worker, shell).

A command travels over the channel layer straight to the consumer holding the charger's socket: its channel name is
recorded on the station when the charger connects (ChargingStation.connection_channel), so there is no group whose
membership could expire while the socket lives on. That consumer, in whichever daphne process, sends the CALL and
answers on a reply channel. Callers get the charger's CALLRESULT payload, or a CommandError saying why not: unknown
station, offline, the channel layer (Redis) unavailable, no answer in time, the charger's CALLERROR, or a request
that does not fit the station's OCPP version.
"""

import asyncio
import concurrent.futures
import logging

from channels.layers import get_channel_layer
from django.conf import settings
from ocpp.exceptions import OCPPError

from cpo.channel_layer import CHANNEL_LAYER_ERRORS
from cpo.models import ChargingStation
from ocpp_gateway.event_loop import channel_layer_loop
from ocpp_gateway.requests import OcppCall, OcppRequest
from ocpp_gateway.services.liveness import station_reachable

logger = logging.getLogger(__name__)

# Delivery and reply overhead on top of the charger's own answer time.
CHANNEL_MARGIN_SECONDS = 5.0


class CommandError(Exception):
    """Why a command got no CALLRESULT. `reason` is one of the class constants."""

    NOT_FOUND = "not_found"
    OFFLINE = "offline"
    TIMEOUT = "timeout"
    CALL_ERROR = "call_error"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"  # the channel layer (Redis) cannot carry the command now: fails at once, not later

    def __init__(self, reason: str, message: str, *, error_code: str = "", details: dict | None = None):
        super().__init__(message)
        self.reason = reason
        self.error_code = error_code
        self.details = details or {}

    def as_dict(self) -> dict:
        return {"reason": self.reason, "message": str(self), "error_code": self.error_code, "details": self.details}


async def command_execute(charge_point, action: str, payload: dict) -> dict:
    """Run inside the process holding the socket: send the CALL, wait for the answer, shape a reply message."""
    try:
        result = await charge_point.call_action(action, payload)
    except TimeoutError:
        return {"ok": False, "reason": CommandError.TIMEOUT, "message": f"no answer to {action} in time"}
    except ValueError as exc:
        return {"ok": False, "reason": CommandError.INVALID, "message": str(exc)}
    except OCPPError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        details = {k: str(v) for k, v in details.items() if k != "ocpp_message"}
        return {
            "ok": False,
            "reason": CommandError.CALL_ERROR,
            "message": exc.description or exc.code,
            "error_code": exc.code,
            "details": details,
        }
    return {"ok": True, "payload": result}


async def command_send_async(
    *, identity: str, channel: str, action: str, payload: dict, timeout: float | None = None
) -> dict:
    """Send `action` to the station's consumer at `channel` (its connection_channel, as check_station_reachable
    found it) and return the CALLRESULT payload (camelCase), or raise CommandError."""
    timeout = settings.OCPP_CALL_TIMEOUT if timeout is None else timeout
    layer = get_channel_layer()
    reply_channel = await layer.new_channel()
    try:
        await layer.send(
            channel, {"type": "ocpp.command", "action": action, "payload": payload, "reply_channel": reply_channel}
        )
    except CHANNEL_LAYER_ERRORS as exc:
        raise CommandError(
            CommandError.UNAVAILABLE, f"{action} not sent to {identity}: the channel layer is unavailable ({exc!r})"
        ) from None
    try:
        reply = await asyncio.wait_for(layer.receive(reply_channel), timeout + CHANNEL_MARGIN_SECONDS)
    except TimeoutError:
        raise CommandError(CommandError.TIMEOUT, f"{identity} did not answer {action} in time") from None
    if not reply.get("ok"):
        raise CommandError(
            reply.get("reason", CommandError.CALL_ERROR),
            reply.get("message", ""),
            error_code=reply.get("error_code", ""),
            details=reply.get("details"),
        )
    return reply["payload"]


def check_station_reachable(*, identity: str) -> ChargingStation:
    """The station, unless it is unknown or offline: marked offline, without the channel name of a consumer holding
    its socket, held by a gateway process whose lease ran out, or not heard from within its heartbeat bound
    (services/liveness.py), so a command fails at once rather than after OCPP_CALL_TIMEOUT."""
    station = ChargingStation.objects.filter(identity=identity).first()
    if station is None:
        raise CommandError(CommandError.NOT_FOUND, f"no station {identity!r}")
    if not station.connection_channel or not station_reachable(station=station):
        raise CommandError(CommandError.OFFLINE, f"{identity} is offline")
    return station


def command_call_for(*, identity: str, request: OcppRequest) -> OcppCall:
    """A request builder's call in the words of the station's OCPP version (ocpp_gateway.requests)."""
    version = ChargingStation.objects.filter(identity=identity).values_list("ocpp_version", flat=True).first()
    if version is None:
        raise CommandError(CommandError.NOT_FOUND, f"no station {identity!r}")
    return request.for_version(version)


def _run_async(coroutine_function, /, *, timeout: float | None = None, **kwargs):
    """Run a coroutine that uses the channel layer from synchronous code, on the process's channel-layer loop (the
    server's in a daphne process; elsewhere one shared by every thread, so that any number may wait for chargers at
    once), while this thread waits: at most the call's timeout and the channel's margin (twice over), so that a
    thread never waits for ever on a loop that stopped (a server shutting down)."""
    wait = 2 * ((settings.OCPP_CALL_TIMEOUT if timeout is None else timeout) + CHANNEL_MARGIN_SECONDS)
    future = asyncio.run_coroutine_threadsafe(coroutine_function(timeout=timeout, **kwargs), channel_layer_loop())
    try:
        return future.result(timeout=wait)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise CommandError(CommandError.TIMEOUT, f"no answer within {wait:.0f} s (the server is stopping?)") from None


def command_send(*, identity: str, action: str, payload: dict | None = None, timeout: float | None = None) -> dict:
    """Synchronous form for views, tasks and the shell."""
    station = check_station_reachable(identity=identity)
    return _run_async(
        command_send_async,
        identity=identity,
        channel=station.connection_channel,
        action=action,
        payload=payload or {},
        timeout=timeout,
    )


async def _send_many(
    *, calls: list[tuple[str, str, OcppCall] | CommandError], timeout: float | None = None
) -> list[dict | CommandError]:
    async def one(target: tuple[str, str, OcppCall] | CommandError) -> dict | CommandError:
        if isinstance(target, CommandError):
            return target
        identity, channel, call = target
        try:
            return await command_send_async(
                identity=identity, channel=channel, action=call.action, payload=call.payload, timeout=timeout
            )
        except CommandError as exc:
            return exc

    return list(await asyncio.gather(*(one(target) for target in calls)))


def command_send_many(*, calls: list[tuple[str, OcppCall]]) -> list[dict | CommandError]:
    """Send calls to (identity, call) pairs all at once and wait for every answer: each CALLRESULT payload, or the
    CommandError saying why there was none (offline stations included), in the order given."""
    targets: list[tuple[str, str, OcppCall] | CommandError] = []
    for identity, call in calls:
        try:
            targets.append((identity, check_station_reachable(identity=identity).connection_channel, call))
        except CommandError as exc:
            targets.append(exc)
    return _run_async(_send_many, calls=targets)
