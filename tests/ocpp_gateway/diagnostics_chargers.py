"""Simulated chargers that upload diagnostics (1.6 GetDiagnostics: PUT of the raw file to the link + its name) and
logs (2.0.1 GetLog: a multipart POST to the link), reporting their progress as the specification says."""

import asyncio

import httpx
from ocpp.routing import after, on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.ocpp_gateway.chargers import Charger16, Charger201

DIAGNOSTICS = b"2026-12-02T10:00:00Z boot ok\n" * 100


class DiagnosticsCharger16(Charger16):
    """Answers GetDiagnostics with a file name (or none when `has_diagnostics` is False), then uploads it."""

    has_diagnostics = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[dict] = []
        self.uploads: list[int] = []  # HTTP status of each upload
        self.tasks: set[asyncio.Task] = set()

    @on(Action16.get_diagnostics)
    def on_get_diagnostics(self, location, **kwargs):
        self.requests.append({"location": location, **kwargs})
        return result16.GetDiagnostics(file_name="diag-CP.zip" if self.has_diagnostics else None)

    @after(Action16.get_diagnostics)
    def after_get_diagnostics(self, location, **kwargs):
        if self.has_diagnostics:
            task = asyncio.create_task(self.upload(location))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def upload(self, location: str) -> None:
        await self.call(call16.DiagnosticsStatusNotification(status="Uploading"))
        async with httpx.AsyncClient() as client:
            response = await client.put(location + "diag-CP.zip", content=DIAGNOSTICS)
        self.uploads.append(response.status_code)
        status = "Uploaded" if response.status_code < 300 else "UploadFailed"
        await self.call(call16.DiagnosticsStatusNotification(status=status))


class LogCharger201(Charger201):
    """Answers GetLog Accepted (or `answer`), then POSTs the log as a multipart form."""

    answer = "Accepted"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[dict] = []
        self.uploads: list[int] = []
        self.tasks: set[asyncio.Task] = set()

    @on(Action201.get_base_report)
    def on_get_base_report(self, request_id, report_base, **kwargs):
        return result201.GetBaseReport(status="NotSupported")

    @on(Action201.get_log)
    def on_get_log(self, log, log_type, request_id, **kwargs):
        self.requests.append({"log": log, "log_type": log_type, "request_id": request_id})
        return result201.GetLog(status=self.answer, filename="security.log" if self.answer == "Accepted" else None)

    @after(Action201.get_log)
    def after_get_log(self, log, log_type, request_id, **kwargs):
        if self.answer == "Accepted":
            task = asyncio.create_task(self.upload(log["remote_location"], request_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def upload(self, location: str, request_id: int) -> None:
        await self.call(call201.LogStatusNotification(status="Uploading", request_id=request_id))
        async with httpx.AsyncClient() as client:
            response = await client.post(location, files={"file": ("security.log", DIAGNOSTICS, "text/plain")})
        self.uploads.append(response.status_code)
        status = "Uploaded" if response.status_code < 300 else "UploadFailure"
        await self.call(call201.LogStatusNotification(status=status, request_id=request_id))
