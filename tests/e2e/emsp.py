"""The loopback EMSP of tests/ocpi_api/emsp.py with the Receiver interfaces a CPO pushes to: sessions (PUT/PATCH),
cdrs (POST, answered with a Location header; GET of that URL), locations (PUT/PATCH) and tariffs (PUT/DELETE); and
the command results we POST to its response_urls (`results/<name>`).

It keeps what it received the way an EMSP would (a PATCH updates the stored session, its charging_periods are added
to), and can be taken down (the port refuses connections) and brought back on the same port."""

import json
import threading
import time
from http.server import ThreadingHTTPServer

from tests.ocpi_api.emsp import FakeEmsp, envelope
from tests.ocpi_api.factories import make_partner


class ReceivingEmsp(FakeEmsp):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lock = threading.Lock()
        self.sessions: dict[str, dict] = {}  # by "cc/pid/id"
        self.cdrs: dict[str, dict] = {}  # by the URL we answered in Location
        self.cdr_posts: list[dict] = []
        self.locations: list[tuple[str, str, dict]] = []  # (method, path below the module, body)
        self.tariffs: dict[str, dict | None] = {}
        self.pushes: list[dict] = []  # every receiver call in arrival order
        self.delay = 0.0  # seconds to wait before answering a receiver call
        self.answer = None  # callable(method, path, body) -> (http_status, envelope) to override the answer
        self.results: dict[str, list[dict]] = {}  # command results POSTed to results/<name> (our response_urls)

    def endpoints(self):
        if self.endpoints_override is not None:
            return self.endpoints_override
        return [
            *super().endpoints(),
            {"identifier": "tariffs", "role": "RECEIVER", "url": f"{self.base_url}/emsp/2.2.1/tariffs"},
        ]

    # --- lifecycle: down and back on the same port
    def go_down(self):
        self.server.shutdown()
        self.server.server_close()

    def come_back(self):
        port = int(self.base_url.rsplit(":", 1)[1].split("/")[0])
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- what it received
    def session_calls(self, session_id=None):
        return [p for p in self.pushes if p["module"] == "sessions" and (session_id is None or p["id"] == session_id)]

    def _handler_class(emsp):
        base = FakeEmsp._handler_class(emsp)

        class Handler(base):
            def _handle(self, method):
                path = self.path.split("?")[0].rstrip("/")
                prefix = "/ocpi/emsp/2.2.1/"
                if not path.startswith(prefix):
                    return super()._handle(method)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                emsp.requests.append({"method": method, "path": self.path, "headers": dict(self.headers), "body": body})
                if emsp._token_of(self.headers.get("Authorization")) is None:
                    return self._send(401, envelope(None, 2000, "Unauthorized"))
                if emsp.delay:
                    time.sleep(emsp.delay)
                if emsp.answer is not None:
                    answer = emsp.answer(method, path, body)
                    if answer is not None:
                        return self._send(*answer)
                module, _, rest = path[len(prefix) :].partition("/")
                with emsp.lock:
                    return emsp._receive(self, method, module, rest, body)

            def do_PATCH(self):
                self._handle("PATCH")

        return Handler

    def _receive(self, handler, method, module, rest, body):
        segments = rest.split("/") if rest else []
        record = {
            "method": method,
            "module": module,
            "path": rest,
            "body": body,
            "at": time.monotonic(),
            "headers": dict(handler.headers),
        }
        if module == "sessions" and len(segments) == 3 and method in ("PUT", "PATCH", "GET"):
            key = rest
            record["id"] = segments[2]
            if method == "GET":
                if key not in self.sessions:
                    return handler._send(404, envelope(None, 2003, "Unknown session"))
                return handler._send(200, envelope(self.sessions[key]))
            self.pushes.append(record)
            if method == "PUT":
                self.sessions[key] = dict(body)
            else:
                if key not in self.sessions:
                    return handler._send(404, envelope(None, 2003, "Unknown session"))
                stored = self.sessions[key]
                for field, value in body.items():
                    if field == "charging_periods":
                        stored["charging_periods"] = (stored.get("charging_periods") or []) + (value or [])
                    else:
                        stored[field] = value
            return handler._send(200, envelope())
        if module == "cdrs" and method == "POST" and not segments:
            self.pushes.append(record)
            self.cdr_posts.append(body)
            url = f"{self.base_url}/emsp/2.2.1/cdrs/{body['id']}"
            self.cdrs[url] = body
            payload = json.dumps(envelope()).encode()
            handler.send_response(201)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("Location", url)
            handler.end_headers()
            handler.wfile.write(payload)
            return None
        if module == "cdrs" and method == "GET" and len(segments) == 1:
            url = f"{self.base_url}/emsp/2.2.1/cdrs/{segments[0]}"
            if url not in self.cdrs:
                return handler._send(404, envelope(None, 2003, "Unknown CDR"))
            return handler._send(200, envelope(self.cdrs[url]))
        if module == "locations" and method in ("PUT", "PATCH") and 3 <= len(segments) <= 5:
            self.pushes.append(record)
            self.locations.append((method, rest, body))
            return handler._send(200, envelope())
        if module == "results" and method == "POST" and len(segments) == 1:
            self.results.setdefault(segments[0], []).append(body)
            return handler._send(200, envelope())
        if module == "tariffs" and method in ("PUT", "DELETE") and len(segments) == 3:
            self.pushes.append(record)
            self.tariffs[rest] = body if method == "PUT" else None
            return handler._send(200, envelope())
        return handler._send(404, envelope(None, 2000, f"No {method} on {module}/{rest}"))


def partner_for(emsp: FakeEmsp, *, token: str = "token-of-the-emsp", **fields):
    """A registered Partner for `emsp`, as the credentials handshake would leave it: its endpoints, our token to it."""
    emsp.token_c = emsp.token_c or "our-token-at-the-emsp"
    fields.setdefault("endpoints", emsp.endpoints())
    fields.setdefault("country_code", emsp.country_code)
    fields.setdefault("party_id", emsp.party_id)
    return make_partner(token=token, outgoing_token=emsp.token_c, **fields)
