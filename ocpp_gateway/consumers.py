"""The charger side: one consumer per websocket at /ocpp/<identity>.

Authentication happens before the socket is accepted: the handshake of an unknown identity or a bad secret is
refused and no frame is processed. Frames are handed to the version's handler; CSMS-initiated calls arrive on this
consumer's own channel (recorded on the station, addressed from any process) and run as tracked tasks, because
`call_action()` waits for a CALLRESULT that only this consumer's dispatch path can deliver.

The channel layer (Redis) is needed only for commands and for telling an earlier connection of the same identity to
step aside: while it is unavailable chargers still connect and are answered (cpo/channel_layer.py).
"""

import asyncio
import base64
import binascii
import logging
import time
from functools import cached_property

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from ocpp.messages import MessageType

from cpo.alerts import alert_raise
from cpo.channel_layer import CHANNEL_LAYER_ERRORS
from cpo.models import AlertKind
from ocpp_gateway import message_log, metrics
from ocpp_gateway.batching import BatchWriter
from ocpp_gateway.commands import command_execute
from ocpp_gateway.handlers import HANDLERS
from ocpp_gateway.handlers.base import FrameError, db
from ocpp_gateway.limits import FrameCheck, FrameRateLimiter, rate_limit_error
from ocpp_gateway.services.clock import station_clock_skew_record
from ocpp_gateway.services.liveness import station_socket_released
from ocpp_gateway.services.provisioning import (
    station_authenticate,
    station_connected,
    station_identity_check,
    station_seen,
    stations_disconnected,
)
from ocpp_gateway.services.security import station_flood_cooldown_start

logger = logging.getLogger(__name__)

seen_writer = BatchWriter(
    "last seen",
    lambda pks: station_seen(station_pks=pks),
    interval=lambda: settings.OCPP_SEEN_FLUSH_SECONDS,
    unique=True,
)
# Closed sockets: their stations go offline within OCPP_DISCONNECTS_FLUSH_SECONDS, a network cut's thousands in a
# few statements (provisioning.stations_disconnected).
disconnect_writer = BatchWriter(
    "disconnects",
    lambda sockets: stations_disconnected(sockets=sockets),
    interval=lambda: settings.OCPP_DISCONNECTS_FLUSH_SECONDS,
)
clock_skew_writer = BatchWriter(
    "clock skew",
    lambda observations: station_clock_skew_record(observations=observations),
    interval=lambda: settings.OCPP_SEEN_FLUSH_SECONDS,
)
# Alerts raised by connections (a flood), written after the answer; not cancelled with the connection that raised them.
alert_tasks: set[asyncio.Task] = set()
# RFC 6455 / IANA "Try Again Later". Closing a handshake not accepted yet with it asks the server (cpo.server) to
# answer HTTP 503 with Retry-After (the close reason: seconds), what chargers understand as "come back later".
CLOSE_TRY_AGAIN_LATER = 1013
# 2.0.1 before 2.1: our 2.1 support is the 2.0.1 message set, so a station offering both gets the richer path.
SUBPROTOCOL_PREFERENCE = ["ocpp2.0.1", "ocpp2.1", "ocpp1.6"]


def basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None, None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None, None
            username, sep, password = decoded.partition(":")
            return (username, password) if sep else (None, None)
    return None, None


def connection_security(scope: dict) -> tuple[bool, str]:
    """Security profiles 2 and 3: whether the charger's connection is TLS, and the common name of the client
    certificate it presented, as the TLS-terminating proxy says (cpo/proxy.py keeps these for trusted proxies only:
    `scheme` wss, and OCPP_CLIENT_CERT_CN_HEADER, set by the proxy only for a certificate it verified against the
    CA). Empty CN: no verified certificate."""
    tls = scope.get("scheme") == "wss"
    if not scope.get("trusted_proxy"):
        return tls, ""
    header = settings.OCPP_CLIENT_CERT_CN_HEADER.lower().encode("latin-1")
    for name, value in scope.get("headers", []):
        if name.lower() == header:
            return tls, value.decode("utf-8", "replace").strip()
    return tls, ""


def choose_subprotocol(offered: list[str], preferred_version: str = "") -> str | None:
    """The version the station used last time when offered, else the first of SUBPROTOCOL_PREFERENCE offered."""
    if preferred_version and f"ocpp{preferred_version}" in offered:
        return f"ocpp{preferred_version}"
    for subprotocol in SUBPROTOCOL_PREFERENCE:
        if subprotocol in offered:
            return subprotocol
    return None


