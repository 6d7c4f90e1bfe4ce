"""Simulated chargers that update their firmware: a 1.6 one downloads the image from the link it got and installs it,
a 2.0.1 one accepts and then fails to download (FirmwareStatusNotification with the requestId)."""

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


class FirmwareCharger16(Charger16):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates: list[dict] = []
        self.downloaded: list[bytes] = []
        self.tasks: set[asyncio.Task] = set()

    @on(Action16.update_firmware)
    def on_update_firmware(self, location, retrieve_date, **kwargs):
        self.updates.append({"location": location, "retrieve_date": retrieve_date})
        return result16.UpdateFirmware()

    @after(Action16.update_firmware)
    def after_update_firmware(self, location, **kwargs):
        task = asyncio.create_task(self.install(location))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def install(self, location: str) -> None:
        await self.call(call16.FirmwareStatusNotification(status="Downloading"))
        async with httpx.AsyncClient() as client:
            response = await client.get(location)
        if response.status_code != 200:
            await self.call(call16.FirmwareStatusNotification(status="DownloadFailed"))
            return
        self.downloaded.append(response.content)
        for status in ("Downloaded", "Installing", "Installed"):
            await self.call(call16.FirmwareStatusNotification(status=status))


class FailingFirmwareCharger201(Charger201):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates: list[dict] = []
        self.tasks: set[asyncio.Task] = set()

    @on(Action201.get_base_report)
    def on_get_base_report(self, request_id, report_base, **kwargs):
        return result201.GetBaseReport(status="NotSupported")

    @on(Action201.update_firmware)
    def on_update_firmware(self, request_id, firmware, **kwargs):
        self.updates.append({"request_id": request_id, "firmware": firmware})
        return result201.UpdateFirmware(status="Accepted")

    @after(Action201.update_firmware)
    def after_update_firmware(self, request_id, firmware, **kwargs):
        task = asyncio.create_task(self.fail(request_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def fail(self, request_id: int) -> None:
        for status in ("Downloading", "DownloadFailed"):
            await self.call(call201.FirmwareStatusNotification(status=status, request_id=request_id))


class HoldingFirmwareCharger16(FirmwareCharger16):
    """Downloads the image, then installs it only when the test releases it: its update stays under way until then."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()

    async def install(self, location: str) -> None:
        await self.call(call16.FirmwareStatusNotification(status="Downloading"))
        async with httpx.AsyncClient() as client:
            self.downloaded.append((await client.get(location)).content)
        await self.call(call16.FirmwareStatusNotification(status="Installing"))
        await self.release.wait()
        await self.call(call16.FirmwareStatusNotification(status="Installed"))
