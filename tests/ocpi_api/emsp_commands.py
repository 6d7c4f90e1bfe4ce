"""The loopback EMSP (tests/ocpi_api/emsp.py) with what commands and real-time authorization need from it:

- a tokens Sender interface answering `POST tokens/{uid}/authorize` as told per uid in `authorize_answers`:
  an AllowedType ("ALLOWED", "BLOCKED", ...), "UNKNOWN" (HTTP 404 / 2004) or "SILENT" (answers after `silent_for`
  seconds, far too late), with optional `authorization_references` and `evse_restrictions`;
- `response_url`s under `/ocpi/emsp/2.2.1/results/...` that record every POSTed result in `results`.
"""

import json
import threading
import time

from tests.ocpi_api.emsp import FakeEmsp, envelope


class CommandsEmsp(FakeEmsp):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.authorize_answers: dict[str, str] = {}
        self.authorization_references: dict[str, str] = {}
        self.evse_restrictions: dict[str, list[str]] = {}
        self.silent_for = 8.0
        self.results: list[dict] = []
        self.results_changed = threading.Condition()

    def response_url(self, name: str) -> str:
        return f"{self.base_url}/emsp/2.2.1/results/{name}"

    def result_for(self, name: str, timeout: float = 20.0) -> dict:
        """The body POSTed to response_url(name), waiting for it."""
        deadline = time.monotonic() + timeout
        with self.results_changed:
            while True:
                found = [r for r in self.results if r["path"].rstrip("/").endswith(f"/results/{name}")]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no result POSTed to {name}; got {self.results!r}")
                self.results_changed.wait(left)

    def endpoints(self):
        endpoints = super().endpoints()
        base = f"{self.base_url}/emsp/2.2.1"
        return endpoints + [{"identifier": "commands", "role": "SENDER", "url": f"{base}/commands"}]

    def _authorize_answer(self, uid: str, body):
        mode = self.authorize_answers.get(uid, "UNKNOWN")
        if mode == "SILENT":
            time.sleep(self.silent_for)
            return 200, envelope(None, 3000, "too late")
        if mode == "UNKNOWN":
            return 404, envelope(None, 2004, "Unknown token")
        info = {
            "allowed": mode,
            "token": {
                "country_code": self.country_code,
                "party_id": self.party_id,
                "uid": uid,
                "type": "RFID",
                "contract_id": f"{self.country_code}-{self.party_id}-C{uid}",
                "issuer": self.name,
                "valid": True,
                "whitelist": "ALLOWED",
                "last_updated": "2026-01-01T00:00:00Z",
            },
        }
        if uid in self.authorization_references:
            info["authorization_reference"] = self.authorization_references[uid]
        if body and uid in self.evse_restrictions:
            info["location"] = {"location_id": body["location_id"], "evse_uids": self.evse_restrictions[uid]}
        return 200, envelope(info)

    def _handler_class(emsp):
        base = FakeEmsp._handler_class(emsp)

        class Handler(base):
            def _handle(self, method):
                path = self.path.split("?")[0].rstrip("/")
                is_authorize = (
                    method == "POST" and path.startswith("/ocpi/emsp/2.2.1/tokens/") and path.endswith("/authorize")
                )
                is_result = method == "POST" and path.startswith("/ocpi/emsp/2.2.1/results/")
                if not (is_authorize or is_result):
                    return super()._handle(method)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                record = {"method": method, "path": self.path, "headers": dict(self.headers), "body": body}
                emsp.requests.append(record)
                if emsp._token_of(self.headers.get("Authorization")) is None:
                    return self._send(401, envelope(None, 2000, "Unauthorized"))
                if is_result:
                    with emsp.results_changed:
                        emsp.results.append(record)
                        emsp.results_changed.notify_all()
                    return self._send(200, envelope())
                uid = path.split("/")[-2]
                status, answer = emsp._authorize_answer(uid, body)
                return self._send(status, answer)

        return Handler
