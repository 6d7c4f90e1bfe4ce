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
"""

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server as DaphneServer
from django.conf import settings
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from ocpi_api.envelope import OCPI_PATH_PREFIX, StatusCode, ocpi_envelope_bytes

LINGER_BYTES = 16 * 1024 * 1024
LINGER_SECONDS = 10.0
REASONS = {413: b"Content Too Large", 431: b"Request Header Fields Too Large"}


class HttpChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with answered size limits (see the module docstring)."""

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


class Server(DaphneServer):
    """Daphne's server with autobahn's `failByDrop` off on its websocket factory, and our HTTP factory.

    Daphne builds the factories inside `run()` and sets only its own options; catching the assignments is the one
    place to add ours without copying `run()`.
    """

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
        self.__dict__["ws_factory"] = factory


class ServerCommandLine(CommandLineInterface):
    server_class = Server


if __name__ == "__main__":
    ServerCommandLine.entrypoint()