class OcppConsumer(AsyncWebsocketConsumer):
    charge_point = None
    station_pk: int | None = None
    replaced = False
    flood_closed = False  # closed with 1008 for flooding: frames still queued are ignored
    counted = False  # in metrics.chargers_connected
    replace_task: asyncio.Task | None = None

    async def dispatch(self, message) -> None:
        """Channels' dispatch without its `aclose_old_connections()` hop to a thread the gateway never uses (the
        `db()` pool closes stale connections around every call); that hop was 9% of the event loop under load."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.command_tasks: set[asyncio.Task] = set()
        # The path as daphne decoded it, once (decoding it again would let `%2531` log in as `1`).
        self.identity = self.scope["url_route"]["kwargs"]["identity"].removesuffix("/")
        refusal = station_identity_check(identity=self.identity)
        if refusal:
            logger.warning("%r: handshake refused: %s", self.identity[:100], refusal)
            metrics.handshake_failed(reason="bad_identity")
            await self.close()
            return
        offered = self.scope.get("subprotocols") or []
        if not choose_subprotocol(offered):
            logger.info("%s: refused, no supported subprotocol in %s", self.identity, offered)
            metrics.handshake_failed(reason="no_subprotocol")
            await self.close()
            return
        username, secret = basic_credentials(self.scope.get("headers", []))
        address = (self.scope.get("client") or ("",))[0] or ""
        tls, certificate_cn = connection_security(self.scope)
        auth = await db(station_authenticate)(
            identity=self.identity,
            username=username,
            secret=secret,
            address=address,
            tls=tls,
            certificate_cn=certificate_cn,
        )
        if not auth.admitted:
            logger.warning("%s: handshake from %s refused: %s", self.identity, address or "?", auth.refusal)
            metrics.handshake_failed(reason=auth.reason)
            if auth.retry_after:
                await self.close(code=CLOSE_TRY_AGAIN_LATER, reason=str(auth.retry_after))
            else:
                await self.close()
            return
        subprotocol = choose_subprotocol(offered, auth.ocpp_version)
        self.station_pk = auth.station_pk
        handler_cls = HANDLERS[subprotocol]
        self.charge_point = handler_cls(
            self.identity,
            send=self.send_frame,
            station_pk=auth.station_pk,
            registration_status=auth.registration_status,
            response_timeout=settings.OCPP_CALL_TIMEOUT,
            registered_at=auth.registered_at,
        )
        # Online before the socket opens, so a command sent the moment the charger is connected finds it online.
        previous_channel = await db(station_connected)(
            station_pk=self.station_pk, channel_name=self.channel_name, ocpp_version=handler_cls.ocpp_version
        )
        if previous_channel:  # told after the handshake, which never waits for Redis
            self.replace_task = asyncio.create_task(self.station_replace(previous_channel))
        await self.accept(subprotocol)
        metrics.chargers_connected.inc()
        self.counted = True

    async def station_replace(self, previous_channel: str) -> None:
        """Tell the earlier connection of this identity (in any process) to step aside: the station now names ours.
        A message to the channel of a connection that is gone already expires unread (the layer's `expiry`)."""
        try:
            await self.channel_layer.send(previous_channel, {"type": "station.replaced", "by": self.channel_name})
        except CHANNEL_LAYER_ERRORS as exc:  # it stays open until its charger closes it; commands come to us
            logger.warning("%s: earlier connection not told to step aside: %r", self.identity, exc)

    async def disconnect(self, code) -> None:
        if self.counted:
            metrics.chargers_connected.dec()
            self.counted = False
        for task in self.command_tasks:
            task.cancel()
        if self.charge_point is not None:
            self.charge_point.background_cancel()
        if self.station_pk is None:
            return
        message_log.station_closed(self)
        station_socket_released(channel_name=self.channel_name)
        disconnect_writer.add((self.station_pk, self.channel_name))

    # -- frames from the charger ---------------------------------------------------------------------------------
    @cached_property
    def frame_limiter(self) -> FrameRateLimiter:
        return FrameRateLimiter(
            rate=settings.OCPP_MAX_FRAMES_PER_SECOND,
            burst=settings.OCPP_FRAMES_BURST,
            flood_seconds=settings.OCPP_FLOOD_CLOSE_SECONDS,
        )

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.charge_point is None or self.flood_closed:
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        check = self.frame_limiter.check()
        if not check.admitted:
            await self.frame_refuse(raw, check)
            return
        entry = message_log.log_entry(self, "IN", raw)
        seen_writer.add(self.station_pk)
        try:
            await self.handle_frame(raw)
        finally:
            self.frame_handled(entry)

    async def handle_frame(self, raw: str) -> None:
        started = time.perf_counter()
        if len(raw.encode()) > settings.OCPP_MAX_FRAME_BYTES:
            error = self.charge_point.rpc_error(f"frame exceeds {settings.OCPP_MAX_FRAME_BYTES} bytes")
            await self.send_frame(self.charge_point.call_error("-1", error))
            return
        try:
            msg = self.charge_point.unpack(raw)
        except FrameError as exc:
            await self.send_frame(self.charge_point.call_error(exc.unique_id, exc.error))
            return
        try:
            await self.charge_point.route_frame(msg)
        except Exception:  # the connection and the process live on whatever one frame does
            logger.exception("%s: unhandled error on frame %s", self.identity, raw[:500])
        if msg.message_type_id == MessageType.Call:
            metrics.call_observe(
                action=msg.action, known_actions=self.charge_point.call_handlers, seconds=time.perf_counter() - started
            )

    async def frame_refuse(self, raw: str, check: FrameCheck) -> None:
        """A frame over the rate limit (ocpp_gateway.limits): a CALL gets CALLERROR GenericError, an answer to a
        call of ours still goes to it, anything else is dropped; nothing touches the database or the message log
        (the log counts it as left out). A flooding charger is closed with 1008 and alerted about."""
        message_type, unique_id, _ = message_log.frame_summary(raw)
        if unique_id and self.charge_point.awaits_answer(unique_id):
            await self.handle_frame(raw)
            return
        rate = settings.OCPP_MAX_FRAMES_PER_SECOND
        if check.flooding:
            self.flood_closed = True
            # before the close: the charger may be back at once (on any process)
            cooldown = await db(station_flood_cooldown_start)(identity=self.identity)
            message = (
                f"station {self.identity} sent more than {rate:g} frames per second for "
                f"{self.frame_limiter.flood_duration():.0f} s ({self.frame_limiter.refused} refused): closed (1008), "
                f"its handshakes refused for {cooldown} s"
            )
            logger.warning("%s", message)
            self.alert_later(message)
            await self.close(code=1008)
            return
        if self.frame_limiter.refused == 1:
            logger.warning("%s: over %g frames per second; refusing frames beyond the rate", self.identity, rate)
        if check.pause:  # refusals over their own budget: let the socket wait, not our CPU
            await asyncio.sleep(check.pause)
        if message_type != 2 or not unique_id:
            message_log.left_out_count(self, 1)
            return
        message_log.left_out_count(self, 2)
        await self.send(text_data=self.charge_point.call_error(unique_id, rate_limit_error(rate)))

    def alert_later(self, message: str) -> None:
        """Raise the station's limit alert on a database thread, outside the dispatch path."""

        async def raise_alert() -> None:
            try:
                await db(alert_raise)(kind=AlertKind.STATION_LIMIT, subject=self.identity, message=message)
            except Exception:  # a task nobody awaits: log it here
                logger.exception("%s: could not raise the limit alert", self.identity)

        task = asyncio.create_task(raise_alert())
        alert_tasks.add(task)
        task.add_done_callback(alert_tasks.discard)

    def frame_handled(self, entry: dict | None) -> None:
        """Queue the frame's log row, flagged when a timestamp in it was not believed, and note the station's clock
        skew for staff (both written in batches, after the answer went out)."""
        skew = self.charge_point.frame_clock_skew
        if skew is not None:
            seconds = round(skew.total_seconds())
            clock_skew_writer.add((self.station_pk, seconds, self.charge_point.received_at))
            if entry is not None:
                entry["clock_skew"] = seconds
            self.charge_point.frame_clock_skew = None
        if entry is not None:
            message_log.writer.add(entry)

    async def send_frame(self, frame: str) -> None:
        message_log.record(self, "OUT", frame)
        await self.send(text_data=frame)

    # -- channel layer events --------------------------------------------------------------------------------------
    async def station_replaced(self, event) -> None:
        if event["by"] != self.channel_name and self.charge_point is not None:
            logger.info("%s: replaced by a new connection", self.identity)
            self.replaced = True
            await self.close(code=4000)

    async def ocpp_command(self, event) -> None:
        """A command from the command service; answered on the event's reply channel."""
        if self.replaced or self.charge_point is None:
            return
        task = asyncio.create_task(self._run_command(event))
        self.command_tasks.add(task)
        task.add_done_callback(self.command_tasks.discard)

    async def _run_command(self, event) -> None:
        reply = await command_execute(self.charge_point, event["action"], event.get("payload") or {})
        try:
            await self.channel_layer.send(event["reply_channel"], {"type": "ocpp.command.reply", **reply})
        except CHANNEL_LAYER_ERRORS as exc:  # the sender gives up on its own (timeout)
            logger.warning("%s: answer to %s not passed on: %r", self.identity, event["action"], exc)
