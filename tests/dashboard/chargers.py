"""A simulated charger that runs on its own thread, for tests whose own thread is synchronous."""

import asyncio
import threading

from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16

from tests.ocpp_gateway.chargers import Charger16, connected


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
