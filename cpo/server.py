"""`python -m cpo.server`: daphne, as the platform runs it (same command-line options as `daphne`).

One difference from stock daphne: a websocket that breaks the protocol or sends a message above the transport limit
(`--websocket_max_message_size`, 1 MiB by default) is closed with the close code RFC 6455 defines for it (1009
"message too big", 1002 protocol error) instead of having its TCP connection dropped (seen as 1006): a charger
learns why, and reconnects. That is autobahn's `failByDrop` option, which daphne leaves at its default (drop).

Another: HTTP requests that are too large are answered, not dropped, and before their body is read. Headers above
`HTTP_MAX_HEADER_BYTES` (one line or all together) get 431; a body whose Content-Length (or chunked length so far)
is above `DATA_UPLOAD_MAX_MEMORY_SIZE` gets 413 as soon as the headers are in, before any token check (stock
twisted drops the connection on a long header line and buffers any body in full before daphne sees the request).
Under /ocpi/ the answer is the OCPI envelope (status 2000). The connection is then half-closed: what the client
still sends is discarded, up to `LINGER_BYTES` or `LINGER_SECONDS`, so that a client that sends its whole body
before reading (most do) still reads the answer; then it is closed.

And the limits that keep a reconnect storm or one charger from taking the process down (docs/architecture.md,
"Limits"): a header deadline (`HeaderDeadline`), a bound on the frames queued for one websocket's application
(`QueueBoundWebSocket`), 503 with Retry-After for handshakes the process cannot take now (`HandshakeShedding`), and
the RFC 6455 close codes a server may send, such as 1008 (`ServerCloseCodes`).

And for production (docs/deployment.md): the open-files soft limit is raised to the hard limit before anything
listens (one descriptor per charger), and SIGTERM is a graceful shutdown (`GracefulShutdown`).
"""

import asyncio
import functools
import logging
import resource
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar

from autobahn.websocket.protocol import WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import defer
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from cpo.lifecycle import process_stopping
from ocpi_api.envelope import OCPI_PATH_PREFIX, StatusCode, ocpi_envelope_bytes
from ocpp_gateway import metrics
from ocpp_gateway.limits import HandshakeBacklog, retry_after_seconds

reactor: Any = _reactor  # zope's interfaces confuse mypy about callLater's signature
LINGER_BYTES = 16 * 1024 * 1024
LINGER_SECONDS = 10.0
REASONS = {413: b"Content Too Large", 431: b"Request Header Fields Too Large"}
# RFC 6455 / IANA: "Service Restart": the server is restarting, the client may reconnect (at once, elsewhere).
CLOSE_SERVICE_RESTART = 1012
# "Try Again Later": an application closing a handshake with it is answered 503 (HandshakeShedding).
CLOSE_TRY_AGAIN_LATER = 1013

logger = logging.getLogger("cpo.server")  # not __main__ under `python -m cpo.server`


class HeaderDeadline(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel that closes a connection which has not sent a request's complete headers within
    HTTP_HEADER_TIMEOUT_SECONDS of connecting (or of the end of its previous request), answering 408.

    Twisted's own timeout is an idle timeout of 12 hours, reset by every byte: silent or trickling clients (half-open
    handshakes in a reconnect storm, slowloris) held sockets and file descriptors for minutes."""

    _header_deadline: Any = None
    _timed_out = False

    def dataReceived(self, data: bytes) -> None:
        if not self._timed_out:
            super().dataReceived(data)

    def connectionMade(self) -> None:
        super().connectionMade()
        self._header_deadline_start()

    def allHeadersReceived(self) -> None:
        self._header_deadline_cancel()
        super().allHeadersReceived()

    def requestDone(self, request) -> None:
        super().requestDone(request)
        if self.persistent and self.transport is not None and self._header_deadline is None:
            self._header_deadline_start()  # the next request on this connection gets the same time

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._header_deadline_cancel()
        super().connectionLost(reason)

    def setTimeout(self, period):
        """Twisted turns the channel's timeout off when it hands the connection to HTTP/2 (ALPN): so is ours."""
        if period is None:
            self._header_deadline_cancel()
        return super().setTimeout(period)

    def _header_deadline_start(self) -> None:
        self._header_deadline = self.callLater(settings.HTTP_HEADER_TIMEOUT_SECONDS, self._header_timeout)

    def _header_deadline_cancel(self) -> None:
        if self._header_deadline is not None and self._header_deadline.active():
            self._header_deadline.cancel()
        self._header_deadline = None

    def _header_timeout(self) -> None:
        self._header_deadline = None
        transport: Any = self.transport
        if transport is None:
            return
        self._timed_out = True  # nothing more of this connection is read
        transport.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.loseConnection()
        self.callLater(LINGER_SECONDS, transport.abortConnection)  # a client that never reads our answer


