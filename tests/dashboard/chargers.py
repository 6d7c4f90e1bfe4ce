"""A simulated charger that runs on its own thread, for tests whose own thread is synchronous, and the chargers the
station page's live tests share."""

import asyncio
import threading

from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.ocpp_gateway.chargers import Charger16, Charger201, connected


class ChargerThread:
    """A simulated charger on its own event loop, so the test (and Playwright's sync API) can drive it step by step."""

    def __init__(self, url: str, identity: str, secret: str, *, version: str = "1.6", cls=None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.context = connected(url, identity, secret, version=version, cls=cls)
        self.cp = self.run(self.context.__aenter__())

    def run(self, coroutine, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def send(self, request):
        return self.run(self.cp.call(request))

    def close(self):
        self.run(self.context.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Configurable16(Charger16):
    """Keeps its keys; a new HeartbeatInterval needs a reboot, NumberOfConnectors is read-only."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys = {"HeartbeatInterval": "300", "NumberOfConnectors": "2", "AuthorizationKey": "0011223344556677"}
        self.changes: list[tuple[str, str]] = []

    @on(Action16.get_configuration)
    def on_get_configuration(self, **kwargs):
        return result16.GetConfiguration(
            configuration_key=[
                {"key": key, "readonly": key == "NumberOfConnectors", "value": value}
                for key, value in self.keys.items()
            ]
        )

    @on(Action16.change_configuration)
    def on_change_configuration(self, key, value, **kwargs):
        self.changes.append((key, value))
        return result16.ChangeConfiguration(status="RebootRequired" if key == "HeartbeatInterval" else "Rejected")


class Scheduling16(Charger16):
    """Holds two periods on connector 1: 16 A for ten minutes, then 8 A."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[dict] = []

    @on(Action16.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id, duration, **kwargs):
        self.asked.append({"connector_id": connector_id, "duration": duration, **kwargs})
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start="2026-11-20T10:00:00Z",
            charging_schedule={
                "duration": duration,
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 16.0}, {"start_period": 600, "limit": 8.0}],
            },
        )


class Scheduling201(Charger201):
    """Answers in watts, as asked: 11 kW, then 7.4 kW after half an hour."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[dict] = []

    @on(Action201.get_composite_schedule)
    def on_get_composite_schedule(self, duration, evse_id, **kwargs):
        self.asked.append({"evse_id": evse_id, "duration": duration, **kwargs})
        return result201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": "2026-11-20T12:00:00Z",
                "charging_rate_unit": kwargs.get("charging_rate_unit", "W"),
                "charging_schedule_period": [
                    {"start_period": 0, "limit": 11000.0},
                    {"start_period": 1800, "limit": 7400.0, "number_phases": 3},
                ],
            },
        )


async def boot(cp, version: str) -> None:
    """A BootNotification in the charger's version (model S1 / S2)."""
    if version == "1.6":
        await cp.call(call16.BootNotification(charge_point_model="S1", charge_point_vendor="ACME"))
    else:
        await cp.call(call201.BootNotification(charging_station={"model": "S2", "vendor_name": "A"}, reason="PowerUp"))
