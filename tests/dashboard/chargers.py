"""A simulated charger that runs on its own thread, for tests whose own thread is synchronous."""

import asyncio
import threading

from tests.ocpp_gateway.chargers import connected


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