class HttpChannel(HeaderDeadline):
    """Twisted's HTTP/1.1 channel with answered size limits (see the module docstring) and a header deadline."""

    _refused = False
    _discarded = 0
    _linger = None

    def __init__(self) -> None:
        super().__init__()
        self.MAX_LENGTH = self.totalHeadersSize = settings.HTTP_MAX_HEADER_BYTES

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            self._discard(data)
        else:
            super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            self._discard(data)
        else:
            super().rawDataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuse(431, f"The request headers are larger than {self.totalHeadersSize} bytes")
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._refuse(431, f"A request header line is longer than {self.MAX_LENGTH} bytes")

    def body_limit(self) -> int | None:
        """Stations' diagnostics uploads (ocpp_gateway.views) may be larger than any other body."""
        path = getattr(self, "_path", b"") or b""
        if path.startswith(b"/ocpp-uploads/"):
            return settings.OCPP_DIAGNOSTICS_MAX_BYTES
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def allHeadersReceived(self) -> None:
        limit = self.body_limit()
        if limit is not None and self.length is not None and self.length > limit:
            self._refuse(413, f"The request body is larger than {limit} bytes")
            return
        super().allHeadersReceived()

    def body_chunk_received(self, size_so_far: int) -> None:
        """Called by the request for a chunked body (no Content-Length) as it grows."""
        limit = self.body_limit()
        if limit is not None and size_so_far > limit and not self._refused:
            self._refuse(413, f"The request body is larger than {limit} bytes")

    def allContentReceived(self) -> None:
        if not self._refused:  # a refused request is never handed to the application
            super().allContentReceived()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` at once, then discard the rest of the request and close."""
        self._refused = True
        self.setRawMode()  # stop line parsing: nothing more of this request is interpreted
        path = getattr(self, "_path", b"") or b""
        if path.startswith(OCPI_PATH_PREFIX.encode()):
            body, content_type = (
                ocpi_envelope_bytes(status_code=StatusCode.CLIENT_ERROR, status_message=message),
                b"application/json",
            )
        else:
            body, content_type = message.encode(), b"text/plain; charset=utf-8"
        transport: Any = self.transport
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (status, REASONS[status], content_type, len(body))
            + body
        )
        half_close = getattr(transport, "loseWriteConnection", None)
        if half_close is None:
            transport.loseConnection()
            return
        half_close()
        self._linger = self.callLater(LINGER_SECONDS, transport.abortConnection)

    def _discard(self, data: bytes) -> None:
        self._discarded += len(data)
        if self._discarded > LINGER_BYTES:
            transport: Any = self.transport
            transport.abortConnection()


class BodyCountingRequest(WebRequest):
    """Daphne's request, telling its channel how large a chunked body has grown."""

    def handleContentChunk(self, data: bytes) -> None:
        super().handleContentChunk(data)
        if isinstance(self.channel, HttpChannel):  # not over HTTP/2 (TLS with ALPN), where twisted's stream is used
            self.channel.body_chunk_received(self.content.tell())


class HttpFactory(HTTPFactory):
    """Daphne's HTTP factory building our channel and request."""

    def protocol(self):
        # Twisted's wrapper that can switch a connection to HTTP/2 after ALPN, around our HTTP/1.1 channel.
        return http._GenericHTTPChannelProtocol(HttpChannel())

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BodyCountingRequest
        return protocol


# -- limits on websocket connections (docs/architecture.md, "Limits") -------------------------------------------------
class QueueBoundWebSocket(WebSocketProtocol):
    """Daphne's websocket protocol that stops reading a socket whose application has WEBSOCKET_MAX_QUEUED_MESSAGES
    messages not handled yet, and reads on once it has caught up with half of them.

    Daphne hands each frame to the application's queue, which has no bound: a charger sending faster than its
    consumer handles frames grew the server by a gigabyte. Paused, the charger's frames wait in the TCP buffers (its
    own, in the end), and the process spends nothing on them."""

    _paused = False
    _resume_call: Any = None
    RESUME_POLL_SECONDS = 0.02

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        super().onMessage(payload, isBinary)
        queue = getattr(self, "application_queue", None)
        if not self._paused and queue is not None and queue.qsize() >= settings.WEBSOCKET_MAX_QUEUED_MESSAGES:
            self._paused = True
            self.transport.pauseProducing()
            self._resume_call = reactor.callLater(self.RESUME_POLL_SECONDS, self._resume_when_caught_up)

    def _resume_when_caught_up(self) -> None:
        if self.application_queue.qsize() > settings.WEBSOCKET_MAX_QUEUED_MESSAGES // 2:
            self._resume_call = reactor.callLater(self.RESUME_POLL_SECONDS, self._resume_when_caught_up)
            return
        self._paused, self._resume_call = False, None
        self.transport.resumeProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._resume_call is not None and self._resume_call.active():
            self._resume_call.cancel()
        super().connectionLost(reason)


class ServerCloseCodes(WebSocketProtocol):
    """Daphne's websocket protocol that may close with the codes RFC 6455 (7.4.1) gives a server for a reason, such as
    1008 (policy violation: a charger flooding us) or 1001 (going away); autobahn's `sendClose` allows only 1000 and
    3000-4999 to applications."""

    RFC_SERVER_CODES = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013})

    def serverClose(self, code: int | None = None) -> None:
        if code in self.RFC_SERVER_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code=code)


OVERLOADED = "Service Unavailable (overloaded)"
HANDSHAKE_TIMEOUT = "Service Unavailable (handshake timeout)"
SHUTTING_DOWN = "Service Unavailable (shutting down)"
# Our 503s, as counted in ocpp_handshake_failures (a 1013 from the application is counted by the application).
REFUSAL_REASONS = {OVERLOADED: "overloaded", HANDSHAKE_TIMEOUT: "handshake_timeout", SHUTTING_DOWN: "shutting_down"}


class HandshakeShedding(WebSocketProtocol):
    """Daphne's websocket protocol that lets handshakes wait for their turn in a reconnect storm, and answers a
    handshake it cannot take with HTTP 503 and a Retry-After (what chargers understand: come back later), never 500
    and never a dropped connection:

    - storm: WEBSOCKET_HANDSHAKES_MAX_IN_FLIGHT handshakes of this process at a time are with the application (being
      authenticated); the next ones wait their turn, oldest first, before the application or the database sees them
      (a charger that hangs up meanwhile costs nothing more). While any wait, BootNotifications are answered Pending
      (ocpp_gateway.limits.HandshakeBacklog), so the process serves the handshakes first;
    - overload: a handshake that finds WEBSOCKET_HANDSHAKES_MAX_WAITING waiting, or whose turn comes after more than
      WEBSOCKET_HANDSHAKE_MAX_WAIT_SECONDS (a charger's own connect timeout is near), is answered 503 at once;
    - an error of ours while the application handles the handshake (database, cache or channel layer down): daphne
      would answer 500 with the exception in the status line;
    - a handshake not finished within the connect timeout (`--websocket_connect_timeout`), waiting or with the
      application: autobahn would drop the connection, daphne answer 403 (which a charger reads as "wrong password").
    - a handshake the application closes with 1013 (Try Again Later; e.g. a charger in its cool-down after it was
      closed for flooding), Retry-After being the close reason when that is a number of seconds.
    A refusal by the application (bad credentials, unknown identity) stays daphne's 403.
    """

    in_flight: ClassVar[int] = 0  # handshakes of this process with the application
    # Handshakes handed to the application, until it accepted or its instance ended (Server.application_checker).
    handshaking: ClassVar[set["HandshakeShedding"]] = set()
    # Handshakes waiting for their turn, oldest first (one whose charger hung up or timed out stays until its turn).
    waiting: ClassVar[deque["HandshakeShedding"]] = deque()
    _counted = False
    _unknown_to_daphne = False  # answered or waiting before daphne's onConnect saw it
    _turn: defer.Deferred | None = None  # while waiting: fired with the handshake's outcome
    _request: Any = None
    _waiting_since = 0.0
    _retry_after: int | None = None  # the application's Retry-After (seconds), else a jittered one
    opened = False  # the handshake succeeded: what fails later is the application's own business

    def onOpen(self) -> None:
        self.opened = True
        HandshakeShedding.handshaking.discard(self)
        super().onOpen()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self._unknown_to_daphne:  # daphne's onClose would look the connection up among those it knows
            super().onClose(wasClean, code, reason)

    def onConnect(self, request):
        queue = HandshakeShedding.waiting
        if HandshakeShedding.in_flight < settings.WEBSOCKET_HANDSHAKES_MAX_IN_FLIGHT and not queue:
            return self._handshake_start(request)
        self._unknown_to_daphne = True
        if len(queue) >= settings.WEBSOCKET_HANDSHAKES_MAX_WAITING:
            raise ConnectionDeny(503, OVERLOADED)
        self._request, self._waiting_since, self._turn = request, time.monotonic(), defer.Deferred()
        queue.append(self)
        HandshakeBacklog.waiting += 1
        return self._turn

    def _handshake_start(self, request) -> defer.Deferred:
        self._unknown_to_daphne = False
        deferred = super().onConnect(request)
        HandshakeShedding.in_flight += 1
        self._counted = True
        HandshakeShedding.handshaking.add(self)
        deferred.addBoth(self._handshake_ended)
        return deferred

    @classmethod
    def turns_give(cls) -> None:
        """Hand the free places with the application to the handshakes waiting longest."""
        queue = cls.waiting
        while queue and cls.in_flight < settings.WEBSOCKET_HANDSHAKES_MAX_IN_FLIGHT:
            queue.popleft()._turn_take()

    @classmethod
    def waiting_refuse(cls, reason: str) -> list["HandshakeShedding"]:
        """Answer every waiting handshake 503 now (the process is stopping: their chargers go to another one);
        returns those answered."""
        refused = []
        while cls.waiting:
            protocol = cls.waiting.popleft()
            turn = protocol._turn_end()
            if turn is not None:
                turn.errback(ConnectionDeny(503, reason))
                refused.append(protocol)
        return refused

    def _turn_end(self) -> defer.Deferred | None:
        """No longer waiting: the turn to fire, None when it was over already (answered, or the charger hung up).
        Keeps HandshakeBacklog.waiting to the handshakes really waiting (the queue keeps ended ones until their
        place comes up)."""
        turn, self._turn = self._turn, None
        if turn is not None:
            HandshakeBacklog.waiting -= 1
        return turn

    def _turn_take(self) -> None:
        turn, request = self._turn_end(), self._request
        self._request = None
        if turn is None:
            return  # timed out while waiting (answered), or the charger hung up
        if time.monotonic() - self._waiting_since > settings.WEBSOCKET_HANDSHAKE_MAX_WAIT_SECONDS:
            turn.errback(ConnectionDeny(503, OVERLOADED))
        else:
            # an error starting it goes to this handshake's answer (503), not to the one whose end gave the turn
            defer.maybeDeferred(self._handshake_start, request).chainDeferred(turn)

    def handle_reply(self, message) -> None:
        closing = message.get("type") == "websocket.close" and self.state == self.STATE_CONNECTING
        if closing and message.get("code") == CLOSE_TRY_AGAIN_LATER and hasattr(self, "handshake_deferred"):
            reason = str(message.get("reason") or "")
            self._retry_after = int(reason) if reason.isdigit() else None
            self._handshake_retry_later("Service Unavailable (try again later)")
            return
        super().handle_reply(message)

    def _handshake_ended(self, result):
        self._uncount()
        return result

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            HandshakeShedding.in_flight -= 1
            HandshakeShedding.turns_give()

    def failHandshake(self, reason: str, code: int = 400, responseHeaders=None) -> None:
        if code >= 500 and code != 503:
            if code != 500:  # 500: the application failed, and Server.application_checker said why
                logger.warning("websocket handshake from %s failed: %s; answered 503", self.peer, reason)
            reason, code = "Service Unavailable", 503
            metrics.handshake_failed(reason="server_error")
        elif code == 503 and reason in REFUSAL_REASONS:
            metrics.handshake_failed(reason=REFUSAL_REASONS[reason])
        if code == 503:
            retry_after = self._retry_after or retry_after_seconds()
            responseHeaders = [*(responseHeaders or []), ("Retry-After", str(retry_after))]
        super().failHandshake(reason, code, responseHeaders)

    def onOpenHandshakeTimeout(self) -> None:
        if (turn := self._turn_end()) is not None:  # still waiting for its turn
            turn.errback(ConnectionDeny(503, HANDSHAKE_TIMEOUT))
        elif self.state == self.STATE_CONNECTING and hasattr(self, "handshake_deferred"):
            self._handshake_overdue()
        else:  # the client did not send its handshake in time: nobody to answer
            super().onOpenHandshakeTimeout()

    def check_timeouts(self) -> None:
        overdue = self.state == self.STATE_CONNECTING and self.duration() > self.server.websocket_connect_timeout
        if overdue and hasattr(self, "handshake_deferred"):
            self._handshake_overdue()
        else:
            super().check_timeouts()

    def _handshake_overdue(self) -> None:
        """The application did not accept or refuse in time: tell the charger to come back, and forget the socket
        (what the application sends for it later is dropped by daphne)."""
        self._handshake_retry_later(HANDSHAKE_TIMEOUT)

    def _handshake_retry_later(self, reason: str) -> None:
        deferred = self.handshake_deferred
        del self.handshake_deferred
        self.server.protocol_disconnected(self)
        deferred.errback(ConnectionDeny(503, reason))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._turn_end()  # hung up while waiting: its place is skipped
        self._uncount()
        super().connectionLost(reason)


class FactoryOptionsCopied(WebSocketProtocol):
    """Daphne's websocket protocol that takes autobahn's options (timeouts, size limits...) from its factory itself.

    autobahn copies them onto every new connection and then formats the whole list with `pprint.pformat` for a debug
    line, whatever the log level: 4.5 % of the gateway's CPU in a reconnect storm went into that (bench/RESULTS.md).
    The same options are copied here, as autobahn would (an attribute the connection has already is kept), and
    autobahn's own list is left empty."""

    CONFIG_ATTRS: ClassVar[list[str]] = []
    FACTORY_OPTIONS: ClassVar[list[str]] = list(WebSocketServerProtocol.CONFIG_ATTRS)

    def connectionMade(self) -> None:
        for name in self.FACTORY_OPTIONS:
            if not hasattr(self, name):
                setattr(self, name, getattr(self.factory, name))
        super().connectionMade()


class GatewayWebSocket(FactoryOptionsCopied, QueueBoundWebSocket, HandshakeShedding, ServerCloseCodes):
    """The websocket protocol the server uses: daphne's, with the limits above."""


def open_files_limit_raise() -> tuple[int, int]:
    """Raise this process's open-files soft limit to its hard limit: each charger holds a socket, and the usual soft
    limit (1024) refuses the 1,021st ("Too many open files"). Returns (soft before, soft now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft >= hard:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # e.g. macOS refuses RLIM_INFINITY: keep what we have
        logger.warning("open-files limit stays at %s (could not raise it to %s: %s)", soft, hard, exc)
        return soft, soft
    return soft, hard


class GracefulShutdown:
    """On SIGTERM (and SIGINT), before daphne cancels its applications: stop listening, answer the handshakes waiting
    for their turn 503 with Retry-After, close every open websocket with 1012 (Service Restart), so that chargers
    reconnect at once and the balancer sends them to another process, wait (at most GRACEFUL_SHUTDOWN_SECONDS)
    until their consumers have run `disconnect()`, which marks the stations offline, and announce
    `cpo.lifecycle.process_stopping`, so that what the process batched in memory (those offline stations among it,
    for partners) is handed on. Stock daphne drops the sockets (chargers see 1006 and back off) and cancels the
    consumers before they record anything."""

    connections: dict

    def listen_success(self, port) -> None:
        self.__dict__.setdefault("listening_ports", []).append(port)
        super().listen_success(port)  # type: ignore[misc]

    def kill_all_applications(self):
        kill = super().kill_all_applications  # type: ignore[misc]
        closing: Any = self.websockets_close(code=CLOSE_SERVICE_RESTART)
        closing.addBoth(lambda _: kill())
        return closing

    def websockets_close(self, *, code: int) -> defer.Deferred:
        for port in self.__dict__.get("listening_ports", []):  # no new connection lands here: the balancer retries
            port.stopListening()  # another process
        refused = HandshakeShedding.waiting_refuse(SHUTTING_DOWN)
        instances: list = []
        for protocol, details in list(self.connections.items()):
            if getattr(protocol, "state", None) == getattr(protocol, "STATE_OPEN", object()):
                # autobahn's sendClose() allows an application 1000 and 3000-4999 only; 1012 is the server's own.
                protocol.sendCloseFrame(code=code, isReply=False)
                if "application_instance" in details:
                    instances.append(details["application_instance"])
        if instances:
            logger.warning(
                "shutting down: closed %d websockets with %d, waiting for their consumers", len(instances), code
            )
        if refused:  # the reactor's shutdown drops connections unflushed: let the 503s go out first
            logger.warning("shutting down: answered %d waiting handshakes 503", len(refused))
            instances.append(asyncio.ensure_future(closed(refused)))
        return defer.Deferred.fromFuture(asyncio.ensure_future(self.consumers_finish(instances)))

    async def consumers_finish(self, instances: list) -> None:
        """Wait for the consumers (at most GRACEFUL_SHUTDOWN_SECONDS), then have what they batched handed on."""
        if instances:
            await asyncio.wait(instances, timeout=settings.GRACEFUL_SHUTDOWN_SECONDS)
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(process_stopping.send, Server))


async def closed(protocols: Sequence[WebSocketServerProtocol], timeout: float = 2.0) -> None:
    """Until each connection is closed (its answer written), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while any(p.state != p.STATE_CLOSED for p in protocols) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


class Server(DaphneServer):
    """Daphne's server with autobahn's `failByDrop` off on its websocket factory, and our HTTP factory.

    Daphne builds the factories inside `run()` and sets only its own options; catching the assignments is the one
    place to add ours without copying `run()`.

    And a handshake whose application failed (the database or Redis is down; HandshakeShedding answers 503, or the
    charger is gone by then) is one line in the log, not daphne's traceback: an outage during a reconnect storm wrote
    one per charger. The traceback is still logged at DEBUG.
    """

    def application_checker(self) -> None:
        # Only the handshakes with the application: a pass over every connection each second (as daphne's own) was a
        # percent of the gateway's CPU with 10,000 chargers held.
        for protocol in list(HandshakeShedding.handshaking):  # an accepted one has left it (onOpen)
            details = self.connections.get(protocol)
            instance = details.get("application_instance") if details is not None else None
            if instance is not None and not instance.done():
                continue
            HandshakeShedding.handshaking.discard(protocol)
            if instance is None or instance.cancelled() or instance.exception() is None:
                continue
            exception = instance.exception()
            if isinstance(exception, KeyboardInterrupt):
                continue  # daphne's own meaning: stop the server
            del details["application_instance"]  # daphne would log it with its traceback
            gone = bool(details.get("disconnected"))
            logger.warning(
                "websocket handshake from %s failed on our side%s: %s: %s",
                protocol.peer,
                " (the client was gone)" if gone else "",
                type(exception).__name__,
                exception,
            )
            logger.debug("the handshake's application failed", exc_info=exception)
            if not gone:
                protocol.handle_exception(exception)  # answered 503 (HandshakeShedding.failHandshake)
        super().application_checker()

    @property
    def http_factory(self):
        return self.__dict__["http_factory"]

    @http_factory.setter
    def http_factory(self, factory) -> None:
        self.__dict__["http_factory"] = HttpFactory(self) if type(factory) is HTTPFactory else factory

    @property
    def ws_factory(self):
        return self.__dict__["ws_factory"]

    @ws_factory.setter
    def ws_factory(self, factory) -> None:
        factory.setProtocolOptions(failByDrop=False)
        factory.protocol = GatewayWebSocket
        self.__dict__["ws_factory"] = factory


class ProductionServer(GracefulShutdown, Server):
    """The server `python -m cpo.server` runs: our daphne with the graceful shutdown."""


class ServerCommandLine(CommandLineInterface):
    server_class = ProductionServer


if __name__ == "__main__":
    open_files_limit_raise()
    ServerCommandLine.entrypoint()
