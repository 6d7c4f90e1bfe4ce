"""A small but real EMSP on loopback: a threaded HTTP server speaking OCPI 2.2.1 credentials and versions.

It is the other party of the credentials handshake in both directions:
- we register with it (`ocpi_register`): it hands out `token_a`; on our POST it calls back our versions with the
  token we sent (over HTTP, to the live server), then answers with its credentials and a new `token_c`;
- it registers with us (we invited it): it owns `token_b`, which we must present when we fetch its versions.
Everything it receives is recorded in `requests`."""

import base64
import json
import secrets
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def envelope(data=None, status_code=1000, message="Success"):
    return {
        "data": data,
        "status_code": status_code,
        "status_message": message,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def auth_header(token: str, *, encode: bool = True) -> str:
    return "Token " + (base64.b64encode(token.encode()).decode() if encode else token)


class FakeEmsp:
    def __init__(self, *, country_code="NL", party_id="EXM", name="Example EMSP", plain_tokens_only=False):
        self.country_code = country_code
        self.party_id = party_id
        self.name = name
        self.plain_tokens_only = plain_tokens_only  # a pre-2.2.1 style partner: rejects base64 tokens
        self.token_a = secrets.token_hex(16)  # for us, when we register with it
        self.token_b = secrets.token_hex(16)  # for us, when it registers with us
        self.token_c = None  # issued to us at the end of our registration with it
        self.our_token = None  # the token we gave it (token B of ocpi_register, or token C when it registered)
        self.callback = None  # what it got when it called our versions during our POST
        self.versions_override = None
        self.endpoints_override = None
        self.fail_with_http = None
        self.extra_roles = []  # further CredentialsRole objects it declares (a platform hosting several parties)
        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle
    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # --- what it publishes
    @property
    def versions_url(self):
        return f"{self.base_url}/versions"

    def versions(self):
        if self.versions_override is not None:
            return self.versions_override
        return [
            {"version": "2.1.1", "url": f"{self.base_url}/2.1.1"},
            {"version": "2.2.1", "url": f"{self.base_url}/2.2.1"},
        ]

    def endpoints(self):
        if self.endpoints_override is not None:
            return self.endpoints_override
        base = f"{self.base_url}/emsp/2.2.1"
        return [
            {"identifier": "credentials", "role": "SENDER", "url": f"{self.base_url}/2.2.1/credentials"},
            {"identifier": "locations", "role": "RECEIVER", "url": f"{base}/locations"},
            {"identifier": "tokens", "role": "SENDER", "url": f"{base}/tokens"},
            {"identifier": "sessions", "role": "RECEIVER", "url": f"{base}/sessions"},
            {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base}/cdrs"},
        ]

    def credentials(self, token):
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                    "business_details": {"name": self.name},
                },
                *self.extra_roles,
            ],
        }

    # --- the handshake driven from its side (it registers with us)
    def register_with(self, *, versions_url: str, token_a: str) -> httpx.Response:
        """GET our versions and details with token A, then POST its credentials with token B."""
        headers = {"Authorization": auth_header(token_a)}
        versions = httpx.get(versions_url, headers=headers, timeout=10).json()["data"]
        details_url = next(v["url"] for v in versions if v["version"] == "2.2.1")
        endpoints = httpx.get(details_url, headers=headers, timeout=10).json()["data"]["endpoints"]
        credentials_url = next(e["url"] for e in endpoints if e["identifier"] == "credentials")
        response = httpx.post(credentials_url, headers=headers, json=self.credentials(self.token_b), timeout=30)
        if response.status_code == 200 and response.json()["status_code"] == 1000:
            self.our_token = response.json()["data"]["token"]
        return response

    # --- HTTP
    def _accepted_tokens(self):
        return {t for t in (self.token_a, self.token_b, self.token_c) if t}

    def _token_of(self, header: str | None):
        if not header or not header.startswith("Token "):
            return None
        value = header[6:].strip()
        if not self.plain_tokens_only:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
                if decoded in self._accepted_tokens():
                    return decoded
            except ValueError:
                pass
            return None
        return value if value in self._accepted_tokens() else None

    def _handler_class(emsp):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                emsp.requests.append({"method": method, "path": self.path, "headers": dict(self.headers), "body": body})
                if emsp.fail_with_http:
                    return self._send(emsp.fail_with_http, {"error": "down"})
                token = emsp._token_of(self.headers.get("Authorization"))
                if token is None:
                    return self._send(401, envelope(None, 2000, "Unauthorized"))
                path = self.path.split("?")[0].rstrip("/")
                if method == "GET" and path == "/ocpi/versions":
                    return self._send(200, envelope(emsp.versions()))
                if method == "GET" and path == "/ocpi/2.2.1":
                    return self._send(200, envelope({"version": "2.2.1", "endpoints": emsp.endpoints()}))
                if method == "POST" and path == "/ocpi/2.2.1/credentials" and token == emsp.token_a:
                    return self._send(200, emsp._registration(body))
                if method == "PUT" and path == "/ocpi/2.2.1/credentials" and token == emsp.token_c:
                    return self._send(200, emsp._registration(body))
                return self._send(404, envelope(None, 2003, "Not found"))

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_DELETE(self):
                self._handle("DELETE")

        return Handler

    def _registration(self, body):
        """Our POST (or PUT, credentials update): call back the CPO's versions with the token it sent, then issue a
        new token C; the previous one stops working."""
        self.our_token = body["token"]
        headers = {"Authorization": auth_header(body["token"])}
        versions = httpx.get(body["url"], headers=headers, timeout=10)
        details_url = next(v["url"] for v in versions.json()["data"] if v["version"] == "2.2.1")
        details = httpx.get(details_url, headers=headers, timeout=10)
        self.callback = {"versions": versions.json(), "details": details.json(), "status": details.status_code}
        if details.status_code != 200:
            return envelope(None, 3001, "Could not fetch your version details")
        self.token_c = secrets.token_hex(16)
        return envelope(self.credentials(self.token_c))
