"""A loopback EMSP for the end-to-end scenario: the receiving side of OCPI 2.2.1 that a CPO pushes to.

It publishes versions and a 2.2.1 details list (credentials, and Receiver endpoints for locations, sessions and
cdrs), accepts every call made with the token it gave the CPO (token B of the credentials handshake; the benchmark
drives the handshake from its side, see run.py), answers as an EMSP would (200 + status 1000; a CDR POST 201 with a
Location header) and records what arrived and when (time.monotonic(), comparable across processes on Linux):

    GET /bench/log?since=N   -> the records from index N on (no authentication: loopback, benchmark only)

Records: {"t", "method", "module", "path", ...} plus, for a location PATCH, "evse_uid" and "status"; for a session
PUT/PATCH, "id", "status", "token_uid"; for a CDR, "id", "token_uid", "end".

    python bench/emsp.py --token TOKEN_B      # prints {"port": P} once listening
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def envelope(data=None, status_code: int = 1000, message: str = "Success") -> dict:
    return {
        "data": data,
        "status_code": status_code,
        "status_message": message,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class Emsp:
    def __init__(self, *, token: str, country_code: str, party_id: str):
        self.token = token
        self.country_code = country_code
        self.party_id = party_id
        self.records: list[dict] = []
        self.refused = 0
        self.lock = threading.Lock()
        self.base_url = ""

    def endpoints(self) -> list[dict]:
        base = f"{self.base_url}/ocpi/emsp/2.2.1"
        return [
            {"identifier": "credentials", "role": "SENDER", "url": f"{self.base_url}/ocpi/2.2.1/credentials"},
            {"identifier": "locations", "role": "RECEIVER", "url": f"{base}/locations"},
            {"identifier": "sessions", "role": "RECEIVER", "url": f"{base}/sessions"},
            {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base}/cdrs"},
        ]

    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Token "):
            return False
        value = header[6:].strip()
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except ValueError:
            decoded = ""
        return self.token in (value, decoded)

    def record(self, method: str, path: str, body) -> dict:
        """What arrived at /ocpi/emsp/2.2.1/<module>/<rest>, summarised for matching."""
        module, _, rest = path.partition("/")
        segments = [s for s in rest.split("/") if s]
        entry = {"t": time.monotonic(), "method": method, "module": module, "path": rest}
        body = body if isinstance(body, dict) else {}
        if module == "locations":
            if len(segments) >= 4:
                entry["evse_uid"] = segments[3]
            if "status" in body:
                entry["status"] = body["status"]
        elif module == "sessions":
            entry["id"] = segments[-1] if segments else body.get("id")
            entry["status"] = body.get("status")
            entry["token_uid"] = (body.get("cdr_token") or {}).get("uid")
        elif module == "cdrs":
            entry["id"] = body.get("id")
            entry["token_uid"] = (body.get("cdr_token") or {}).get("uid")
            entry["end"] = body.get("end_date_time")
        with self.lock:
            self.records.append(entry)
        return entry

    def handler_class(emsp):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send(self, status: int, body, headers: dict | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def handle_method(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                path = url.path.rstrip("/")
                if method == "GET" and path == "/bench/log":
                    since = int(parse_qs(url.query).get("since", ["0"])[0])
                    with emsp.lock:
                        records = emsp.records[since:]
                    return self.send(200, {"records": records, "refused": emsp.refused})
                if not emsp.authorized(self.headers.get("Authorization")):
                    emsp.refused += 1
                    return self.send(401, envelope(None, 2000, "Unauthorized"))
                if method == "GET" and path == "/ocpi/versions":
                    return self.send(200, envelope([{"version": "2.2.1", "url": f"{emsp.base_url}/ocpi/2.2.1"}]))
                if method == "GET" and path == "/ocpi/2.2.1":
                    return self.send(200, envelope({"version": "2.2.1", "endpoints": emsp.endpoints()}))
                prefix = "/ocpi/emsp/2.2.1/"
                if not path.startswith(prefix):
                    return self.send(404, envelope(None, 2000, "Not found"))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    return self.send(400, envelope(None, 2001, "Invalid JSON"))
                entry = emsp.record(method, path[len(prefix) :], body)
                if entry["module"] == "cdrs" and method == "POST":
                    location = f"{emsp.base_url}{prefix}cdrs/{entry.get('id')}"
                    return self.send(201, envelope(), {"Location": location})
                return self.send(200, envelope())

            def do_GET(self):
                self.handle_method("GET")

            def do_POST(self):
                self.handle_method("POST")

            def do_PUT(self):
                self.handle_method("PUT")

            def do_PATCH(self):
                self.handle_method("PATCH")

            def do_DELETE(self):
                self.handle_method("DELETE")

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--token", required=True, help="the token the CPO must present (our token B)")
    parser.add_argument("--country-code", default="NL")
    parser.add_argument("--party-id", default="BEN")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    emsp = Emsp(token=args.token, country_code=args.country_code, party_id=args.party_id)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), emsp.handler_class())
    server.daemon_threads = True
    emsp.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
